"""The Apify Request Queue API v2 routes: thin views over the request-queue repository."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from ..errors import InvalidParameter
from ..request_queue_serializers import (
    add_result,
    head_json,
    processed_request,
    request_json,
    request_queue_list_item,
    request_queue_resource,
)
from ..request_queues import MAX_LOCK_REQUESTS, MAX_LOCK_SECONDS
from .access import request_queues, require_caller, resolve_for_read, resolve_for_write
from .bodies import json_array_body, json_object_body
from .envelopes import json_response
from .params import bool_param, int_param, list_param
from .storage_views import list_arguments, page_head, update_changes

bp = Blueprint("apify_request_queues", __name__, url_prefix="/v2/request-queues")

HEAD_LIMIT_DEFAULT = 100
HEAD_LIMIT_MAX = 1000
REQUESTS_LIMIT_DEFAULT = 100
REQUESTS_LIMIT_MAX = 10_000
REQUEST_FILTERS = ("pending", "locked")


def base_url() -> str:
    """Return the URL the emulator is reached at, for ``Location`` and ``consoleUrl``."""
    return request.host_url.rstrip("/")


def render(queue: Any) -> dict[str, Any]:
    """Serialize one queue."""
    return request_queue_resource(queue, request_queues(), base_url=base_url())


def client_key() -> str | None:
    """Return the ``clientKey`` parameter (checked by the repository); empty means absent."""
    return request.args.get("clientKey") or None


def lock_secs_param() -> int:
    """Return the required ``lockSecs``."""
    if not request.args.get("lockSecs"):
        raise InvalidParameter("lockSecs", "is required")
    value = int_param(request.args, "lockSecs", None, minimum=1, maximum=MAX_LOCK_SECONDS)
    assert value is not None
    return value


# ----- queues ----------------------------------------------------------------------------------------


@bp.get("")
def list_request_queues() -> Response:
    """List the caller's request queues."""
    repo = request_queues()
    page = repo.list_request_queues(caller=require_caller(), **list_arguments())
    items = [request_queue_list_item(queue, repo) for queue in page.items]
    return json_response({"data": {**page_head(page), "items": items}})


@bp.post("")
def get_or_create_request_queue() -> Response:
    """Create a queue; with ``?name=``, return the existing one of that name if there is one."""
    caller = require_caller()
    name = request.args.get("name") or None
    queue, created = request_queues().get_or_create_request_queue(name, owner=caller)
    if not created:
        return json_response({"data": render(queue)}, 200)
    location = f"{base_url()}/v2/request-queues/{queue.id}"
    return json_response({"data": render(queue)}, 201, headers={"Location": location})


@bp.get("/<ref>")
def get_request_queue(ref: str) -> Response:
    """Return one queue's metadata."""
    queue, _caller = resolve_for_read(request_queues(), ref)
    return json_response({"data": render(request_queues().get_request_queue(queue.id, touch_accessed=True))})


@bp.put("/<ref>")
def update_request_queue(ref: str) -> Response:
    """Rename a queue, or set its ``generalAccess`` or ``title``."""
    queue, _caller = resolve_for_write(request_queues(), ref)
    return json_response({"data": render(request_queues().update_request_queue(queue.id, **update_changes()))})


@bp.delete("/<ref>")
def delete_request_queue(ref: str) -> Response:
    """Delete a queue."""
    queue, _caller = resolve_for_write(request_queues(), ref)
    request_queues().delete_request_queue(queue.id)
    return Response(status=204)


# ----- requests --------------------------------------------------------------------------------------


@bp.post("/<ref>/requests")
def add_request(ref: str) -> Response:
    """Add one request."""
    forefront = bool_param(request.args, "forefront")
    queue, _caller = resolve_for_write(request_queues(), ref)
    body = json_object_body()
    result = request_queues().add_request(queue.id, body, forefront=forefront, client_key=client_key())
    return json_response({"data": add_result(result)}, 201)


@bp.post("/<ref>/requests/batch")
def batch_add_requests(ref: str) -> Response:
    """Add up to 25 requests; every ``uniqueKey`` is echoed in ``processedRequests``."""
    forefront = bool_param(request.args, "forefront")
    queue, _caller = resolve_for_write(request_queues(), ref)
    results = request_queues().add_requests(queue.id, json_array_body(), forefront=forefront, client_key=client_key())
    data = {"processedRequests": [processed_request(result) for result in results], "unprocessedRequests": []}
    return json_response({"data": data}, 201)


@bp.delete("/<ref>/requests/batch")
def batch_delete_requests(ref: str) -> Response:
    """Delete up to 25 requests by ``id`` or ``uniqueKey``."""
    queue, _caller = resolve_for_write(request_queues(), ref)
    processed, unprocessed = request_queues().delete_requests(queue.id, json_array_body(), client_key=client_key())
    return json_response({"data": {"processedRequests": processed, "unprocessedRequests": unprocessed}})


@bp.get("/<ref>/requests")
def list_requests(ref: str) -> Response:
    """List requests in insertion order, paged by ``cursor`` (or the deprecated ``exclusiveStartId``)."""
    args = request.args
    limit = int_param(args, "limit", REQUESTS_LIMIT_DEFAULT, minimum=1, maximum=REQUESTS_LIMIT_MAX)
    assert limit is not None
    filters = list_param(args, "filter")
    for value in filters or ():
        if value not in REQUEST_FILTERS:
            raise InvalidParameter("filter", "must be pending, locked or both, comma-separated")
    exclusive_start_id = args.get("exclusiveStartId") or None
    cursor = args.get("cursor") or None
    if exclusive_start_id and filters:
        raise InvalidParameter("filter", "cannot be combined with exclusiveStartId")
    if exclusive_start_id and cursor:
        raise InvalidParameter("cursor", "cannot be combined with exclusiveStartId")
    only = None if not filters else ("pending" if "pending" in filters else "locked")
    queue, _caller = resolve_for_read(request_queues(), ref)
    page = request_queues().list_requests(
        queue.id, limit=limit, after=cursor, exclusive_start_id=exclusive_start_id, only=only
    )
    data: dict[str, Any] = {"items": [request_json(item) for item in page.items], "limit": page.limit}
    if cursor:
        data["cursor"] = cursor
    if exclusive_start_id:
        data["exclusiveStartId"] = exclusive_start_id
    if page.next_after is not None:
        data["nextCursor"] = page.next_after
    return json_response({"data": data})


@bp.post("/<ref>/requests/unlock")
def unlock_requests(ref: str) -> Response:
    """Release every lock the caller's ``clientKey`` holds."""
    queue, _caller = resolve_for_write(request_queues(), ref)
    count = request_queues().unlock_requests(queue.id, client_key=client_key())
    return json_response({"data": {"unlockedCount": count}})


@bp.get("/<ref>/requests/<request_id>")
def get_request(ref: str, request_id: str) -> Response:
    """Return one request as stored."""
    queue, _caller = resolve_for_read(request_queues(), ref)
    return json_response({"data": request_json(request_queues().get_request(queue.id, request_id))})


@bp.put("/<ref>/requests/<request_id>")
def update_request(ref: str, request_id: str) -> Response:
    """Replace or add (upsert) a request; ``handledAt`` marks it handled, its absence makes it pending."""
    forefront = bool_param(request.args, "forefront")
    queue, _caller = resolve_for_write(request_queues(), ref)
    body = json_object_body()
    result = request_queues().update_request(queue.id, request_id, body, forefront=forefront, client_key=client_key())
    return json_response({"data": add_result(result)})


@bp.delete("/<ref>/requests/<request_id>")
def delete_request(ref: str, request_id: str) -> Response:
    """Delete one request."""
    queue, _caller = resolve_for_write(request_queues(), ref)
    request_queues().delete_request(queue.id, request_id, client_key=client_key())
    return Response(status=204)


# ----- head and locks --------------------------------------------------------------------------------


@bp.get("/<ref>/head")
def get_head(ref: str) -> Response:
    """Return the first pending, unlocked requests."""
    limit = int_param(request.args, "limit", HEAD_LIMIT_DEFAULT, minimum=1, maximum=HEAD_LIMIT_MAX)
    assert limit is not None
    queue, _caller = resolve_for_read(request_queues(), ref)
    head = request_queues().get_head(queue.id, limit=limit, client_key=client_key())
    return json_response({"data": head_json(head)})


@bp.post("/<ref>/head/lock")
def lock_head(ref: str) -> Response:
    """Lock and return up to ``limit`` (≤ 25) head requests for ``lockSecs`` seconds."""
    lock_secs = lock_secs_param()
    limit = int_param(request.args, "limit", MAX_LOCK_REQUESTS, minimum=1, maximum=MAX_LOCK_REQUESTS)
    assert limit is not None
    queue, _caller = resolve_for_write(request_queues(), ref)
    key = client_key()
    head = request_queues().lock_head(queue.id, lock_secs=lock_secs, limit=limit, client_key=key)
    return json_response({"data": head_json(head, lock_secs=lock_secs, client_key=key)}, 201)


@bp.put("/<ref>/requests/<request_id>/lock")
def prolong_request_lock(ref: str, request_id: str) -> Response:
    """Extend the caller's lock of a request to now + ``lockSecs``."""
    lock_secs = lock_secs_param()
    forefront = bool_param(request.args, "forefront")
    queue, _caller = resolve_for_write(request_queues(), ref)
    expires = request_queues().prolong_request_lock(
        queue.id, request_id, lock_secs=lock_secs, forefront=forefront, client_key=client_key()
    )
    return json_response({"data": {"lockExpiresAt": request_json({"lockExpiresAt": expires})["lockExpiresAt"]}})


@bp.delete("/<ref>/requests/<request_id>/lock")
def delete_request_lock(ref: str, request_id: str) -> Response:
    """Release the caller's lock of a request."""
    forefront = bool_param(request.args, "forefront")
    queue, _caller = resolve_for_write(request_queues(), ref)
    request_queues().delete_request_lock(queue.id, request_id, forefront=forefront, client_key=client_key())
    return Response(status=204)
