"""D. Request queues, next to Crawlee's ``FileSystemRequestQueueClient``: add, consume with locks, head."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    REPO_ROOT,
    Http,
    Samples,
    ServerProcess,
    Table,
    fmt_duration,
    fmt_rate,
    progress,
    repeat,
    round_orders,
)
from storage_emulator.request_queues import RequestQueueRepository

BATCH = 25


@dataclass(frozen=True)
class QueuesConfig:
    """Sizes of section C."""

    requests: int
    """Requests added by each contender, in batches of 25 (and the size of the queue whose head is read)."""
    consumed: int
    """Requests locked and handled by the consumers."""
    consumers: int
    head_runs: int


# One consumer over HTTP: lock 25, mark each handled (PUT with handledAt), until nothing is pending.
CONSUMER = r"""
import json, sys, time
from datetime import timedelta
from apify_client import ApifyClient
url, queue_id, key = sys.argv[1:4]
rq = ApifyClient(token="t", api_url=url, max_retries=8).request_queue(queue_id, client_key=key)
handled = []
while True:
    items = rq.list_and_lock_head(lock_duration=timedelta(seconds=60), limit=25).items
    if not items:
        if rq.get().pending_request_count == 0:
            break
        time.sleep(0.02)
        continue
    for item in items:
        body = {"id": item.id, "uniqueKey": item.unique_key, "url": str(item.url), "method": "GET",
                "handledAt": "2026-01-01T00:00:00.000Z"}
        assert not rq.update_request(body).was_already_handled
        handled.append(item.id)
print(json.dumps(handled))
"""


def _batches(prefix: str, count: int) -> list[list[dict[str, Any]]]:
    keys = [f"https://example.com/{prefix}/{i}" for i in range(count)]
    return [[{"uniqueKey": k, "url": k} for k in keys[i : i + BATCH]] for i in range(0, count, BATCH)]


async def _crawlee_client(storage_dir: Path, name: str) -> Any:
    from crawlee.configuration import Configuration
    from crawlee.storage_clients import FileSystemStorageClient

    config = Configuration(storage_dir=str(storage_dir), purge_on_start=False)
    return await FileSystemStorageClient().create_rq_client(name=name, configuration=config)


def run_request_queues(table: Table, workspace: Path, config: QueuesConfig) -> None:
    """Measure section C and print its rows."""
    from crawlee import Request

    table.section(f"D. Request queues ({config.requests:,} requests in batches of {BATCH}), next to Crawlee")
    emulator_root = workspace / "rq-emulator"
    crawlee_root = workspace / "rq-crawlee"
    repo = RequestQueueRepository(emulator_root)
    http_queue, _ = repo.get_or_create_request_queue("bench-http")
    repo_queue, _ = repo.get_or_create_request_queue("bench-repo")
    loop = asyncio.new_event_loop()
    crawlee = loop.run_until_complete(_crawlee_client(crawlee_root, "bench"))
    batches = {name: _batches(name, config.requests) for name in ("http", "repo", "crawlee")}
    crawlee_batches = [[Request.from_url(r["url"]) for r in batch] for batch in batches["crawlee"]]
    totals = collections.Counter[str]()
    with ServerProcess(emulator_root, workspace / "rq-server.log") as server:
        http = Http(server.url)
        add_url = f"/v2/request-queues/{http_queue.id}/requests/batch?clientKey=bench"
        adders = {
            "http": lambda batch: http.post(add_url, json.dumps(batch).encode(), (201,)),
            "repo": lambda batch: repo.add_requests(repo_queue.id, batch, client_key="bench"),
        }
        # The three receive the same number of batches in turn, in a shuffled order per round of 100 batches.
        rounds = (len(crawlee_batches) + 99) // 100
        os.sync()
        progress(f"D: adding {config.requests:,} requests x3")
        for round_number, order in enumerate(round_orders(["http", "repo", "crawlee"], rounds)):
            window = slice(round_number * 100, (round_number + 1) * 100)
            for label in order:
                started = time.perf_counter()
                if label == "crawlee":
                    for crawlee_batch in crawlee_batches[window]:
                        loop.run_until_complete(crawlee.add_batch_of_requests(crawlee_batch))
                else:
                    for batch in batches[label][window]:
                        adders[label](batch)
                totals[label] += time.perf_counter() - started
        crawlee_rate = config.requests / totals["crawlee"]
        for label, title in (
            ("http", "emulator over HTTP"),
            ("repo", "emulator repository API"),
            ("crawlee", "Crawlee"),
        ):
            rate = config.requests / totals[label]
            met = None if label == "crawlee" else rate >= 10 * crawlee_rate
            table.row(
                f"add {config.requests:,}, batches of {BATCH}: {title}",
                fmt_rate(config.requests, totals[label], "req/s"),
                fmt_duration(totals[label]),
                "",
                ">= 10x Crawlee" if met is not None else "",
                met,
            )

        # Head of the full queue: the emulator answers from its index; Crawlee's first fetch after opening
        # the queue (a resumed crawl) reads every pending request file into its cache.
        head_url = f"/v2/request-queues/{http_queue.id}/head?limit=25&clientKey=bench"
        head_http = repeat(lambda: http.get(head_url), config.head_runs)
        head_repo = repeat(lambda: repo.get_head(repo_queue.id, limit=25, client_key="bench"), config.head_runs)
        progress("D: Crawlee's first fetch of a reopened queue")
        crawlee_first: list[float] = []
        for _ in range(2):
            reopened = loop.run_until_complete(_crawlee_client(crawlee_root, "bench"))
            started = time.perf_counter()
            loop.run_until_complete(reopened.fetch_next_request())
            crawlee_first.append(time.perf_counter() - started)
        crawlee_head = Samples(tuple(crawlee_first))
        table.samples(f"head of {config.requests:,}: emulator GET head?limit=25", head_http)
        table.samples(f"head of {config.requests:,}: emulator repository get_head", head_repo)
        table.samples(f"head of {config.requests:,}: Crawlee first fetch after open", crawlee_head)
        table.row(
            "  ratio Crawlee / emulator HTTP head",
            f"{crawlee_head.median / head_http.median:,.0f}x",
            target=">= 10x",
            met=crawlee_head.median >= 10 * head_http.median,
        )
        http.close()

        # Consumers: a fresh queue of `consumed` requests, 4 processes over HTTP (two server processes).
        work, _ = repo.get_or_create_request_queue("bench-work")
        for batch in _batches("work", config.consumed):
            repo.add_requests(work.id, batch, client_key="producer")
        with ServerProcess(emulator_root, workspace / "rq-server2.log") as second:
            urls = [server.url, second.url]
            progress(f"D: {config.consumers} consumers handling {config.consumed:,}")
            env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
            started = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", CONSUMER, urls[n % 2], work.id, f"consumer-{n}"],
                    stdout=subprocess.PIPE,
                    env=env,
                )
                for n in range(config.consumers)
            ]
            outputs = [proc.communicate()[0] for proc in procs]
            consumed_seconds = time.perf_counter() - started
    handled = collections.Counter(request_id for out in outputs for request_id in json.loads(out))
    exactly_once = len(handled) == config.consumed and set(handled.values()) == {1}
    final = repo.get_request_queue(work.id)
    exactly_once = exactly_once and (final.handled_request_count, final.pending_request_count) == (config.consumed, 0)

    # Crawlee's file-system client has no cross-process locking: one consumer in one process.
    crawlee_work = loop.run_until_complete(_crawlee_client(crawlee_root, "work"))
    for batch in _batches("work", config.consumed):
        loop.run_until_complete(crawlee_work.add_batch_of_requests([Request.from_url(r["url"]) for r in batch]))

    async def consume_crawlee() -> int:
        count = 0
        while (request := await crawlee_work.fetch_next_request()) is not None:
            await crawlee_work.mark_request_as_handled(request)
            count += 1
        return count

    started = time.perf_counter()
    crawlee_count = loop.run_until_complete(consume_crawlee())
    crawlee_seconds = time.perf_counter() - started
    loop.close()
    table.row(
        f"consume {config.consumed:,}: {config.consumers} processes over HTTP, lock+PUT",
        fmt_rate(config.consumed, consumed_seconds, "req/s"),
        fmt_duration(consumed_seconds),
        target=">= 10x Crawlee",
        met=config.consumed / consumed_seconds >= 10 * crawlee_count / crawlee_seconds,
    )
    table.row(
        f"consume {crawlee_count:,}: Crawlee, 1 process (no cross-process locks)",
        fmt_rate(crawlee_count, crawlee_seconds, "req/s"),
        fmt_duration(crawlee_seconds),
    )
    table.row(
        "  each request handled exactly once, counters exact",
        "yes" if exactly_once else "NO",
        target="yes",
        met=exactly_once,
    )
