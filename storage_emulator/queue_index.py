"""The emulator's index of one request queue: order, locks and handled state in one SQLite file.

The request files hold what clients stored (in Crawlee's layout); this index holds what only a server
knows and what a head read must find without listing the folder: each request's place in the head, its
lock (holder and expiry) and whether it is handled. SQLite makes every change of it atomic, so a process
killed mid-write leaves the index as it was before that change (its journal is rolled back on the next
open), and a head read is an indexed query that costs O(page) whatever the queue's size.

Every connection is used under the queue's cross-process file lock, so SQLite's own locking never waits.

Order: ``sort_key`` ascending (then insertion order). Regular requests get ``+t`` and forefront ones
``-t`` (microseconds of the repository's clock, strictly increasing per side), so forefront requests
come first, newest first, then the rest oldest first. A locked request's key is its lock expiry with its
side's sign, as memory-storage does: once the lock lapses it is back, at the front of the forefront side
or at the end of the regular side, with nothing to do at expiry time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "2"
_LOCK_EXPIRY_INDEX = "CREATE INDEX IF NOT EXISTS lock_expiry ON requests (lock_expires) WHERE lock_expires IS NOT NULL"
"""Finds the live locks (``queueHasLockedRequests``, unlock) without scanning every pending request."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    unique_key TEXT NOT NULL UNIQUE,
    file TEXT NOT NULL,
    url TEXT,
    method TEXT,
    retry_count INTEGER,
    sort_key INTEGER NOT NULL,
    handled INTEGER NOT NULL DEFAULT 0,
    lock_expires INTEGER,
    lock_client TEXT
);
CREATE INDEX IF NOT EXISTS head_order ON requests (handled, sort_key, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

_COLUMNS = "seq, id, unique_key, file, url, method, retry_count, sort_key, handled, lock_expires, lock_client"


@dataclass(frozen=True)
class IndexedRequest:
    """One request's row in the index."""

    seq: int
    id: str
    unique_key: str
    file: str
    url: str | None
    method: str | None
    retry_count: int | None
    sort_key: int
    handled: bool
    lock_expires: int | None
    """Lock expiry in microseconds since the epoch; the lock holds while it is in the future."""
    lock_client: str | None

    def locked_at(self, now_us: int) -> bool:
        """Tell whether the request is locked at ``now_us``."""
        return not self.handled and self.lock_expires is not None and self.lock_expires > now_us

    @property
    def forefront(self) -> bool:
        """Tell whether the request sits on the forefront side of the head."""
        return self.sort_key < 0


def _row(values: tuple[Any, ...]) -> IndexedRequest:
    seq, request_id, unique_key, file, url, method, retry_count, sort_key, handled, lock_expires, client = values
    return IndexedRequest(
        seq, request_id, unique_key, file, url, method, retry_count, sort_key, bool(handled), lock_expires, client
    )


class QueueIndex:
    """An open index, inside one transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection

    # ----- meta ---------------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        """Return a meta value, or ``None``."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str | None) -> None:
        """Set (or with ``None`` remove) a meta value."""
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_key(self, now_us: int, *, forefront: bool) -> int:
        """Return the next head position on a side: after every regular one, or before every forefront one."""
        name = "last_forefront" if forefront else "last_regular"
        last = int(self.meta(name) or 0)
        value = max(now_us, last + 1)
        self.set_meta(name, str(value))
        return -value if forefront else value

    # ----- rows ---------------------------------------------------------------------------------------

    def by_id(self, request_id: str) -> IndexedRequest | None:
        """Return the request with this id, or ``None``."""
        row = self.db.execute(f"SELECT {_COLUMNS} FROM requests WHERE id = ?", (request_id,)).fetchone()
        return None if row is None else _row(row)

    def by_unique_key(self, unique_key: str) -> IndexedRequest | None:
        """Return the request with this ``uniqueKey``, or ``None``."""
        row = self.db.execute(f"SELECT {_COLUMNS} FROM requests WHERE unique_key = ?", (unique_key,)).fetchone()
        return None if row is None else _row(row)

    def insert(
        self,
        *,
        request_id: str,
        unique_key: str,
        file: str,
        url: str | None,
        method: str | None,
        retry_count: int | None,
        sort_key: int,
        handled: bool,
        lock_expires: int | None = None,
        lock_client: str | None = None,
    ) -> None:
        """Add a request."""
        self.db.execute(
            "INSERT INTO requests (id, unique_key, file, url, method, retry_count, sort_key, handled, lock_expires,"
            " lock_client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (request_id, unique_key, file, url, method, retry_count, sort_key, int(handled), lock_expires, lock_client),
        )

    def update(self, request_id: str, **columns: Any) -> None:
        """Change some columns of a request."""
        if "handled" in columns:
            columns["handled"] = int(columns["handled"])
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.db.execute(f"UPDATE requests SET {assignments} WHERE id = ?", (*columns.values(), request_id))

    def delete(self, request_id: str) -> None:
        """Remove a request."""
        self.db.execute("DELETE FROM requests WHERE id = ?", (request_id,))

    def head(self, now_us: int, limit: int) -> list[IndexedRequest]:
        """Return up to ``limit`` pending, unlocked requests in head order (an index range scan)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM requests WHERE handled = 0 AND (lock_expires IS NULL OR lock_expires <= ?)"
            " ORDER BY sort_key, seq LIMIT ?",
            (now_us, limit),
        )
        return [_row(row) for row in rows]

    def has_locked(self, now_us: int) -> bool:
        """Tell whether any pending request is locked at ``now_us``."""
        row = self.db.execute(
            "SELECT 1 FROM requests INDEXED BY lock_expiry WHERE lock_expires > ? AND handled = 0 LIMIT 1", (now_us,)
        ).fetchone()
        return row is not None

    def locked_by(self, client: str, now_us: int) -> list[IndexedRequest]:
        """Return the pending requests ``client`` holds locks of at ``now_us``."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM requests INDEXED BY lock_expiry"
            " WHERE lock_expires > ? AND handled = 0 AND lock_client = ?",
            (now_us, client),
        )
        return [_row(row) for row in rows]

    def page(self, after_seq: int, limit: int, *, only: str | None, now_us: int) -> list[IndexedRequest]:
        """Return up to ``limit`` requests after ``after_seq`` in insertion order: all, ``pending`` or ``locked``."""
        condition = {None: "", "pending": " AND handled = 0", "locked": " AND handled = 0 AND lock_expires > ?"}[only]
        params: tuple[Any, ...] = (after_seq, now_us, limit) if only == "locked" else (after_seq, limit)
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM requests WHERE seq > ?{condition} ORDER BY seq LIMIT ?", params)
        return [_row(row) for row in rows]

    def counts(self) -> tuple[int, int]:
        """Return ``(total, handled)``."""
        total, handled = self.db.execute("SELECT COUNT(*), COALESCE(SUM(handled), 0) FROM requests").fetchone()
        return int(total), int(handled)

    def pending_keys_in_head_order(self) -> tuple[list[str], list[str]]:
        """Return the ``uniqueKey`` of every pending request in head order: (forefront side, regular side)."""
        forefront: list[str] = []
        regular: list[str] = []
        for key, sort_key in self.db.execute(
            "SELECT unique_key, sort_key FROM requests WHERE handled = 0 ORDER BY sort_key, seq"
        ):
            (forefront if sort_key < 0 else regular).append(key)
        return forefront, regular

    def handled_keys(self) -> list[str]:
        """Return the ``uniqueKey`` of every handled request."""
        return [row[0] for row in self.db.execute("SELECT unique_key FROM requests WHERE handled = 1 ORDER BY seq")]

    def all_rows(self) -> Iterable[IndexedRequest]:
        """Return every request, in insertion order."""
        return [_row(row) for row in self.db.execute(f"SELECT {_COLUMNS} FROM requests ORDER BY seq")]

    def clear(self) -> None:
        """Remove every request (before a rebuild)."""
        self.db.execute("DELETE FROM requests")


@contextmanager
def open_index(path: Path) -> Iterator[QueueIndex]:
    """Open (creating if needed) the index at ``path`` and run one transaction: committed unless it raises.

    ``synchronous=OFF``: the journal still makes each transaction atomic against a killed process; only a
    power cut could lose the last changes, which an emulator can afford for its speed. The journal is kept
    between transactions (``journal_mode=PERSIST``, ``.queue-index.sqlite3-journal``) rather than created
    and deleted by each one.
    """
    connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    try:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA journal_mode = PERSIST")  # reuse the journal file: creating one per change is slow
        connection.execute("BEGIN IMMEDIATE")
        if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            for statement in [*_SCHEMA.split(";"), _LOCK_EXPIRY_INDEX]:
                if statement.strip():
                    connection.execute(statement)  # inside the transaction: executescript would commit
            connection.execute("INSERT INTO meta (key, value) VALUES ('version', ?)", (SCHEMA_VERSION,))
        elif connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0] != SCHEMA_VERSION:
            connection.execute(_LOCK_EXPIRY_INDEX)  # an index of version 1: add what version 2 has
            connection.execute("UPDATE meta SET value = ? WHERE key = 'version'", (SCHEMA_VERSION,))
        try:
            yield QueueIndex(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    finally:
        connection.close()
