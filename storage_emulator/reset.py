"""Empty a storage root of its storages, keeping its accounts: what ``POST /_emulator/reset`` does.

Each entry of a storage kind's folder is first renamed into a scratch folder under ``.storage-emulator/``
(so a listing never sees half-deleted storages) and then deleted; symlinks are removed as links, never
followed. The accounts file and the lock files stay.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .models import EMULATOR_DIR
from .storage_collection import StorageCollection

log = logging.getLogger(__name__)

STORAGE_KIND_DIRS = ("datasets", "key_value_stores", "request_queues")
"""The root's folder of each storage kind (request queues are emptied too)."""


def reset_root(root: Path) -> dict[str, int]:
    """Remove every storage of every kind under ``root``; return how many were removed per kind."""
    scratch = root / EMULATOR_DIR / f"reset-{secrets.token_hex(8)}"
    removed: dict[str, int] = {}
    for kind in STORAGE_KIND_DIRS:
        folder = root / kind
        removed[kind] = 0
        if folder.is_symlink() or not folder.is_dir():
            continue  # a symlinked kind folder leads outside the root: leave what it points at alone
        target = scratch / kind
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries]
        for name in names:
            target.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(folder / name, target / name)
            except FileNotFoundError:
                continue  # deleted meanwhile
            removed[kind] += 1
    if scratch.exists():
        shutil.rmtree(scratch, ignore_errors=True)  # rmtree removes symlinks as links
        if scratch.exists():
            log.warning("reset could not remove all of %s; delete it by hand", scratch)
    return removed


def reset_storages(kinds: Sequence[StorageCollection[Any]]) -> dict[str, int]:
    """Empty the root of these repositories and drop what they hold in memory about the removed storages."""
    removed = reset_root(kinds[0].root)
    for kind in kinds:
        for storage_id in kind.reads.pending_ids():
            kind.reads.take(storage_id)  # their reads have nothing left to be written to
        kind.index.scan()  # forgets the vanished folders
    return removed
