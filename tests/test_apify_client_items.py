"""The official Python apify-client against a live server: items, formats, statistics, update, delete."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest

PRODUCTS = [
    {"name": "Kettle", "price": 25, "tags": ["kitchen", "steel"], "#debug": "x"},
    {"name": "Toaster", "price": 40, "tags": ["kitchen"]},
    {},
    {"name": "Lamp", "price": 15, "tags": [], "errorInfo": "timeout"},
    {"#only": "hidden"},
]


@pytest.fixture
def dataset(apify):  # type: ignore[no-untyped-def]
    """A named dataset holding PRODUCTS, made through the client."""
    created = apify.datasets().get_or_create(name="products")
    apify.dataset(created.id).push_items(PRODUCTS)
    return apify.dataset(created.id)


def stored_items(storage_root: Path, folder: str) -> list[dict]:
    path = storage_root / "datasets" / folder
    return [json.loads(p.read_text()) for p in sorted(path.glob("[0-9]*.json"))]


def test_push_dict_list_and_str(apify, storage_root: Path) -> None:  # type: ignore[no-untyped-def]
    client = apify.dataset(apify.datasets().get_or_create(name="pushed").id)

    client.push_items({"a": 1})
    client.push_items([{"a": 2}, {"a": 3}])
    client.push_items(json.dumps([{"a": 4}]))
    client.push_items('{"a": 5}')

    assert stored_items(storage_root, "pushed") == [{"a": i} for i in range(1, 6)]
    dataset = client.get()
    assert dataset.item_count == 5 and dataset.clean_item_count == 5
    assert dataset.stats.write_count == 4


def test_push_large_body_arrives_gzipped(app, apify, storage_root: Path) -> None:  # type: ignore[no-untyped-def]
    seen: list[str | None] = []
    inner = app.wsgi_app

    def record(environ, start_response):  # type: ignore[no-untyped-def]
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/items"):
            seen.append(environ.get("HTTP_CONTENT_ENCODING"))
        return inner(environ, start_response)

    app.wsgi_app = record
    client = apify.dataset(apify.datasets().get_or_create(name="big").id)
    items = [{"index": i, "text": "lorem ipsum " * 10} for i in range(500)]

    client.push_items(items)

    assert seen == ["gzip"]
    assert client.get().item_count == 500
    assert stored_items(storage_root, "big") == items


def test_list_items_defaults_and_pagination(dataset) -> None:  # type: ignore[no-untyped-def]
    page = dataset.list_items()
    assert page.items == PRODUCTS
    assert (page.total, page.offset, page.count, page.limit, page.desc) == (5, 0, 5, 999999999999, False)

    page = dataset.list_items(offset=1, limit=2)
    assert page.items == PRODUCTS[1:3] and (page.offset, page.limit, page.count) == (1, 2, 2)

    page = dataset.list_items(desc=True, limit=2)
    assert page.items == [PRODUCTS[4], PRODUCTS[3]] and page.desc is True

    page = dataset.list_items(offset=10)
    assert page.items == [] and page.count == 0 and page.total == 5


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (
            {"fields": ["price", "name"]},
            [{"price": 25, "name": "Kettle"}, {"price": 40, "name": "Toaster"}, {}, {"price": 15, "name": "Lamp"}, {}],
        ),
        (
            {"omit": ["tags", "#debug", "errorInfo"]},
            [
                {"name": "Kettle", "price": 25},
                {"name": "Toaster", "price": 40},
                {},
                {"name": "Lamp", "price": 15},
                {"#only": "hidden"},
            ],
        ),
        (
            {"clean": True},
            [
                {"name": "Kettle", "price": 25, "tags": ["kitchen", "steel"]},
                {"name": "Toaster", "price": 40, "tags": ["kitchen"]},
                {"name": "Lamp", "price": 15, "tags": [], "errorInfo": "timeout"},
            ],
        ),
        ({"skip_empty": True}, [PRODUCTS[0], PRODUCTS[1], PRODUCTS[3], PRODUCTS[4]]),
        ({"skip_hidden": True, "limit": 1}, [{"name": "Kettle", "price": 25, "tags": ["kitchen", "steel"]}]),
        (
            {"unwind": ["tags"], "fields": ["name", "tags"], "limit": 2},
            [
                {"name": "Kettle", "tags": "kitchen"},
                {"name": "Kettle", "tags": "steel"},
                {"name": "Toaster", "tags": "kitchen"},
            ],
        ),
    ],
    ids=["fields", "omit", "clean", "skip_empty", "skip_hidden", "unwind"],
)
def test_list_items_parameters(dataset, kwargs: dict, expected: list) -> None:  # type: ignore[no-untyped-def]
    assert dataset.list_items(**kwargs).items == expected


def test_list_items_flatten(apify) -> None:  # type: ignore[no-untyped-def]
    client = apify.dataset(apify.datasets().get_or_create(name="nested").id)
    client.push_items([{"a": {"b": 1, "c": {"d": 2}}, "e": 3}])

    assert client.list_items(flatten=["a"]).items == [{"a.b": 1, "a.c.d": 2, "e": 3}]


def test_count_header_counts_rows_not_items_left_after_filters(dataset) -> None:  # type: ignore[no-untyped-def]
    page = dataset.list_items(offset=1, limit=3, skip_empty=True)

    assert page.items == [PRODUCTS[1], PRODUCTS[3]]
    assert page.count == 3  # rows 1..3 of the dataset were covered, one of them empty


def test_iterate_items_with_skip_empty_over_many_pages(apify) -> None:  # type: ignore[no-untyped-def]
    client = apify.dataset(apify.datasets().get_or_create(name="many").id)
    items = [{} if i % 7 == 0 else {"i": i} for i in range(3000)]
    for start in range(0, 3000, 1000):
        client.push_items(items[start : start + 1000])

    got = list(client.iterate_items(skip_empty=True))

    assert got == [item for item in items if item]
    assert len({item["i"] for item in got}) == len(got)
    assert list(client.iterate_items(chunk_size=700)) == items


def test_view_from_the_dataset_schema(apify) -> None:  # type: ignore[no-untyped-def]
    schema = {"actorSpecification": 1, "views": {"overview": {"transformation": {"fields": ["name"]}}}}
    client = apify.dataset(apify.datasets().get_or_create(name="viewed", schema=schema).id)
    client.push_items([{"name": "x", "secret": 1}])

    assert client.list_items(view="overview").items == [{"name": "x"}]


ROWS = [{"name": "Kettle", "price": 25, "city": "Brno"}, {"name": "Toaster", "price": 40, "city": "Praha"}]


@pytest.fixture
def table(apify):  # type: ignore[no-untyped-def]
    """A dataset of flat rows, for the format round trips."""
    client = apify.dataset(apify.datasets().get_or_create(name="table").id)
    client.push_items(ROWS)
    return client


def as_strings(rows: list[dict]) -> list[dict]:
    return [{key: str(value) for key, value in row.items()} for row in rows]


def test_format_json_and_jsonl(table) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(table.get_items_as_bytes(item_format="json")) == ROWS
    lines = table.get_items_as_bytes(item_format="jsonl").decode().splitlines()
    assert [json.loads(line) for line in lines] == ROWS


def test_format_csv(table) -> None:  # type: ignore[no-untyped-def]
    raw = table.get_items_as_bytes(item_format="csv")
    assert raw.startswith("\ufeff".encode())
    assert list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))) == as_strings(ROWS)


def test_format_xlsx(table) -> None:  # type: ignore[no-untyped-def]
    sheet = openpyxl.load_workbook(io.BytesIO(table.get_items_as_bytes(item_format="xlsx"))).active
    header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert [dict(zip(header, row, strict=True)) for row in rows] == ROWS


def test_format_xml_and_rss(table) -> None:  # type: ignore[no-untyped-def]
    root = ET.fromstring(table.get_items_as_bytes(item_format="xml"))
    assert root.tag == "items"
    assert [{child.tag: child.text for child in item} for item in root.findall("item")] == as_strings(ROWS)

    rss = ET.fromstring(table.get_items_as_bytes(item_format="rss"))
    assert rss.tag == "rss"
    items = rss.findall("./channel/item")
    assert [{child.tag: child.text for child in item} for item in items] == as_strings(ROWS)


def test_format_html(table) -> None:  # type: ignore[no-untyped-def]
    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.in_cell = False

        def handle_starttag(self, tag: str, attrs: list) -> None:  # type: ignore[type-arg]
            if tag == "tr":
                self.rows.append([])
            self.in_cell = tag in ("td", "th")

        def handle_data(self, data: str) -> None:
            if self.in_cell:
                self.rows[-1].append(data)

        def handle_endtag(self, tag: str) -> None:
            self.in_cell = False

    parser = Cells()
    parser.feed(table.get_items_as_bytes(item_format="html").decode())
    header, *rows = parser.rows
    assert [dict(zip(header, row, strict=True)) for row in rows] == as_strings(ROWS)


def test_statistics(apify) -> None:  # type: ignore[no-untyped-def]
    schema = {
        "actorSpecification": 1,
        "fields": {"type": "object", "properties": {"price": {"type": "number"}, "name": {"type": ["string", "null"]}}},
    }
    client = apify.dataset(apify.datasets().get_or_create(name="stats", schema=schema).id)
    client.push_items([{"price": 3, "name": "ab"}, {"price": 10, "name": None}, {"name": "abcd"}])

    stats = client.get_statistics()

    assert stats.field_statistics["price"] == {"min": 3, "max": 10, "nullCount": 0, "emptyCount": 1}
    assert stats.field_statistics["name"] == {"min": 2, "max": 4, "nullCount": 1, "emptyCount": 0}


def test_statistics_without_schema_is_null(table) -> None:  # type: ignore[no-untyped-def]
    assert table.get_statistics().field_statistics is None


def test_update_renames_and_the_folder_follows(apify, table, storage_root: Path) -> None:  # type: ignore[no-untyped-def]
    updated = table.update(name="renamed", general_access="ANYONE_WITH_ID_CAN_READ")

    assert updated.name == "renamed" and updated.general_access == "ANYONE_WITH_ID_CAN_READ"
    assert (storage_root / "datasets" / "renamed" / "000000001.json").is_file()
    assert not (storage_root / "datasets" / "table").exists()
    assert apify.dataset("~renamed").get().id == updated.id
    assert table.list_items().items == ROWS


def test_update_to_a_taken_name_is_409(apify, table) -> None:  # type: ignore[no-untyped-def]
    from apify_client.errors import ApifyApiError

    apify.datasets().get_or_create(name="taken")

    with pytest.raises(ApifyApiError) as info:
        table.update(name="taken")
    assert info.value.status_code == 409 and info.value.type == "name-not-unique"
    assert table.get().name == "table"


def test_update_to_unnamed_moves_the_folder_to_the_id(client, table, storage_root: Path) -> None:  # type: ignore[no-untyped-def]
    # The Python client drops name=None from its body, so send {"name": null} as curl would.
    dataset_id = table.get().id

    response = client.put(f"/v2/datasets/{dataset_id}", json={"name": None})

    assert response.status_code == 200 and response.get_json()["data"]["name"] is None
    assert table.get().name is None
    assert (storage_root / "datasets" / dataset_id / "000000002.json").is_file()
    assert not (storage_root / "datasets" / "table").exists()


def test_delete(apify, table, storage_root: Path) -> None:  # type: ignore[no-untyped-def]
    dataset_id = table.get().id

    table.delete()

    assert table.get() is None
    assert not (storage_root / "datasets" / "table").exists()
    assert apify.dataset(dataset_id).get() is None


def test_counters_move(table) -> None:  # type: ignore[no-untyped-def]
    before = table.get()
    table.list_items()
    after = table.get()

    assert after.stats.read_count == before.stats.read_count + 1
    assert after.accessed_at > before.accessed_at
    assert after.modified_at == before.modified_at
    assert after.stats.storage_bytes > 0
