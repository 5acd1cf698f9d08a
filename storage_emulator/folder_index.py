"""An in-memory index of one storage kind's folder (``datasets/``, ...), kept true by one ``stat`` per storage.

Other processes (Crawlee, the CLI, a second server) change the folder behind our back, so nothing is
trusted without a ``stat``: a metadata file is parsed again only when its mtime, size or inode changed.
A folder (or its metadata file) that vanishes between the directory listing and the ``stat`` or the read
was deleted or renamed by someone else: it is simply not there, never an error.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import StorageCorrupted, StorageNotFound
from .models import METADATA_FILENAME, StorageMetadata

log = logging.getLogger(__name__)

StatKey = tuple[Any, ...]
M = TypeVar("M", bound=StorageMetadata)


@dataclass(frozen=True)
class _Entry(Generic[M]):
    key: StatKey
    metadata: M | None
    error: StorageCorrupted | None


@dataclass(frozen=True)
class Snapshot(Generic[M]):
    """Every readable storage at one moment, oldest first, and the index generation it belongs to."""

    generation: int
    listing: list[tuple[str, M]]
    """``(folder, metadata)`` pairs sorted by ``(created_at, id)``; shared between calls: do not modify."""


def stat_key(folder_path: str) -> StatKey | None:
    """Return what identifies the current state of a storage folder's metadata; ``None`` if the folder is gone."""
    try:
        st = os.stat(f"{folder_path}/{METADATA_FILENAME}")
        return ("meta", st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        pass
    try:
        # No metadata file (the JS tools often write none): the folder's mtime moves when items are added.
        st = os.stat(folder_path)
    except FileNotFoundError:
        return None  # deleted or renamed by another process since it was listed
    return ("folder", st.st_mtime_ns)


class FolderIndex(Generic[M]):
    """Folder -> metadata for every storage folder of one kind, with an id map and the listing order."""

    def __init__(self, kind_dir: str, load: Callable[[str], M]) -> None:
        self.kind_dir = kind_dir
        self._load = load
        self._entries: dict[str, _Entry[M]] = {}
        self._folder_by_id: dict[str, str] = {}
        self._order: list[str] | None = None
        """Readable folders sorted by ``(created_at, id)``; rebuilt only when membership or those change."""
        self._snapshot: Snapshot[M] | None = None
        self.generation = 0
        """Moves whenever the set or content of storages changed; derived caches compare it."""
        self._lock = threading.Lock()

    def scan(self) -> list[tuple[str, M]]:
        """Return ``(folder, metadata)`` of every readable storage, sorted by ``(created_at, id)``."""
        return self.snapshot().listing

    def snapshot(self) -> Snapshot[M]:
        """Look at the folder and return its storages with the generation they belong to, read together.

        One ``scandir`` and one ``stat`` per storage; broken folders are skipped and logged once, vanished
        ones dropped. The generation is read under the same lock as the listing it is returned with, so a
        cache keyed by it never pairs an old listing with a newer generation.
        """
        seen: list[tuple[str, str]] = []
        try:
            with os.scandir(self.kind_dir) as entries:
                for entry in entries:
                    # A symlink planted in the root could lead outside it: never follow one.
                    if entry.name[0] != "." and entry.is_dir(follow_symlinks=False):
                        seen.append((entry.name, entry.path))
        except FileNotFoundError:
            pass  # the whole kind folder was removed (a reset, by hand): it holds nothing
        with self._lock:
            known = self._entries
            present: set[str] = set()
            for folder, path in seen:
                key = stat_key(path)
                loaded = None if key is None else self._fresh_entry(folder, key)
                if loaded is None:
                    continue  # vanished under us: another process deleted or renamed it
                present.add(folder)
            if len(known) != len(present):
                for gone in [folder for folder in known if folder not in present]:
                    self._forget(gone)
            if self._snapshot is not None and self._snapshot.generation == self.generation:
                return self._snapshot
            if self._order is None:
                valid = [(folder, e.metadata) for folder, e in known.items() if e.metadata is not None]
                valid.sort(key=lambda pair: (pair[1].created_at, pair[1].id))
                self._order = [folder for folder, _ in valid]
            listing = [(folder, meta) for folder in self._order if (meta := known[folder].metadata) is not None]
            self._snapshot = Snapshot(self.generation, listing)
            return self._snapshot

    def _fresh_entry(self, folder: str, key: StatKey) -> _Entry[M] | None:
        """Return the folder's entry for this state, loading it if it changed; ``None`` if it vanished."""
        cached = self._entries.get(folder)
        if cached is not None and cached.key == key:
            return cached
        entry = self._load_entry(folder, key)
        if entry is None:
            self._forget(folder)
            return None
        self._store(folder, entry)
        return entry

    def get(self, folder: str) -> M | None:
        """Return one folder's metadata (one ``stat`` when unchanged); ``None`` if there is no such folder.

        Raises ``StorageCorrupted`` for a folder whose metadata cannot be read.
        """
        key = stat_key(os.path.join(self.kind_dir, folder))
        with self._lock:
            entry = None if key is None else self._fresh_entry(folder, key)
            if entry is None:
                self._forget(folder)
                return None
        if entry.metadata is None:
            error = entry.error or StorageCorrupted(f"storage folder {folder} is unreadable")
            raise type(error)(error.message)  # the kind's own error type, a fresh one per request
        return entry.metadata

    def remember(self, folder: str, metadata: M) -> None:
        """Record metadata we just wrote, so the next request does not parse the file again."""
        key = stat_key(os.path.join(self.kind_dir, folder))
        if key is None:
            return  # removed by someone else right after our write: the next scan sees that
        with self._lock:
            self._store(folder, _Entry(key, metadata, None))

    def refine(self, folder: str, seen: M, derived: M) -> None:
        """Replace metadata with a version derived from it in memory, if the file has not changed since."""
        with self._lock:
            entry = self._entries.get(folder)
            if entry is not None and entry.metadata is seen:
                self._store(folder, _Entry(entry.key, derived, None))

    def forget(self, folder: str) -> None:
        """Drop a folder that was moved or deleted."""
        with self._lock:
            self._forget(folder)

    def folder_of(self, storage_id: str) -> str | None:
        """Return the folder last seen holding this id (no I/O; callers verify)."""
        return self._folder_by_id.get(storage_id)

    def known(self) -> list[tuple[str, M]]:
        """Return every storage seen so far, unsorted and without I/O; scan first if nothing was seen."""
        with self._lock:
            if self._entries:
                return [(folder, e.metadata) for folder, e in self._entries.items() if e.metadata is not None]
        return self.scan()

    def _load_entry(self, folder: str, key: StatKey) -> _Entry[M] | None:
        try:
            return _Entry(key, self._load(folder), None)
        except StorageNotFound:
            return None  # deleted or renamed between the stat and the read
        except StorageCorrupted as exc:
            log.warning("skipping storage folder %s/%s: %s", os.path.basename(self.kind_dir), folder, exc.message)
            return _Entry(key, None, exc)

    def _store(self, folder: str, entry: _Entry[M]) -> None:
        previous = self._entries.get(folder)
        if previous is not None and previous.metadata is not None:
            self._folder_by_id.pop(previous.metadata.id, None)
        self._entries[folder] = entry
        if entry.metadata is not None:
            self._folder_by_id[entry.metadata.id] = folder
        if _sort_key(previous) != _sort_key(entry):  # a push or a read leaves the order as it was
            self._order = None
        self.generation += 1

    def _forget(self, folder: str) -> None:
        entry = self._entries.pop(folder, None)
        if entry is not None and entry.metadata is not None:
            if self._folder_by_id.get(entry.metadata.id) == folder:
                del self._folder_by_id[entry.metadata.id]
        self._order = None
        self.generation += 1


def _sort_key(entry: _Entry[Any] | None) -> tuple[Any, ...] | None:
    if entry is None or entry.metadata is None:
        return None
    return (entry.metadata.created_at, entry.metadata.id)
