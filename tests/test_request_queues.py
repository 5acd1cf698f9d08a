"""The request-queue repository: ids, dedupe, head order, locks on a moved clock, counters, files on disk."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage_emulator.errors import (
    InvalidClientKey,
    InvalidInput,
    InvalidParameter,
    RequestIdInvalid,
    RequestLockConflict,
    RequestNotFound,
)
from storage_emulator.queue_files import python_file_name
from storage_emulator.request_queues import RequestQueueRepository, unique_key_to_request_id


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rq(storage_root: Path, clock: Clock) -> RequestQueueRepository:
    return RequestQueueRepository(storage_root, clock=clock)


def req(key: str, **extra: Any) -> dict[str, Any]:
    return {"uniqueKey": key, "url": f"https://example.com/{key}", **extra}


def head_keys(rq: RequestQueueRepository, queue_id: str, client_key: str = "c1") -> list[str]:
    return [item.unique_key for item in rq.get_head(queue_id, limit=100, client_key=client_key).items]


@pytest.mark.parametrize(
    ("unique_key", "request_id"),
    [
        ("https://example.com", "EAaArVRs5qV39C9"),
        ("https://example.com/a", "Lc4KTFBEGzPqcr0"),
        ("https://example.com/0", "UxJmf4PNULQFNst"),
    ],
)
def test_request_id_is_the_sdk_hash_of_the_unique_key(unique_key: str, request_id: str) -> None:
    assert unique_key_to_request_id(unique_key) == request_id


def test_add_dedupes_on_the_exact_unique_key(rq: RequestQueueRepository) -> None:
    queue, _ = rq.get_or_create_request_queue("q")

    first = rq.add_requests(queue.id, [req("a"), req("A"), req("a")], client_key="c1")
    again = rq.add_request(queue.id, req("a"), client_key="c1")

    assert [(r.unique_key, r.was_already_present) for r in first] == [("a", False), ("A", False), ("a", True)]
    assert first[0].request_id == unique_key_to_request_id("a") == again.request_id
    assert again.was_already_present and not again.was_already_handled
    assert rq.get_request_queue(queue.id).total_request_count == 2


def test_head_is_forefront_newest_first_then_the_rest_oldest_first(rq: RequestQueueRepository) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    for key in ("1", "2", "3"):
        rq.add_request(queue.id, req(key), client_key="c1")
    rq.add_request(queue.id, req("priority1"), forefront=True, client_key="c1")
    rq.add_request(queue.id, req("priority2"), forefront=True, client_key="c1")

    assert head_keys(rq, queue.id) == ["priority2", "priority1", "1", "2", "3"]


def test_locks_hide_requests_until_they_expire_on_the_moved_clock(rq: RequestQueueRepository, clock: Clock) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    rq.add_requests(queue.id, [req(k) for k in "abcd"], client_key="c1")
    rq.add_request(queue.id, req("f"), forefront=True, client_key="c1")

    locked = rq.lock_head(queue.id, lock_secs=60, limit=2, client_key="c1")

    assert [i.unique_key for i in locked.items] == ["f", "a"]
    assert locked.items[0].lock_expires_at == clock.now + timedelta(seconds=60)
    assert locked.queue_has_locked_requests
    assert head_keys(rq, queue.id) == ["b", "c", "d"]
    c2 = rq.lock_head(queue.id, lock_secs=120, limit=25, client_key="c2")
    assert [i.unique_key for i in c2.items] == ["b", "c", "d"]
    assert rq.lock_head(queue.id, lock_secs=60, client_key="c3").items == []
    clock.advance(1)
    rq.add_request(queue.id, req("e"), client_key="c1")

    clock.advance(60)  # c1's locks lapse: forefront back at the front, regular behind what came meanwhile

    assert head_keys(rq, queue.id) == ["f", "e", "a"]
    clock.advance(60)
    assert head_keys(rq, queue.id) == ["f", "e", "a", "b", "c", "d"]
    assert not rq.get_head(queue.id, client_key="c1").queue_has_locked_requests


def test_only_the_holder_may_prolong_or_release_a_lock(rq: RequestQueueRepository, clock: Clock) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    rq.add_requests(queue.id, [req("a"), req("b")], client_key="c1")
    [item] = rq.lock_head(queue.id, lock_secs=10, limit=1, client_key="c1").items

    with pytest.raises(RequestLockConflict):
        rq.prolong_request_lock(queue.id, item.id, lock_secs=10, client_key="c2")
    with pytest.raises(RequestLockConflict):
        rq.delete_request_lock(queue.id, item.id, client_key="c2")
    with pytest.raises(RequestLockConflict):
        rq.update_request(queue.id, item.id, req("a", handledAt="2026-01-01T00:00:00Z"), client_key="c2")
    with pytest.raises(RequestLockConflict):  # b is not locked at all
        rq.prolong_request_lock(queue.id, unique_key_to_request_id("b"), lock_secs=10, client_key="c1")
    with pytest.raises(RequestNotFound):
        rq.prolong_request_lock(queue.id, "nosuchrequest00", lock_secs=10, client_key="c1")

    clock.advance(5)
    expires = rq.prolong_request_lock(queue.id, item.id, lock_secs=30, client_key="c1")
    clock.advance(20)  # past the first expiry, within the prolonged one

    assert expires == clock.now + timedelta(seconds=10)
    assert head_keys(rq, queue.id) == ["b"]
    rq.delete_request_lock(queue.id, item.id, forefront=True, client_key="c1")
    assert head_keys(rq, queue.id) == ["a", "b"]


def test_handled_put_releases_the_lock_and_reports_the_state_before(rq: RequestQueueRepository) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    rq.add_requests(queue.id, [req("a"), req("b")], client_key="c1")
    [item] = rq.lock_head(queue.id, lock_secs=60, limit=1, client_key="c1").items
    request = rq.get_request(queue.id, item.id)
    request.pop("lockExpiresAt")

    handled = rq.update_request(queue.id, item.id, {**request, "handledAt": "2026-01-01T00:00:00Z"}, client_key="c1")
    again = rq.update_request(queue.id, item.id, {**request, "handledAt": "2026-01-01T00:00:01Z"}, client_key="c1")

    assert (handled.was_already_present, handled.was_already_handled) == (True, False)
    assert again.was_already_handled
    assert head_keys(rq, queue.id) == ["b"]
    with pytest.raises(RequestLockConflict):
        rq.prolong_request_lock(queue.id, item.id, lock_secs=10, client_key="c1")
    counts = rq.get_request_queue(queue.id)
    assert (counts.total_request_count, counts.handled_request_count, counts.pending_request_count) == (2, 1, 1)

    reclaimed = rq.update_request(queue.id, item.id, request, forefront=True, client_key="c1")  # pending again

    assert reclaimed.was_already_handled
    counts = rq.get_request_queue(queue.id)
    assert (counts.handled_request_count, counts.pending_request_count) == (0, 2)


def test_put_of_an_unknown_id_is_an_upsert_and_ids_must_match(rq: RequestQueueRepository) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    request_id = unique_key_to_request_id("new")

    result = rq.update_request(queue.id, request_id, req("new", id=request_id, retryCount=2, userData={"x": 1}))

    assert (result.was_already_present, result.was_already_handled) == (False, False)
    assert rq.get_request(queue.id, request_id) == {
        "id": request_id,
        **req("new", retryCount=2, userData={"x": 1}),
    }
    with pytest.raises(RequestIdInvalid):
        rq.update_request(queue.id, "wrongId00000000", req("new"))
    with pytest.raises(RequestIdInvalid):
        rq.add_request(queue.id, req("x", id="wrongId00000000"))


def test_bad_input_changes_nothing(rq: RequestQueueRepository, storage_root: Path) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    rq.add_request(queue.id, req("a"), client_key="c1")
    before = sorted(p.name for p in (storage_root / "request_queues" / "q").iterdir())

    with pytest.raises(InvalidInput, match="at most 25"):
        rq.add_requests(queue.id, [req(str(i)) for i in range(26)])
    with pytest.raises(InvalidInput, match="index 1"):
        rq.add_requests(queue.id, [req("ok"), {"url": "https://x"}])
    with pytest.raises(InvalidClientKey):
        rq.lock_head(queue.id, lock_secs=10, client_key="k" * 33)
    with pytest.raises(InvalidParameter, match="lockSecs"):
        rq.lock_head(queue.id, lock_secs=0, client_key="c1")

    assert sorted(p.name for p in (storage_root / "request_queues" / "q").iterdir()) == before
    assert rq.get_request_queue(queue.id).total_request_count == 1
    assert head_keys(rq, queue.id) == ["a"]


def test_had_multiple_clients(rq: RequestQueueRepository) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    rq.add_request(queue.id, req("a"), client_key="c1")
    rq.get_head(queue.id, client_key="c1")
    rq.get_request_queue(queue.id)

    assert not rq.get_request_queue(queue.id).had_multiple_clients

    rq.get_head(queue.id)  # no clientKey: a new client
    assert rq.get_request_queue(queue.id).had_multiple_clients


def test_list_requests_pages_with_a_cursor_and_filters(rq: RequestQueueRepository) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    rq.add_requests(queue.id, [req(str(i)) for i in range(5)], client_key="c1")
    rq.lock_head(queue.id, lock_secs=60, limit=2, client_key="c1")

    first = rq.list_requests(queue.id, limit=3)
    second = rq.list_requests(queue.id, limit=3, after=first.next_after)

    assert [r["uniqueKey"] for r in first.items + second.items] == ["0", "1", "2", "3", "4"]
    assert second.next_after is None
    assert [r["uniqueKey"] for r in rq.list_requests(queue.id, only="locked").items] == ["0", "1"]
    after_one = rq.list_requests(queue.id, exclusive_start_id=unique_key_to_request_id("1"))
    assert [r["uniqueKey"] for r in after_one.items] == ["2", "3", "4"]


def test_delete_requests_by_id_or_unique_key(rq: RequestQueueRepository, storage_root: Path) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    rq.add_requests(queue.id, [req("a"), req("b"), req("c")], client_key="c1")

    processed, unprocessed = rq.delete_requests(
        queue.id, [{"id": unique_key_to_request_id("a")}, {"uniqueKey": "b"}], client_key="c1"
    )
    rq.delete_request(queue.id, unique_key_to_request_id("c"), client_key="c1")

    assert processed == [{"id": unique_key_to_request_id("a")}, {"uniqueKey": "b"}] and unprocessed == []
    metadata = rq.get_request_queue(queue.id)
    assert (metadata.total_request_count, metadata.pending_request_count, metadata.delete_count) == (0, 0, 3)
    assert [p.name for p in (storage_root / "request_queues" / "q").glob("*.json")] == ["__metadata__.json"]
    with pytest.raises(RequestNotFound):
        rq.get_request(queue.id, unique_key_to_request_id("a"))


def test_files_are_crawlee_python_layout(rq: RequestQueueRepository, storage_root: Path) -> None:
    queue, _ = rq.get_or_create_request_queue("q")
    rq.add_requests(queue.id, [req("a", userData={"label": "x"}), req("b")], client_key="c1")
    rq.add_request(queue.id, req("f"), forefront=True, client_key="c1")
    rq.update_request(queue.id, unique_key_to_request_id("b"), req("b", handledAt="2026-01-01T00:00:00.000Z"))

    folder = storage_root / "request_queues" / "q"
    metadata = json.loads((folder / "__metadata__.json").read_text())
    request_file = json.loads((folder / python_file_name("a")).read_text())
    state_path = storage_root / "key_value_stores" / "default" / f"__RQ_STATE_{queue.id}"
    state = json.loads(state_path.read_text())
    sidecar = json.loads(state_path.with_name(state_path.name + ".__metadata__.json").read_text())

    assert python_file_name("a") == "ca978112ca1bbdc.json"
    assert request_file == {"unique_key": "a", "url": "https://example.com/a", "user_data": {"label": "x"}}
    assert (metadata["total_request_count"], metadata["handled_request_count"], metadata["pending_request_count"]) == (
        3,
        1,
        2,
    )
    assert state["forefront_requests"] == {"f": 0} and state["regular_requests"] == {"a": 0}
    assert state["handled_requests"] == ["b"]
    assert sidecar["key"] == state_path.name and sidecar["size"] == len(state_path.read_bytes())


def test_reads_a_memory_storage_folder(storage_root: Path, clock: Clock) -> None:
    folder = storage_root / "request_queues" / "js-queue"
    folder.mkdir(parents=True)
    for key, order in (("late", 2000), ("early", 1000), ("front", -3000), ("done", None)):
        request = {"id": unique_key_to_request_id(key), "uniqueKey": key, "url": f"https://example.com/{key}"}
        body = {**request, "json": json.dumps(request), "orderNo": order, "retryCount": 0, "method": "GET"}
        (folder / f"{request['id']}.json").write_text(json.dumps(body, indent="\t"))
    rq = RequestQueueRepository(storage_root, clock=clock)

    queue = rq.get_request_queue("~js-queue")
    assert (queue.total_request_count, queue.handled_request_count) == (4, 1)
    assert head_keys(rq, queue.id) == ["front", "early", "late"]

    rq.add_request(queue.id, req("new"), client_key="c1")

    written = json.loads((folder / f"{unique_key_to_request_id('new')}.json").read_text())
    assert json.loads(written["json"])["uniqueKey"] == "new" and isinstance(written["orderNo"], int)
    assert head_keys(rq, queue.id) == ["front", "early", "late", "new"]


def test_a_large_queue_writes_crawlees_state_record_at_the_latest_at_exit(
    rq: RequestQueueRepository, storage_root: Path
) -> None:
    queue, _ = rq.get_or_create_request_queue("big")
    for start in range(0, 250, 25):  # past the size that rewrites the record on every change
        rq.add_requests(queue.id, [req(f"r{i}") for i in range(start, start + 25)], client_key="c1")

    rq.flush_pending_states()  # what the exit hook does

    record = storage_root / "key_value_stores" / "default" / f"__RQ_STATE_{queue.id}"
    state = json.loads(record.read_text())
    assert state["regular_requests"] == {f"r{i}": i for i in range(250)}
