"""Crawlee for Python and the emulator share request queues both ways, each side in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

CRAWLEE_PRELUDE = r"""
import asyncio, json, sys
from crawlee import service_locator
from crawlee.configuration import Configuration
from crawlee.storage_clients import FileSystemStorageClient
from crawlee.storages import RequestQueue

service_locator.set_configuration(Configuration(storage_dir=sys.argv[1], purge_on_start=False))
service_locator.set_storage_client(FileSystemStorageClient())
"""

# Resume a queue the emulator wrote: take every request in order, mark each handled, print the keys.
CRAWLEE_CONSUMES = (
    CRAWLEE_PRELUDE
    + r"""
async def main():
    async with service_locator.get_event_manager():
        rq = await RequestQueue.open(name=sys.argv[2])
        metadata = await rq.get_metadata()
        opened = {"total": metadata.total_request_count, "handled": metadata.handled_request_count}
        keys = []
        while (request := await rq.fetch_next_request()) is not None:
            keys.append(request.unique_key)
            await rq.mark_request_as_handled(request)
        print(json.dumps({"keys": keys, **opened, "finished": await rq.is_finished()}))
asyncio.run(main())
"""
)

# Write a queue as a crawler would: three requests, one forefront, which it handles; then exit cleanly.
CRAWLEE_PRODUCES = (
    CRAWLEE_PRELUDE
    + r"""
async def main():
    async with service_locator.get_event_manager():
        rq = await RequestQueue.open(name=sys.argv[2])
        await rq.add_requests(["https://example.com/a", "https://example.com/b", "https://example.com/c"])
        await rq.add_request("https://example.com/front", forefront=True)
        request = await rq.fetch_next_request()
        await rq.mark_request_as_handled(request)
        print(request.unique_key)
asyncio.run(main())
"""
)


def run_crawlee(script: str, root: Path, queue_name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, str(root), queue_name], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def req(key: str, **extra: Any) -> dict[str, Any]:
    return {"uniqueKey": key, "url": f"https://example.com/{key}", **extra}


def test_crawlee_resumes_a_queue_the_emulator_wrote_in_order(apify: Any, storage_root: Path) -> None:
    queue = apify.request_queues().get_or_create(name="resumed")
    rq = apify.request_queue(queue.id, client_key="emulator-side")
    rq.batch_add_requests([req("r1"), req("r2"), req("r3"), req("done")])
    rq.add_request(req("f1"), forefront=True)
    rq.add_request(req("f2", userData={"label": "DETAIL"}), forefront=True)
    done = rq.get_request(rq.list_head(limit=100).items[-1].id)
    assert done.unique_key == "done"
    as_sent = done.model_dump(by_alias=True, exclude_none=True, mode="json")
    rq.update_request({**as_sent, "handledAt": "2026-01-01T00:00:00Z"})

    result = json.loads(run_crawlee(CRAWLEE_CONSUMES, storage_root, "resumed"))

    assert result["keys"] == ["f2", "f1", "r1", "r2", "r3"]
    assert (result["total"], result["handled"], result["finished"]) == (6, 1, True)
    after = rq.get()  # the emulator sees what Crawlee did
    assert (after.total_request_count, after.handled_request_count, after.pending_request_count) == (6, 6, 0)
    assert rq.list_head().items == []
    user_data = rq.get_request(rq.add_request(req("f2")).request_id).user_data
    assert user_data.model_dump(by_alias=True, exclude_none=True) == {"label": "DETAIL"}


def test_the_emulator_serves_a_queue_crawlee_wrote(apify: Any, storage_root: Path) -> None:
    handled_key = run_crawlee(CRAWLEE_PRODUCES, storage_root, "crawled")

    rq = apify.request_queue("~crawled", client_key="emulator-side")
    queue = rq.get()
    head = rq.list_head()

    assert handled_key == "https://example.com/front"
    assert (queue.total_request_count, queue.handled_request_count, queue.pending_request_count) == (4, 1, 3)
    assert [str(item.url) for item in head.items] == [f"https://example.com/{key}" for key in "abc"]
    locked = rq.list_and_lock_head(lock_duration=timedelta(seconds=60), limit=1)
    assert [item.unique_key for item in locked.items] == ["https://example.com/a"]
    again = rq.add_request({"uniqueKey": "https://example.com/front", "url": "https://example.com/front"})
    assert again.was_already_present and again.was_already_handled
