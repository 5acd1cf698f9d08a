"""Shared plumbing of the benchmarks: timing statistics, a server in its own process, a keep-alive HTTP
client, an RSS sampler and the printed results table."""

from __future__ import annotations

import http.client
import math
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT_SECONDS = 60
URL_PATTERN = re.compile(r" at (http://\S+)")
ORDER_SEED = 20261123

# ----- statistics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Samples:
    """Durations in seconds of repeated runs of one measurement."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        """Return the median."""
        return statistics.median(self.values)

    @property
    def p90(self) -> float:
        """Return the 90th percentile (nearest rank; with few samples this is the maximum)."""
        ordered = sorted(self.values)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]

    def __len__(self) -> int:
        return len(self.values)


def repeat(fn: Callable[[], object], runs: int, *, warmup: int = 1) -> Samples:
    """Run ``fn`` ``warmup`` times untimed, then ``runs`` times timed."""
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        values.append(time.perf_counter() - start)
    return Samples(tuple(values))


def round_orders(labels: list[str], rounds: int) -> Iterator[list[str]]:
    """Yield ``labels`` in a fresh shuffled order for each round (seeded, so runs are comparable).

    Rotating one fixed order would give every contender the same predecessor each round, and whatever
    the predecessor leaves behind (dirty pages to write back, a warm cache) would always land on it.
    """
    rng = random.Random(ORDER_SEED)
    for _ in range(rounds):
        order = list(labels)
        rng.shuffle(order)
        yield order


def repeat_interleaved(fns: dict[str, Callable[[], object]], runs: int, *, warmup: int = 1) -> dict[str, Samples]:
    """Time several measurements interleaved, in a shuffled order each round.

    A slow spell of the machine (writeback after a large push is common) then hits every measurement
    alike instead of whichever series happened to run during it.
    """
    labels = list(fns)
    for _ in range(warmup):
        for label in labels:
            fns[label]()
    values: dict[str, list[float]] = {label: [] for label in labels}
    for order in round_orders(labels, runs):
        for label in order:
            start = time.perf_counter()
            fns[label]()
            values[label].append(time.perf_counter() - start)
    return {label: Samples(tuple(timings)) for label, timings in values.items()}


def fmt_duration(seconds: float) -> str:
    """Format a duration: microseconds, milliseconds or seconds, whichever reads best."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_rate(count: int, seconds: float, unit: str = "items/s") -> str:
    """Format a throughput."""
    return f"{count / seconds:,.0f} {unit}" if seconds > 0 else "inf"


# ----- results table -----------------------------------------------------------------------------


@dataclass
class Table:
    """The printed results: rows are printed as soon as they are measured, so a partial run shows something."""

    widths: tuple[int, ...] = (58, 16, 12, 5, 16, 6)
    headers: tuple[str, ...] = ("measurement", "median/value", "p90", "n", "target", "met")
    rows: list[tuple[str, ...]] = field(default_factory=list)
    verdicts: list[tuple[str, str, str]] = field(default_factory=list)

    def header(self) -> None:
        """Print the column headers."""
        self._print(self.headers)
        print("  ".join("-" * w for w in self.widths), flush=True)

    def section(self, title: str) -> None:
        """Print a section title."""
        print(f"\n== {title} ==", flush=True)

    def note(self, text: str) -> None:
        """Print a free-text line inside the table."""
        print(f"   {text}", flush=True)

    def samples(self, label: str, samples: Samples, *, target: str = "", met: bool | None = None) -> None:
        """Print one timed measurement as median, p90 and number of samples."""
        self.row(label, fmt_duration(samples.median), fmt_duration(samples.p90), str(len(samples)), target, met)

    def row(
        self,
        label: str,
        value: str,
        p90: str = "",
        n: str = "",
        target: str = "",
        met: bool | None = None,
    ) -> None:
        """Print one row; ``met`` is None when the row has no target."""
        verdict = "" if met is None else ("yes" if met else "NO")
        cells = (label, value, p90, n, target, verdict)
        self.rows.append(cells)
        if met is not None:
            self.verdicts.append((label.strip(), target, verdict))
        self._print(cells)

    def _print(self, cells: tuple[str, ...]) -> None:
        label, *rest = cells
        parts = [label.ljust(self.widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(rest, self.widths[1:], strict=True)]
        print("  ".join(parts).rstrip(), flush=True)

    def summary(self) -> None:
        """Print every target and whether it was met."""
        self.section("Targets")
        for label, target, verdict in self.verdicts:
            print(f"   [{verdict:>3}] {label}: {target}", flush=True)


def progress(message: str) -> None:
    """Report progress on stderr (the table goes to stdout)."""
    print(f"... {message}", file=sys.stderr, flush=True)


# ----- the server in its own process ------------------------------------------------------------


class ServerProcess:
    """``python -m storage_emulator serve --root ROOT --port 0`` in a child process, as users run it."""

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root = root
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.startup_seconds = 0.0

    def start(self) -> ServerProcess:
        """Start the server and wait until it has printed its URL (its socket is listening by then)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [sys.executable, "-m", "storage_emulator", "serve", "--root", str(self.root), "--port", "0"]
        started = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log)
        found: list[str] = []

        def read_url() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for raw in self.proc.stdout:
                match = URL_PATTERN.search(raw.decode("utf-8", "replace"))
                if match:
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=read_url, daemon=True)
        reader.start()
        try:
            reader.join(SERVER_START_TIMEOUT_SECONDS)
        except BaseException:  # Ctrl-C while waiting: leave no server behind
            self.stop()
            raise
        if not found:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server did not start; its log ends with:\n{tail}")
        self.startup_seconds = time.perf_counter() - started
        self.url = found[0]
        return self

    @property
    def pid(self) -> int:
        """Return the server's process id."""
        assert self.proc is not None
        return self.proc.pid

    def rss(self) -> int:
        """Return the server process's resident set size in bytes."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def stop(self) -> None:
        """Stop the server (only this child, by its pid)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ----- a plain keep-alive HTTP client -------------------------------------------------------------


class Http:
    """A plain ``http.client`` connection, reused where the server allows it (``serve`` keeps it alive;
    ``http.client`` reconnects by itself when a server closes it)."""

    def __init__(self, url: str, *, timeout: float = 300) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)

    def connect(self) -> None:
        """Open the connection now, so that a timed request does not include the TCP handshake."""
        self.conn.connect()

    def get(self, path: str) -> bytes:
        """GET ``path`` and return the body; raise on any status but 200."""
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
        return body

    def post(self, path: str, body: bytes, expected: tuple[int, ...] = (200, 201)) -> bytes:
        """POST a JSON ``body`` to ``path`` and return the response body; raise on an unexpected status."""
        self.conn.request("POST", path, body=body, headers={"Content-Type": "application/json; charset=utf-8"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status not in expected:
            raise RuntimeError(f"POST {path} answered {response.status}: {data[:300]!r}")
        return data

    def get_status(self, path: str) -> int:
        """GET ``path`` and return the status, whatever it is."""
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        response.read()
        return response.status

    def stream(self, path: str, chunk_size: int = 64 * 1024) -> int:
        """GET ``path``, discard the body as it arrives, and return its length in bytes."""
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {response.read()[:300]!r}")
        total = 0
        while chunk := response.read(chunk_size):
            total += len(chunk)
        return total

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


# ----- memory sampling ---------------------------------------------------------------------------


@dataclass
class RssSample:
    """What the sampler saw: RSS in bytes before, at the peak, and how many samples it took."""

    baseline: int
    peak: int
    count: int

    @property
    def growth(self) -> int:
        """Return how far the peak rose above the baseline."""
        return max(0, self.peak - self.baseline)


@contextmanager
def sample_rss(pid: int, *, interval: float = 0.01) -> Iterator[RssSample]:
    """Sample a process's RSS every ``interval`` seconds in a thread while the block runs."""
    process = psutil.Process(pid)
    baseline = int(process.memory_info().rss)
    result = RssSample(baseline=baseline, peak=baseline, count=1)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = int(process.memory_info().rss)
            result.peak = max(result.peak, rss)
            result.count += 1
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result.peak = max(result.peak, int(process.memory_info().rss))


def mb(value: int) -> str:
    """Format bytes as MiB (2**20 bytes), as ``top`` and ``ps`` count memory."""
    return f"{value / 2**20:.1f} MiB"
