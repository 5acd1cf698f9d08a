"""The access log and the request record: one line per request, written when the response is done.

``--record FILE`` appends one JSON object per line; ``storage-emulator log FILE`` summarises it::

    {"time": "2026-12-04T03:04:37.123Z", "method": "GET", "path": "/v2/datasets/abc", "query": "limit=1",
     "route": "/v2/datasets/<ref>", "status": 200, "duration_ms": 1.2, "request_bytes": 0,
     "response_bytes": 512}

With ``--record-bodies`` each line also holds ``request_body`` and ``response_body`` (text, cut at
``BODY_LIMIT`` bytes, with ``..._truncated`` set when cut). Each line is one ``write`` to a file opened
with ``O_APPEND``, so several worker processes can record to one file without mixing lines. A request
whose connection a fault dropped is recorded with status 0.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..serving import DROPPED_ENVIRON_KEY

access_log = logging.getLogger("storage_emulator.access")

BODY_LIMIT = 4096
"""Bytes of each body kept in the record with ``--record-bodies``."""
ROUTE_ENVIRON_KEY = "storage_emulator.route"
"""Where the app notes the route pattern a request matched (for grouping in ``log``)."""
UNMATCHED_ROUTE = "(no route)"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _TeeInput:
    """Wrap ``wsgi.input``: count the bytes the app reads and keep the first ``limit`` of them."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.size = 0
        self.kept = bytearray()

    def _note(self, data: bytes) -> bytes:
        self.size += len(data)
        if len(self.kept) < self._limit:
            self.kept += data[: self._limit - len(self.kept)]
        return data

    def read(self, *args: Any) -> bytes:
        return self._note(self._stream.read(*args))

    def readline(self, *args: Any) -> bytes:
        return self._note(self._stream.readline(*args))

    def readlines(self, *args: Any) -> list[bytes]:
        return [self._note(line) for line in self._stream.readlines(*args)]

    def __iter__(self) -> Iterator[bytes]:
        return (self._note(line) for line in self._stream)


@dataclass
class _Exchange:
    environ: dict[str, Any]
    method: str
    """As sent, before any ``?method=`` override."""
    started: float
    tee: _TeeInput
    status: int = 0
    response_size: int = 0
    response_kept: bytearray = field(default_factory=bytearray)


class RequestLog:
    """WSGI middleware: time every request; log an access line and/or append a JSON line to a record file."""

    def __init__(
        self, app: WSGIApp, *, access: bool = True, record_path: Path | None = None, record_bodies: bool = False
    ) -> None:
        self.app = app
        self.access = access
        self.record_bodies = record_bodies
        self._record_fd: int | None = None
        if record_path is not None:
            record_path.parent.mkdir(parents=True, exist_ok=True)
            self._record_fd = os.open(record_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the record file."""
        with self._lock:
            if self._record_fd is not None:
                os.close(self._record_fd)
                self._record_fd = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve the request through the wrapped app and note it once the response is complete."""
        limit = BODY_LIMIT if self.record_bodies else 0
        tee = _TeeInput(environ["wsgi.input"], limit)
        environ["wsgi.input"] = tee
        exchange = _Exchange(environ=environ, method=environ["REQUEST_METHOD"], started=time.perf_counter(), tee=tee)

        def noting_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            exchange.status = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            body = self.app(environ, noting_start_response)
        except BaseException:
            exchange.status = exchange.status or 500
            self._finish(exchange)
            raise
        if environ.get(DROPPED_ENVIRON_KEY):
            # Note it now: the server fails writing to the shut socket and may never close the body.
            self._finish(exchange)
            return body
        return _NotedBody(body, exchange, self._finish, limit)

    def _finish(self, exchange: _Exchange) -> None:
        duration_ms = (time.perf_counter() - exchange.started) * 1000
        environ = exchange.environ
        if environ.get(DROPPED_ENVIRON_KEY):
            exchange.status = 0  # nothing reached the client
        method, path, query = exchange.method, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if self.access:
            target = f"{path}?{query}" if query else path
            access_log.info(
                '%s "%s %s" %d %d %.1fms',
                environ.get("REMOTE_ADDR", "-"),
                method,
                target,
                exchange.status,
                exchange.response_size,
                duration_ms,
            )
        if self._record_fd is None:
            return
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": method,
            "path": path,
            "query": query,
            "route": environ.get(ROUTE_ENVIRON_KEY) or UNMATCHED_ROUTE,
            "status": exchange.status,
            "duration_ms": round(duration_ms, 3),
            "request_bytes": exchange.tee.size,
            "response_bytes": exchange.response_size,
        }
        if self.record_bodies:
            entry["request_body"] = bytes(exchange.tee.kept).decode("utf-8", "backslashreplace")
            entry["request_body_truncated"] = exchange.tee.size > len(exchange.tee.kept)
            entry["response_body"] = bytes(exchange.response_kept).decode("utf-8", "backslashreplace")
            entry["response_body_truncated"] = exchange.response_size > len(exchange.response_kept)
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._record_fd is not None:
                os.write(self._record_fd, line)


class _NotedBody:
    """The response iterable, counting (and keeping the first bytes of) what is sent; notes it on close."""

    def __init__(self, body: Iterable[bytes], exchange: _Exchange, finish: Callable[[_Exchange], None], limit: int):
        self._body = body
        self._exchange = exchange
        self._finish = finish
        self._limit = limit
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        exchange = self._exchange
        for chunk in self._body:
            exchange.response_size += len(chunk)
            if len(exchange.response_kept) < self._limit:
                exchange.response_kept += chunk[: self._limit - len(exchange.response_kept)]
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if not self._done:
                self._done = True
                self._finish(self._exchange)


# ----- the summary of `storage-emulator log FILE` -------------------------------------------------


@dataclass(frozen=True)
class RouteSummary:
    """Requests of one method, route and status in a record file."""

    method: str
    route: str
    status: int
    count: int
    median_ms: float


def summarise(lines: Iterable[str]) -> tuple[list[RouteSummary], int]:
    """Group record lines by method, route and status; return the groups (most requests first) and bad lines."""
    durations: dict[tuple[str, str, int], list[float]] = {}
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            key = (str(entry["method"]), str(entry.get("route") or entry["path"]), int(entry["status"]))
            duration = float(entry["duration_ms"])
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        durations.setdefault(key, []).append(duration)
    groups = [
        RouteSummary(method, route, status, len(values), statistics.median(values))
        for (method, route, status), values in durations.items()
    ]
    groups.sort(key=lambda group: (-group.count, group.route, group.method, group.status))
    return groups, bad
