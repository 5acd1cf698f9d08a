"""The storage core under the conditions that broke it: files vanishing, stale listings, busy locks, bad wording.

Each test names the fault it pins; each fails on the code before its fix.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from envelopes import assert_apify_error, assert_org_error
from flask import Flask

from storage_emulator import DatasetRepository
from storage_emulator.accounts import AccountRegistry, default_accounts_path
from storage_emulator.errors import DatasetCorrupted, SchemaValidationFailed, StorageBusy
from storage_emulator.folder_index import FolderIndex
from storage_emulator.locks import StorageLocks
from storage_emulator.models import DatasetMetadata
from storage_emulator.web import create_app

PLATFORM_403 = (
    "Insufficient permissions for the dataset. Make sure you're passing a correct API token and that it has "
    "the required permissions."
)
SCHEMA = {"fields": {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]}}


def files_under(folder: Path) -> dict[str, bytes]:
    """Map every file under a folder to its bytes (lock files aside), to prove nothing was written."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".storage-emulator" not in p.parts
    }


# ----- 1. a folder that vanishes under a listing or a lookup is not an error ------------------------------


def test_a_folder_deleted_between_listing_and_reading_is_left_out(repo: DatasetRepository) -> None:
    """Another process deletes a folder after the scandir, before its metadata is read: it is simply gone."""
    repo.get_or_create_dataset("stays")
    repo.get_or_create_dataset("vanishes")

    def load_while_another_process_deletes(folder: str) -> DatasetMetadata:
        if folder == "vanishes":
            shutil.rmtree(repo.datasets_dir / folder)  # what a concurrent delete does at this moment
        return repo.read_metadata(folder)

    index: FolderIndex[DatasetMetadata] = FolderIndex(str(repo.datasets_dir), load_while_another_process_deletes)
    assert [metadata.name for _, metadata in index.scan()] == ["stays"]
    assert index.get("vanishes") is None


def test_a_folder_deleted_behind_the_index_is_not_found_not_an_error(repo: DatasetRepository) -> None:
    """The index knew the folder; someone removed it: lookups by id and name answer not-found, listings skip it."""
    dataset, _ = repo.get_or_create_dataset("doomed")
    repo.list_datasets()  # the index has seen it
    shutil.rmtree(repo.datasets_dir / "doomed")

    assert repo.list_datasets().items == []
    with pytest.raises(Exception) as by_id:
        repo.get_dataset(dataset.id)
    with pytest.raises(Exception) as by_name:
        repo.push_items("~doomed", [{"a": 1}])
    assert by_id.value.__class__.__name__ == by_name.value.__class__.__name__ == "DatasetNotFound"


# ----- 2. a listing never carries a newer generation than the state it was built from ---------------------


def test_a_change_during_a_listing_is_seen_by_the_next_listing(repo: DatasetRepository) -> None:
    """A dataset created while a listing is being built shows in the next one (the cache is keyed by the scan)."""
    repo.get_or_create_dataset("first")

    def build_while_another_request_creates(datasets: list[DatasetMetadata]) -> list[DatasetMetadata]:
        repo.get_or_create_dataset("late")  # another thread, between this request's scan and its cache write
        return list(datasets)

    assert [d.name for d in repo.select("probe", build_while_another_request_creates)] == ["first"]
    assert [d.name for d in repo.select("probe", list)] == ["first", "late"]


# ----- 3. a busy lock is a retryable 503; a failed counter flush loses nothing ---------------------------


def hold_lock(lock_path: str, acquired: Any, release: Any) -> None:
    """Hold a file lock in another process until told to let go."""
    from filelock import FileLock

    with FileLock(lock_path):
        acquired.set()
        release.wait(30)


@pytest.fixture
def lock_holder() -> Iterator[Any]:
    """Return ``hold(path)``: a real process takes that lock file and keeps it until the test ends."""
    context = multiprocessing.get_context("spawn")
    holders: list[tuple[Any, Any]] = []

    def hold(path: Path) -> Any:
        acquired, release = context.Event(), context.Event()
        process = context.Process(target=hold_lock, args=(str(path), acquired, release), daemon=True)
        process.start()
        assert acquired.wait(30), "the lock-holding process did not start"
        holders.append((process, release))
        return release

    yield hold
    for process, release in holders:
        release.set()
        process.join(10)


def test_a_lock_held_too_long_answers_503_with_retry_after_and_stores_nothing(
    storage_root: Path, lock_holder: Any
) -> None:
    """A push waits a bounded time for a dataset another process holds, then gets a retryable 503."""
    app = create_app({"ROOT": str(storage_root), "TESTING": True, "LOCK_WAIT_SECONDS": 0.2})
    repo: DatasetRepository = app.extensions["storage_emulator"]
    dataset, _ = repo.get_or_create_dataset("busy")
    before = files_under(storage_root)
    lock_holder(repo.locks.path_for("dataset", dataset.id))

    response = app.test_client().post(f"/v2/datasets/{dataset.id}/items", json=[{"a": 1}])

    assert_apify_error(response, 503, "storage-busy", mentions="retry")
    assert response.headers["Retry-After"] == "1"
    assert files_under(storage_root) == before


def test_the_repository_raises_storage_busy_after_its_bounded_wait(storage_root: Path, lock_holder: Any) -> None:
    """The direct API gives the same typed error (not filelock's Timeout) after the wait it was given."""
    repo = DatasetRepository(storage_root, lock_wait_seconds=0.1)
    dataset, _ = repo.get_or_create_dataset("busy")
    lock_holder(StorageLocks(repo.locks.locks_dir).path_for("dataset", dataset.id))
    with pytest.raises(StorageBusy):
        repo.update_dataset(dataset.id, title="never")


def test_a_read_whose_counter_flush_fails_still_succeeds_and_the_count_is_kept(
    storage_root: Path, lock_holder: Any
) -> None:
    """The GET that triggers a counter write gets its items although the write fails; the count lands later."""
    app = create_app({"ROOT": str(storage_root), "TESTING": True, "LOCK_WAIT_SECONDS": 0.1})
    repo: DatasetRepository = app.extensions["storage_emulator"]
    dataset, _ = repo.get_or_create_dataset("counted")
    repo.push_items(dataset.id, [{"a": 1}])
    release = lock_holder(repo.locks.path_for("dataset", dataset.id))

    response = app.test_client().get(f"/v2/datasets/{dataset.id}/items")

    assert response.status_code == 200 and response.get_json() == [{"a": 1}]
    release.set()
    assert repo.flush_reads(), "the kept count should be written once the lock is free"
    on_disk = json.loads((repo.datasets_dir / "counted" / "__metadata__.json").read_text())
    assert on_disk["read_count"] == 1


# ----- 4. repair keeps identity ---------------------------------------------------------------------------


@pytest.fixture
def alice_root(storage_root: Path) -> Path:
    """A root whose accounts file has `alice`."""
    path = default_accounts_path(storage_root)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"accounts": [{"username": "alice", "token": "alice-token"}]}))
    return storage_root


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: text.index('"accessed_at"')],  # cut off mid-file: not JSON any more
        lambda text: text.replace('"item_count": 3', '"item_count": "three"'),  # JSON, one bad field
    ],
    ids=["truncated", "bad-field"],
)
def test_repair_keeps_id_owner_and_name_of_a_username_name_folder(alice_root: Path, damage: Any) -> None:
    """``alice~prices`` with broken metadata comes back as alice's ``prices`` with the same id and signing key."""
    repo = DatasetRepository(alice_root)
    alice = AccountRegistry.load(alice_root).by_username("alice")
    assert alice is not None
    dataset, _ = repo.get_or_create_dataset("prices", owner=alice)
    repo.push_items(dataset.id, [{"p": 1}, {"p": 2}, {"p": 3}])
    meta = repo.datasets_dir / "alice~prices" / "__metadata__.json"
    meta.write_text(damage(meta.read_text()))

    findings = DatasetRepository(alice_root).check(repair=True)

    assert [(f.folder, f.repaired) for f in findings] == [("alice~prices", True)]
    rebuilt = DatasetRepository(alice_root).get_dataset("alice~prices")
    assert (rebuilt.id, rebuilt.name, rebuilt.item_count) == (dataset.id, "prices", 3)
    assert (rebuilt.user_id, rebuilt.username) == (alice.id, "alice")
    if "signing key" in findings[0].problem:  # cut off before the key: a new one, and the report says so
        assert rebuilt.url_signing_secret_key not in (None, dataset.url_signing_secret_key)
    else:
        assert rebuilt.url_signing_secret_key == dataset.url_signing_secret_key


def test_repair_of_an_unreadable_file_keeps_name_and_owner_from_the_folder(alice_root: Path) -> None:
    """Nothing left in the file: the name and owner come from ``username~name``; the lost id is reported."""
    repo = DatasetRepository(alice_root)
    alice = AccountRegistry.load(alice_root).by_username("alice")
    assert alice is not None
    repo.get_or_create_dataset("prices", owner=alice)
    (repo.datasets_dir / "alice~prices" / "__metadata__.json").write_bytes(b"")

    [finding] = DatasetRepository(alice_root).check(repair=True)

    assert finding.repaired and "rebuilt without its id" in finding.problem
    rebuilt = DatasetRepository(alice_root).get_dataset("alice~prices")
    assert (rebuilt.name, rebuilt.username) == ("prices", "alice")
    assert DatasetRepository(alice_root).policy.owner_id(rebuilt) == alice.id


def test_repair_takes_the_lock_before_it_touches_the_broken_file(storage_root: Path, lock_holder: Any) -> None:
    """With the dataset locked by another process, repair gives up and leaves the broken file where it is."""
    repo = DatasetRepository(storage_root, lock_wait_seconds=0.1)
    dataset, _ = repo.get_or_create_dataset("locked")
    meta = repo.datasets_dir / "locked" / "__metadata__.json"
    meta.write_text(meta.read_text()[:40])
    before = files_under(repo.datasets_dir)
    lock_holder(repo.locks.path_for("dataset", dataset.id))

    with pytest.raises(StorageBusy):
        repo.check(repair=True)
    assert files_under(repo.datasets_dir) == before


# ----- 5. one access policy: who can read is who is public ----------------------------------------------


def test_follow_user_setting_is_public_in_the_org_listing_when_the_owner_is(storage_root: Path) -> None:
    """An account that shares by id makes its FOLLOW_USER_SETTING datasets public everywhere, not only on read."""
    path = default_accounts_path(storage_root)
    path.parent.mkdir(parents=True)
    accounts = [
        {"username": "pub", "token": "pub-token", "general_access": "ANYONE_WITH_ID_CAN_READ"},
        {"username": "viewer", "token": "viewer-token"},
    ]
    path.write_text(json.dumps({"accounts": accounts}))
    owner = AccountRegistry.load(storage_root).by_username("pub")
    dataset, _ = DatasetRepository(storage_root).get_or_create_dataset("open-data", owner=owner)
    assert dataset.general_access == "FOLLOW_USER_SETTING"
    http = create_app({"ROOT": str(storage_root), "TESTING": True}).test_client()

    assert http.get(f"/v2/datasets/{dataset.id}/items").status_code == 200  # anyone may read it
    own = http.get("/api/v1/org/pub/datasets", headers={"X-API-Key": "pub-token"}).get_json()
    assert [row["is_public"] for row in own["datasets"]] == [True]
    others = http.get("/api/v1/org/viewer/datasets?include_public=true", headers={"X-API-Key": "viewer-token"})
    assert [row["name"] for row in others.get_json()["datasets"]] == ["pub/open-data"]


# ----- 6. the repository keeps the schema rules itself ---------------------------------------------------


def test_push_through_the_repository_refuses_items_that_break_the_schema(repo: DatasetRepository) -> None:
    """``repo.push_items`` (the documented direct API) validates like the HTTP push, and stores nothing."""
    dataset, _ = repo.get_or_create_dataset("typed", schema=SCHEMA)
    before = files_under(repo.datasets_dir)
    with pytest.raises(SchemaValidationFailed) as refused:
        repo.push_items(dataset.id, [{"price": 1}, {"price": "free"}])
    assert refused.value.data is not None and refused.value.data["invalidItems"][0]["itemPosition"] == 1
    assert files_under(repo.datasets_dir) == before


def test_create_through_the_repository_refuses_a_broken_schema(repo: DatasetRepository) -> None:
    """A schema that is not a valid JSON Schema is refused before any folder is made."""
    with pytest.raises(Exception) as refused:
        repo.get_or_create_dataset("bad-schema", schema={"fields": {"type": "no-such-type"}})
    assert getattr(refused.value, "status", None) == 400
    assert not (repo.datasets_dir / "bad-schema").exists()


# ----- 7. never a body shorter than its pagination headers ------------------------------------------------


def test_a_missing_item_file_is_a_409_not_a_short_page(app: Flask, repo: DatasetRepository) -> None:
    """Item 3 of 5 is gone: the page is refused with ``dataset-corrupted`` naming the file, not served with 4 rows."""
    dataset, _ = repo.get_or_create_dataset("holey")
    repo.push_items(dataset.id, [{"i": i} for i in range(1, 6)])
    (repo.datasets_dir / "holey" / "000000003.json").unlink()

    for query in ("", "?format=csv", "?format=jsonl&limit=4"):
        response = app.test_client().get(f"/v2/datasets/{dataset.id}/items{query}")
        assert_apify_error(response, 409, "dataset-corrupted", mentions="holey/000000003.json is missing")


def test_a_missing_file_deep_in_a_long_export_aborts_the_transfer(repo: DatasetRepository, live_server: Any) -> None:
    """Past the first chunk the status is sent: the transfer breaks off, so no client takes it for complete."""
    import http.client

    dataset, _ = repo.get_or_create_dataset("long")
    repo.push_items(dataset.id, [{"i": i, "pad": "x" * 200} for i in range(1, 2001)])
    (repo.datasets_dir / "long" / "000001999.json").unlink()
    host, port = live_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", f"/v2/datasets/{dataset.id}/items?format=jsonl")
    response = connection.getresponse()
    assert response.status == 200
    body = b""
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        while chunk := response.read(65536):
            body += chunk
        rows = body.count(b"\n")
        raise AssertionError(f"the body ended cleanly with {rows} of 2000 rows")
    connection.close()


# ----- 10, 11. the org listing of an unknown org, and the platform's wording -----------------------------


def test_the_org_listing_of_an_unknown_org_is_404_in_the_org_envelope(client: Any, repo: DatasetRepository) -> None:
    """Open mode: an org that is no account and owns nothing is 404, not an empty page; known orgs list."""
    repo.get_or_create_dataset("mine")
    assert client.get("/api/v1/org/local/datasets").status_code == 200
    assert_org_error(client.get("/api/v1/org/nobody-here/datasets"), 404, "not_found")


def test_the_org_listing_of_an_unknown_org_is_403_to_a_caller_who_may_not_know(storage_root: Path) -> None:
    """Enforced mode: a non-member is refused whether or not the org exists, so it learns nothing."""
    path = default_accounts_path(storage_root)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"accounts": [{"username": "ann", "token": "ann-token", "orgs": ["ghost-team"]}]}))
    http = create_app({"ROOT": str(storage_root), "TESTING": True}).test_client()
    headers = {"X-API-Key": "ann-token"}
    assert_org_error(http.get("/api/v1/org/nobody-here/datasets", headers=headers), 403, "permission_denied")
    assert http.get("/api/v1/org/ghost-team/datasets", headers=headers).status_code == 200  # named in ann's orgs
    assert http.get("/api/v1/org/ann/datasets", headers=headers).status_code == 200


def test_reading_another_users_dataset_uses_the_platforms_message(storage_root: Path, serve: Any) -> None:
    """The official client raises with the text the platform sends (its integration tests match it)."""
    from apify_client import ApifyClient
    from apify_client.errors import ApifyApiError

    path = default_accounts_path(storage_root)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"accounts": [{"username": "own", "token": "own-token"}, {"username": "oth", "token": "oth-token"}]})
    )
    owner = AccountRegistry.load(storage_root).by_username("own")
    dataset, _ = DatasetRepository(storage_root).get_or_create_dataset("private", owner=owner)
    with serve(create_app({"ROOT": str(storage_root)})) as server:
        other = ApifyClient(token="oth-token", api_url=server.url, max_retries=0)
        with pytest.raises(ApifyApiError) as refused:
            other.dataset(dataset.id).list_items()
        assert (refused.value.status_code, refused.value.type) == (403, "insufficient-permissions")
        assert refused.value.message == PLATFORM_403
        with pytest.raises(ApifyApiError) as refused_write:
            other.dataset(dataset.id).push_items([{"a": 1}])
        assert refused_write.value.message == PLATFORM_403


def test_corrupted_is_a_subclass_of_the_core_error(repo: DatasetRepository) -> None:
    """A broken dataset is reported with the dataset's own error type through the generic index."""
    repo.get_or_create_dataset("broken")
    (repo.datasets_dir / "broken" / "__metadata__.json").write_text("{")
    with pytest.raises(DatasetCorrupted):
        repo.get_dataset("~broken")


def test_a_json_body_nested_too_deeply_is_a_400(client: Any) -> None:
    """``[[[[...]]]]`` 100,000 levels deep made ``json.loads`` raise RecursionError: a 500 before."""
    deep = b"[" * 100_000 + b"]" * 100_000
    for method, url in [("POST", "/v2/datasets"), ("POST", "/v2/key-value-stores"), ("PUT", "/v2/datasets/~x")]:
        if method == "PUT":
            client.post("/v2/datasets?name=x")
        response = client.open(url, method=method, data=deep, headers={"Content-Type": "application/json"})
        assert_apify_error(response, 400, "invalid-input", mentions="JSON")
