"""C. Serving: get-by-id next to a bare Flask route over one keep-alive connection, and the requests/s of
8 concurrent clients with 1 and 2 worker processes.

The server is the one ``storage-emulator serve`` runs (``storage_emulator.serving``: cheroot threads, or
gunicorn workers), started in its own process by ``python -m benchmarks.serving --serve ROOT WORKERS``
with one extra route, ``/_bench/bare``, that returns a constant: the cost of HTTP + Flask and nothing else.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO_ROOT, URL_PATTERN, Http, Table, progress, repeat_interleaved

BARE_PATH = "/_bench/bare"
CLIENTS = 8
RATIO_TARGET = 1.3


@dataclass(frozen=True)
class ServingConfig:
    """How many requests each measurement makes."""

    sequential_runs: int
    requests_per_client: int


def _build_app(root: str) -> Any:
    from flask import Flask

    from storage_emulator.web import create_app

    app: Flask = create_app({"ROOT": root})

    @app.get(BARE_PATH)
    def bare() -> str:
        return "ok"

    return app


def _serve(root: str, workers: int) -> int:
    """Serve the root (with the bare route) as ``serve --quiet`` would, printing the URL line."""
    from storage_emulator.serving import serve_threaded, serve_workers

    def announce(url: str) -> None:
        print(f"benchmark server at {url}", flush=True)

    if workers > 1:
        return serve_workers(lambda: _build_app(root), "127.0.0.1", 0, workers=workers, on_ready=announce)
    return serve_threaded(_build_app(root), "127.0.0.1", 0, on_ready=announce)


class _BenchServer:
    """The benchmark server in a child process."""

    def __init__(self, root: Path, workers: int, log_path: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "benchmarks.serving", "--serve", str(root), str(workers)]
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log)
        found: list[str] = []

        def read_url() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                match = URL_PATTERN.search(raw.decode("utf-8", "replace"))
                if match:
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=read_url, daemon=True)
        reader.start()
        reader.join(60)
        if not found:
            self.stop()
            raise RuntimeError(f"the benchmark server did not start; see {log_path}")
        self.url = found[0]

    def stop(self) -> None:
        """Stop the server (this child only, by its pid)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


def _client(url: str, path: str, count: int, barrier: Any, results: Any) -> None:
    http = Http(url)
    http.connect()
    http.get(path)  # warm this connection
    barrier.wait()
    started = time.perf_counter()
    for _ in range(count):
        http.get(path)
    results.put((started, time.perf_counter(), count))
    http.close()


def _concurrent_rate(url: str, path: str, clients: int, count: int) -> float:
    """Return requests/s of ``clients`` processes, each with its own keep-alive connection, all at once."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(clients)
    results = context.Queue()
    processes = [context.Process(target=_client, args=(url, path, count, barrier, results)) for _ in range(clients)]
    for process in processes:
        process.start()
    finished = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(60)
    span = max(end for _, end, _ in finished) - min(start for start, _, _ in finished)
    return sum(n for _, _, n in finished) / span


def _prepare_root(root: Path) -> str:
    from storage_emulator import DatasetRepository

    repo = DatasetRepository(root)
    for n in range(100):
        repo.get_or_create_dataset(name=f"dataset-{n}")
    dataset, _ = repo.get_or_create_dataset(name="looked-up")
    repo.push_items(dataset.id, [{"n": 1}])
    return dataset.id


def run_serving(table: Table, workspace: Path, config: ServingConfig) -> None:
    """Measure and print section C."""
    table.section("E. Serving (cheroot keep-alive threads; gunicorn gthread workers)")
    root = workspace / "serving-root"
    dataset_id = _prepare_root(root)
    by_id = f"/v2/datasets/{dataset_id}"
    log_path = workspace / "serving-server.log"

    progress("serving: sequential requests over one keep-alive connection")
    server = _BenchServer(root, 1, log_path)
    try:
        http = Http(server.url)
        http.connect()
        samples = repeat_interleaved(
            {"bare": lambda: http.get(BARE_PATH), "by id": lambda: http.get(by_id)},
            config.sequential_runs,
            warmup=50,
        )
        http.close()
    finally:
        server.stop()
    ratio = samples["by id"].median / samples["bare"].median
    table.samples("sequential, one keep-alive connection: bare Flask route", samples["bare"])
    table.samples("sequential, one keep-alive connection: GET /v2/datasets/{id}", samples["by id"])
    table.row("ratio get by id / bare route", f"{ratio:.2f}x", target=f"<= {RATIO_TARGET}x", met=ratio <= RATIO_TARGET)

    for workers in (1, 2):
        progress(f"serving: {CLIENTS} concurrent clients, {workers} worker process(es)")
        server = _BenchServer(root, workers, log_path)
        try:
            rate = _concurrent_rate(server.url, by_id, CLIENTS, config.requests_per_client)
        finally:
            server.stop()
        label = f"{CLIENTS} concurrent keep-alive clients, get by id, {workers} worker(s)"
        table.row(label, f"{rate:,.0f} req/s", n=str(CLIENTS * config.requests_per_client))


def main() -> int:
    """Serve for the benchmark (``--serve ROOT WORKERS``), or run section C alone."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving")
    parser.add_argument("--serve", nargs=2, metavar=("ROOT", "WORKERS"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.serve:
        return _serve(args.serve[0], int(args.serve[1]))
    import tempfile

    table = Table()
    table.header()
    with tempfile.TemporaryDirectory(prefix="storage-emulator-bench-") as workspace:
        run_serving(table, Path(workspace), QUICK_SERVING if args.quick else FULL_SERVING)
    table.summary()
    return 0


FULL_SERVING = ServingConfig(sequential_runs=500, requests_per_client=300)
QUICK_SERVING = ServingConfig(sequential_runs=200, requests_per_client=100)

if __name__ == "__main__":
    raise SystemExit(main())
