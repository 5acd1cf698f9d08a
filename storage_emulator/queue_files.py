"""The request queue's on-disk contract: its metadata model, request files of both layouts, the state record.

Layout of a storage root (Crawlee for Python 1.x, which the emulator writes)::

    <root>/request_queues/<folder>/__metadata__.json        RequestQueueMetadata (snake_case, exact counts)
    <root>/request_queues/<folder>/2dce0a4c50441bf.json     one request: sha256(uniqueKey).hexdigest()[:15]
    <root>/request_queues/<folder>/.queue-index.sqlite3     the emulator's order, lock and handled index
    <root>/key_value_stores/default/__RQ_STATE_<queueId>    Crawlee's order/handled state (JSON, no extension)
    <root>/key_value_stores/default/__RQ_STATE_<queueId>.__metadata__.json   its record sidecar

The JS tools (``@crawlee/memory-storage``) write ``<folder>/<requestId>.json`` files of the form
``{id, json: "<the request as JSON text>", orderNo, retryCount, uniqueKey, url, method}`` (tab indent,
``orderNo`` = +ms regular, -ms forefront, ``null`` handled); the emulator reads them and, in a folder of
that layout, writes that layout.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from .files import atomic_write_text
from .models import METADATA_FILENAME, StorageMetadata, _aliases

REQUEST_QUEUES_DIR = "request_queues"
"""Folder under the storage root that holds one folder per request queue (as Crawlee names it)."""

QUEUE_INDEX_FILENAME = ".queue-index.sqlite3"
"""The emulator's index of a queue (order, locks, handled state) inside the queue's folder; hidden, not ``*.json``."""

KEY_VALUE_STORES_DIR = "key_value_stores"
DEFAULT_KEY_VALUE_STORE_FOLDER = "default"
RQ_STATE_KEY_PREFIX = "__RQ_STATE_"
"""Crawlee keeps a file-system queue's order in the default key-value store under ``__RQ_STATE_<queueId>``."""
RECORD_METADATA_SUFFIX = f".{METADATA_FILENAME}"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"

REQUEST_ID_LENGTH = 15
PYTHON_FILE_NAME_LENGTH = 15

# The request fields Crawlee for Python knows, as the API (camelCase) and its files (snake_case) name them.
KNOWN_REQUEST_FIELDS = {
    "uniqueKey": "unique_key",
    "url": "url",
    "method": "method",
    "payload": "payload",
    "headers": "headers",
    "userData": "user_data",
    "retryCount": "retry_count",
    "noRetry": "no_retry",
    "loadedUrl": "loaded_url",
    "handledAt": "handled_at",
}
FILE_TO_API = {snake: camel for camel, snake in KNOWN_REQUEST_FIELDS.items()}
# Fields Crawlee writes as null that the API must not return as null (Crawlee JS rejects `payload: null`).
DROPPED_WHEN_NULL = ("payload", "loadedUrl", "handledAt")

Layout = Literal["python", "js"]


def unique_key_to_request_id(unique_key: str) -> str:
    """Return the request id of a ``uniqueKey``: sha256, standard base64, ``+/=`` removed, first 15 characters.

    As the Apify SDK (``unique_key_to_request_id``), Crawlee JS (``getRequestId``) and memory-storage compute it.
    """
    digest = base64.b64encode(hashlib.sha256(unique_key.encode("utf-8")).digest()).decode("ascii")
    return digest.replace("+", "").replace("/", "").replace("=", "")[:REQUEST_ID_LENGTH]


def python_file_name(unique_key: str) -> str:
    """Return the name of a request's file in Crawlee for Python's layout: ``sha256 hex[:15].json``."""
    return hashlib.sha256(unique_key.encode("utf-8")).hexdigest()[:PYTHON_FILE_NAME_LENGTH] + ".json"


class RequestQueueMetadata(StorageMetadata):
    """Metadata of one request queue, stored as ``__metadata__.json`` in the queue's folder (see the module)."""

    JS_KEYS: ClassVar[dict[str, str]] = {
        **StorageMetadata.JS_KEYS,
        "had_multiple_clients": "hadMultipleClients",
        "handled_request_count": "handledRequestCount",
        "pending_request_count": "pendingRequestCount",
        "total_request_count": "totalRequestCount",
    }

    had_multiple_clients: bool = _aliases("had_multiple_clients", "hadMultipleClients", default=False)
    """More than one client (``clientKey``, or a call without one) has used the queue."""
    handled_request_count: int = _aliases("handled_request_count", "handledRequestCount", default=0)
    """Requests with ``handledAt``; Crawlee trusts this count on reopen."""
    pending_request_count: int = _aliases("pending_request_count", "pendingRequestCount", default=0)
    """Requests without ``handledAt``."""
    total_request_count: int = _aliases("total_request_count", "totalRequestCount", default=0)
    """All requests in the queue."""
    write_count: int = 0
    """Apify ``stats.writeCount``: +1 per added, locked or updated request."""
    delete_count: int = 0
    """Apify ``stats.deleteCount``: deleted requests."""


# ----- request files ---------------------------------------------------------------------------------


def request_to_file(request: dict[str, Any]) -> dict[str, Any]:
    """Turn an API request (camelCase, no ``id``) into Crawlee for Python's file form; unknown keys stay as sent."""
    return {KNOWN_REQUEST_FIELDS.get(key, key): value for key, value in request.items() if key != "id"}


def request_from_file(data: dict[str, Any], request_id: str) -> dict[str, Any]:
    """Turn a Crawlee-for-Python request file into the API request: camelCase, ``id`` first, no null extras."""
    request: dict[str, Any] = {"id": request_id}
    for key, value in data.items():
        api_key = FILE_TO_API.get(key, key)
        if value is None and api_key in DROPPED_WHEN_NULL:
            continue
        request[api_key] = value
    return request


@dataclass(frozen=True)
class FileRequest:
    """One request as read from a file of either layout."""

    request: dict[str, Any]
    """The API form (camelCase, with ``id``)."""
    layout: Layout
    order_no: float | None = None
    """The JS layout's ``orderNo`` (ms; negative = forefront; ``None`` = handled)."""


def parse_request_file(raw: bytes) -> FileRequest | None:
    """Parse a request file of either layout; ``None`` for anything that is not a request."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("json"), str) and "orderNo" in data:  # memory-storage
        try:
            inner = json.loads(data["json"])
        except ValueError:
            return None
        if not isinstance(inner, dict) or not isinstance(inner.get("uniqueKey"), str):
            return None
        inner.pop("id", None)
        request = {"id": unique_key_to_request_id(inner["uniqueKey"]), **inner}
        order = data["orderNo"]
        return FileRequest(request, "js", float(order) if isinstance(order, int | float) else None)
    unique_key = data.get("unique_key", data.get("uniqueKey"))
    if not isinstance(unique_key, str):
        return None
    data.pop("id", None)
    return FileRequest(request_from_file(data, unique_key_to_request_id(unique_key)), "python")


def encode_request_file(request: dict[str, Any], layout: Layout, order_no: float | None) -> str:
    """Return a request file's text in a layout (``order_no`` only matters in the JS one)."""
    if layout == "python":
        return json.dumps(request_to_file(request), ensure_ascii=False, indent=2, default=str)
    body = {
        "id": request["id"],
        "json": json.dumps(request, ensure_ascii=False),
        "orderNo": None if order_no is None else int(order_no),
        "retryCount": request.get("retryCount", 0),
        "uniqueKey": request["uniqueKey"],
        "url": request.get("url"),
        "method": request.get("method", "GET"),
    }
    return json.dumps(body, ensure_ascii=False, indent="\t")


def request_file_name(request: dict[str, Any], layout: Layout) -> str:
    """Return the file a request lives in: the hex name (Python layout) or ``<id>.json`` (JS)."""
    if layout == "python":
        return python_file_name(request["uniqueKey"])
    return f"{request['id']}.json"


# ----- Crawlee's state record ------------------------------------------------------------------------


def rq_state_record_path(root: Path, queue_id: str) -> Path:
    """Return ``<root>/key_value_stores/default/__RQ_STATE_<queueId>``."""
    return root / KEY_VALUE_STORES_DIR / DEFAULT_KEY_VALUE_STORE_FOLDER / f"{RQ_STATE_KEY_PREFIX}{queue_id}"


def read_rq_state_record(root: Path, queue_id: str) -> dict[str, Any] | None:
    """Return Crawlee's ``__RQ_STATE_<queueId>`` record, or ``None`` if there is none readable."""
    try:
        state = json.loads(rq_state_record_path(root, queue_id).read_bytes())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def write_rq_state_record(root: Path, queue_id: str, state: dict[str, Any]) -> None:
    """Write the ``__RQ_STATE_<queueId>`` record in Crawlee for Python's key-value-store layout, atomically.

    The one place that writes into a key-value store; it can later go through the key-value-store repository.
    """
    path = rq_state_record_path(root, queue_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state, ensure_ascii=False, indent=2)
    atomic_write_text(path, text)
    sidecar = {"key": path.name, "content_type": JSON_CONTENT_TYPE, "size": len(text.encode("utf-8"))}
    atomic_write_text(path.with_name(path.name + RECORD_METADATA_SUFFIX), json.dumps(sidecar, indent=2))
