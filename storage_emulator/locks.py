"""Cross-process locks of a storage root: one lock file per storage (or name), with a bounded wait.

Every read-modify-write holds one, so the server, the repository API and the CLI can write one root at
once. The wait is short and bounded: a lock held longer than that (a stuck or very slow writer) is
reported as ``StorageBusy`` (503 with ``Retry-After``, which clients retry) instead of a request that
hangs for a minute and then fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import StorageBusy
from .naming import lock_key

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 10.0
"""How long a writer waits for a lock before giving up with ``StorageBusy``."""
LOCK_POLL_SECONDS = 0.05
"""How often a waiting writer retries a busy lock (filelock polls; it has no blocking wait with a timeout)."""


class StorageLocks:
    """The lock files under ``<root>/.storage-emulator/locks``."""

    def __init__(
        self, locks_dir: Path, *, wait_seconds: float = LOCK_WAIT_SECONDS, poll_seconds: float = LOCK_POLL_SECONDS
    ) -> None:
        self.locks_dir = locks_dir
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        locks_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, scope: str, key: str) -> Path:
        """Return the lock file of ``key`` in ``scope`` (e.g. ``dataset`` by id, ``dataset-name`` by folder)."""
        return self.locks_dir / f"{scope}-{lock_key(key)}.lock"

    @contextmanager
    def hold(self, scope: str, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` in ``scope``, or raise ``StorageBusy`` after the bounded wait."""
        lock = FileLock(self.path_for(scope, key), timeout=self.wait_seconds)
        try:
            lock.acquire(poll_interval=self.poll_seconds)
        except Timeout:
            log.warning("lock %s-%s not free after %.1f s: answered busy", scope, key, self.wait_seconds)
            raise StorageBusy(
                f"The storage is locked by another writer (waited {self.wait_seconds:g} s); retry shortly"
            ) from None
        try:
            yield
        finally:
            lock.release()
