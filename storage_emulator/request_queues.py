"""The direct Python API over a storage root's request queues: queues, their requests, the head and locks.

What every storage kind does the same way is in ``storage_collection``; this module adds only what is a
queue's own: request files (``queue_files``), their order, locks and handled state (``queue_index``), and
the counters. Every operation runs in one queue session: the queue's cross-process file lock, the
metadata fresh from disk, and one index transaction. So several server processes, the CLI and this API
can serve one queue at once, and a lock, a handled mark or a counter is decided exactly once.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .accounts import Account
from .errors import (
    InvalidClientKey,
    InvalidInput,
    InvalidParameter,
    RequestIdInvalid,
    RequestLockConflict,
    RequestNotFound,
    RequestQueueCorrupted,
    RequestQueueNotFound,
    StorageBusy,
)
from .files import atomic_write_text
from .models import METADATA_FILENAME, utc_now
from .queue_files import (
    QUEUE_INDEX_FILENAME,
    RECORD_METADATA_SUFFIX,
    REQUEST_QUEUES_DIR,
    FileRequest,
    Layout,
    RequestQueueMetadata,
    encode_request_file,
    parse_request_file,
    read_rq_state_record,
    request_file_name,
    rq_state_record_path,
    unique_key_to_request_id,
    write_rq_state_record,
)
from .queue_index import IndexedRequest, QueueIndex, open_index
from .storage_collection import UNSET, Finding, StorageCollection, StoragePage

log = logging.getLogger(__name__)

__all__ = ["RequestQueuePage", "RequestQueueRepository", "unique_key_to_request_id"]

RequestQueuePage = StoragePage[RequestQueueMetadata]
"""One page of a request queue listing."""

MAX_BATCH_REQUESTS = 25
"""The platform's limit on one batch add or delete."""
MAX_CLIENT_KEY_LENGTH = 32
MAX_LOCK_REQUESTS = 25
MAX_LOCK_SECONDS = 24 * 3600
STATE_RECORD_EVERY_CHANGE_UP_TO = 200
"""Queues up to this many requests rewrite Crawlee's state record on every change; larger ones at most
every ``STATE_RECORD_INTERVAL_SECONDS`` (the record is O(queue) to write) and on ``flush_state``."""
STATE_RECORD_INTERVAL_SECONDS = 1.0
_US = 1_000_000


def _micros(when: datetime) -> int:
    return int(when.timestamp() * _US)


def _from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value / _US, tz=UTC)


def check_client_key(client_key: str | None) -> str | None:
    """Return ``client_key`` if it is absent or 1 to 32 characters, else raise ``InvalidClientKey``."""
    if client_key is not None and not 1 <= len(client_key) <= MAX_CLIENT_KEY_LENGTH:
        raise InvalidClientKey(
            f"Invalid value for parameter 'clientKey': must be 1 to {MAX_CLIENT_KEY_LENGTH} characters"
        )
    return client_key


def check_lock_seconds(lock_secs: int) -> int:
    """Return ``lock_secs`` if it is a whole number of seconds in range, else raise ``InvalidParameter``."""
    if isinstance(lock_secs, bool) or not isinstance(lock_secs, int) or not 1 <= lock_secs <= MAX_LOCK_SECONDS:
        raise InvalidParameter("lockSecs", f"must be an integer ≥ 1 and ≤ {MAX_LOCK_SECONDS}")
    return lock_secs


@dataclass(frozen=True)
class AddResult:
    """What adding one request did (``processedRequests[]`` of a batch)."""

    request_id: str
    unique_key: str
    was_already_present: bool
    was_already_handled: bool


@dataclass(frozen=True)
class HeadItem:
    """One request of the head (with its lock expiry after ``lock_head``)."""

    id: str
    unique_key: str
    url: str | None
    method: str | None
    retry_count: int | None
    lock_expires_at: datetime | None = None


@dataclass(frozen=True)
class Head:
    """The head of a queue: requests a consumer can take next, in order."""

    queue: RequestQueueMetadata
    limit: int
    items: list[HeadItem]
    queue_has_locked_requests: bool


@dataclass(frozen=True)
class RequestsPage:
    """A page of a queue's requests in insertion order; ``next_after`` is where the next page starts."""

    items: list[dict[str, Any]]
    limit: int
    next_after: str | None


@dataclass
class _Session:
    """One queue operation: the folder, its metadata as it will be written, the open index, one moment."""

    folder: str
    path: Path
    metadata: RequestQueueMetadata
    index: QueueIndex
    layout: Layout
    now: datetime
    changes: dict[str, Any] = field(default_factory=dict)
    order_changed: bool = False

    @property
    def now_us(self) -> int:
        return _micros(self.now)

    def change(self, **values: Any) -> None:
        self.changes.update(values)

    def counts(self) -> dict[str, int]:
        m = self.metadata
        return {
            key: self.changes.get(key, getattr(m, key))
            for key in ("total_request_count", "handled_request_count", "pending_request_count", "write_count")
        }


class RequestQueueRepository(StorageCollection[RequestQueueMetadata]):
    """Request queues under one storage root, e.g. ``RequestQueueRepository("./storage")``.

    ``clock`` gives the time locks are decided by; tests pass one they can move.
    """

    KIND_DIR = REQUEST_QUEUES_DIR
    NOUN = "request_queue"
    LABEL = "request queue"
    METADATA = RequestQueueMetadata
    NOT_FOUND = RequestQueueNotFound
    CORRUPTED = RequestQueueCorrupted
    LOCK_POLL_SECONDS = 0.002  # every consumer call takes the queue's lock for about a millisecond

    def __init__(self, root: str | os.PathLike[str], *, clock: Callable[[], datetime] = utc_now, **options: Any):
        super().__init__(root, **options)
        self.clock = clock
        self._local = threading.local()
        self._timers: dict[str, threading.Timer] = {}
        self._timers_lock = threading.Lock()
        atexit.register(_flush_states_at_exit, weakref.ref(self))

    # ----- the kind's hooks into the core ------------------------------------------------------------

    def _synthesized_fields(self, folder: str) -> dict[str, Any]:
        total = handled = 0
        for _name, parsed in self._scan_files(self.kind_dir / folder):
            total += 1
            handled += self._file_is_handled(parsed)
        pending = total - handled
        return {"total_request_count": total, "handled_request_count": handled, "pending_request_count": pending}

    def write_metadata(self, folder: str, metadata: RequestQueueMetadata) -> None:
        """Replace a queue's metadata file atomically and record it in the index (callers hold the lock)."""
        index: QueueIndex | None = getattr(self._local, "index", None)
        if index is not None:  # inside a queue session
            super().write_metadata(folder, metadata)
            index.set_meta("stamp", _stamp(metadata))
            return
        # A core write (rename, read counters): the index follows only if it matched the file it replaces;
        # if another tool changed the folder meanwhile, the next session must still see that and re-index.
        path = self.kind_dir / folder / QUEUE_INDEX_FILENAME
        try:
            before = _stamp(self.read_metadata(folder)) if path.exists() else None
        except (RequestQueueCorrupted, RequestQueueNotFound):
            before = None
        super().write_metadata(folder, metadata)
        if before is not None:
            with open_index(path) as opened:
                if opened.meta("stamp") == before:
                    opened.set_meta("stamp", _stamp(metadata))

    def _check_contents(self, folder: str, metadata: RequestQueueMetadata, repair: bool) -> list[Finding]:
        path = self.kind_dir / folder
        total = handled = 0
        unreadable = []
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            if not entry.name.endswith(".json") or entry.name == METADATA_FILENAME:
                continue
            parsed = _read_request_file(Path(entry.path))
            if parsed is None:
                unreadable.append(entry.name)
                continue
            total += 1
            handled += self._file_is_handled(parsed)
        findings = [Finding(folder, f"unreadable request file {name}") for name in unreadable[:10]]
        counted = (metadata.total_request_count, metadata.handled_request_count, metadata.pending_request_count)
        if counted != (total, handled, total - handled):
            problem = (
                f"counts total/handled/pending {counted[0]}/{counted[1]}/{counted[2]} do not match the request "
                f"files ({total}/{handled}/{total - handled})"
            )
            if repair:
                with self._session(metadata.id, None, rebuild=True):
                    pass  # the session recounts from the files and writes the metadata
            findings.append(Finding(folder, problem, repaired=repair))
        return findings

    # ----- sessions ----------------------------------------------------------------------------------

    @contextmanager
    def _session(self, ref: str, caller: Account | None, *, rebuild: bool = False) -> Iterator[_Session]:
        """Lock the queue, open its index (rebuilt from the files if another tool changed them) and yield."""
        with self._write_session(ref, caller) as (folder, metadata):
            path = self.kind_dir / folder
            with open_index(path / QUEUE_INDEX_FILENAME) as index:
                self._local.index = index
                try:
                    session = _Session(folder, path, metadata, index, self._layout(index), self.clock())
                    if rebuild or index.meta("stamp") != _stamp(metadata) or not (path / METADATA_FILENAME).exists():
                        self._rebuild(session)
                    yield session
                    self._finish(session)
                finally:
                    self._local.index = None

    def _layout(self, index: QueueIndex) -> Layout:
        return "js" if index.meta("layout") == "js" else "python"

    def _finish(self, session: _Session) -> None:
        if session.changes:
            updated = session.metadata.model_copy(update={**session.changes, "accessed_at": session.now})
            updated._js_style = session.metadata._js_style
            self.write_metadata(session.folder, updated)
            session.metadata = updated
        if session.order_changed and session.layout == "python":
            self._maybe_write_state(session)

    # ----- Crawlee's state record --------------------------------------------------------------------

    def _maybe_write_state(self, session: _Session) -> None:
        total = session.metadata.total_request_count
        last = float(session.index.meta("state_written") or 0)
        if total <= STATE_RECORD_EVERY_CHANGE_UP_TO or time.time() - last >= STATE_RECORD_INTERVAL_SECONDS:
            self._write_state(session.metadata.id, session.index)
        else:
            session.index.set_meta("state_dirty", "1")
            self._schedule_state_flush(session.metadata.id)

    def _schedule_state_flush(self, queue_id: str) -> None:
        """Write the record of a large queue within the interval even if no further change comes to do it."""
        with self._timers_lock:
            if queue_id in self._timers:
                return
            timer = threading.Timer(STATE_RECORD_INTERVAL_SECONDS, self._flush_state_soon, (queue_id,))
            timer.daemon = True
            self._timers[queue_id] = timer
        timer.start()

    def flush_pending_states(self) -> None:
        """Write now the state records that a timer would write within the interval (at exit)."""
        with self._timers_lock:
            pending = list(self._timers.items())
            self._timers.clear()
        for queue_id, timer in pending:
            timer.cancel()
            self._flush_state_soon(queue_id)

    def _flush_state_soon(self, queue_id: str) -> None:
        with self._timers_lock:
            self._timers.pop(queue_id, None)
        try:
            self.flush_state(queue_id)
        except StorageBusy:
            self._schedule_state_flush(queue_id)  # writers are busy with it: they write the record as they go
        except Exception as exc:  # noqa: BLE001 - a background write must never raise; the next change retries
            log.warning("request_queue %s: state record not written (%s)", queue_id, exc)

    def _write_state(self, queue_id: str, index: QueueIndex) -> None:
        forefront, regular = index.pending_keys_in_head_order()
        state = {
            "sequence_counter": len(regular),
            "forefront_sequence_counter": len(forefront),
            # Crawlee takes forefront requests by sequence number descending, regular ones ascending.
            "forefront_requests": {key: len(forefront) - 1 - i for i, key in enumerate(forefront)},
            "regular_requests": {key: i for i, key in enumerate(regular)},
            "in_progress_requests": [],
            "handled_requests": index.handled_keys(),
        }
        write_rq_state_record(self.root, queue_id, state)
        index.set_meta("state_written", repr(time.time()))
        index.set_meta("state_dirty", None)

    def flush_state(self, ref: str | None = None) -> None:
        """Write Crawlee's state record of each queue (or of one) whose record is behind its index."""
        refs = [ref] if ref else [queue.id for queue in self.all_storages()]
        for queue_ref in refs:
            try:
                with self._session(queue_ref, None) as session:
                    if session.layout == "python" and session.index.meta("state_dirty"):
                        self._write_state(session.metadata.id, session.index)
            except RequestQueueNotFound:
                continue  # deleted meanwhile

    # ----- rebuilding the index from the files -------------------------------------------------------

    def _scan_files(self, path: Path) -> Iterator[tuple[str, FileRequest]]:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.endswith(".json") and entry.name != METADATA_FILENAME and entry.is_file():
                parsed = _read_request_file(Path(entry.path))
                if parsed is not None:
                    yield entry.name, parsed

    @staticmethod
    def _file_is_handled(parsed: FileRequest) -> bool:
        if parsed.layout == "js":
            return parsed.order_no is None
        return parsed.request.get("handledAt") is not None

    def _rebuild(self, session: _Session) -> None:
        """Index the folder's request files (another tool wrote them, or the index is new), keeping live locks.

        Order comes from Crawlee's ``__RQ_STATE_<id>`` record (Python layout) or ``orderNo`` (JS layout);
        requests the record does not know go last, in file-name order, as Crawlee itself does.
        """
        index = session.index
        old = {row.id: row for row in index.all_rows()}
        files = list(self._scan_files(session.path))
        layout: Layout = "js" if files and all(parsed.layout == "js" for _, parsed in files) else "python"
        state = read_rq_state_record(self.root, session.metadata.id) if layout == "python" else None
        forefront_seq = _int_map((state or {}).get("forefront_requests"))
        regular_seq = _int_map((state or {}).get("regular_requests"))
        index.clear()
        ranked: list[tuple[tuple[int, float, int], str, FileRequest]] = []
        for position, (name, parsed) in enumerate(files):
            key = parsed.request["uniqueKey"]
            if parsed.layout == "js":
                order = parsed.order_no if parsed.order_no is not None else 0.0
                rank = (0 if order < 0 else 1, order, position)
            elif key in forefront_seq:
                rank = (0, -forefront_seq[key], position)
            elif key in regular_seq:
                rank = (1, regular_seq[key], position)
            else:
                rank = (2, 0, position)
            ranked.append((rank, name, parsed))
        ranked.sort(key=lambda entry: entry[0])
        front = [entry for entry in ranked if entry[0][0] == 0]
        total = handled = 0
        for position, (rank, name, parsed) in enumerate(ranked):
            request = parsed.request
            is_handled = self._file_is_handled(parsed)
            if rank[0] == 0:
                sort_key = -(len(front) - position)  # keeps forefront first, in their order
            else:
                sort_key = position + 1
            previous = old.get(request["id"])
            lock_expires = lock_client = None
            if previous is not None and not is_handled and previous.locked_at(session.now_us):
                lock_expires, lock_client, sort_key = previous.lock_expires, previous.lock_client, previous.sort_key
            index.insert(
                request_id=request["id"],
                unique_key=request["uniqueKey"],
                file=name,
                url=request.get("url"),
                method=request.get("method"),
                retry_count=request.get("retryCount"),
                sort_key=sort_key,
                handled=is_handled,
                lock_expires=lock_expires,
                lock_client=lock_client,
            )
            total += 1
            handled += is_handled
        index.set_meta("layout", layout)
        session.layout = layout
        index.set_meta("last_regular", str(max(int(index.meta("last_regular") or 0), len(ranked) + 1)))
        index.set_meta("last_forefront", str(max(int(index.meta("last_forefront") or 0), len(ranked) + 1)))
        session.change(total_request_count=total, handled_request_count=handled, pending_request_count=total - handled)
        if layout == "js" and not (session.path / METADATA_FILENAME).exists():
            session.metadata.mark_js_style()  # write it as memory-storage does in debug mode

    # ----- queues ------------------------------------------------------------------------------------

    list_request_queues = StorageCollection.list_storages
    """List the caller's request queues (and those shared with it), oldest first, named ones unless ``unnamed``."""

    all_request_queues = StorageCollection.all_storages
    """Return every readable one of every owner, oldest first."""

    get_request_queue = StorageCollection.get
    """Return the queue named by ``ref`` (id, ``~name`` or ``username~name``) or raise ``RequestQueueNotFound``."""

    def get_or_create_request_queue(
        self, name: str | None = None, *, owner: Account | None = None
    ) -> tuple[RequestQueueMetadata, bool]:
        """Return ``(queue, created)``: the owner's queue of this name, created if it did not exist.

        Without a name, always create a new unnamed queue. Idempotent across threads and processes.
        """
        fields = {"total_request_count": 0, "handled_request_count": 0, "pending_request_count": 0}
        return self._get_or_create(name, owner, fields)

    def update_request_queue(
        self,
        ref: str,
        *,
        caller: Account | None = None,
        name: str | None = UNSET,
        general_access: str | None = None,
        title: str | None = UNSET,
    ) -> RequestQueueMetadata:
        """Rename a queue (``name=None`` makes it unnamed; its folder follows), or set access or title."""
        return self._update(ref, caller=caller, name=name, general_access=general_access, title=title, changes={})

    def delete_request_queue(self, ref: str, *, caller: Account | None = None) -> None:
        """Delete a queue and its folder (Crawlee's state record of it too)."""
        queue = self.get(ref, caller=caller)
        self._delete(ref, caller=caller)
        record = rq_state_record_path(self.root, queue.id)
        record.unlink(missing_ok=True)
        record.with_name(record.name + RECORD_METADATA_SUFFIX).unlink(missing_ok=True)

    # ----- clients -----------------------------------------------------------------------------------

    def _note_client(self, session: _Session, client_key: str | None) -> None:
        """Count a client; a call without ``clientKey`` is a new client each time (the platform's rule)."""
        key = client_key if client_key is not None else f"\x00anonymous-{secrets.token_hex(8)}"
        first = session.index.meta("first_client")
        if first is None:
            session.index.set_meta("first_client", key)
        elif first != key and not session.metadata.had_multiple_clients:
            session.change(had_multiple_clients=True)

    # ----- adding requests ---------------------------------------------------------------------------

    def add_request(
        self, ref: str, request: dict[str, Any], *, forefront: bool = False, client_key: str | None = None
    ) -> AddResult:
        """Add one request unless its ``uniqueKey`` is present; tell whether it was (and whether handled)."""
        return self.add_requests(ref, [request], forefront=forefront, client_key=client_key)[0]

    def add_requests(
        self,
        ref: str,
        requests: Sequence[dict[str, Any]],
        *,
        forefront: bool = False,
        client_key: str | None = None,
        batch_limit: int | None = MAX_BATCH_REQUESTS,
    ) -> list[AddResult]:
        """Add requests (at most 25 unless ``batch_limit`` says otherwise), all checked before any is written.

        A ``uniqueKey`` already present (or repeated in the batch) changes nothing and is reported present.
        """
        check_client_key(client_key)
        if batch_limit is not None and len(requests) > batch_limit:
            raise InvalidInput(f"The batch holds {len(requests)} requests; at most {batch_limit} are allowed")
        checked = [_checked_new_request(request, position) for position, request in enumerate(requests)]
        results: list[AddResult] = []
        with self._session(ref, None) as session:
            self._note_client(session, client_key)
            added = 0
            for request in checked:
                present = session.index.by_unique_key(request["uniqueKey"])
                if present is not None:
                    results.append(AddResult(present.id, present.unique_key, True, present.handled))
                    continue
                sort_key = session.index.next_key(session.now_us, forefront=forefront)
                self._write_request(session, request, sort_key=sort_key, handled=request.get("handledAt") is not None)
                handled = request.get("handledAt") is not None
                results.append(AddResult(request["id"], request["uniqueKey"], False, False))
                added += 1
                counts = session.counts()
                session.change(
                    total_request_count=counts["total_request_count"] + 1,
                    handled_request_count=counts["handled_request_count"] + handled,
                    pending_request_count=counts["pending_request_count"] + (not handled),
                    write_count=counts["write_count"] + 1,
                )
            if added:
                session.change(modified_at=session.now)
                session.order_changed = True
        return results

    def _write_request(
        self,
        session: _Session,
        request: dict[str, Any],
        *,
        sort_key: int,
        handled: bool,
        existing: IndexedRequest | None = None,
    ) -> None:
        """Write a request's file and its index row (files first: a crash leaves an orphan file, never a ghost)."""
        name = existing.file if existing is not None else request_file_name(request, session.layout)
        order_no = None if handled else sort_key / 1000
        atomic_write_text(session.path / name, encode_request_file(request, session.layout, order_no))
        columns: dict[str, Any] = {
            "url": request.get("url"),
            "method": request.get("method"),
            "retry_count": request.get("retryCount"),
            "sort_key": sort_key,
            "handled": handled,
            "lock_expires": None,
            "lock_client": None,
        }
        if existing is None:
            session.index.insert(request_id=request["id"], unique_key=request["uniqueKey"], file=name, **columns)
        else:
            session.index.update(existing.id, **columns)

    # ----- reading requests --------------------------------------------------------------------------

    def get_request(self, ref: str, request_id: str, *, caller: Account | None = None) -> dict[str, Any]:
        """Return a request as its client stored it, with ``id``; raise ``RequestNotFound`` if there is none."""
        with self._session(ref, caller) as session:
            row = session.index.by_id(request_id)
            if row is None:
                raise RequestNotFound(request_id)
            request = self._read_request(session, row)
        self._record_access(session.metadata.id, counted_read=True)
        return request

    def _read_request(self, session: _Session, row: IndexedRequest) -> dict[str, Any]:
        parsed = _read_request_file(session.path / row.file)
        if parsed is None:
            raise RequestQueueCorrupted(
                f"The request file {self.KIND_DIR}/{session.folder}/{row.file} is missing or unreadable; "
                "run `storage-emulator fsck --repair` to re-index the queue"
            )
        request: dict[str, Any] = parsed.request
        if row.locked_at(session.now_us) and row.lock_expires is not None:
            request = {**request, "lockExpiresAt": _from_micros(row.lock_expires)}
        return request

    def list_requests(
        self,
        ref: str,
        *,
        limit: int = 100,
        after: str | None = None,
        exclusive_start_id: str | None = None,
        only: str | None = None,
        caller: Account | None = None,
    ) -> RequestsPage:
        """Return a page of requests in insertion order, after the opaque cursor ``after`` (or an id).

        ``only`` is ``None`` (all), ``pending`` or ``locked``.
        """
        with self._session(ref, caller) as session:
            after_seq = 0
            if after is not None:
                after_seq = _decode_cursor(after)
            elif exclusive_start_id is not None:
                start = session.index.by_id(exclusive_start_id)
                if start is None:
                    raise InvalidParameter("exclusiveStartId", "must be the id of a request in the queue")
                after_seq = start.seq
            rows = session.index.page(after_seq, limit, only=only, now_us=session.now_us)
            items = [self._read_request(session, row) for row in rows]
        next_after = _encode_cursor(rows[-1].seq) if len(rows) == limit and rows else None
        return RequestsPage(items, limit, next_after)

    # ----- changing and deleting requests ------------------------------------------------------------

    def update_request(
        self,
        ref: str,
        request_id: str,
        request: dict[str, Any],
        *,
        forefront: bool = False,
        client_key: str | None = None,
    ) -> AddResult:
        """Replace (or add: an upsert) a request; with ``handledAt`` it is handled, else pending and re-placed.

        Either way its lock is released. ``was_already_handled`` is its state before. Refused while another
        client holds its lock.
        """
        check_client_key(client_key)
        request = _checked_new_request(request, None, path_id=request_id)
        handled = request.get("handledAt") is not None
        with self._session(ref, None) as session:
            self._note_client(session, client_key)
            existing = session.index.by_id(request_id)
            if existing is not None:
                self._check_not_locked_by_other(existing, client_key, session)
            if handled and existing is not None:
                sort_key = existing.sort_key  # out of the head: its place no longer matters
            else:  # a reclaim goes to the front with forefront, else to the end
                sort_key = session.index.next_key(session.now_us, forefront=forefront)
            self._write_request(session, request, sort_key=sort_key, handled=handled, existing=existing)
            counts = session.counts()
            was_handled = existing is not None and existing.handled
            total = counts["total_request_count"] + (existing is None)
            handled_count = counts["handled_request_count"] + int(handled) - int(was_handled)
            session.change(
                total_request_count=total,
                handled_request_count=handled_count,
                pending_request_count=total - handled_count,
                write_count=counts["write_count"] + 1,
                modified_at=session.now,
            )
            session.order_changed = True
        return AddResult(request_id, request["uniqueKey"], existing is not None, was_handled)

    def _check_not_locked_by_other(self, row: IndexedRequest, client_key: str | None, session: _Session) -> None:
        if row.locked_at(session.now_us) and row.lock_client != _holder(client_key):
            raise RequestLockConflict(f"Request {row.id} is locked by another client")

    def delete_request(self, ref: str, request_id: str, *, client_key: str | None = None) -> None:
        """Delete a request; raise ``RequestNotFound`` if there is none, refuse while another client locks it."""
        check_client_key(client_key)
        with self._session(ref, None) as session:
            self._note_client(session, client_key)
            row = session.index.by_id(request_id)
            if row is None:
                raise RequestNotFound(request_id)
            self._check_not_locked_by_other(row, client_key, session)
            self._remove(session, row)

    def _remove(self, session: _Session, row: IndexedRequest) -> None:
        (session.path / row.file).unlink(missing_ok=True)
        session.index.delete(row.id)
        counts = session.counts()
        session.change(
            total_request_count=counts["total_request_count"] - 1,
            handled_request_count=counts["handled_request_count"] - row.handled,
            pending_request_count=counts["pending_request_count"] - (not row.handled),
            delete_count=session.changes.get("delete_count", session.metadata.delete_count) + 1,
            modified_at=session.now,
        )
        session.order_changed = True

    def delete_requests(
        self, ref: str, references: Sequence[dict[str, Any]], *, client_key: str | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Delete up to 25 requests named by ``{"id"}`` or ``{"uniqueKey"}``; return (processed, unprocessed).

        An unknown request counts as processed (it is gone); one locked by another client is unprocessed.
        """
        check_client_key(client_key)
        if len(references) > MAX_BATCH_REQUESTS:
            raise InvalidInput(f"The batch holds {len(references)} requests; at most {MAX_BATCH_REQUESTS} are allowed")
        for position, reference in enumerate(references):
            if not isinstance(reference, dict) or not (
                isinstance(reference.get("id"), str) or isinstance(reference.get("uniqueKey"), str)
            ):
                raise InvalidInput(f"Request at index {position}: must be an object with a string 'id' or 'uniqueKey'")
        processed: list[dict[str, Any]] = []
        unprocessed: list[dict[str, Any]] = []
        with self._session(ref, None) as session:
            self._note_client(session, client_key)
            for reference in references:
                request_id = reference.get("id") or unique_key_to_request_id(reference["uniqueKey"])
                row = session.index.by_id(request_id)
                echo: dict[str, Any] = {key: reference[key] for key in ("id", "uniqueKey") if key in reference}
                if row is not None and row.locked_at(session.now_us) and row.lock_client != _holder(client_key):
                    unprocessed.append(echo)
                    continue
                if row is not None:
                    self._remove(session, row)
                processed.append(echo)
        return processed, unprocessed

    # ----- the head and locks ------------------------------------------------------------------------

    def get_head(self, ref: str, *, limit: int = 100, client_key: str | None = None, as_client: bool = True) -> Head:
        """Return up to ``limit`` requests a consumer could take next: pending, unlocked, in head order.

        ``as_client=False`` looks without counting as a client (the pages and the CLI do).
        """
        check_client_key(client_key)
        with self._session(ref, None) as session:
            if as_client:
                self._note_client(session, client_key)
            rows = session.index.head(session.now_us, limit)
            items = [HeadItem(row.id, row.unique_key, row.url, row.method, row.retry_count) for row in rows]
            has_locked = session.index.has_locked(session.now_us)
        return Head(session.metadata, limit, items, has_locked)

    def lock_head(
        self, ref: str, *, lock_secs: int, limit: int = MAX_LOCK_REQUESTS, client_key: str | None = None
    ) -> Head:
        """Lock up to ``limit`` head requests for ``lock_secs`` seconds for this client and return them."""
        check_client_key(client_key)
        check_lock_seconds(lock_secs)
        if not 1 <= limit <= MAX_LOCK_REQUESTS:
            raise InvalidParameter("limit", f"must be an integer ≥ 1 and ≤ {MAX_LOCK_REQUESTS}")
        with self._session(ref, None) as session:
            self._note_client(session, client_key)
            rows = session.index.head(session.now_us, limit)
            expires = session.now + timedelta(seconds=lock_secs)
            expires_us = _micros(expires)
            items = []
            for row in rows:
                sort_key = -expires_us if row.forefront else expires_us
                self._relock(session, row, lock_expires=expires_us, lock_client=_holder(client_key), sort_key=sort_key)
                items.append(HeadItem(row.id, row.unique_key, row.url, row.method, row.retry_count, expires))
            if rows:
                counts = session.counts()
                session.change(write_count=counts["write_count"] + len(rows), modified_at=session.now)
            has_locked = session.index.has_locked(session.now_us)
        return Head(session.metadata, limit, items, has_locked)

    def _relock(
        self,
        session: _Session,
        row: IndexedRequest,
        *,
        lock_expires: int | None,
        lock_client: str | None,
        sort_key: int,
    ) -> None:
        session.index.update(row.id, lock_expires=lock_expires, lock_client=lock_client, sort_key=sort_key)
        if session.layout == "js":  # memory-storage keeps the lock in the file's orderNo
            request = self._read_request(session, row)
            request.pop("lockExpiresAt", None)
            atomic_write_text(session.path / row.file, encode_request_file(request, "js", sort_key / 1000))
        session.order_changed = True

    def _held_row(self, session: _Session, request_id: str, client_key: str | None) -> IndexedRequest:
        row = session.index.by_id(request_id)
        if row is None:
            raise RequestNotFound(request_id)
        if row.handled:
            raise RequestLockConflict(f"Request {request_id} is already handled; it cannot be locked")
        if row.lock_client != _holder(client_key) or row.lock_expires is None:
            if row.locked_at(session.now_us):
                raise RequestLockConflict(f"Request {request_id} is locked by another client")
            raise RequestLockConflict(f"Request {request_id} is not locked by this client")
        return row

    def prolong_request_lock(
        self,
        ref: str,
        request_id: str,
        *,
        lock_secs: int,
        forefront: bool = False,
        client_key: str | None = None,
    ) -> datetime:
        """Extend this client's lock of a request to now + ``lock_secs``; return the new expiry."""
        check_client_key(client_key)
        check_lock_seconds(lock_secs)
        with self._session(ref, None) as session:
            self._note_client(session, client_key)
            row = self._held_row(session, request_id, client_key)
            expires = session.now + timedelta(seconds=lock_secs)
            expires_us = _micros(expires)
            self._relock(
                session,
                row,
                lock_expires=expires_us,
                lock_client=row.lock_client,
                sort_key=-expires_us if forefront else expires_us,
            )
            session.change(modified_at=session.now)
        return expires

    def delete_request_lock(
        self, ref: str, request_id: str, *, forefront: bool = False, client_key: str | None = None
    ) -> None:
        """Release this client's lock of a request: it is back in the head, at the front if ``forefront``."""
        check_client_key(client_key)
        with self._session(ref, None) as session:
            self._note_client(session, client_key)
            row = self._held_row(session, request_id, client_key)
            sort_key = session.index.next_key(session.now_us, forefront=forefront)
            self._relock(session, row, lock_expires=None, lock_client=None, sort_key=sort_key)
            session.change(modified_at=session.now)

    def unlock_requests(self, ref: str, *, client_key: str | None = None) -> int:
        """Release every lock this client holds in the queue; return how many there were."""
        check_client_key(client_key)
        with self._session(ref, None) as session:
            self._note_client(session, client_key)
            rows = session.index.locked_by(_holder(client_key), session.now_us)
            for row in rows:
                sort_key = session.index.next_key(session.now_us, forefront=row.forefront)
                self._relock(session, row, lock_expires=None, lock_client=None, sort_key=sort_key)
            if rows:
                session.change(modified_at=session.now)
        return len(rows)


# ----- helpers -----------------------------------------------------------------------------------------


def _flush_states_at_exit(ref: weakref.ref[RequestQueueRepository]) -> None:
    repo = ref()
    if repo is not None:
        repo.flush_pending_states()


def _holder(client_key: str | None) -> str:
    """Return who holds a lock taken with this ``clientKey`` (calls without one share the empty holder)."""
    return client_key or ""


def _stamp(metadata: RequestQueueMetadata) -> str:
    """Return what the index remembers of the metadata it matches; any other writer changes it."""
    return json.dumps(
        [
            metadata.modified_at.isoformat(),
            metadata.total_request_count,
            metadata.handled_request_count,
            metadata.pending_request_count,
        ]
    )


def _int_map(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {key: seq for key, seq in value.items() if isinstance(key, str) and isinstance(seq, int)}


def _read_request_file(path: Path) -> FileRequest | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    return parse_request_file(raw)


def _checked_new_request(request: Any, position: int | None, *, path_id: str | None = None) -> dict[str, Any]:
    """Check a request body (``uniqueKey`` and ``url`` strings; an ``id``, if any, matching) and add its ``id``."""
    where = "The request" if position is None else f"Request at index {position}"
    if not isinstance(request, dict):
        raise InvalidInput(f"{where} must be a JSON object")
    unique_key = request.get("uniqueKey")
    if not isinstance(unique_key, str) or not unique_key:
        raise InvalidInput(f"{where}: 'uniqueKey' is required and must be a non-empty string")
    if not isinstance(request.get("url"), str) or not request["url"]:
        raise InvalidInput(f"{where}: 'url' is required and must be a non-empty string")
    request_id = unique_key_to_request_id(unique_key)
    if path_id is not None and path_id != request_id:
        raise RequestIdInvalid(f"{where}: the id {path_id} does not match its uniqueKey (whose id is {request_id})")
    if "id" in request and request["id"] != request_id:
        raise RequestIdInvalid(f"{where}: 'id' {request['id']!r} does not match its uniqueKey (id {request_id})")
    for key in ("method", "loadedUrl", "handledAt"):
        if request.get(key) is not None and not isinstance(request[key], str):
            raise InvalidInput(f"{where}: '{key}' must be a string")
    if request.get("retryCount") is not None and (
        not isinstance(request["retryCount"], int) or isinstance(request["retryCount"], bool)
    ):
        raise InvalidInput(f"{where}: 'retryCount' must be an integer")
    body = {key: value for key, value in request.items() if key != "id"}
    return {"id": request_id, **body}


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"seq": seq}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        seq = data["seq"]
    except (ValueError, KeyError, TypeError):
        raise InvalidParameter("cursor", "must be a cursor returned as nextCursor") from None
    if not isinstance(seq, int) or seq < 0:
        raise InvalidParameter("cursor", "must be a cursor returned as nextCursor")
    return seq
