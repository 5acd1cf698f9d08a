"""Every request-queue call of the official Python client against a live server, and the bad-input table."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from storage_emulator.queue_files import python_file_name
from storage_emulator.request_queues import unique_key_to_request_id


def req(key: str, **extra: Any) -> dict[str, Any]:
    return {"uniqueKey": key, "url": f"https://example.com/{key}", **extra}


def test_queue_crud_and_404s(apify: Any, storage_root: Path) -> None:
    created = apify.request_queues().get_or_create(name="crud")
    again = apify.request_queues().get_or_create(name="crud")
    unnamed = apify.request_queues().get_or_create()

    assert created.id == again.id and created.name == "crud" and created.total_request_count == 0
    assert unnamed.name is None
    assert str(created.console_url).startswith("http://127.0.0.1")
    names = [q.name for q in apify.request_queues().list().items]
    assert names == ["crud"]
    assert len(apify.request_queues().list(unnamed=True).items) == 2

    updated = apify.request_queue(created.id).update(name="renamed", title="T", general_access="RESTRICTED")
    assert (updated.name, updated.title) == ("renamed", "T")
    assert (storage_root / "request_queues" / "renamed" / "__metadata__.json").exists()
    assert apify.request_queue("~renamed").get().id == created.id

    apify.request_queue(created.id).delete()
    assert apify.request_queue(created.id).get() is None
    apify.request_queue(created.id).delete()  # a 404 on delete is swallowed
    assert apify.request_queue("nosuchqueue").get_request("x") is None
    assert apify.request_queue(unnamed.id).get_request("nosuchrequest00") is None


def test_requests_head_and_locks_through_the_client(apify: Any, storage_root: Path) -> None:
    queue = apify.request_queues().get_or_create(name="q")
    rq = apify.request_queue(queue.id, client_key="client-one")
    other = apify.request_queue(queue.id, client_key="client-two")

    added = rq.add_request(req("a"))
    present = rq.add_request(req("a"))
    batch = rq.batch_add_requests([req(f"b{i}") for i in range(30)] + [req("a")])  # the client splits it in 25s
    front = rq.add_request(req("front"), forefront=True)

    assert added.request_id == unique_key_to_request_id("a") and not added.was_already_present
    assert present.was_already_present and not present.was_already_handled
    assert [p.unique_key for p in batch.processed_requests] == [f"b{i}" for i in range(30)] + ["a"]
    assert batch.processed_requests[-1].was_already_present and batch.unprocessed_requests == []
    assert not front.was_already_present

    head = rq.list_head(limit=3)
    assert [i.unique_key for i in head.items] == ["front", "a", "b0"]
    assert not head.had_multiple_clients

    locked = rq.list_and_lock_head(lock_duration=timedelta(seconds=60), limit=2)
    assert [i.unique_key for i in locked.items] == ["front", "a"]
    assert locked.lock_secs == 60 and locked.queue_has_locked_requests and locked.items[0].lock_expires_at
    assert [i.unique_key for i in rq.list_head(limit=1).items] == ["b0"]

    prolonged = rq.prolong_request_lock(front.request_id, lock_duration=timedelta(seconds=120))
    assert prolonged.lock_expires_at > locked.items[0].lock_expires_at
    with pytest.raises(Exception) as foreign:
        other.prolong_request_lock(front.request_id, lock_duration=timedelta(seconds=120))
    assert foreign.value.status_code == 409  # type: ignore[attr-defined]

    request = rq.get_request(added.request_id)
    assert request.unique_key == "a" and str(request.url) == "https://example.com/a"
    request_dict = request.model_dump(by_alias=True, exclude_none=True, mode="json")
    request_dict.pop("lockExpiresAt", None)
    handled = rq.update_request({**request_dict, "handledAt": "2026-01-01T00:00:00.000Z"})
    assert handled.was_already_present and not handled.was_already_handled
    assert rq.get().handled_request_count == 1

    rq.delete_request_lock(front.request_id, forefront=True)
    assert [i.unique_key for i in rq.list_head(limit=1).items] == ["front"]
    rq.list_and_lock_head(lock_duration=timedelta(seconds=60), limit=3)
    assert rq.unlock_requests().unlocked_count == 3
    assert other.unlock_requests().unlocked_count == 0

    listed = rq.list_requests(limit=10)
    assert len(listed.items) == 10 and listed.next_cursor
    every = list(rq.iterate_requests(chunk_size=7))
    assert len(every) == 32 and len({r.id for r in every}) == 32
    pending = list(rq.iterate_requests(filter=["pending"]))
    assert len(pending) == 31

    rq.delete_request(unique_key_to_request_id("b0"))
    deleted = rq.batch_delete_requests([{"uniqueKey": "b1"}, {"id": unique_key_to_request_id("b2")}])
    assert len(deleted.processed_requests) == 2 and deleted.unprocessed_requests == []
    final = rq.get()
    assert (final.total_request_count, final.handled_request_count, final.pending_request_count) == (29, 1, 28)
    assert final.had_multiple_clients  # client-two came along
    assert not (storage_root / "request_queues" / "q" / python_file_name("b0")).exists()
    assert rq.get_request(unique_key_to_request_id("b0")) is None


def snapshot(storage_root: Path) -> dict[str, Any]:
    """Everything a bad call could have changed: the files (names and bytes) of the queue folder."""
    folder = storage_root / "request_queues" / "t"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".json"}


@pytest.fixture
def table(client: FlaskClient, storage_root: Path) -> dict[str, str]:
    """A queue ``t`` with a handled request ``h``, a request ``a`` locked by ``holder`` and a pending ``p``."""
    queue_id = client.post("/v2/request-queues?name=t").get_json()["data"]["id"]
    client.post(f"/v2/request-queues/{queue_id}/requests/batch?clientKey=holder", json=[req("a"), req("p")])
    client.post(f"/v2/request-queues/{queue_id}/head/lock?lockSecs=60&limit=1&clientKey=holder")
    client.put(
        f"/v2/request-queues/{queue_id}/requests/{unique_key_to_request_id('h')}?clientKey=holder",
        json=req("h", handledAt="2026-01-01T00:00:00.000Z"),
    )
    return {"q": queue_id, "a": unique_key_to_request_id("a"), "h": unique_key_to_request_id("h")}


LOCKED = "request-handled-or-locked"
BAD_INPUT = [
    ("POST", "requests/batch?clientKey=holder", [req(str(i)) for i in range(26)], 400, "invalid-input", "at most 25"),
    ("POST", "requests/batch", [req("x"), {"url": "https://x"}], 400, "invalid-input", "uniqueKey"),
    ("POST", "requests/batch", {"uniqueKey": "x"}, 400, "invalid-input", "JSON array"),
    ("POST", "requests", {"url": "https://x"}, 400, "invalid-input", "uniqueKey"),
    ("POST", "requests", req("x", id="wrongwrongwrong"), 400, "request-id-invalid", "does not match"),
    ("POST", "requests?forefront=maybe", req("x"), 400, "invalid-input", "'forefront'"),
    ("POST", "requests?clientKey=" + "k" * 33, req("x"), 400, "invalid-client-key", "'clientKey'"),
    ("POST", "head/lock?lockSecs=60&clientKey=" + "k" * 33, None, 400, "invalid-client-key", "'clientKey'"),
    ("POST", "head/lock?clientKey=c", None, 400, "invalid-input", "'lockSecs': is required"),
    ("POST", "head/lock?lockSecs=0&clientKey=c", None, 400, "invalid-input", "'lockSecs'"),
    ("POST", "head/lock?lockSecs=-5&clientKey=c", None, 400, "invalid-input", "'lockSecs'"),
    ("POST", "head/lock?lockSecs=abc&clientKey=c", None, 400, "invalid-input", "'lockSecs'"),
    ("POST", "head/lock?lockSecs=60&limit=26&clientKey=c", None, 400, "invalid-input", "'limit'"),
    ("PUT", "requests/{a}/lock?lockSecs=60&clientKey=other", None, 409, "request-handled-or-locked", "another"),
    ("PUT", "requests/{h}/lock?lockSecs=60&clientKey=holder", None, 409, "request-handled-or-locked", "handled"),
    ("PUT", "requests/{a}/lock?clientKey=holder", None, 400, "invalid-input", "'lockSecs'"),
    ("DELETE", "requests/{a}/lock?clientKey=other", None, 409, "request-handled-or-locked", "another"),
    ("DELETE", "requests/{h}/lock?clientKey=holder", None, 409, "request-handled-or-locked", "handled"),
    ("PUT", "requests/nosuchrequest00/lock?lockSecs=60&clientKey=holder", None, 404, "record-not-found", "Request"),
    (
        "PUT",
        "requests/{a}?clientKey=other",
        req("a", handledAt="2026-01-01T00:00:00Z"),
        409,
        "request-handled-or-locked",
        "",
    ),
    ("DELETE", "requests/{a}?clientKey=other", None, 409, "request-handled-or-locked", "another"),
    ("PUT", "requests/{a}?clientKey=holder", req("b"), 400, "request-id-invalid", "does not match"),
    ("PUT", "requests/{a}?clientKey=holder", ["not", "an", "object"], 400, "invalid-input", "JSON object"),
    ("GET", "requests?limit=10001", None, 400, "invalid-input", "'limit'"),
    ("GET", "requests?filter=done", None, 400, "invalid-input", "'filter'"),
    ("GET", "requests?cursor=notacursor", None, 400, "invalid-input", "'cursor'"),
    ("GET", "requests?exclusiveStartId={a}&filter=pending", None, 400, "invalid-input", "exclusiveStartId"),
    ("GET", "head?limit=0", None, 400, "invalid-input", "'limit'"),
    ("DELETE", "requests/batch", [{"nothing": 1}], 400, "invalid-input", "'id' or 'uniqueKey'"),
    ("DELETE", "requests/batch", [{"id": str(i)} for i in range(26)], 400, "invalid-input", "at most 25"),
    ("GET", "requests/nosuchrequest00", None, 404, "record-not-found", "Request was not found"),
    ("DELETE", "requests/nosuchrequest00", None, 404, "record-not-found", "Request was not found"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "error_type", "text"), BAD_INPUT)
def test_bad_input_is_a_4xx_in_the_envelope_and_changes_nothing(  # noqa: PLR0913
    client: FlaskClient,
    storage_root: Path,
    table: dict[str, str],
    method: str,
    path: str,
    body: Any,
    status: int,
    error_type: str,
    text: str,
) -> None:
    before = snapshot(storage_root)
    url = f"/v2/request-queues/{table['q']}/" + path.format(**table)
    data = None if body is None else json.dumps(body)

    response = client.open(url, method=method, data=data, content_type="application/json")

    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["type"] == error_type and text in error["message"]
    assert snapshot(storage_root) == before


def test_unknown_queue_is_record_not_found(client: FlaskClient) -> None:
    response = client.post("/v2/request-queues/nosuchqueue/head/lock?lockSecs=60")

    assert response.status_code == 404
    assert response.get_json()["error"] == {"type": "record-not-found", "message": "Request queue was not found"}


@pytest.mark.parametrize("ref", ["..", "~..", "~a%2F..%2F..", "..%2F..%2Foutside"])
def test_nothing_leaves_the_root(client: FlaskClient, tmp_path: Path, ref: str) -> None:
    client.post(f"/v2/request-queues/{ref}/requests", json=req("x"))
    client.post(f"/v2/request-queues?name={ref}")

    assert not (tmp_path / "outside").exists()
    assert not any((tmp_path / "storage" / "request_queues").glob("*/*.json"))
