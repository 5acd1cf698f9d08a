"""Turn request queues, their requests and heads into the Apify API's JSON shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .queue_files import RequestQueueMetadata
from .request_queues import AddResult, Head, HeadItem, RequestQueueRepository
from .serializers import iso_time


def _common_fields(queue: RequestQueueMetadata, repo: RequestQueueRepository) -> dict[str, Any]:
    return {
        "id": queue.id,
        "userId": repo.policy.owner_id(queue),
        "username": repo.policy.owner_username(queue),
        "createdAt": iso_time(queue.created_at),
        "modifiedAt": iso_time(queue.modified_at),
        "accessedAt": iso_time(queue.accessed_at),
        "totalRequestCount": queue.total_request_count,
        "handledRequestCount": queue.handled_request_count,
        "pendingRequestCount": queue.pending_request_count,
        "hadMultipleClients": queue.had_multiple_clients,
        "actId": None,
        "actRunId": None,
        "title": queue.title,
        "generalAccess": queue.general_access,
        "stats": {
            "readCount": queue.read_count,
            "writeCount": queue.write_count,
            "deleteCount": queue.delete_count,
        },
    }


def request_queue_resource(
    queue: RequestQueueMetadata, repo: RequestQueueRepository, *, base_url: str
) -> dict[str, Any]:
    """Return the Apify ``RequestQueue`` object (``data`` of GET/POST/PUT)."""
    return {
        **_common_fields(queue, repo),
        "name": queue.name,
        "consoleUrl": f"{base_url}/view/request-queues/{queue.id}",
    }


def request_queue_list_item(queue: RequestQueueMetadata, repo: RequestQueueRepository) -> dict[str, Any]:
    """Return a list item; an unnamed queue's ``name`` is its id (the client needs a string)."""
    return {**_common_fields(queue, repo), "name": queue.name if queue.name is not None else queue.id}


def request_json(request: dict[str, Any]) -> dict[str, Any]:
    """Return a stored request as JSON, its lock expiry (if any) as ISO time."""
    lock = request.get("lockExpiresAt")
    if isinstance(lock, datetime):
        return {**request, "lockExpiresAt": iso_time(lock)}
    return request


def add_result(result: AddResult) -> dict[str, Any]:
    """Return ``{requestId, wasAlreadyPresent, wasAlreadyHandled}``."""
    return {
        "requestId": result.request_id,
        "wasAlreadyPresent": result.was_already_present,
        "wasAlreadyHandled": result.was_already_handled,
    }


def processed_request(result: AddResult) -> dict[str, Any]:
    """Return one ``processedRequests[]`` entry of a batch add: the ``uniqueKey`` echoed exactly."""
    return {"requestId": result.request_id, "uniqueKey": result.unique_key, **add_result(result)}


def _head_item(item: HeadItem) -> dict[str, Any]:
    shown: dict[str, Any] = {"id": item.id, "uniqueKey": item.unique_key, "url": item.url}
    shown["method"] = item.method or "GET"
    shown["retryCount"] = item.retry_count or 0
    if item.lock_expires_at is not None:
        shown["lockExpiresAt"] = iso_time(item.lock_expires_at)
    return shown


def head_json(head: Head, *, lock_secs: int | None = None, client_key: str | None = None) -> dict[str, Any]:
    """Return a head (and with ``lock_secs``, a locked head's extra fields)."""
    shown: dict[str, Any] = {
        "limit": head.limit,
        "queueModifiedAt": iso_time(head.queue.modified_at),
        "hadMultipleClients": head.queue.had_multiple_clients,
    }
    if lock_secs is not None:
        shown.update(lockSecs=lock_secs, clientKey=client_key, queueHasLockedRequests=head.queue_has_locked_requests)
    shown["items"] = [_head_item(item) for item in head.items]
    return shown
