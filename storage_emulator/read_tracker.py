"""Read counters (``accessedAt``, ``stats.readCount``) kept in memory and written at most once a second.

Writing the metadata file on every read would make each read take the dataset's lock, wait behind
pushes, and cost a rewrite plus a re-parse; the real service throttles these counters too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from .models import StorageMetadata

FLUSH_INTERVAL_SECONDS = 1.0
M = TypeVar("M", bound=StorageMetadata)


@dataclass
class _Pending:
    reads: int
    accessed_at: datetime
    flushed_at: float


class ReadTracker:
    """Reads not yet written to the metadata files, per dataset id."""

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}
        self._last_flush: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, dataset_id: str, when: datetime, *, item_read: bool) -> bool:
        """Count one access (an item read adds to ``readCount``); return whether it is time to write them."""
        now = time.monotonic()
        with self._lock:
            pending = self._pending.get(dataset_id)
            if pending is None:
                pending = _Pending(0, when, self._last_flush.get(dataset_id, 0.0))
                self._pending[dataset_id] = pending
            pending.reads += int(item_read)
            pending.accessed_at = max(pending.accessed_at, when)
            return now - pending.flushed_at >= FLUSH_INTERVAL_SECONDS

    def take(self, dataset_id: str) -> tuple[int, datetime] | None:
        """Remove and return the pending ``(reads, accessed_at)`` of a dataset, to be written now."""
        with self._lock:
            pending = self._pending.pop(dataset_id, None)
            self._last_flush[dataset_id] = time.monotonic()
        return None if pending is None else (pending.reads, pending.accessed_at)

    def restore(self, dataset_id: str, reads: int, accessed_at: datetime) -> None:
        """Put back counts that ``take`` returned but that could not be written, for the next flush."""
        with self._lock:
            pending = self._pending.get(dataset_id)
            if pending is None:
                self._pending[dataset_id] = _Pending(reads, accessed_at, self._last_flush.get(dataset_id, 0.0))
            else:
                pending.reads += reads
                pending.accessed_at = max(pending.accessed_at, accessed_at)

    def pending_ids(self) -> list[str]:
        """Return the ids of datasets with reads not yet written."""
        with self._lock:
            return list(self._pending)

    def merged(self, dataset: M) -> M:
        """Return the dataset as it will be once its pending reads are written."""
        pending = self._pending.get(dataset.id)
        if pending is None:
            return dataset
        return dataset.model_copy(
            update={
                "read_count": dataset.read_count + pending.reads,
                "accessed_at": max(dataset.accessed_at, pending.accessed_at),
            }
        )
