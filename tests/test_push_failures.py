"""A push that fails part-way stores nothing, now or later (a later write must not adopt its files)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage_emulator import DatasetRepository
from storage_emulator.errors import DatasetCorrupted


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry of a dataset folder with its bytes (``None`` for a folder)."""
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in sorted(folder.iterdir())}


@pytest.fixture
def blocked(repo: DatasetRepository, storage_root: Path) -> tuple[str, Path]:
    """A dataset of 2 items with a folder squatting where item 5 will go."""
    dataset, _ = repo.get_or_create_dataset(name="blocked")
    repo.push_items(dataset.id, [{"n": 1}, {"n": 2}])
    folder = storage_root / "datasets" / "blocked"
    (folder / "000000005.json").mkdir()
    return dataset.id, folder


def test_push_into_a_squatted_index_is_refused_whole(repo: DatasetRepository, blocked: tuple[str, Path]) -> None:
    dataset_id, folder = blocked
    before = snapshot(folder)

    with pytest.raises(DatasetCorrupted, match="000000005.json already exists"):
        repo.push_items(dataset_id, [{"n": n} for n in range(3, 8)])

    assert snapshot(folder) == before  # items 3 and 4 were written, then removed again
    repo.push_items(dataset_id, [{"n": 3}])  # the next write adopts nothing of the refused push
    assert repo.get_dataset(dataset_id).item_count == 3
    assert list(repo.read_items(dataset_id).items()) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_client_push_into_a_squatted_index_gets_409_and_stores_nothing(  # type: ignore[no-untyped-def]
    apify, blocked: tuple[str, Path]
) -> None:
    from apify_client.errors import ApifyApiError

    dataset_id, folder = blocked
    before = snapshot(folder)

    with pytest.raises(ApifyApiError) as caught:
        apify.dataset(dataset_id).push_items([{"n": n} for n in range(3, 8)])

    assert (caught.value.status_code, caught.value.type) == (409, "dataset-corrupted")
    assert "nothing was stored" in caught.value.message
    assert snapshot(folder) == before


def test_an_io_error_mid_batch_removes_the_files_already_written(storage_root: Path) -> None:
    """A real write failure: the child may not write files over 64 KiB, and the third item is bigger."""
    repo = DatasetRepository(storage_root)
    dataset, _ = repo.get_or_create_dataset(name="partial")
    repo.push_items(dataset.id, [{"n": 0}])
    folder = storage_root / "datasets" / "partial"
    before = snapshot(folder)
    child = textwrap.dedent(
        f"""
        import resource, signal, sys
        from storage_emulator import DatasetRepository
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        repo = DatasetRepository({str(storage_root)!r})
        try:
            repo.push_items({dataset.id!r}, [{{"n": 1}}, {{"n": 2}}, {{"big": "x" * 100_000}}, {{"n": 4}}])
        except OSError as exc:
            print("failed:", exc.strerror)
            sys.exit(0)
        sys.exit("the push did not fail")
        """
    )

    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("failed:")
    assert snapshot(folder) == before  # no item 1, 2 or a cut-off 3 left for adoption
    repo.push_items(dataset.id, [{"n": 1}])
    assert list(repo.read_items(dataset.id).items()) == [{"n": 0}, {"n": 1}]
