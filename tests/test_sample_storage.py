"""The committed sample storage root: consistent on disk, and served whole by the emulator from a copy."""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT, LiveServer
from flask import Flask

from storage_emulator.web import create_app

SAMPLE_ROOT = REPO_ROOT / "sample_storage"
SAMPLE_DATASETS = SAMPLE_ROOT / "datasets"
METADATA = "__metadata__.json"

# Named datasets of the default account, as listed by default: name -> item count.
NAMED = {"products": 22, "news-articles": 15, "job-listings": 12, "quotes-toscrape": 10, "default": 8}
UNNAMED_ID = "UnN4m3dRun7xKp2Qs"
UNNAMED_COUNT = 6
JS_ID = "5f0c7d3e-9b1a-4e6f-8a2d-3c4b5e6f7a8b"  # written by the JS tools: camelCase, tab indent, a UUID
PRODUCTS_ID = "Pr0dUcTs4nOrD1c0u"
ALICE_ID = "Al1c3C0mpPr1c3s9x"
ALICE_FOLDER = "alice~competitor-prices"
# Folders that hold a metadata file written in the emulator's own snake_case format.
EMULATOR_FOLDERS = ["products", "news-articles", "job-listings", UNNAMED_ID, ALICE_FOLDER]


def item_files(folder: Path) -> list[Path]:
    """Return a dataset folder's item files in index order."""
    return sorted(path for path in folder.iterdir() if path.name != METADATA)


def items_on_disk(folder: Path) -> list[dict[str, Any]]:
    """Read a dataset folder's items in index order."""
    return [json.loads(path.read_bytes()) for path in item_files(folder)]


def tree_digest(root: Path) -> dict[str, str]:
    """Map every path under ``root`` to the SHA-256 of its content (``dir`` for folders)."""
    return {
        str(path.relative_to(root)): "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
    }


def http_json(url: str) -> Any:
    """GET a URL over a real socket and parse the JSON body."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    """Return a fresh copy of the sample storage root (overrides conftest's empty root)."""
    root = tmp_path / "storage"
    shutil.copytree(SAMPLE_ROOT, root)
    return root


# ----- the committed files ---------------------------------------------------------------------------


def test_sample_storage_is_small() -> None:
    """Keep the committed sample under 200 files and 300 KB."""
    files = [path for path in SAMPLE_ROOT.rglob("*") if path.is_file()]
    assert 50 < len(files) < 200
    assert sum(path.stat().st_size for path in files) < 300_000
    assert not (SAMPLE_ROOT / ".storage-emulator").exists()


@pytest.mark.parametrize("folder", EMULATOR_FOLDERS)
def test_emulator_metadata_matches_its_item_files(folder: str) -> None:
    """Keep each snake_case metadata file's counters equal to what its item files hold."""
    path = SAMPLE_DATASETS / folder
    metadata = json.loads((path / METADATA).read_text(encoding="utf-8"))
    files = item_files(path)
    items = items_on_disk(path)
    assert [file.name for file in files] == [f"{index:09d}.json" for index in range(1, len(files) + 1)]
    assert 5 <= metadata["item_count"] == len(files) <= 40
    assert metadata["clean_counted_items"] == metadata["item_count"]
    assert metadata["clean_item_count"] == sum(1 for item in items if any(not key.startswith("#") for key in item))
    assert metadata["storage_bytes"] == sum(file.stat().st_size for file in files)
    # The folder is where the emulator puts such a dataset: the id, the name, or username~name.
    if metadata["name"] is None:
        assert folder == metadata["id"]
    elif metadata["username"] == "local":
        assert folder == metadata["name"]
    else:
        assert folder == f"{metadata['username']}~{metadata['name']}"
    assert (path / METADATA).read_text(encoding="utf-8").startswith('{\n  "id": ')


def test_sample_covers_each_way_of_writing_a_dataset() -> None:
    """Hold JS-written, metadata-less, schema-carrying and other-owner datasets in their native formats."""
    js_metadata_text = (SAMPLE_DATASETS / "quotes-toscrape" / METADATA).read_text(encoding="utf-8")
    assert js_metadata_text.startswith('{\n\t"id": "')
    js_metadata = json.loads(js_metadata_text)
    assert js_metadata["id"] == JS_ID
    assert js_metadata["itemCount"] == len(item_files(SAMPLE_DATASETS / "quotes-toscrape")) == 10
    assert js_metadata["createdAt"].endswith("Z")
    assert (SAMPLE_DATASETS / "quotes-toscrape" / "000000001.json").read_text(encoding="utf-8").startswith('{\n\t"')

    assert not (SAMPLE_DATASETS / "default" / METADATA).exists()
    assert len(item_files(SAMPLE_DATASETS / "default")) == 8

    products = json.loads((SAMPLE_DATASETS / "products" / METADATA).read_text(encoding="utf-8"))
    assert products["schema"]["views"]["overview"]["transformation"]["fields"][0] == "title"
    assert products["clean_item_count"] == 20  # two of the 22 items are `{}`
    assert products["license"] and products["task_categories"] and products["summary"] and products["tags"]

    alice = json.loads((SAMPLE_DATASETS / ALICE_FOLDER / METADATA).read_text(encoding="utf-8"))
    assert (alice["user_id"], alice["username"], alice["name"]) == ("sampleOtherUser01", "alice", "competitor-prices")
    assert alice["general_access"] == "ANYONE_WITH_ID_CAN_READ"


# ----- served through the emulator -------------------------------------------------------------------


def test_default_listing_shows_every_named_dataset_of_the_account(apify) -> None:  # type: ignore[no-untyped-def]
    """List the five named datasets of the default account with their item counts, oldest first."""
    page = apify.datasets().list()
    assert {item.name: item.item_count for item in page.items} == NAMED
    assert page.total == page.count == len(NAMED)
    assert all(item.user_id == "localEmulatorUser" for item in page.items)
    created = [item.created_at for item in page.items]
    assert created == sorted(created)


def test_unnamed_listing_adds_the_unnamed_dataset(apify, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    """List the unnamed dataset too with ``unnamed=1``, through the client and over plain HTTP."""
    page = apify.datasets().list(unnamed=True)
    by_id = {item.id: item.item_count for item in page.items}
    assert by_id[UNNAMED_ID] == UNNAMED_COUNT
    assert len(by_id) == len(NAMED) + 1

    data = http_json(f"{live_server.url}/v2/datasets?unnamed=1")["data"]
    assert {item["id"]: item["itemCount"] for item in data["items"]} == by_id
    plain = http_json(f"{live_server.url}/v2/datasets")["data"]
    assert UNNAMED_ID not in {item["id"] for item in plain["items"]}
    assert plain["total"] == len(NAMED)


def test_every_dataset_is_readable_item_for_item(apify, storage_root: Path) -> None:  # type: ignore[no-untyped-def]
    """Return every sample dataset's items, in file order, with itemCount equal to its item files."""
    refs = {
        "products": PRODUCTS_ID,
        "news-articles": "~news-articles",
        "job-listings": "~job-listings",
        UNNAMED_ID: UNNAMED_ID,
        "quotes-toscrape": JS_ID,
        "default": "~default",
        ALICE_FOLDER: ALICE_FOLDER,
    }
    for folder, ref in refs.items():
        expected = items_on_disk(storage_root / "datasets" / folder)
        dataset = apify.dataset(ref).get()
        assert dataset is not None, ref
        assert dataset.item_count == len(expected), ref
        page = apify.dataset(ref).list_items()
        assert page.items == expected, ref
        assert (page.total, page.count, page.offset) == (len(expected), len(expected), 0), ref


def test_camel_case_dataset_is_served_with_its_own_metadata(apify) -> None:  # type: ignore[no-untyped-def]
    """Serve the JS-written dataset under its UUID, name and camelCase timestamps."""
    dataset = apify.dataset(JS_ID).get()
    assert dataset is not None
    assert (dataset.id, dataset.name, dataset.item_count) == (JS_ID, "quotes-toscrape", 10)
    assert dataset.created_at.isoformat() == "2025-02-11T16:20:05.812000+00:00"
    assert dataset.clean_item_count == 10
    items = apify.dataset("~quotes-toscrape").list_items(offset=8, limit=5).items
    assert [item["author"] for item in items] == ["Eleanor Roosevelt", "Steve Martin"]


def test_dataset_without_metadata_file_is_served(apify, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    """Serve the metadata-less ``default`` folder by name, counting its items from the files."""
    dataset = apify.dataset("~default").get()
    assert dataset is not None
    assert (dataset.name, dataset.item_count, dataset.clean_item_count) == ("default", 8, 8)
    assert len(dataset.id) == 17
    same = http_json(f"{live_server.url}/v2/datasets/{dataset.id}")["data"]
    assert (same["name"], same["itemCount"]) == ("default", 8)
    items = apify.dataset(dataset.id).list_items(desc=True, limit=2).items
    assert [item["title"] for item in items] == [
        "The Coming Woman",
        "The Dirty Little Secrets of Getting Your Dream Job",
    ]


def test_products_schema_view_and_clean_items(apify) -> None:  # type: ignore[no-untyped-def]
    """Serve the products schema, its ``overview`` view, and the 20 clean items without ``#debug``."""
    dataset = apify.dataset(PRODUCTS_ID).get()
    assert dataset is not None
    assert dataset.clean_item_count == 20
    assert dataset.schema_ is not None and dataset.schema_["actorSpecification"] == 1
    assert dataset.fields is not None and "price" in dataset.fields
    clean = apify.dataset(PRODUCTS_ID).list_items(clean=True).items
    assert len(clean) == 20
    assert not any(key.startswith("#") for item in clean for key in item)
    overview = apify.dataset(PRODUCTS_ID).list_items(view="overview", limit=1).items
    assert overview == [
        {
            "title": "Trailhead 45L Hiking Backpack",
            "brand": "Fjellsport",
            "price": {"amount": 149.0, "currency": "EUR"},
            "inStock": True,
            "rating": 4.6,
            "url": "https://shop.nordic-outdoor.example/products/trailhead-45l-hiking-backpack",
        }
    ]


def test_other_accounts_dataset_is_reachable_but_not_in_the_local_listing(  # type: ignore[no-untyped-def]
    apify, live_server: LiveServer
) -> None:
    """Serve alice's public dataset by id and ``alice~name``, and list it in alice's org listing only."""
    by_id = apify.dataset(ALICE_ID).get()
    by_name = apify.dataset(ALICE_FOLDER).get()
    assert by_id is not None and by_name is not None
    assert by_id.id == by_name.id == ALICE_ID
    assert (by_id.user_id, by_id.username, by_id.item_count) == ("sampleOtherUser01", "alice", 8)
    assert by_id.general_access == "ANYONE_WITH_ID_CAN_READ"
    assert ALICE_ID not in {item.id for item in apify.datasets().list(unnamed=True).items}

    listing = http_json(f"{live_server.url}/api/v1/org/alice/datasets")
    assert listing["total"] == 1
    row = listing["datasets"][0]
    assert row["name"] == "alice/competitor-prices"
    assert (row["row_count"], row["is_public"], row["license"]) == (8, True, "cc-by-sa-4.0")
    assert "price-monitoring" in row["task_categories"]


def test_serving_a_copy_leaves_the_committed_sample_unchanged(tmp_path: Path) -> None:
    """Serve, read and write a copy of the sample; the committed files stay byte-for-byte the same."""
    from apify_client import ApifyClient

    before = tree_digest(SAMPLE_ROOT)
    root = tmp_path / "copy"
    shutil.copytree(SAMPLE_ROOT, root)
    app: Flask = create_app({"ROOT": str(root), "TESTING": True})
    with LiveServer(app) as server:
        apify = ApifyClient(token="local-token", api_url=server.url, max_retries=0)
        for listed in apify.datasets().list(unnamed=True).items:
            apify.dataset(listed.id).get()
            apify.dataset(listed.id).list_items()
        apify.dataset("~job-listings").push_items([{"title": "Added to the copy"}])
        apify.dataset(ALICE_ID).list_items()
        apify.datasets().get_or_create(name="scratch")

    assert tree_digest(SAMPLE_ROOT) == before
    served = tree_digest(root)
    assert served != before  # the copy did change: the server really wrote somewhere
    assert "datasets/job-listings/000000013.json" in served
    assert "datasets/job-listings/000000013.json" not in before
    assert (root / "datasets" / "scratch" / METADATA).is_file()
    assert not (SAMPLE_DATASETS / "scratch").exists()
