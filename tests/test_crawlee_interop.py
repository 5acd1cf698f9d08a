"""Interoperability with the real Crawlee for Python (1.x): one storage root, read and written by both.

Each Crawlee step runs in a fresh subprocess: Crawlee caches opened storages process-wide, and a fresh
process is also what a user's crawler is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import crawlee_subprocess
from conftest import LiveServer
from flask import Flask

from storage_emulator import DatasetRepository
from storage_emulator.web import create_app

METADATA = "__metadata__.json"

CRAWLEE_PRELUDE = """
import asyncio
import json
import sys

from crawlee.configuration import Configuration
from crawlee.storage_clients import FileSystemStorageClient
from crawlee.storages import Dataset

ROOT = sys.argv[1]
ARGS = json.loads(sys.argv[2])
# purge_on_start defaults to True and would empty the unnamed (default) dataset on open.
CONFIG = Configuration(storage_dir=ROOT, purge_on_start=False)


async def open_dataset(name=None):
    return await Dataset.open(name=name, storage_client=FileSystemStorageClient(), configuration=CONFIG)


async def snapshot(dataset):
    metadata = await dataset.get_metadata()
    page = await dataset.get_data()
    return {"id": metadata.id, "name": metadata.name, "item_count": metadata.item_count, "items": page.items}
"""


def run_crawlee(root: Path, body: str, **args: Any) -> Any:
    """Run ``body`` with Crawlee in a fresh process (see ``crawlee_subprocess``); return its JSON result."""
    return crawlee_subprocess.run_crawlee(CRAWLEE_PRELUDE, root, body, **args)


def read_metadata_file(root: Path, folder: str) -> dict[str, Any]:
    """Parse a dataset folder's metadata file."""
    return json.loads((root / "datasets" / folder / METADATA).read_text(encoding="utf-8"))


def item_file_names(root: Path, folder: str) -> list[str]:
    """Return the names of a dataset folder's item files, sorted."""
    return sorted(path.name for path in (root / "datasets" / folder).iterdir() if path.name != METADATA)


CATALOG = [
    {"title": "Trailhead 45L Backpack", "price": {"amount": 149.0, "currency": "EUR"}, "tags": ["hiking"]},
    {"title": "Sleeping Bag -10°C", "price": {"amount": 249.0, "currency": "EUR"}, "tags": ["camping", "winter"]},
    {"title": "Headlamp 400 lm", "price": {"amount": 39.9, "currency": "EUR"}, "tags": []},
    {"title": "Titanium Spork", "price": {"amount": 12.5, "currency": "EUR"}, "#debug": {"retries": 2}},
    {"title": "Wool Socks (3-pack)", "price": {"amount": 24.9, "currency": "EUR"}, "tags": ["merino"]},
]
REVIEWS = [
    {"product": "Trailhead 45L Backpack", "stars": 5, "text": "Great fit, survived a week in the rain."},
    {"product": "Headlamp 400 lm", "stars": 3, "text": "Bright, but the strap is flimsy."},
    {"product": "Titanium Spork", "stars": 4, "text": "Light. Ça marche. 好用"},
]
DEFAULT_ITEMS = [
    {"url": "https://shop.example/", "status": 200},
    {"url": "https://shop.example/cart", "status": 302},
    {},
    {"url": "https://shop.example/missing", "status": 404, "errorInfo": {"message": "Not found"}},
]


def test_crawlee_written_root_is_listed_and_read_by_the_official_client(tmp_path: Path) -> None:
    """Serve a root Crawlee wrote: named datasets listed by default, its unnamed default one with unnamed=1."""
    from apify_client import ApifyClient

    root = tmp_path / "storage"
    written = run_crawlee(
        root,
        """
        catalog = await open_dataset("catalog")
        await catalog.push_data(ARGS["catalog"])
        reviews = await open_dataset("reviews")
        for review in ARGS["reviews"]:
            await reviews.push_data(review)
        default = await open_dataset()
        await default.push_data(ARGS["default"])
        return {name: await snapshot(dataset) for name, dataset in [
            ("catalog", catalog), ("reviews", reviews), ("default", default)
        ]}
        """,
        catalog=CATALOG,
        reviews=REVIEWS,
        default=DEFAULT_ITEMS,
    )
    assert sorted(path.name for path in (root / "datasets").iterdir()) == ["catalog", "default", "reviews"]
    assert read_metadata_file(root, "default")["name"] is None  # Crawlee 1.x: the default dataset is unnamed
    assert item_file_names(root, "catalog") == [f"00000000{index}.json" for index in range(1, 6)]
    assert written["catalog"]["items"] == CATALOG
    assert written["default"]["items"] == DEFAULT_ITEMS

    app: Flask = create_app({"ROOT": str(root), "TESTING": True})
    with LiveServer(app) as server:
        apify = ApifyClient(token="local-token", api_url=server.url, max_retries=0)
        named = apify.datasets().list()
        assert {item.name: (item.id, item.item_count) for item in named.items} == {
            "catalog": (written["catalog"]["id"], 5),
            "reviews": (written["reviews"]["id"], 3),
        }
        everything = apify.datasets().list(unnamed=True)
        assert {item.id: item.item_count for item in everything.items} == {
            written["catalog"]["id"]: 5,
            written["reviews"]["id"]: 3,
            written["default"]["id"]: 4,
        }

        default = apify.dataset(written["default"]["id"]).get()
        assert default is not None
        assert (default.name, default.item_count, default.clean_item_count) == (None, 4, 3)
        assert apify.dataset(written["default"]["id"]).list_items().items == DEFAULT_ITEMS
        assert apify.dataset("~catalog").list_items().items == CATALOG
        assert apify.dataset(written["reviews"]["id"]).list_items().items == REVIEWS
        assert apify.dataset("~reviews").list_items(desc=True, limit=1).items == [REVIEWS[-1]]

    # The emulator rewrites the metadata files with the read counters (throttled: flush them now);
    # Crawlee opens the same datasets unchanged.
    app.extensions["storage_emulator"].flush_reads()
    assert read_metadata_file(root, "default")["read_count"] == 1
    again = run_crawlee(root, "return [await snapshot(await open_dataset(name)) for name in (None, 'catalog')]")
    assert again == [written["default"], written["catalog"]]


def test_emulator_written_datasets_open_in_crawlee_and_keep_extra_metadata(  # type: ignore[no-untyped-def]
    repo: DatasetRepository, apify, storage_root: Path
) -> None:
    """Open datasets written by the repository API and over HTTP in Crawlee; its rewrite keeps our keys."""
    schema = {
        "actorSpecification": 1,
        "fields": {"type": "object", "properties": {"title": {"type": "string"}}},
        "views": {"overview": {"title": "Overview", "transformation": {"fields": ["title"]}}},
    }
    via_repo, created = repo.get_or_create_dataset(name="emu-repo", schema=schema)
    assert created
    repo_items = [{"title": "one", "n": 1}, {"title": "two", "nested": {"a": [1, 2]}}, {"#hidden": True}]
    repo.push_items(via_repo.id, repo_items)

    via_http = apify.datasets().get_or_create(name="emu-http")
    http_items = [{"title": f"item {index}", "index": index} for index in range(7)]
    apify.dataset(via_http.id).push_items(http_items[:4])
    apify.dataset(via_http.id).push_items(http_items[4:])

    before = {folder: read_metadata_file(storage_root, folder) for folder in ("emu-repo", "emu-http")}
    assert before["emu-repo"]["schema"] == schema

    read = run_crawlee(
        storage_root,
        """
        return {name: await snapshot(await open_dataset(name)) for name in ("emu-repo", "emu-http")}
        """,
    )
    assert read["emu-repo"] == {"id": via_repo.id, "name": "emu-repo", "item_count": 3, "items": repo_items}
    assert read["emu-http"] == {"id": via_http.id, "name": "emu-http", "item_count": 7, "items": http_items}

    for folder in ("emu-repo", "emu-http"):
        after = read_metadata_file(storage_root, folder)
        assert after["accessed_at"] != before[folder]["accessed_at"]  # Crawlee did rewrite the file
        assert {key: value for key, value in after.items() if key != "accessed_at"} == {
            key: value for key, value in before[folder].items() if key != "accessed_at"
        }
        assert after["user_id"] == "localEmulatorUser"
        assert after["url_signing_secret_key"]

    served = apify.dataset("~emu-repo").get()
    assert served is not None
    assert served.schema_ == schema
    assert (served.user_id, served.item_count, served.clean_item_count) == ("localEmulatorUser", 3, 2)
    assert served.url_signing_secret_key == before["emu-repo"]["url_signing_secret_key"]


def test_crawlee_push_between_emulator_pushes_overwrites_nothing(  # type: ignore[no-untyped-def]
    repo: DatasetRepository, apify, storage_root: Path
) -> None:
    """Number items 1..6 across emulator, Crawlee and emulator pushes, each file holding its own item."""
    dataset, _ = repo.get_or_create_dataset(name="interleaved")
    repo.push_items(dataset.id, [{"n": n, "by": "repository"} for n in (1, 2, 3)])

    crawlee_view = run_crawlee(
        storage_root,
        """
        dataset = await open_dataset("interleaved")
        await dataset.push_data([{"n": 4, "by": "crawlee"}, {"n": 5, "by": "crawlee"}])
        return await snapshot(dataset)
        """,
    )
    assert crawlee_view["id"] == dataset.id
    assert crawlee_view["item_count"] == 5
    assert read_metadata_file(storage_root, "interleaved")["item_count"] == 5

    apify.dataset("~interleaved").push_items([{"n": 6, "by": "http"}])

    expected = [{"n": n, "by": by} for n, by in enumerate(["repository"] * 3 + ["crawlee"] * 2 + ["http"], start=1)]
    names = item_file_names(storage_root, "interleaved")
    assert names == [f"00000000{n}.json" for n in range(1, 7)]
    folder = storage_root / "datasets" / "interleaved"
    assert [json.loads((folder / name).read_text(encoding="utf-8")) for name in names] == expected
    metadata = read_metadata_file(storage_root, "interleaved")
    assert (metadata["item_count"], metadata["clean_item_count"], metadata["write_count"]) == (6, 6, 2)

    served = apify.dataset(dataset.id).get()
    assert served is not None
    assert (served.item_count, served.clean_item_count) == (6, 6)
    assert apify.dataset(dataset.id).list_items().items == expected

    again = run_crawlee(storage_root, 'return await snapshot(await open_dataset("interleaved"))')
    assert (again["item_count"], again["items"]) == (6, expected)


def test_storage_bytes_count_items_crawlee_pushed_between_emulator_pushes(  # type: ignore[no-untyped-def]
    repo: DatasetRepository, apify, storage_root: Path
) -> None:
    """Report ``stats.storageBytes`` equal to the item files' size after a Crawlee push in between."""
    dataset, _ = repo.get_or_create_dataset(name="bytes")
    repo.push_items(dataset.id, [{"text": "emulator " * 10}])
    run_crawlee(storage_root, 'await (await open_dataset("bytes")).push_data([{"text": "crawlee " * 20}] * 2)')
    apify.dataset(dataset.id).push_items([{"text": "http"}])

    folder = storage_root / "datasets" / "bytes"
    on_disk = sum((folder / name).stat().st_size for name in item_file_names(storage_root, "bytes"))
    served = apify.dataset(dataset.id).get()
    assert served is not None
    assert served.item_count == 4
    assert served.stats is not None
    assert served.stats.storage_bytes == on_disk
    assert read_metadata_file(storage_root, "bytes")["storage_bytes"] == on_disk
