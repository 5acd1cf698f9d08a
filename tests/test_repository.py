"""The direct Python API on real files: return values and what lands on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage_emulator import DEFAULT_ACCOUNT, Account, DatasetRepository
from storage_emulator.errors import DatasetCorrupted, DatasetNotFound, InvalidInput, NameNotUnique
from storage_emulator.naming import ID_PATTERN, safe_child


def metadata_on_disk(root: Path, folder: str) -> dict:
    return json.loads((root / "datasets" / folder / "__metadata__.json").read_text())


def test_create_named_writes_crawlee_compatible_metadata(repo: DatasetRepository, storage_root: Path) -> None:
    dataset, created = repo.get_or_create_dataset(name="products")

    assert created is True
    assert ID_PATTERN.match(dataset.id)
    on_disk = metadata_on_disk(storage_root, "products")
    assert on_disk["id"] == dataset.id
    assert on_disk["name"] == "products"
    assert on_disk["item_count"] == 0
    assert on_disk["user_id"] == DEFAULT_ACCOUNT.id
    assert on_disk["username"] == DEFAULT_ACCOUNT.username
    # Crawlee writes str(datetime): a space between date and time and an explicit offset.
    assert on_disk["created_at"].endswith("+00:00") and " " in on_disk["created_at"]
    assert not [p for p in (storage_root / "datasets").iterdir() if p.name.startswith(".")]


def test_get_or_create_is_idempotent(repo: DatasetRepository, storage_root: Path) -> None:
    first, created_first = repo.get_or_create_dataset(name="same")
    second, created_second = repo.get_or_create_dataset(name="same")

    assert (created_first, created_second) == (True, False)
    assert first.id == second.id
    assert [p.name for p in (storage_root / "datasets").iterdir()] == ["same"]


def test_unnamed_datasets_are_always_new_and_live_in_their_id_folder(
    repo: DatasetRepository, storage_root: Path
) -> None:
    a, _ = repo.get_or_create_dataset()
    b, _ = repo.get_or_create_dataset()

    assert a.id != b.id
    assert metadata_on_disk(storage_root, a.id)["name"] is None
    assert metadata_on_disk(storage_root, b.id)["id"] == b.id


def test_schema_is_stored(repo: DatasetRepository, storage_root: Path) -> None:
    schema = {"actorSpecification": 1, "fields": {"type": "object"}}
    dataset, _ = repo.get_or_create_dataset(name="typed", schema=schema)

    assert dataset.dataset_schema == schema
    assert metadata_on_disk(storage_root, "typed")["schema"] == schema


def test_get_dataset_by_id_tilde_name_and_username_name(repo: DatasetRepository) -> None:
    dataset, _ = repo.get_or_create_dataset(name="lookup")

    assert repo.get_dataset(dataset.id).id == dataset.id
    assert repo.get_dataset("~lookup").id == dataset.id
    assert repo.get_dataset(f"{DEFAULT_ACCOUNT.username}~lookup").id == dataset.id


@pytest.mark.parametrize("ref", ["missingMissing123", "~missing", "someone~lookup", "..", "a/b", "", "~"])
def test_get_missing_raises_typed_error(repo: DatasetRepository, ref: str) -> None:
    repo.get_or_create_dataset(name="lookup")

    with pytest.raises(DatasetNotFound):
        repo.get_dataset(ref)


def test_names_are_per_owner_and_other_owners_get_their_own_folder(repo: DatasetRepository, storage_root: Path) -> None:
    other = Account(id="otherAccount00001", username="alice")
    mine, _ = repo.get_or_create_dataset(name="shared-name")
    theirs, created = repo.get_or_create_dataset(name="shared-name", owner=other)

    assert created and mine.id != theirs.id
    assert metadata_on_disk(storage_root, "alice~shared-name")["user_id"] == other.id
    assert repo.get_dataset("alice~shared-name").id == theirs.id
    assert repo.get_dataset("~shared-name").id == mine.id
    assert repo.get_dataset("~shared-name", caller=other).id == theirs.id


def test_list_is_sorted_paged_and_hides_unnamed_and_other_owners(repo: DatasetRepository) -> None:
    named = [repo.get_or_create_dataset(name=f"ds-{i}")[0] for i in range(5)]
    unnamed, _ = repo.get_or_create_dataset()
    repo.get_or_create_dataset(name="theirs", owner=Account(id="otherAccount00001", username="alice"))

    page = repo.list_datasets()
    assert [d.id for d in page.items] == [d.id for d in named]
    assert page.total == 5

    page = repo.list_datasets(offset=1, limit=2, desc=True)
    assert [d.id for d in page.items] == [named[3].id, named[2].id]
    assert page.total == 5

    with_unnamed = repo.list_datasets(unnamed=True)
    assert with_unnamed.total == 6 and with_unnamed.items[-1].id == unnamed.id


def test_ownership_filters(repo: DatasetRepository) -> None:
    other = Account(id="otherAccount00001", username="alice")
    mine, _ = repo.get_or_create_dataset(name="mine")
    theirs, _ = repo.get_or_create_dataset(name="theirs", owner=other)
    repo.update_dataset(theirs.id, shared_with=[DEFAULT_ACCOUNT.id])

    assert [d.id for d in repo.list_datasets(ownership="ownedByMe").items] == [mine.id]
    assert [d.id for d in repo.list_datasets(ownership="sharedWithMe").items] == [theirs.id]
    assert {d.id for d in repo.list_datasets().items} == {mine.id, theirs.id}


@pytest.mark.parametrize(
    "name", ["-bad", "bad-", "has space", "a" * 64, "dots.not.ok", "../escape", "a/b", "back\\slash", "/abs", "ü"]
)
def test_bad_names_are_rejected_and_nothing_is_written(
    repo: DatasetRepository, storage_root: Path, tmp_path: Path, name: str
) -> None:
    with pytest.raises(InvalidInput):
        repo.get_or_create_dataset(name=name)

    assert list((storage_root / "datasets").iterdir()) == []
    # "../escape" from datasets/ would land in the root itself: nothing but the root's own folders there.
    assert sorted(path.name for path in storage_root.iterdir()) == [".storage-emulator", "datasets"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["storage"]


@pytest.mark.parametrize("child", ["..", ".", "a/b", "a\\b", "/etc", "", "x\x00y"])
def test_safe_child_refuses_anything_but_one_segment(tmp_path: Path, child: str) -> None:
    with pytest.raises(InvalidInput):
        safe_child(tmp_path / "root", child)


def test_reads_camel_case_metadata_and_folders_without_metadata(storage_root: Path) -> None:
    datasets = storage_root / "datasets"
    (datasets / "from-js").mkdir(parents=True)
    (datasets / "from-js" / "__metadata__.json").write_text(
        json.dumps(
            {
                "id": "0b5a6c9e-8f0e-4c55-8d61-3d7c1b1f2a3b",
                "name": "from-js",
                "itemCount": 2,
                "createdAt": "2024-01-02T03:04:05.000Z",
                "modifiedAt": "2024-01-02T03:04:05.000Z",
                "accessedAt": "2024-01-02T03:04:05.000Z",
            },
            indent="\t",
        )
    )
    (datasets / "no-metadata").mkdir()
    for index in (1, 2, 3):
        (datasets / "no-metadata" / f"{index:09d}.json").write_text(json.dumps({"n": index}))
    repo = DatasetRepository(storage_root)

    by_name = {d.name: d for d in repo.list_datasets().items}
    assert by_name["from-js"].item_count == 2
    assert by_name["from-js"].id == "0b5a6c9e-8f0e-4c55-8d61-3d7c1b1f2a3b"
    assert by_name["no-metadata"].item_count == 3
    assert ID_PATTERN.match(by_name["no-metadata"].id)
    assert repo.get_dataset(by_name["no-metadata"].id).name == "no-metadata"
    # Serving a folder leaves it as it was.
    assert not (datasets / "no-metadata" / "__metadata__.json").exists()


@pytest.mark.parametrize("content", ["", '{"id": "abc", "name": "bro', "[1, 2]", '{"name": "no-id"}'])
def test_broken_metadata_is_skipped_in_listing_and_typed_on_direct_access(
    repo: DatasetRepository, storage_root: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    good, _ = repo.get_or_create_dataset(name="good")
    broken_dir = storage_root / "datasets" / "broken"
    broken_dir.mkdir()
    (broken_dir / "__metadata__.json").write_text(content)

    assert [d.id for d in repo.list_datasets().items] == [good.id]
    assert "broken" in caplog.text
    with pytest.raises(DatasetCorrupted, match="fsck --repair"):
        repo.get_dataset("~broken")
    with pytest.raises(DatasetCorrupted):
        repo.get_or_create_dataset(name="broken")


def test_name_taken_by_a_foreign_folder_is_a_conflict(repo: DatasetRepository, storage_root: Path) -> None:
    folder = storage_root / "datasets" / "default"
    folder.mkdir()
    (folder / "__metadata__.json").write_text(
        json.dumps(
            {
                "id": "crawleeDefault001",
                "name": None,
                "item_count": 0,
                "created_at": "2026-01-01 00:00:00+00:00",
                "modified_at": "2026-01-01 00:00:00+00:00",
                "accessed_at": "2026-01-01 00:00:00+00:00",
            }
        )
    )
    with pytest.raises(NameNotUnique):
        repo.get_or_create_dataset(name="default")
    assert metadata_on_disk(storage_root, "default")["id"] == "crawleeDefault001"


def test_extra_keys_survive_a_rewrite(repo: DatasetRepository, storage_root: Path) -> None:
    dataset, _ = repo.get_or_create_dataset(name="extras")
    path = storage_root / "datasets" / "extras" / "__metadata__.json"
    data = json.loads(path.read_text())
    data["some_other_tool"] = {"keep": True}
    path.write_text(json.dumps(data))

    repo.update_dataset(dataset.id, title="T")

    assert metadata_on_disk(storage_root, "extras")["some_other_tool"] == {"keep": True}
    assert metadata_on_disk(storage_root, "extras")["title"] == "T"


def test_second_repository_sees_changes_of_the_first(storage_root: Path) -> None:
    first = DatasetRepository(storage_root)
    second = DatasetRepository(storage_root)
    assert second.list_datasets().total == 0

    created, _ = first.get_or_create_dataset(name="cross")

    assert second.get_dataset(created.id).name == "cross"
    assert second.list_datasets().total == 1


def test_symlinks_planted_in_the_root_are_never_followed(
    repo: DatasetRepository, storage_root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "__metadata__.json").write_text(
        json.dumps(
            {
                "id": "outsideOutside123",
                "name": "evil",
                "item_count": 1,
                "created_at": "2026-01-01 00:00:00+00:00",
                "modified_at": "2026-01-01 00:00:00+00:00",
                "accessed_at": "2026-01-01 00:00:00+00:00",
            }
        )
    )
    (outside / "000000001.json").write_text('{"secret": true}')
    (storage_root / "datasets" / "evil").symlink_to(outside)
    dataset, _ = repo.get_or_create_dataset(name="inside")
    repo.push_items(dataset.id, [{"ok": 1}])
    (storage_root / "datasets" / "inside" / "000000002.json").symlink_to(outside / "000000001.json")

    assert [d.name for d in repo.list_datasets().items] == ["inside"]
    for ref in ("~evil", "outsideOutside123"):
        with pytest.raises(DatasetNotFound):
            repo.get_dataset(ref)
    with pytest.raises(NameNotUnique):
        repo.get_or_create_dataset(name="evil")  # the name's folder is taken, and nothing is written through it
    pushed = repo.push_items(dataset.id, [{"new": 1}])  # index 2 is the planted link: moved aside, not followed
    assert pushed.item_count == 2
    assert (storage_root / "datasets" / "inside" / ".000000002.json.corrupt").is_symlink()
    assert list(repo.read_items(dataset.id).items()) == [{"ok": 1}, {"new": 1}]
    assert sorted(p.name for p in outside.iterdir()) == ["000000001.json", "__metadata__.json"]
    assert (outside / "000000001.json").read_text() == '{"secret": true}'


def test_a_camel_case_metadata_file_keeps_its_style_when_rewritten(storage_root: Path) -> None:
    folder = storage_root / "datasets" / "js-made"
    folder.mkdir(parents=True)
    (folder / "__metadata__.json").write_text(
        json.dumps(
            {
                "id": "js-made-uuid-0001",
                "name": "js-made",
                "itemCount": 0,
                "createdAt": "2024-01-02T03:04:05.000Z",
                "modifiedAt": "2024-01-02T03:04:05.000Z",
                "accessedAt": "2024-01-02T03:04:05.000Z",
            },
            indent="\t",
        )
    )
    repo = DatasetRepository(storage_root)

    repo.push_items("~js-made", [{"a": 1}])

    text = (folder / "__metadata__.json").read_text()
    on_disk = json.loads(text)
    assert on_disk["itemCount"] == 1 and "item_count" not in on_disk
    assert on_disk["createdAt"] == "2024-01-02T03:04:05.000Z" and on_disk["modifiedAt"].endswith("Z")
    assert text.startswith("{\n\t")
    assert repo.get_dataset("~js-made").item_count == 1


def test_reads_are_counted_in_memory_and_written_at_most_once_a_second(
    repo: DatasetRepository, storage_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage_emulator import read_tracker

    # A long interval, so that a slow machine cannot make the five reads below span it.
    monkeypatch.setattr(read_tracker, "FLUSH_INTERVAL_SECONDS", 60.0)
    dataset, _ = repo.get_or_create_dataset(name="read-often")
    repo.push_items(dataset.id, [{"a": 1}])
    path = storage_root / "datasets" / "read-often" / "__metadata__.json"

    repo.read_items(dataset.id)  # the first read is written at once
    after_first = path.read_bytes()
    for _ in range(5):
        repo.read_items(dataset.id)

    assert path.read_bytes() == after_first  # the next five wait in memory...
    assert repo.get_dataset(dataset.id).read_count == 6  # ...but every answer already counts them
    assert DatasetRepository(storage_root).get_dataset(dataset.id).read_count == 1
    repo.flush_reads()
    assert json.loads(path.read_text())["read_count"] == 6
    assert DatasetRepository(storage_root).get_dataset(dataset.id).read_count == 6


def test_dates_without_an_offset_are_read_as_utc(storage_root: Path) -> None:
    folder = storage_root / "datasets" / "naive"
    folder.mkdir(parents=True)
    (folder / "__metadata__.json").write_text(
        json.dumps(
            {
                "id": "naiveDates0000001",
                "name": "naive",
                "item_count": 0,
                "created_at": "2024-01-02T03:04:05",
                "modified_at": "2024-01-02 03:04:05",
                "accessed_at": "2024-01-02T03:04:05",
            }
        )
    )
    repo = DatasetRepository(storage_root)
    repo.get_or_create_dataset(name="aware")

    names = [d.name for d in repo.list_datasets().items]

    assert names == ["naive", "aware"]
    assert repo.get_dataset("~naive").created_at.utcoffset() is not None


def test_items_another_tool_wrote_are_counted_once_not_per_request(storage_root: Path) -> None:
    folder = storage_root / "datasets" / "crawled"
    folder.mkdir(parents=True)
    for index in (1, 2, 3):
        (folder / f"{index:09d}.json").write_text(json.dumps({"#hidden": 1} if index == 2 else {"n": index}))
    repo = DatasetRepository(storage_root)

    first = repo.get_dataset("~crawled")
    (folder / "000000003.json").write_text("{}")  # changed behind the folder's back: not read again

    assert (first.item_count, first.clean_item_count) == (3, 2)
    assert repo.get_dataset("~crawled").clean_item_count == 2
    assert not (folder / "__metadata__.json").exists()  # counting never writes
