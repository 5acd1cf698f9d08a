"""Listings are memoized between requests; every change to the root must still show in the next one."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import LiveServer
from pydantic import ValidationError

from storage_emulator import DatasetRepository
from storage_emulator.models import METADATA_FILENAME


def apify_listing(apify) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Return the official client's listing (unnamed included) by name, in the API's field names."""
    return {item.name: item.model_dump(by_alias=True) for item in apify.datasets().list(unnamed=True).items}


def org_listing(server: LiveServer, query: str = "") -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/api/v1/org/local/datasets{query}") as response:
        return json.load(response)  # type: ignore[no-any-return]


def rewrite_metadata_as_another_tool(storage_root: Path, folder: str, **changes: Any) -> None:
    """Rewrite a metadata file in place, as the JS tools do (no rename, so the inode stays)."""
    path = storage_root / "datasets" / folder / METADATA_FILENAME
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=4))


def test_apify_listing_shows_each_change_between_identical_requests(  # type: ignore[no-untyped-def]
    apify, storage_root: Path
) -> None:
    first = apify.datasets().get_or_create(name="first")
    second = apify.datasets().get_or_create(name="second")
    before = apify_listing(apify)
    assert before["first"]["itemCount"] == 0 and before["first"]["stats"]["readCount"] == 0

    apify.dataset(first.id).push_items([{"n": 1}, {"n": 2}])
    assert apify_listing(apify)["first"]["itemCount"] == 2

    apify.dataset(first.id).list_items()  # counted in memory first, written later
    assert apify_listing(apify)["first"]["stats"]["readCount"] == 1

    apify.dataset(second.id).update(name="renamed")
    after_rename = apify_listing(apify)
    assert "second" not in after_rename and after_rename["renamed"]["id"] == second.id

    rewrite_metadata_as_another_tool(storage_root, "first", item_count=7, title="Written by another tool")
    outside = apify_listing(apify)["first"]
    assert (outside["itemCount"], outside["title"]) == (7, "Written by another tool")

    unnamed = apify.datasets().get_or_create()
    assert apify_listing(apify)[unnamed.id]["id"] == unnamed.id

    apify.dataset(first.id).delete()
    assert "first" not in apify_listing(apify)


def test_org_listing_shows_each_change_between_identical_requests(
    app,
    live_server: LiveServer,
    storage_root: Path,  # type: ignore[no-untyped-def]
) -> None:
    repo: DatasetRepository = app.extensions["storage_emulator"]
    small, _ = repo.get_or_create_dataset(name="small")
    large, _ = repo.get_or_create_dataset(name="large")
    repo.push_items(large.id, [{"n": n} for n in range(3)])
    by_rows = "?sort_by=row_count&sort_dir=desc"
    assert [row["name"] for row in org_listing(live_server, by_rows)["datasets"]] == ["local/large", "local/small"]

    repo.push_items(small.id, [{"n": n} for n in range(5)])  # now the larger one: the order must flip
    assert [row["name"] for row in org_listing(live_server, by_rows)["datasets"]] == ["local/small", "local/large"]

    repo.read_items(large.id)
    rows = {row["name"]: row for row in org_listing(live_server, by_rows)["datasets"]}
    assert rows["local/large"]["download_count"] == 1

    rewrite_metadata_as_another_tool(storage_root, "large", tags=["from-outside"])
    assert org_listing(live_server, "?tags=from-outside")["total"] == 1

    repo.get_or_create_dataset(name="newcomer")
    body = org_listing(live_server, by_rows)
    assert body["total"] == 3 and "local/newcomer" in [row["name"] for row in body["datasets"]]


def test_org_listing_pages_of_one_memoized_question_agree(app, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    repo: DatasetRepository = app.extensions["storage_emulator"]
    for index in range(7):
        repo.get_or_create_dataset(name=f"ds-{index}")

    pages = [org_listing(live_server, f"?sort_by=name&sort_dir=asc&limit=3&page={page}") for page in (1, 2, 3)]

    assert [row["name"] for page in pages for row in page["datasets"]] == [f"local/ds-{i}" for i in range(7)]
    assert [page["has_next"] for page in pages] == [True, True, False]


def test_encoded_list_items_are_kept_once_per_dataset_not_per_change(app, client) -> None:  # type: ignore[no-untyped-def]
    repo: DatasetRepository = app.extensions["storage_emulator"]
    ids = [repo.get_or_create_dataset(name=f"busy-{index}")[0].id for index in range(3)]

    for round_index in range(20):  # every push makes a new metadata object, every listing encodes it
        repo.push_items(ids[round_index % 3], [{"round": round_index}])
        assert client.get("/v2/datasets").status_code == 200

    assert len(app.extensions["storage_emulator_list_items"]) == 3


def test_metadata_objects_cannot_change_in_place(repo: DatasetRepository) -> None:
    """The list caches key on metadata objects, so an in-place change would be served stale."""
    dataset, _ = repo.get_or_create_dataset(name="frozen")

    with pytest.raises(ValidationError):
        dataset.item_count = 5  # type: ignore[misc]
