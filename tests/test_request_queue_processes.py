"""Exactly once across real processes: consumers lock, handle and one of them is SIGKILLed mid-lock."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from storage_emulator.request_queues import RequestQueueRepository

REQUESTS = 2_000
KILLED_LOCK_SECS = 2

# A consumer: lock a batch of the head, handle each request (GET, then PUT with handledAt), print what it
# handled; stop when nothing is pending. With an HTTP url it goes through the official client.
CONSUMER = r"""
import json, sys, time
target, queue_id, client_key = sys.argv[1], sys.argv[2], sys.argv[3]
if target.startswith("http"):
    from datetime import timedelta
    from apify_client import ApifyClient
    rq = ApifyClient(token="t", api_url=target, max_retries=8).request_queue(queue_id, client_key=client_key)
    lock = lambda: [i.id for i in rq.list_and_lock_head(lock_duration=timedelta(seconds=60), limit=25).items]
    get = lambda request_id: rq.get_request(request_id).model_dump(by_alias=True, exclude_none=True, mode="json")
    def put(request):
        request.pop("lockExpiresAt", None)
        return rq.update_request(request).was_already_handled
    pending = lambda: rq.get().pending_request_count
else:
    from storage_emulator.request_queues import RequestQueueRepository
    repo = RequestQueueRepository(target)
    lock = lambda: [i.id for i in repo.lock_head(queue_id, lock_secs=60, limit=25, client_key=client_key).items]
    get = lambda request_id: repo.get_request(queue_id, request_id)
    def put(request):
        request.pop("lockExpiresAt", None)
        return repo.update_request(queue_id, request["id"], request, client_key=client_key).was_already_handled
    pending = lambda: repo.get_request_queue(queue_id).pending_request_count
while True:
    ids = lock()
    if not ids:
        if pending() == 0:
            break
        time.sleep(0.05)  # what is left is locked by someone (maybe by the dead): wait for it to lapse
        continue
    for request_id in ids:
        request = get(request_id)
        request["handledAt"] = "2026-01-01T00:00:00.000Z"
        print(json.dumps([request_id, put(request)]), flush=True)
"""

# Locks a batch, says so, and waits to be killed.
DOOMED = r"""
import sys, time
from storage_emulator.request_queues import RequestQueueRepository
repo = RequestQueueRepository(sys.argv[1])
items = repo.lock_head(sys.argv[2], lock_secs=int(sys.argv[3]), limit=25, client_key="doomed").items
print(len(items), flush=True)
time.sleep(600)
"""


def fill(root: Path) -> str:
    repo = RequestQueueRepository(root)
    queue, _ = repo.get_or_create_request_queue("work")
    for start in range(0, REQUESTS, 25):
        batch = [{"uniqueKey": f"r{i}", "url": f"https://example.com/{i}"} for i in range(start, start + 25)]
        repo.add_requests(queue.id, batch, client_key="producer")
    return queue.id


def run_consumers(targets: list[str], queue_id: str, root: Path) -> list[tuple[str, bool]]:
    doomed = subprocess.Popen(
        [sys.executable, "-c", DOOMED, str(root), queue_id, str(KILLED_LOCK_SECS)], stdout=subprocess.PIPE, text=True
    )
    assert doomed.stdout is not None
    assert int(doomed.stdout.readline()) == 25  # it holds 25 locks ...
    os.kill(doomed.pid, signal.SIGKILL)  # ... and dies with them
    doomed.wait()
    doomed.stdout.close()
    consumers = [
        subprocess.Popen([sys.executable, "-c", CONSUMER, target, queue_id, f"consumer-{n}"], stdout=subprocess.PIPE)
        for n, target in enumerate(targets)
    ]
    handled: list[tuple[str, bool]] = []
    for consumer in consumers:
        out, _ = consumer.communicate(timeout=300)
        assert consumer.returncode == 0
        handled.extend(tuple(json.loads(line)) for line in out.splitlines())  # type: ignore[misc]
    return handled


def assert_exactly_once(handled: list[tuple[str, bool]], root: Path, queue_id: str) -> None:
    times = collections.Counter(request_id for request_id, _ in handled)
    assert len(times) == REQUESTS and set(times.values()) == {1}
    assert not any(was_handled for _, was_handled in handled)
    queue = RequestQueueRepository(root).get_request_queue(queue_id)
    counts = (queue.total_request_count, queue.handled_request_count, queue.pending_request_count)
    assert counts == (REQUESTS, REQUESTS, 0)
    metadata = json.loads((root / "request_queues" / "work" / "__metadata__.json").read_text())
    assert (metadata["handled_request_count"], metadata["pending_request_count"]) == (REQUESTS, 0)


def start_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    """Start a server process on a free port; return it and its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "storage_emulator", "serve", "--root", str(root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    first = server.stdout.readline()  # "storage-emulator serving <root> at http://127.0.0.1:PORT"
    return server, first.rsplit(" at ", 1)[1].strip()


def test_consumers_over_two_servers_and_the_repository_handle_each_request_once(storage_root: Path) -> None:
    queue_id = fill(storage_root)
    servers = [start_server(storage_root) for _ in range(2)]
    try:
        urls = [url for _, url in servers]
        handled = run_consumers([urls[0], urls[1], str(storage_root), str(storage_root)], queue_id, storage_root)
    finally:
        for server, _ in servers:
            server.terminate()
            server.communicate(timeout=30)

    assert_exactly_once(handled, storage_root, queue_id)
