"""Repair a damaged storage root: ``repo.check()`` reports without touching, ``repair=True`` fixes; the CLI's exits."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from storage_emulator import DatasetRepository
from storage_emulator.errors import DatasetCorrupted
from storage_emulator.storage_collection import STALE_STAGING_SECONDS, Finding

CLI_TIMEOUT_SECONDS = 60


def tree_digest(folder: Path) -> str:
    """Hash every file and folder name (and file bytes) under a folder, to prove it did not change."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def make_dataset(repo: DatasetRepository, name: str, count: int) -> str:
    """Create a named dataset holding ``count`` items ``{"i": 1..count}``; return its id."""
    dataset, _ = repo.get_or_create_dataset(name=name)
    if count:
        repo.push_items(dataset.id, [{"i": i} for i in range(1, count + 1)])
    return dataset.id


def metadata(repo: DatasetRepository, folder: str) -> dict[str, Any]:
    """Read a dataset folder's ``__metadata__.json`` from disk."""
    return json.loads((repo.datasets_dir / folder / "__metadata__.json").read_text())  # type: ignore[no-any-return]


def read_all(repo: DatasetRepository, ref: str) -> list[dict[str, Any]]:
    """Read every item of a dataset through the repository API."""
    return list(repo.read_items(ref, count_read=False).items())


def item_path(repo: DatasetRepository, folder: str, index: int) -> Path:
    """Return the path of item ``index`` of a folder."""
    return repo.datasets_dir / folder / f"{index:09d}.json"


def run_fsck(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m storage_emulator --root ROOT fsck ARGS`` as a real process."""
    env = {key: value for key, value in os.environ.items() if key != "STORAGE_EMULATOR_ROOT"}
    return subprocess.run(
        [sys.executable, "-m", "storage_emulator", "--root", str(root), "fsck", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def damage_repairably(repo: DatasetRepository) -> None:
    """Build every repairable kind of damage on disk, next to one healthy dataset."""
    make_dataset(repo, "healthy", 2)
    # Truncated metadata of a dataset with 3 items.
    make_dataset(repo, "truncated", 3)
    meta = repo.datasets_dir / "truncated" / "__metadata__.json"
    meta.write_bytes(meta.read_bytes()[:40])
    # Empty metadata of a dataset with 2 items.
    make_dataset(repo, "emptied", 2)
    (repo.datasets_dir / "emptied" / "__metadata__.json").write_bytes(b"")
    # Two complete item files past item_count 2 (a crashed push, another tool).
    make_dataset(repo, "orphans", 2)
    item_path(repo, "orphans", 3).write_text('{"i": 3}')
    item_path(repo, "orphans", 4).write_text('{"i": 4}')
    # A partially written item file past item_count 2.
    make_dataset(repo, "partial", 2)
    item_path(repo, "partial", 3).write_text('{"i": 3, "half": "writ')
    # Stray temp files of interrupted atomic writes.
    make_dataset(repo, "tidy", 1)
    (repo.datasets_dir / "tidy" / ".__metadata__.json.0a1b2c3d.tmp").write_text('{"id": "half')
    (repo.datasets_dir / "tidy" / ".000000002.json.deadbeef.tmp").write_text("{")
    # Leftovers of an interrupted create and an interrupted delete.
    creating = repo.datasets_dir / ".creating-AbCdEfGhIjKlMnOpQ"
    creating.mkdir()
    (creating / "__metadata__.json").write_text('{"id": "AbCdEfGhIjKlMnOpQ"}')
    age_past_staging_grace(creating)
    deleting = repo.datasets_dir / ".deleting-old-0badf00d"
    deleting.mkdir()
    (deleting / "000000001.json").write_text('{"gone": true}')


def age_past_staging_grace(path: Path) -> None:
    """Make a staging folder look abandoned: younger ones may belong to a create in progress."""
    old = time.time() - STALE_STAGING_SECONDS - 1
    os.utime(path, (old, old))


def damage_unrepairably(repo: DatasetRepository) -> None:
    """Delete item files 2 and 4 of a dataset of 5: nothing can bring them back."""
    make_dataset(repo, "holes", 5)
    item_path(repo, "holes", 2).unlink()
    item_path(repo, "holes", 4).unlink()


def by_folder(findings: list[Finding]) -> dict[str, list[Finding]]:
    """Group findings by folder."""
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.folder, []).append(finding)
    return grouped


# ----- check only ---------------------------------------------------------------------------------------


def test_check_reports_every_problem_and_changes_nothing(repo: DatasetRepository) -> None:
    """``repair=False`` finds each kind of damage in its folder, marks none repaired, and writes nothing."""
    damage_repairably(repo)
    damage_unrepairably(repo)
    before = tree_digest(repo.datasets_dir)

    findings = repo.check(repair=False)

    assert tree_digest(repo.datasets_dir) == before
    assert not any(finding.repaired for finding in findings)
    grouped = by_folder(findings)
    assert set(grouped) == {
        "truncated",
        "emptied",
        "orphans",
        "partial",
        "tidy",
        ".creating-AbCdEfGhIjKlMnOpQ",
        ".deleting-old-0badf00d",
        "holes",
    }
    assert "fsck --repair" in grouped["truncated"][0].problem
    assert "fsck --repair" in grouped["emptied"][0].problem
    assert [f.problem for f in grouped["orphans"]] == ["item files past item_count 2"]
    assert [f.problem for f in grouped["partial"]] == ["item files past item_count 2"]
    assert sorted(f.problem for f in grouped["tidy"]) == [
        "stray temp file .000000002.json.deadbeef.tmp of an interrupted write",
        "stray temp file .__metadata__.json.0a1b2c3d.tmp of an interrupted write",
    ]
    assert [f.problem for f in grouped["holes"]] == ["2 item file(s) missing: 2, 4"]


def test_a_healthy_root_has_no_findings(repo: DatasetRepository) -> None:
    """A root written only by the emulator (named, unnamed, empty) has no findings."""
    make_dataset(repo, "one", 3)
    make_dataset(repo, "empty", 0)
    unnamed, _ = repo.get_or_create_dataset()
    repo.push_items(unnamed.id, [{"x": 1}])

    assert repo.check(repair=False) == []


# ----- repair -------------------------------------------------------------------------------------------


def test_repair_fixes_everything_repairable_and_the_root_then_checks_clean(repo: DatasetRepository) -> None:
    """After ``repair=True`` every dataset is listed and readable, and a second check finds nothing."""
    damage_repairably(repo)

    findings = repo.check(repair=True)

    assert findings and all(finding.repaired for finding in findings)
    assert repo.check(repair=False) == []
    names = [dataset.name for dataset in repo.list_datasets().items]
    assert sorted(names) == ["emptied", "healthy", "orphans", "partial", "tidy", "truncated"]  # type: ignore[type-var]
    assert read_all(repo, "~healthy") == [{"i": 1}, {"i": 2}]
    assert read_all(repo, "~truncated") == [{"i": 1}, {"i": 2}, {"i": 3}]
    assert read_all(repo, "~emptied") == [{"i": 1}, {"i": 2}]
    assert read_all(repo, "~orphans") == [{"i": 1}, {"i": 2}, {"i": 3}, {"i": 4}]
    assert read_all(repo, "~partial") == [{"i": 1}, {"i": 2}]
    assert read_all(repo, "~tidy") == [{"i": 1}]
    assert sorted(p.name for p in repo.datasets_dir.iterdir()) == [
        "emptied",
        "healthy",
        "orphans",
        "partial",
        "tidy",
        "truncated",
    ]


@pytest.mark.parametrize(
    "broken",
    [b"", b'{"id": "Tr0nc4t3d", "name": "rebu', b"[]", b'{"id": 5}', b"\x00\x00\x00\x00"],
    ids=["empty", "truncated", "not-an-object", "missing-fields", "zeros"],
)
def test_broken_metadata_is_rebuilt_from_the_folder(repo: DatasetRepository, broken: bytes) -> None:
    """Broken metadata is rebuilt: name from the folder, item_count from the item files, the old file kept aside."""
    make_dataset(repo, "rebuilt", 4)
    meta = repo.datasets_dir / "rebuilt" / "__metadata__.json"
    meta.write_bytes(broken)
    assert [dataset.name for dataset in repo.list_datasets().items] == []  # skipped while broken

    findings = repo.check(repair=True)

    assert [(f.folder, f.repaired) for f in findings] == [("rebuilt", True)]
    rebuilt = metadata(repo, "rebuilt")
    assert (rebuilt["name"], rebuilt["item_count"]) == ("rebuilt", 4)
    assert (repo.datasets_dir / "rebuilt" / ".__metadata__.json.broken").read_bytes() == broken
    assert [dataset.name for dataset in repo.list_datasets().items] == ["rebuilt"]
    assert read_all(repo, "~rebuilt") == [{"i": i} for i in range(1, 5)]
    assert repo.get_dataset("~rebuilt").item_count == 4
    assert repo.check() == []


def test_broken_metadata_of_an_unnamed_dataset_keeps_its_id_and_stays_unnamed(repo: DatasetRepository) -> None:
    """An unnamed dataset lives in ``datasets/<id>/``: rebuilt, it keeps that id and does not gain a name."""
    dataset, _ = repo.get_or_create_dataset()
    repo.push_items(dataset.id, [{"u": 1}, {"u": 2}])
    (repo.datasets_dir / dataset.id / "__metadata__.json").write_bytes(b"{")

    repo.check(repair=True)

    rebuilt = metadata(repo, dataset.id)
    assert (rebuilt["id"], rebuilt["name"], rebuilt["item_count"]) == (dataset.id, None, 2)
    assert repo.list_datasets().total == 0
    assert [d.id for d in repo.list_datasets(unnamed=True).items] == [dataset.id]
    assert read_all(repo, dataset.id) == [{"u": 1}, {"u": 2}]


def test_orphan_item_files_are_adopted(repo: DatasetRepository) -> None:
    """Complete item files past item_count are adopted: item_count and the counters cover them."""
    make_dataset(repo, "orphans", 2)
    item_path(repo, "orphans", 3).write_text('{"i": 3}')
    item_path(repo, "orphans", 4).write_text('{"#hidden": 4}')

    findings = repo.check(repair=True)

    assert [(f.folder, f.problem, f.repaired) for f in findings] == [("orphans", "item files past item_count 2", True)]
    on_disk = metadata(repo, "orphans")
    assert on_disk["item_count"] == 4
    assert on_disk["clean_item_count"] == 3  # the #hidden-only item is not clean
    assert on_disk["storage_bytes"] == sum(item_path(repo, "orphans", i).stat().st_size for i in range(1, 5))
    assert read_all(repo, "~orphans") == [{"i": 1}, {"i": 2}, {"i": 3}, {"#hidden": 4}]


def test_partial_last_item_file_is_moved_aside_and_not_served(repo: DatasetRepository) -> None:
    """A half-written file past item_count becomes ``.000000004.json.corrupt``; the complete one before is adopted."""
    make_dataset(repo, "partial", 2)
    item_path(repo, "partial", 3).write_text('{"i": 3}')
    half = b'{"i": 4, "text": "cut off he'
    item_path(repo, "partial", 4).write_bytes(half)

    repo.check(repair=True)

    folder = repo.datasets_dir / "partial"
    assert (folder / ".000000004.json.corrupt").read_bytes() == half
    assert not item_path(repo, "partial", 4).exists()
    assert metadata(repo, "partial")["item_count"] == 3
    assert read_all(repo, "~partial") == [{"i": 1}, {"i": 2}, {"i": 3}]
    # The index is free again: the next push writes item 4, and the corrupt copy stays where it was put.
    repo.push_items("~partial", [{"i": "new-4"}])
    assert json.loads(item_path(repo, "partial", 4).read_text()) == {"i": "new-4"}
    assert (folder / ".000000004.json.corrupt").read_bytes() == half
    assert repo.check() == []


def test_stray_temp_files_and_leftover_folders_are_removed(repo: DatasetRepository) -> None:
    """Repair deletes ``.*.tmp`` files and ``.creating-*``/``.deleting-*`` folders, and nothing else."""
    make_dataset(repo, "tidy", 1)
    tmp = repo.datasets_dir / "tidy" / ".__metadata__.json.0a1b2c3d.tmp"
    tmp.write_text('{"id": "half')
    creating = repo.datasets_dir / ".creating-AbCdEfGhIjKlMnOpQ"
    creating.mkdir()
    (creating / "__metadata__.json").write_text("{}")
    age_past_staging_grace(creating)
    deleting = repo.datasets_dir / ".deleting-old-0badf00d"
    deleting.mkdir()
    (deleting / "000000001.json").write_text("{}")
    tidy_meta_before = (repo.datasets_dir / "tidy" / "__metadata__.json").read_bytes()
    assert [dataset.name for dataset in repo.list_datasets(unnamed=True).items] == ["tidy"]  # leftovers never listed

    findings = repo.check(repair=True)

    assert sorted(f.folder for f in findings) == [".creating-AbCdEfGhIjKlMnOpQ", ".deleting-old-0badf00d", "tidy"]
    assert not tmp.exists() and not creating.exists() and not deleting.exists()
    assert sorted(p.name for p in (repo.datasets_dir / "tidy").iterdir()) == ["000000001.json", "__metadata__.json"]
    assert (repo.datasets_dir / "tidy" / "__metadata__.json").read_bytes() == tidy_meta_before
    assert repo.check() == []


def test_missing_item_files_are_reported_but_not_repairable(repo: DatasetRepository) -> None:
    """Item files missing in the middle are reported by index, stay unrepaired, and reading them fails loudly."""
    damage_unrepairably(repo)
    before = tree_digest(repo.datasets_dir)

    findings = repo.check(repair=True)

    assert findings == [Finding("holes", "2 item file(s) missing: 2, 4", repaired=False)]
    assert tree_digest(repo.datasets_dir) == before
    assert repo.check() == findings
    # Never a short page: a reader that counts on the item count would skip or repeat rows.
    with pytest.raises(DatasetCorrupted, match="holes/000000002.json is missing"):
        read_all(repo, "~holes")


# ----- the CLI -----------------------------------------------------------------------------------------


def test_cli_fsck_reports_then_repairs_then_is_clean(repo: DatasetRepository) -> None:
    """``fsck`` exits 1 on damage and changes nothing; ``fsck --repair`` exits 0; then ``fsck`` exits 0, clean."""
    damage_repairably(repo)
    before = tree_digest(repo.datasets_dir)

    checked = run_fsck(repo.root)
    assert tree_digest(repo.datasets_dir) == before
    repaired = run_fsck(repo.root, "--repair")
    again = run_fsck(repo.root)

    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "found: datasets/orphans: item files past item_count 2" in checked.stdout.splitlines()
    assert all(line.startswith("found: ") for line in checked.stdout.splitlines())
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired: datasets/partial: item files past item_count 2" in repaired.stdout.splitlines()
    assert all(line.startswith("repaired: ") for line in repaired.stdout.splitlines())
    assert again.returncode == 0 and again.stdout.strip() == "no problems found", again.stdout
    fresh = DatasetRepository(repo.root)
    assert sorted(d.name for d in fresh.list_datasets().items) == [  # type: ignore[type-var]
        "emptied",
        "healthy",
        "orphans",
        "partial",
        "tidy",
        "truncated",
    ]
    assert read_all(fresh, "~orphans") == [{"i": i} for i in range(1, 5)]


def test_cli_fsck_repair_exits_1_when_problems_remain(repo: DatasetRepository) -> None:
    """With missing item files, ``fsck --repair`` fixes the rest but exits 1, naming what remains."""
    damage_unrepairably(repo)
    make_dataset(repo, "orphans", 1)
    item_path(repo, "orphans", 2).write_text('{"i": 2}')

    repaired = run_fsck(repo.root, "--repair")
    again = run_fsck(repo.root, "--repair")

    assert repaired.returncode == 1, repaired.stdout + repaired.stderr
    assert sorted(repaired.stdout.splitlines()) == [
        "found: datasets/holes: 2 item file(s) missing: 2, 4",
        "repaired: datasets/orphans: item files past item_count 1",
    ]
    assert again.returncode == 1
    assert again.stdout.splitlines() == ["found: datasets/holes: 2 item file(s) missing: 2, 4"]
    assert metadata(repo, "orphans")["item_count"] == 2


def test_the_sample_storage_checks_clean(tmp_path: Path) -> None:
    """Folders without a metadata file (as the JS tools write them) are a valid layout, not damage."""
    root = tmp_path / "root"
    shutil.copytree(Path(__file__).resolve().parent.parent / "sample_storage", root)

    assert DatasetRepository(root).check() == []
