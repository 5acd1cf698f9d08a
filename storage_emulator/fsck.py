"""Check a whole storage root and, on request, repair what can be repaired."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetCorrupted
from .item_store import ItemStore
from .models import METADATA_FILENAME, DatasetMetadata
from .repository import DatasetRepository

LEFTOVER_PREFIXES = (".creating-", ".deleting-")


@dataclass(frozen=True)
class Finding:
    """One problem found in one dataset folder, and whether it was repaired."""

    folder: str
    problem: str
    repaired: bool = False


def check_root(repo: DatasetRepository, *, repair: bool = False) -> list[Finding]:
    """Check every dataset folder of the root; with ``repair``, fix each problem found."""
    findings: list[Finding] = []
    for entry in sorted(os.scandir(repo.datasets_dir), key=lambda e: e.name):
        if entry.name.startswith(LEFTOVER_PREFIXES) and entry.is_dir(follow_symlinks=False):
            findings.append(_leftover(Path(entry.path), repair))
        elif not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
            findings.extend(_check_folder(repo, entry.name, repair))
    return findings


def _leftover(path: Path, repair: bool) -> Finding:
    if repair:
        shutil.rmtree(path, ignore_errors=True)
    return Finding(path.name, "leftover of an interrupted create or delete", repaired=repair)


def _check_folder(repo: DatasetRepository, folder: str, repair: bool) -> list[Finding]:
    path = repo.datasets_dir / folder
    findings = [_stray_temp_file(tmp, folder, repair) for tmp in path.glob(".*.tmp")]
    metadata_path = path / METADATA_FILENAME
    try:
        dataset = repo.read_metadata(folder)
    except DatasetCorrupted as exc:
        findings.append(Finding(folder, exc.message, repaired=repair))
        if repair:
            _rebuild_metadata(repo, folder, metadata_path)
        return findings
    if not metadata_path.exists():
        return findings  # a valid layout (the JS tools write none); its item count comes from the files
    findings.extend(_check_items(repo, folder, dataset, repair))
    return findings


def _stray_temp_file(tmp: Path, folder: str, repair: bool) -> Finding:
    if repair:
        tmp.unlink(missing_ok=True)
    return Finding(folder, f"stray temp file {tmp.name} of an interrupted write", repaired=repair)


def _rebuild_metadata(repo: DatasetRepository, folder: str, metadata_path: Path) -> None:
    """Keep the broken file aside and write metadata rebuilt from the folder (name, item files)."""
    os.replace(metadata_path, metadata_path.with_name(f".{METADATA_FILENAME}.broken"))
    dataset = repo.synthesize_metadata(folder)
    with repo.locked("dataset", dataset.id):
        repo.write_metadata(folder, repo.reconcile(folder, dataset))


def _check_items(repo: DatasetRepository, folder: str, dataset: DatasetMetadata, repair: bool) -> list[Finding]:
    store = ItemStore(repo.datasets_dir / folder)
    findings = []
    if store.path_for(dataset.item_count + 1).exists():
        findings.append(Finding(folder, f"item files past item_count {dataset.item_count}", repaired=repair))
        if repair:
            with repo.locked("dataset", dataset.id):
                repo.write_metadata(folder, repo.reconcile(folder, repo.read_metadata(folder)))
    missing = [i for i in range(1, dataset.item_count + 1) if not store.path_for(i).exists()]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        findings.append(Finding(folder, f"{len(missing)} item file(s) missing: {shown}"))
    return findings
