"""Key-value stores shared with real Crawlee for Python, torn by SIGKILL, and raced by several processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import crawlee_subprocess

from storage_emulator.key_value_stores import KeyValueStoreRepository

KV_PRELUDE = """
import asyncio
import json
import sys

from crawlee.configuration import Configuration
from crawlee.storage_clients import FileSystemStorageClient
from crawlee.storages import KeyValueStore

ROOT = sys.argv[1]
ARGS = json.loads(sys.argv[2])
CONFIG = Configuration(storage_dir=ROOT, purge_on_start=False)


async def open_store(name):
    return await KeyValueStore.open(name=name, storage_client=FileSystemStorageClient(), configuration=CONFIG)
"""


def run_crawlee(root: Path, body: str, **args: Any) -> Any:
    """Run ``body`` with Crawlee in a fresh process (see ``crawlee_subprocess``); return its JSON result."""
    return crawlee_subprocess.run_crawlee(KV_PRELUDE, root, body, **args)


def test_crawlee_reads_what_the_emulator_wrote(storage_root: Path) -> None:
    """A store written by the emulator opens in Crawlee: same keys, values typed by their content type."""
    stores = KeyValueStoreRepository(storage_root)
    store, _ = stores.get_or_create_key_value_store("shared")
    stores.set_record(store.id, "INPUT", b'{"q": "tents"}', content_type="application/json; charset=utf-8")
    stores.set_record(store.id, "note", "ça va".encode(), content_type="text/plain; charset=utf-8")
    stores.set_record(store.id, "we!rd'(key)", b"\x00\x01", content_type="application/octet-stream")

    seen = run_crawlee(
        storage_root,
        """
        store = await open_store("shared")
        keys = [info.key async for info in store.iterate_keys()]
        binary = await store.get_value("we!rd'(key)")
        return {
            "id": (await store.get_metadata()).id,
            "keys": keys,
            "input": await store.get_value("INPUT"),
            "note": await store.get_value("note"),
            "binary": list(binary),
        }
        """,
    )
    assert seen == {
        "id": store.id,
        "keys": sorted(
            ["INPUT", "note", "we!rd'(key)"], key=lambda k: __import__("urllib.parse").parse.quote(k, safe="")
        ),
        "input": {"q": "tents"},
        "note": "ça va",
        "binary": [0, 1],
    }
    assert stores.get_key_value_store(store.id).user_id is not None  # Crawlee kept the emulator's fields


def test_the_emulator_serves_what_crawlee_wrote(storage_root: Path) -> None:
    """Records Crawlee wrote (JSON, text, bytes, None) are served with Crawlee's types, after Crawlee's own rewrite."""
    run_crawlee(
        storage_root,
        """
        store = await open_store("from-crawlee")
        await store.set_value("OUTPUT", {"done": True, "n": [1, 2]})
        await store.set_value("log", "line one")
        await store.set_value("raw", b"\\x89PNG", content_type="image/png")
        await store.set_value("nothing", None)
        return True
        """,
    )
    stores = KeyValueStoreRepository(storage_root)
    keys = [info.key for info in stores.list_keys("~from-crawlee").items]
    assert keys == ["OUTPUT", "log", "nothing", "raw"]
    info, handle = stores.get_record("~from-crawlee", "OUTPUT")
    with handle:
        assert json.loads(handle.read()) == {"done": True, "n": [1, 2]} and "application/json" in info.content_type
    info, handle = stores.get_record("~from-crawlee", "raw")
    with handle:
        assert (handle.read(), info.content_type) == (b"\x89PNG", "image/png")
    stores.set_record("~from-crawlee", "log", b"line two", content_type="text/plain; charset=utf-8")
    again = run_crawlee(storage_root, 'return await (await open_store("from-crawlee")).get_value("log")')
    assert again == "line two"


# ----- crashes: value and sidecar never disagree ----------------------------------------------------------

VALUES = {"A": (b"A" * 300_000, "text/a"), "B": (b"B" * 7, "text/b")}


def keep_writing(root: str, store_id: str, started: Any) -> None:
    """Write the two values in turn forever, through the repository (until killed)."""
    stores = KeyValueStoreRepository(root)
    while True:
        for body, content_type in VALUES.values():
            stores.set_record(store_id, "torn", body, content_type=content_type)
            started.set()


def test_sigkill_during_writes_never_leaves_value_and_type_apart(storage_root: Path) -> None:
    """A writer killed at random moments: the record afterwards is one whole value with its own type."""
    stores = KeyValueStoreRepository(storage_root)
    store, _ = stores.get_or_create_key_value_store("crashy")
    stores.set_record(store.id, "torn", VALUES["B"][0], content_type=VALUES["B"][1])
    context = multiprocessing.get_context("spawn")
    for attempt in range(12):
        started = context.Event()
        writer = context.Process(target=keep_writing, args=(str(storage_root), store.id, started))
        writer.start()
        assert started.wait(30)
        time.sleep(0.003 + 0.0071 * attempt)  # kill it somewhere in one of its next writes
        os.kill(writer.pid or 0, signal.SIGKILL)
        writer.join(10)
        fresh = KeyValueStoreRepository(storage_root)  # a new process's view
        info, handle = fresh.get_record(store.id, "torn")
        with handle:
            body = handle.read()
        assert (body, info.content_type) in VALUES.values(), (len(body), info.content_type)
        assert info.size == len(body)


# ----- several processes on the same keys -----------------------------------------------------------------


def write_and_read(url: str, store_id: str, writer: int, rounds: int) -> list[str]:
    """Write this writer's value to shared keys and read them back; report anything that is not whole."""
    import httpx

    problems = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for round_number in range(rounds):
            key = f"shared-{round_number % 3}"
            body = json.dumps({"writer": writer, "round": round_number, "pad": "p" * (writer * 997)})
            put = http.put(
                f"/v2/key-value-stores/{store_id}/records/{key}",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            if put.status_code != 201:
                problems.append(f"PUT {put.status_code}")
            got = http.get(f"/v2/key-value-stores/{store_id}/records/{key}")
            if got.status_code != 200:
                problems.append(f"GET {got.status_code}")
                continue
            value = got.json()
            expected_pad = "p" * (value["writer"] * 997)
            if value["pad"] != expected_pad or got.headers["content-type"] != "application/json":
                problems.append(f"mixed value {value['writer']}/{len(value['pad'])}")
    return problems


def test_processes_writing_and_reading_the_same_keys_see_only_whole_values(
    storage_root: Path, live_server: Any
) -> None:
    """Four processes race on three keys over HTTP: every read is one complete value some writer wrote."""
    stores = KeyValueStoreRepository(storage_root)
    store, _ = stores.get_or_create_key_value_store("raced")
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        jobs = [pool.apply_async(write_and_read, (live_server.url, store.id, writer, 60)) for writer in range(1, 5)]
        problems = [problem for job in jobs for problem in job.get(timeout=180)]
    assert problems == []
    assert [info.key for info in stores.list_keys(store.id).items] == ["shared-0", "shared-1", "shared-2"]
    leftovers = [p.name for p in (stores.kind_dir / "raced").iterdir() if p.name.startswith(".")]
    assert leftovers == []
