"""An in-memory index of a ``datasets/`` folder, kept true by one ``stat`` per dataset.

Other processes (Crawlee, the CLI, a second server) change the folder behind our back, so nothing is
trusted without a ``stat``: a metadata file is parsed again only when its mtime, size or inode changed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import DatasetCorrupted
from .models import METADATA_FILENAME, DatasetMetadata

log = logging.getLogger(__name__)

StatKey = tuple[Any, ...]


@dataclass(frozen=True)
class _Entry:
    key: StatKey
    metadata: DatasetMetadata | None
    error: str | None


def stat_key(folder_path: str) -> StatKey:
    """Return what identifies the current state of a dataset folder's metadata."""
    try:
        st = os.stat(f"{folder_path}/{METADATA_FILENAME}")
        return ("meta", st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        # No metadata file (the JS tools often write none): the folder's mtime moves when items are added.
        st = os.stat(folder_path)
        return ("folder", st.st_mtime_ns)


class DatasetIndex:
    """Folder -> metadata for every dataset folder, with an id map and the listing order."""

    def __init__(self, datasets_dir: str, load: Callable[[str], DatasetMetadata]) -> None:
        self.datasets_dir = datasets_dir
        self._load = load
        self._entries: dict[str, _Entry] = {}
        self._folder_by_id: dict[str, str] = {}
        self._order: list[str] | None = None
        """Readable folders sorted by ``(created_at, id)``; rebuilt only when membership or those change."""
        self._listing: tuple[int, list[tuple[str, DatasetMetadata]]] | None = None
        self.generation = 0
        """Moves whenever the set or content of datasets changed; derived caches compare it."""
        self._lock = threading.Lock()

    def scan(self) -> list[tuple[str, DatasetMetadata]]:
        """Return ``(folder, metadata)`` of every readable dataset, sorted by ``(created_at, id)``.

        One ``scandir`` and one ``stat`` per dataset; broken folders are skipped and logged once. The list
        returned is shared between calls while nothing changes: callers must not modify it.
        """
        seen: list[tuple[str, str]] = []
        with os.scandir(self.datasets_dir) as entries:
            for entry in entries:
                # A symlink planted in the root could lead outside it: never follow one.
                if entry.name[0] != "." and entry.is_dir(follow_symlinks=False):
                    seen.append((entry.name, entry.path))
        with self._lock:
            known = self._entries
            for folder, path in seen:
                key = stat_key(path)
                cached = known.get(folder)
                if cached is None or cached.key != key:
                    self._store(folder, self._load_entry(folder, key))
            if len(known) != len(seen):
                names = {folder for folder, _ in seen}
                for gone in [folder for folder in known if folder not in names]:
                    self._forget(gone)
            if self._listing is not None and self._listing[0] == self.generation:
                return self._listing[1]
            if self._order is None:
                valid = [(folder, e.metadata) for folder, e in known.items() if e.metadata is not None]
                valid.sort(key=lambda pair: (pair[1].created_at, pair[1].id))
                self._order = [folder for folder, _ in valid]
            listing = [(folder, meta) for folder in self._order if (meta := known[folder].metadata) is not None]
            self._listing = (self.generation, listing)
            return listing

    def get(self, folder: str) -> DatasetMetadata:
        """Return one folder's metadata (one ``stat`` when unchanged), or raise ``DatasetCorrupted``."""
        key = stat_key(os.path.join(self.datasets_dir, folder))
        with self._lock:
            cached = self._entries.get(folder)
            if cached is None or cached.key != key:
                cached = self._load_entry(folder, key)
                self._store(folder, cached)
        if cached.metadata is None:
            raise DatasetCorrupted(cached.error or f"dataset folder {folder} is unreadable")
        return cached.metadata

    def remember(self, folder: str, metadata: DatasetMetadata) -> None:
        """Record metadata we just wrote, so the next request does not parse the file again."""
        key = stat_key(os.path.join(self.datasets_dir, folder))
        with self._lock:
            self._store(folder, _Entry(key, metadata, None))

    def refine(self, folder: str, seen: DatasetMetadata, derived: DatasetMetadata) -> None:
        """Replace metadata with a version derived from it in memory, if the file has not changed since."""
        with self._lock:
            entry = self._entries.get(folder)
            if entry is not None and entry.metadata is seen:
                self._store(folder, _Entry(entry.key, derived, None))

    def forget(self, folder: str) -> None:
        """Drop a folder that was moved or deleted."""
        with self._lock:
            self._forget(folder)

    def folder_of(self, dataset_id: str) -> str | None:
        """Return the folder last seen holding this id (no I/O; callers verify)."""
        return self._folder_by_id.get(dataset_id)

    def known(self) -> list[tuple[str, DatasetMetadata]]:
        """Return every dataset seen so far, unsorted and without I/O; scan first if nothing was seen."""
        with self._lock:
            if self._entries:
                return [(folder, e.metadata) for folder, e in self._entries.items() if e.metadata is not None]
        return self.scan()

    def _load_entry(self, folder: str, key: StatKey) -> _Entry:
        try:
            return _Entry(key, self._load(folder), None)
        except DatasetCorrupted as exc:
            log.warning("skipping dataset folder %s: %s", folder, exc.message)
            return _Entry(key, None, exc.message)

    def _store(self, folder: str, entry: _Entry) -> None:
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


def _sort_key(entry: _Entry | None) -> tuple[Any, ...] | None:
    if entry is None or entry.metadata is None:
        return None
    return (entry.metadata.created_at, entry.metadata.id)
