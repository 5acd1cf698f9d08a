"""Section B: pushing, paging, iterating and exporting items, side by side with Crawlee's file-system client."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from storage_emulator import DatasetRepository
from storage_emulator.item_store import CREATE_FLAGS, encode_item

from .harness import (
    Http,
    ServerProcess,
    Table,
    fmt_duration,
    fmt_rate,
    mb,
    progress,
    repeat,
    repeat_interleaved,
    round_orders,
    sample_rss,
)

PUSH_RATIO_TARGET = 10.0
PAGE_READ_TARGET_SECONDS = 0.005
EXPORT_GROWTH_TARGET_BYTES = 50 * 2**20
FLOOR = "file-system floor"


@dataclass(frozen=True)
class ItemsConfig:
    """Sizes and repetition counts of section B."""

    items: int
    batch: int
    page: int
    page_runs: int
    crawlee_page_runs: int
    floor_per_batch: int


def make_item(index: int) -> dict[str, Any]:
    """Return a small, realistic scraped item (about 200 bytes as compact JSON)."""
    return {
        "url": f"https://shop.example.com/products/{index}",
        "title": f"Blue widget, model {index}",
        "price": round(5 + (index % 997) * 0.31, 2),
        "inStock": index % 3 != 0,
        "rating": (index % 50) / 10,
        "tags": ["widgets", "blue"],
        "scrapedAt": "2026-01-01T12:00:00.000Z",
    }


def batches(config: ItemsConfig) -> list[range]:
    """Return the index ranges of the pushed batches."""
    return [range(start, min(start + config.batch, config.items)) for start in range(0, config.items, config.batch)]


def interleaved_pushes(
    config: ItemsConfig, contenders: dict[str, Callable[[list[dict[str, Any]]], object]], floor_folder: Path
) -> tuple[dict[str, float], float, int]:
    """Push every batch to every contender in turn, plus a slice of it to the file-system floor.

    Interleaved, in a shuffled order each round (see ``round_orders``), so that a slow spell of the disk,
    which is common on virtual machines, hits every contender alike. Returns the seconds each contender
    spent inside its push calls only, the floor's seconds and the floor's file count.
    """
    spent = dict.fromkeys(contenders, 0.0)
    labels = [*contenders, FLOOR]
    floor_seconds = 0.0
    floor_files = 0
    floor_folder.mkdir(parents=True)
    all_batches = batches(config)
    orders = round_orders(labels, len(all_batches))
    for round_index, (indices, order) in enumerate(zip(all_batches, orders, strict=True)):
        batch = [make_item(i) for i in indices]  # built outside the timed calls
        for label in order:
            if label == FLOOR:
                floor_batch = batch[: config.floor_per_batch]
                floor_seconds += _write_floor_files(floor_folder, floor_batch, floor_files)
                floor_files += len(floor_batch)
                continue
            started = time.perf_counter()
            contenders[label](batch)
            spent[label] += time.perf_counter() - started
        if (round_index + 1) % 20 == 0:
            progress(f"B: pushed {indices.stop:,} of {config.items:,} items to each")
    return spent, floor_seconds, floor_files


def _write_floor_files(folder: Path, items: list[dict[str, Any]], already: int) -> float:
    """Create and write one file per item, nothing else: the floor of a one-file-per-item layout here.

    The same system calls as the emulator's push (``os.open`` with ``O_EXCL``, one ``os.write``, close),
    without its bookkeeping, lock or metadata write.
    """
    encoded = [encode_item(item) for item in items]
    started = time.perf_counter()
    for index, data in enumerate(encoded, start=already + 1):
        fd = os.open(folder / f"{index:09d}.json", CREATE_FLAGS, 0o666)
        os.write(fd, data)
        os.close(fd)
    return time.perf_counter() - started


class CrawleeSide:
    """Crawlee for Python's ``Dataset`` over ``FileSystemStorageClient``, driven from synchronous code."""

    def __init__(self, storage_dir: Path, name: str) -> None:
        from crawlee.configuration import Configuration
        from crawlee.storage_clients import FileSystemStorageClient
        from crawlee.storages import Dataset

        self.runner = asyncio.Runner()
        configuration = Configuration(storage_dir=str(storage_dir), purge_on_start=False)
        self.dataset = self.runner.run(
            Dataset.open(name=name, storage_client=FileSystemStorageClient(), configuration=configuration)
        )

    def push(self, batch: list[dict[str, Any]]) -> None:
        """Push one batch."""
        self.runner.run(self.dataset.push_data(batch))

    def page(self, offset: int, limit: int) -> list[Any]:
        """Read one page."""
        return list(self.runner.run(self.dataset.get_data(offset=offset, limit=limit)).items)

    def count_all(self) -> int:
        """Iterate every item; return how many there were."""

        async def count() -> int:
            seen = 0
            async for _ in self.dataset.iterate_items():
                seen += 1
            return seen

        return self.runner.run(count())

    def item_count(self) -> int:
        """Return the item count of the metadata."""
        return int(self.runner.run(self.dataset.get_metadata()).item_count)

    def close(self) -> None:
        """Close the event loop."""
        self.runner.close()


def run_items(table: Table, workspace: Path, config: ItemsConfig) -> None:
    """Measure section B."""
    n = config.items
    sample_size = sum(len(json.dumps(make_item(i), separators=(",", ":"))) for i in range(1000)) / 1000
    file_size = sum(len(encode_item(make_item(i))) for i in range(1000)) / 1000
    table.section("B. Items: emulator (repository API, HTTP + apify_client) vs Crawlee FileSystemStorageClient")
    table.note(
        f"{n:,} items in batches of {config.batch:,}; item = {sample_size:.0f} B compact JSON, "
        f"{file_size:.0f} B as the emulator stores it (one line, one file per item; Crawlee indents its files)"
    )

    repo_root = workspace / "items-repo"
    http_root = workspace / "items-http"
    crawlee_root = workspace / "items-crawlee"
    repo = DatasetRepository(repo_root)
    repo_dataset, _ = repo.get_or_create_dataset("bench-repo")

    os.sync()  # let the writeback of earlier phases finish before the pushes are timed
    with ServerProcess(http_root, workspace / "server-items.log") as server:
        from apify_client import ApifyClient

        client = ApifyClient(token="local-token", api_url=server.url, api_public_url=server.url, max_retries=0)
        http_dataset_id = client.datasets().get_or_create(name="bench-http").id
        dataset_client = client.dataset(http_dataset_id)
        crawlee = CrawleeSide(crawlee_root, "bench-crawlee")
        try:
            progress(f"B: push {n:,} items to the repository, over HTTP and to Crawlee, batch by batch in turn")
            spent, floor_seconds, floor_files = interleaved_pushes(
                config,
                {
                    "repository": lambda batch: repo.push_items(repo_dataset.id, batch),
                    "http": dataset_client.push_items,
                    "crawlee": crawlee.push,
                },
                workspace / "floor-files",
            )
            _check(table, "repository push", repo.get_dataset(repo_dataset.id).item_count, n)
            http_info = dataset_client.get()
            _check(table, "HTTP push", http_info.item_count if http_info else -1, n)
            _check(table, "Crawlee push", crawlee.item_count(), n)
            _report_push(table, config, floor_files, floor_seconds, spent)

            os.sync()
            progress("B: page reads")
            _page_reads(table, config, repo, repo_dataset.id, Http(server.url), http_dataset_id, crawlee)

            progress("B: iterate all items")
            _iterate_all(table, config, repo, repo_dataset.id, dataset_client, crawlee)
        finally:
            crawlee.close()

        os.sync()
        progress("B: CSV and JSON exports")
        _exports(table, config, server, http_dataset_id)


def _check(table: Table, what: str, actual: int, expected: int) -> None:
    if actual != expected:
        table.note(f"WARNING: after the {what}, the dataset holds {actual:,} items, expected {expected:,}")


def _report_push(
    table: Table, config: ItemsConfig, floor_files: int, floor_seconds: float, spent: dict[str, float]
) -> None:
    n = config.items
    repo_seconds, http_seconds, crawlee_seconds = spent["repository"], spent["http"], spent["crawlee"]
    crawlee_rate = n / crawlee_seconds
    floor_rate = floor_files / floor_seconds
    table.row(
        f"floor: os.open(O_EXCL) + write + close, one file per item [{floor_files:,} files]",
        fmt_rate(floor_files, floor_seconds, "files/s"),
    )
    for label, short, seconds in (
        ("emulator repository API (repo.push_items)", "repository", repo_seconds),
        ("emulator HTTP + apify_client push_items", "HTTP", http_seconds),
    ):
        rate = n / seconds
        table.row(f"push {label} [{n:,}]", fmt_rate(n, seconds), fmt_duration(seconds), "1")
        table.row(
            f"  ratio emulator ({short}) / Crawlee",
            f"{rate / crawlee_rate:.2f}x",
            target=f">= {PUSH_RATIO_TARGET:g}x Crawlee",
            met=rate / crawlee_rate >= PUSH_RATIO_TARGET,
        )
        table.row("  share of the file-system floor rate", f"{rate / floor_rate:.0%}")
    table.row(
        f"push Crawlee Dataset.push_data [{n:,}]", fmt_rate(n, crawlee_seconds), fmt_duration(crawlee_seconds), "1"
    )
    table.row("  share of the file-system floor rate", f"{crawlee_rate / floor_rate:.0%}")


def _page_reads(
    table: Table,
    config: ItemsConfig,
    repo: DatasetRepository,
    repo_dataset_id: str,
    http: Http,
    http_dataset_id: str,
    crawlee: CrawleeSide,
) -> None:
    n, limit = config.items, config.page
    target = f"< {PAGE_READ_TARGET_SECONDS * 1000:g} ms"
    offsets = (0, n - limit)
    emulator: dict[str, Callable[[], object]] = {}
    for offset in offsets:
        expected_url = make_item(offset)["url"]
        path = f"/v2/datasets/{http_dataset_id}/items?offset={offset}&limit={limit}"
        body = json.loads(http.get(path))
        if len(body) != limit or body[0].get("url") != expected_url:
            table.note(f"WARNING: GET {path} returned {len(body)} items starting at {body[:1]}")
        page = list(repo.read_items(repo_dataset_id, offset=offset, limit=limit).items())
        if len(page) != limit or page[0].get("url") != expected_url:
            table.note(f"WARNING: repo.read_items at offset {offset} returned {len(page)} items")
        items = crawlee.page(offset, limit)
        if len(items) != limit or items[0].get("url") != expected_url:
            table.note(f"WARNING: Crawlee get_data at offset {offset} returned {len(items)} items")

        emulator[f"http {offset}"] = partial(http.get, path)
        emulator[f"repo {offset}"] = partial(_read_page, repo, repo_dataset_id, offset, limit, count_read=True)
        emulator[f"repo uncounted {offset}"] = partial(
            _read_page, repo, repo_dataset_id, offset, limit, count_read=False
        )
    samples = repeat_interleaved(emulator, config.page_runs, warmup=2)
    for offset in offsets:
        for key, label in (
            (f"http {offset}", f"page of {limit} at offset {offset:,}: emulator HTTP GET items"),
            (f"repo {offset}", f"page of {limit} at offset {offset:,}: emulator repository read_items"),
        ):
            table.samples(label, samples[key], target=target, met=samples[key].median < PAGE_READ_TARGET_SECONDS)
        table.samples("  same, read_items(count_read=False)", samples[f"repo uncounted {offset}"])
        crawlee_samples = repeat(lambda: crawlee.page(offset, limit), config.crawlee_page_runs, warmup=1)  # noqa: B023
        table.samples(f"page of {limit} at offset {offset:,}: Crawlee get_data", crawlee_samples)
    http.close()


def _read_page(repo: DatasetRepository, dataset_id: str, offset: int, limit: int, *, count_read: bool) -> int:
    return len(list(repo.read_items(dataset_id, offset=offset, limit=limit, count_read=count_read).items()))


def _iterate_all(
    table: Table,
    config: ItemsConfig,
    repo: DatasetRepository,
    repo_dataset_id: str,
    dataset_client: Any,
    crawlee: CrawleeSide,
) -> None:
    n = config.items
    runs: list[tuple[str, Callable[[], int]]] = [
        ("emulator HTTP, apify_client iterate_items()", lambda: sum(1 for _ in dataset_client.iterate_items())),
        ("emulator repository, read_items().items()", lambda: sum(1 for _ in repo.read_items(repo_dataset_id).items())),
        ("Crawlee Dataset.iterate_items()", crawlee.count_all),
    ]
    for label, run in runs:
        started = time.perf_counter()
        seen = run()
        seconds = time.perf_counter() - started
        _check(table, f"iteration ({label})", seen, n)
        table.row(f"iterate all [{n:,}]: {label}", fmt_rate(n, seconds), fmt_duration(seconds), "1")


def _exports(table: Table, config: ItemsConfig, server: ServerProcess, dataset_id: str) -> None:
    n = config.items
    target = f"growth < {EXPORT_GROWTH_TARGET_BYTES // 2**20} MiB"
    for fmt in ("csv", "json"):
        http = Http(server.url)
        http.connect()
        path = f"/v2/datasets/{dataset_id}/items?format={fmt}"
        with sample_rss(server.pid) as rss:
            started = time.perf_counter()
            size = http.stream(path)
            seconds = time.perf_counter() - started
        http.close()
        table.row(f"export {fmt.upper()} over HTTP to /dev/null [{n:,}]", fmt_duration(seconds), "", "1")
        table.row("  body size; throughput", f"{mb(size)}", fmt_rate(n, seconds))
        table.row(f"  server RSS baseline -> peak ({rss.count} samples)", f"{mb(rss.baseline)} -> {mb(rss.peak)}")
        table.row(
            f"  server RSS growth during the {fmt.upper()} export",
            mb(rss.growth),
            target=target if fmt == "csv" else "",
            met=rss.growth < EXPORT_GROWTH_TARGET_BYTES if fmt == "csv" else None,
        )
