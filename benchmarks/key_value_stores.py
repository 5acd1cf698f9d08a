"""Section C: key-value stores over HTTP with the official client, next to Crawlee's file-system store."""

from __future__ import annotations

import asyncio
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.harness import Http, ServerProcess, Table, mb, progress, repeat, repeat_interleaved, sample_rss
from storage_emulator.models import KeyValueStoreMetadata, utc_now

RECORD_RATIO_TARGET = 1.5
KEYS_PAGE_TARGET_SECONDS = 0.020
BIG_RECORD_BYTES = 9 * 1024 * 1024


@dataclass(frozen=True)
class KeyValueConfig:
    """Sizes of section C."""

    records: int
    record_runs: int
    page_runs: int


def record_value(index: int) -> dict[str, Any]:
    """Return a JSON value of about 1 KB."""
    return {"index": index, "url": f"https://shop.example/p/{index}", "text": "lorem ipsum " * 78}


def _write_store_on_disk(root: Path, name: str, count: int) -> str:
    """Write a store of ``count`` small records straight in Crawlee's layout; return its id."""
    folder = root / "key_value_stores" / name
    folder.mkdir(parents=True)
    now = utc_now()
    store_id = "BenchKvs" + "x" * 9
    metadata = KeyValueStoreMetadata(id=store_id, name=name, accessed_at=now, created_at=now, modified_at=now)
    (folder / "__metadata__.json").write_text(metadata.to_json())
    for index in range(count):
        key = f"record-{index:07d}"
        (folder / key).write_bytes(b'{"v": 1}')
        (folder / f"{key}.__metadata__.json").write_text(
            json.dumps({"key": key, "content_type": "application/json; charset=utf-8", "size": 8})
        )
    return store_id


class CrawleeStore:
    """Crawlee for Python's ``KeyValueStore`` over ``FileSystemStorageClient``, driven synchronously."""

    def __init__(self, storage_dir: Path, name: str) -> None:
        from crawlee.configuration import Configuration
        from crawlee.storage_clients import FileSystemStorageClient
        from crawlee.storages import KeyValueStore

        self.runner = asyncio.Runner()
        configuration = Configuration(storage_dir=str(storage_dir), purge_on_start=False)
        self.store = self.runner.run(
            KeyValueStore.open(name=name, storage_client=FileSystemStorageClient(), configuration=configuration)
        )

    def set(self, key: str, value: Any) -> None:
        """Store a value."""
        self.runner.run(self.store.set_value(key, value))

    def get(self, key: str) -> Any:
        """Read a value."""
        return self.runner.run(self.store.get_value(key))

    def first_keys(self, limit: int, after: str | None) -> int:
        """List up to ``limit`` keys after ``after``; return how many."""

        async def page() -> int:
            seen = 0
            async for _ in self.store.iterate_keys(exclusive_start_key=after, limit=limit):
                seen += 1
            return seen

        return self.runner.run(page())

    def close(self) -> None:
        """Close the event loop."""
        self.runner.close()


def run_key_value_stores(table: Table, workspace: Path, config: KeyValueConfig) -> None:
    """Measure section C."""
    from apify_client import ApifyClient

    table.section("C. Key-value stores: emulator over HTTP + apify_client vs Crawlee FileSystemStorageClient")
    root = workspace / "kvs"
    _write_store_on_disk(root, "big-store", config.records)
    crawlee = CrawleeStore(workspace / "kvs-crawlee", "bench")
    with ServerProcess(root, workspace / "server-kvs.log") as server:
        client = ApifyClient(token="local-token", api_url=server.url, api_public_url=server.url, max_retries=0)
        dataset_id = client.datasets().get_or_create(name="bench-lookup").id
        store = client.key_value_store(client.key_value_stores().get_or_create(name="bench-records").id)
        value = record_value(1)
        table.note(f"record: {len(json.dumps(value, ensure_ascii=False))} B of JSON; the same client and server")
        counter = iter(range(10**9))
        store.set_record("read-me", value)
        crawlee.set("read-me", value)
        progress("C: record PUT and GET next to the dataset get-by-id, interleaved")
        timings = repeat_interleaved(
            {
                "get": lambda: client.dataset(dataset_id).get(),
                "put": lambda: store.set_record(f"r{next(counter)}", value),
                "read": lambda: store.get_record("read-me"),
                "crawlee-put": lambda: crawlee.set(f"r{next(counter)}", value),
                "crawlee-read": lambda: crawlee.get("read-me"),
            },
            config.record_runs,
        )
        table.samples("WARM dataset get by id (apify_client dataset.get)", timings["get"])
        for label, key in (("PUT", "put"), ("GET", "read")):
            table.samples(f"WARM record {label} of 1 KB JSON (apify_client)", timings[key])
            ratio = timings[key].median / timings["get"].median
            table.row(
                f"  ratio record {label} / dataset get by id",
                f"{ratio:.2f}x",
                target=f"<= {RECORD_RATIO_TARGET:g}x",
                met=ratio <= RECORD_RATIO_TARGET,
            )
        table.samples("Crawlee KeyValueStore.set_value, 1 KB JSON (in process)", timings["crawlee-put"])
        table.samples("Crawlee KeyValueStore.get_value, 1 KB JSON (in process)", timings["crawlee-read"])

        progress(f"C: pages of 1,000 keys from a store of {config.records:,} records")
        http = Http(server.url)
        big_id = "BenchKvs" + "x" * 9
        rng = random.Random(7)
        starts = [f"record-{rng.randrange(config.records):07d}" for _ in range(config.page_runs * 2)]
        cold = repeat(lambda: http.get(f"/v2/key-value-stores/{big_id}/keys?limit=1000"), 1, warmup=0)
        table.samples(f"COLD first page of 1,000 keys [{config.records:,} records] (one folder scan)", cold)
        picks = iter(starts)
        warm = repeat(
            lambda: http.get(f"/v2/key-value-stores/{big_id}/keys?limit=1000&exclusiveStartKey={quote(next(picks))}"),
            config.page_runs,
        )
        table.samples(
            f"WARM page of 1,000 keys at a random start [{config.records:,} records]",
            warm,
            target="< 20 ms",
            met=warm.median < KEYS_PAGE_TARGET_SECONDS,
        )
        _write_store_on_disk(workspace / "kvs-crawlee-big", "big-store", config.records)
        big_crawlee = CrawleeStore(workspace / "kvs-crawlee-big", "big-store")
        try:
            crawlee_picks = iter(starts)
            crawlee_page = repeat(
                lambda: big_crawlee.first_keys(1000, next(crawlee_picks)), max(3, config.page_runs // 5)
            )
            table.samples(f"Crawlee iterate_keys, 1,000 keys at a random start [{config.records:,}]", crawlee_page)
        finally:
            big_crawlee.close()

        progress("C: a 9 MiB record's memory growth on the server")
        big = os.urandom(BIG_RECORD_BYTES)
        with sample_rss(server.pid) as memory:
            store.set_record("big", big, content_type="application/octet-stream")
            fetched = store.get_record_as_bytes("big")
        if fetched is None or fetched["value"] != big:
            table.note("WARNING: the 9 MiB record did not come back byte for byte")
        table.row(
            "9 MiB record PUT + GET: server RSS growth (peak - before)",
            mb(memory.growth),
            target="< 2 x 9 MiB",
            met=memory.growth < 2 * BIG_RECORD_BYTES,
        )
    crawlee.close()
