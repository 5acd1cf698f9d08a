"""Bad input gets a clear error and loses nothing: the items, statistics and update endpoints over HTTP."""

from __future__ import annotations

import gzip
import http.client
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli
import pytest
from envelopes import assert_apify_error
from flask import Flask
from flask.testing import FlaskClient

from storage_emulator import DatasetRepository
from storage_emulator.push_body import MAX_PAYLOAD_BYTES

PAGINATION_HEADERS = (
    "X-Apify-Pagination-Offset",
    "X-Apify-Pagination-Limit",
    "X-Apify-Pagination-Count",
    "X-Apify-Pagination-Total",
    "X-Apify-Pagination-Desc",
)
FORMATS = ("json", "jsonl", "csv", "html", "xlsx", "xml", "rss")
ITEMS = [{"title": "first", "price": 1}, {"title": "second", "price": 2}, {"title": "third", "price": 3}]
SCHEMA = {
    "actorSpecification": 1,
    "fields": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "price": {"type": "number"}},
        "required": ["title", "price"],
    },
    "views": {"overview": {"transformation": {"fields": ["title"]}}},
}


@dataclass(frozen=True)
class Datasets:
    """The datasets every test starts with: ``target`` (3 items), ``typed`` (schema, 2 items), ``other`` (empty)."""

    target: str
    typed: str
    other: str


@pytest.fixture
def datasets(app: Flask) -> Datasets:
    """Create the three datasets through the app's repository."""
    repo: DatasetRepository = app.extensions["storage_emulator"]
    target, _ = repo.get_or_create_dataset(name="target")
    typed, _ = repo.get_or_create_dataset(name="typed", schema=SCHEMA)
    other, _ = repo.get_or_create_dataset(name="other")
    repo.push_items(target.id, ITEMS)
    repo.push_items(typed.id, ITEMS[:2])
    return Datasets(target=target.id, typed=typed.id, other=other.id)


def disk_state(storage_root: Path) -> tuple[dict[str, bytes], dict[str, dict[str, Any]]]:
    """Return every non-metadata file under datasets/ (bytes) and the lasting fields of each metadata file.

    ``accessed_at`` and ``read_count`` are left out: a read may move them; nothing else may change.
    """
    datasets_dir = storage_root / "datasets"
    files = {
        str(path.relative_to(datasets_dir)): path.read_bytes()
        for path in sorted(datasets_dir.rglob("*"))
        if path.is_file() and path.name != "__metadata__.json"
    }
    metadata = {}
    for path in sorted(datasets_dir.glob("*/__metadata__.json")):
        raw = json.loads(path.read_text())
        metadata[path.parent.name] = {
            key: raw.get(key)
            for key in (
                "id",
                "name",
                "item_count",
                "clean_item_count",
                "write_count",
                "storage_bytes",
                "modified_at",
                "general_access",
                "title",
                "schema",
            )
        }
    return files, metadata


def item_count_on_disk(storage_root: Path, folder: str) -> int:
    """Read ``item_count`` from a dataset's ``__metadata__.json``."""
    return int(json.loads((storage_root / "datasets" / folder / "__metadata__.json").read_text())["item_count"])


# ----- POST /v2/datasets/{id}/items: bad bodies --------------------------------------------------------


BAD_PUSH_BODIES = [
    pytest.param(b"{not json", None, 400, "invalid-input", "not valid JSON", id="not-json"),
    pytest.param(b'{"a": 1', None, 400, "invalid-input", "not valid JSON", id="truncated-json"),
    pytest.param(b"42", None, 400, "invalid-input", "JSON number", id="scalar-number"),
    pytest.param(b"true", None, 400, "invalid-input", "JSON boolean", id="scalar-boolean"),
    pytest.param(b"null", None, 400, "invalid-input", "JSON null", id="scalar-null"),
    pytest.param(b'"just text"', None, 400, "invalid-input", "not valid JSON", id="scalar-string"),
    pytest.param(b'[{"a": 1}, {"b": 2}, 3]', None, 400, "invalid-input", "index 2", id="non-object-at-index-2"),
    pytest.param(b'[{"a": 1}, "x"]', None, 400, "invalid-input", "index 1", id="string-at-index-1"),
    pytest.param(b'[{"a": 1}, null]', None, 400, "invalid-input", "index 1", id="null-at-index-1"),
    pytest.param(b'[[{"a": 1}]]', None, 400, "invalid-input", "index 0", id="nested-array"),
    pytest.param(b"", None, 400, "invalid-input", "empty", id="empty-body"),
    pytest.param(b"  \n\t ", None, 400, "invalid-input", "empty", id="blank-body"),
    pytest.param(b'{"a": NaN}', None, 400, "invalid-input", "NaN", id="nan"),
    pytest.param(b'{"a": "\xff\xfe"}', None, 400, "invalid-input", "UTF-8", id="not-utf8"),
    pytest.param(b'{"a": 1}', "compress", 415, "unsupported-content-encoding", "compress", id="compress"),
    pytest.param(b'{"a": 1}', "zstd", 415, "unsupported-content-encoding", "zstd", id="zstd"),
    pytest.param(b'{"a": 1}', "gzip, zstd", 415, "unsupported-content-encoding", "zstd", id="gzip-then-zstd"),
    pytest.param(b"\x1f\x8b\x08\x00garbage-not-deflate", "gzip", 400, "invalid-input", "gzip", id="corrupt-gzip"),
    pytest.param(
        gzip.compress(b'[{"a": 1}, {"b": 2}]')[:-12], "gzip", 400, "invalid-input", "truncated", id="truncated-gzip"
    ),
    pytest.param(b'{"a": 1}', "gzip", 400, "invalid-input", "gzip", id="plain-json-labelled-gzip"),
    pytest.param(b"this is not brotli data at all", "br", 400, "invalid-input", "br", id="corrupt-brotli"),
    pytest.param(
        brotli.compress(b'[{"a": 1}, {"b": 2}]' * 50)[:-6], "br", 400, "invalid-input", "br", id="truncated-brotli"
    ),
    pytest.param(
        zlib.compress(b'{"a": 1}')[:4] + b"\x00" * 8, "deflate", 400, "invalid-input", "deflate", id="corrupt-deflate"
    ),
    pytest.param(gzip.compress(b"[1, 2]"), "gzip", 400, "invalid-input", "index 0", id="gzip-of-bad-items"),
]


@pytest.mark.parametrize("body, encoding, status, error_type, mentions", BAD_PUSH_BODIES)
def test_push_rejects_bad_body_and_stores_nothing(
    client: FlaskClient,
    storage_root: Path,
    datasets: Datasets,
    body: bytes,
    encoding: str | None,
    status: int,
    error_type: str,
    mentions: str,
) -> None:
    """A malformed, mistyped or badly encoded push body is refused with its problem named, and nothing is written."""
    before = disk_state(storage_root)
    headers = {"Content-Encoding": encoding} if encoding else {}

    response = client.post(
        f"/v2/datasets/{datasets.target}/items", data=body, content_type="application/json", headers=headers
    )

    assert_apify_error(response, status, error_type, mentions=mentions)
    assert disk_state(storage_root) == before
    assert item_count_on_disk(storage_root, "target") == 3
    assert json.loads(client.get(f"/v2/datasets/{datasets.target}/items").data) == ITEMS


def test_push_of_a_plain_body_over_the_limit_is_413_with_limit_and_length(
    client: FlaskClient, storage_root: Path, datasets: Datasets
) -> None:
    """A plain body one hundred bytes past 9,437,184 is 413, the message giving the limit and the exact length."""
    length = MAX_PAYLOAD_BYTES + 100
    body = b'[{"pad": "' + b"x" * (length - 13) + b'"}]'
    assert len(body) == length
    before = disk_state(storage_root)

    response = client.post(f"/v2/datasets/{datasets.target}/items", data=body, content_type="application/json")

    assert_apify_error(response, 413, "request-too-large", mentions="9437184")
    assert str(length) in response.get_json()["error"]["message"]
    assert disk_state(storage_root) == before
    assert item_count_on_disk(storage_root, "target") == 3


def test_push_of_a_body_exactly_at_the_limit_is_stored(
    client: FlaskClient, storage_root: Path, datasets: Datasets
) -> None:
    """The limit is inclusive: a body of exactly 9,437,184 bytes is one item, stored."""
    body = b'{"pad": "' + b"x" * (MAX_PAYLOAD_BYTES - 11) + b'"}'
    assert len(body) == MAX_PAYLOAD_BYTES

    response = client.post(f"/v2/datasets/{datasets.other}/items", data=body, content_type="application/json")

    assert response.status_code == 201
    assert item_count_on_disk(storage_root, "other") == 1
    assert len(json.loads((storage_root / "datasets" / "other" / "000000001.json").read_text())["pad"]) == (
        MAX_PAYLOAD_BYTES - 11
    )


@pytest.mark.parametrize(
    "encoding, compress",
    [
        ("gzip", lambda data: gzip.compress(data, compresslevel=9)),
        ("br", lambda data: brotli.compress(data)),
        ("deflate", lambda data: zlib.compress(data, 9)),
    ],
    ids=["gzip", "br", "deflate"],
)
def test_push_of_a_small_compressed_body_inflating_past_the_limit_is_413(
    client: FlaskClient, storage_root: Path, datasets: Datasets, encoding: str, compress: Any
) -> None:
    """A decompression bomb (tens of KB inflating to 18 MiB) is 413 naming the limit; nothing is stored."""
    body = compress(b"[" + b" " * (2 * MAX_PAYLOAD_BYTES) + b"]")
    assert len(body) < 100_000
    before = disk_state(storage_root)

    response = client.post(
        f"/v2/datasets/{datasets.target}/items",
        data=body,
        content_type="application/json",
        headers={"Content-Encoding": encoding},
    )

    assert_apify_error(response, 413, "request-too-large", mentions="9437184")
    assert "decompressed" in response.get_json()["error"]["message"]
    assert disk_state(storage_root) == before


def test_push_failing_the_schema_is_400_with_item_positions_and_stores_none(
    client: FlaskClient, storage_root: Path, datasets: Datasets
) -> None:
    """One batch with invalid items at positions 1 and 3 is refused whole: the valid items 0 and 2 are not stored."""
    batch = [
        {"title": "ok-1", "price": 10},
        {"title": "bad-price", "price": "ten"},
        {"title": "ok-2", "price": 20},
        {"price": 30},
    ]
    before = disk_state(storage_root)

    response = client.post(f"/v2/datasets/{datasets.typed}/items", json=batch)

    assert_apify_error(response, 400, "schema-validation-error")
    invalid = response.get_json()["error"]["data"]["invalidItems"]
    assert [entry["itemPosition"] for entry in invalid] == [1, 3]
    assert invalid[0]["validationErrors"][0]["instancePath"] == "/price"
    assert invalid[0]["validationErrors"][0]["keyword"] == "type"
    assert invalid[1]["validationErrors"][0]["params"] == {"missingProperty": "title"}
    assert disk_state(storage_root) == before
    assert item_count_on_disk(storage_root, "typed") == 2
    assert not (storage_root / "datasets" / "typed" / "000000003.json").exists()


def test_push_to_a_missing_dataset_is_404_and_creates_nothing(
    client: FlaskClient, storage_root: Path, datasets: Datasets
) -> None:
    """Pushing to an unknown id or ~name is 404 record-not-found; no folder appears."""
    before = disk_state(storage_root)

    for ref in ("aaaaaaaaaaaaaaaaa", "~missing", "alice~missing"):
        response = client.post(f"/v2/datasets/{ref}/items", json={"a": 1})
        assert_apify_error(response, 404, "record-not-found", mentions="Dataset was not found")

    assert disk_state(storage_root) == before
    assert sorted(p.name for p in (storage_root / "datasets").iterdir()) == ["other", "target", "typed"]


# ----- ?method=POST override ------------------------------------------------------------------------


def test_method_post_override_pushes_through_a_get(client: FlaskClient, storage_root: Path, datasets: Datasets) -> None:
    """``GET …/items?method=POST`` with a body is a push: 201, ``{}``, and the item is the dataset's 4th."""
    response = client.get(
        f"/v2/datasets/{datasets.target}/items?method=POST",
        data=b'{"title": "via-get"}',
        content_type="application/json",
    )

    assert response.status_code == 201
    assert response.get_json() == {}
    assert response.headers["Location"] == f"http://localhost/v2/datasets/{datasets.target}/items"
    assert item_count_on_disk(storage_root, "target") == 4
    assert json.loads((storage_root / "datasets" / "target" / "000000004.json").read_text()) == {"title": "via-get"}


def test_method_post_override_with_a_bad_body_stores_nothing(
    client: FlaskClient, storage_root: Path, datasets: Datasets
) -> None:
    """A push through ``?method=POST`` gets the same all-or-nothing check as a real POST."""
    before = disk_state(storage_root)

    response = client.get(
        f"/v2/datasets/{datasets.target}/items?method=post", data=b'[{"a": 1}, 7]', content_type="application/json"
    )

    assert_apify_error(response, 400, "invalid-input", mentions="index 1")
    assert disk_state(storage_root) == before


# ----- GET /v2/datasets/{id}/items: bad parameters -------------------------------------------------


BAD_READ_QUERIES = [
    ("format=yaml", "format"),
    ("format=", None),  # empty is the default: not an error (kept here as the control row)
    ("offset=-1", "offset"),
    ("offset=abc", "offset"),
    ("offset=1.5", "offset"),
    ("limit=abc", "limit"),
    ("limit=-3", "limit"),
    ("limit=2e3", "limit"),
    ("desc=maybe", "desc"),
    ("desc=yes", "desc"),
    ("clean=2", "clean"),
    ("skipHidden=on", "skipHidden"),
    ("skipEmpty=no", "skipEmpty"),
    ("skipHeaderRow=y&format=csv", "skipHeaderRow"),
    ("skipFailedPages=2", "skipFailedPages"),
    ("attachment=please", "attachment"),
    ("bom=-1&format=csv", "bom"),
    ("delimiter=;;&format=csv", "delimiter"),
    ("delimiter=%22&format=csv", "delimiter"),
    ("delimiter=%0A&format=csv", "delimiter"),
    ("delimiter=%00&format=csv", "delimiter"),
    ("limit=1_000", "limit"),
    ("offset=%EF%BC%91", "offset"),
    ("view=unknown", "view"),
    ("outputFields=a", "outputFields"),
    ("outputFields=a,b&fields=title", "outputFields"),
]


@pytest.mark.parametrize("query, parameter", BAD_READ_QUERIES, ids=[q for q, _ in BAD_READ_QUERIES])
def test_read_rejects_bad_parameters_naming_them(
    client: FlaskClient, storage_root: Path, datasets: Datasets, query: str, parameter: str | None
) -> None:
    """Each bad items parameter is 400 invalid-input naming it; a rejected read is not even counted as one."""
    before = disk_state(storage_root)
    metadata_file = storage_root / "datasets" / "target" / "__metadata__.json"
    metadata_before = metadata_file.read_bytes()

    response = client.get(f"/v2/datasets/{datasets.target}/items?{query}")

    if parameter is None:
        assert response.status_code == 200 and json.loads(response.data) == ITEMS
    else:
        assert_apify_error(response, 400, "invalid-input", mentions=f"'{parameter}'")
        assert metadata_file.read_bytes() == metadata_before  # no read_count, no accessed_at
    assert disk_state(storage_root) == before


@pytest.mark.parametrize("query, parameter", [("offset=-1", "offset"), ("format=yaml", "format"), ("desc=2", "desc")])
def test_head_rejects_bad_parameters_too(
    client: FlaskClient, storage_root: Path, datasets: Datasets, query: str, parameter: str
) -> None:
    """HEAD with a bad parameter is 400, not a 200 with pagination headers (and never 5xx)."""
    before = disk_state(storage_root)

    response = client.head(f"/v2/datasets/{datasets.target}/items?{query}")

    assert response.status_code == 400
    assert response.data == b""
    assert "X-Apify-Pagination-Total" not in response.headers
    assert disk_state(storage_root) == before


def test_unknown_view_with_a_schema_names_the_known_views(
    client: FlaskClient, storage_root: Path, datasets: Datasets
) -> None:
    """On a dataset whose schema has views, an unknown view is 400 naming 'view' and listing the views it has."""
    before = disk_state(storage_root)

    response = client.get(f"/v2/datasets/{datasets.typed}/items?view=unknown")

    assert_apify_error(response, 400, "invalid-input", mentions="'view'")
    message = response.get_json()["error"]["message"]
    assert "unknown" in message and "overview" in message
    assert disk_state(storage_root) == before
    # The known view still works: the control.
    good = client.get(f"/v2/datasets/{datasets.typed}/items?view=overview")
    assert good.status_code == 200 and json.loads(good.data) == [{"title": "first"}, {"title": "second"}]


def test_unknown_view_without_a_schema_says_there_are_none(client: FlaskClient, datasets: Datasets) -> None:
    """On a dataset without a schema, any view is 400 naming 'view'."""
    response = client.get(f"/v2/datasets/{datasets.target}/items?view=overview")

    assert_apify_error(response, 400, "invalid-input", mentions="'view'")
    assert "none" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("method", ["get", "head"])
def test_read_of_a_missing_dataset_is_404(client: FlaskClient, datasets: Datasets, method: str) -> None:
    """GET and HEAD items of an unknown dataset are 404 (GET with the record-not-found envelope)."""
    response = getattr(client, method)("/v2/datasets/~missing/items")

    if method == "get":
        assert_apify_error(response, 404, "record-not-found", mentions="Dataset was not found")
    else:
        assert response.status_code == 404 and response.data == b""


def test_statistics_of_a_missing_dataset_is_404(client: FlaskClient, datasets: Datasets) -> None:
    """GET …/statistics of an unknown dataset is 404 record-not-found."""
    for ref in ("aaaaaaaaaaaaaaaaa", "~missing"):
        assert_apify_error(client.get(f"/v2/datasets/{ref}/statistics"), 404, "record-not-found")


def test_statistics_control_values(client: FlaskClient, datasets: Datasets) -> None:
    """Statistics of the schema'd dataset measure its declared fields; without a schema they are null."""
    typed = client.get(f"/v2/datasets/{datasets.typed}/statistics")
    plain = client.get(f"/v2/datasets/{datasets.target}/statistics")

    assert typed.get_json() == {
        "data": {
            "fieldStatistics": {
                "title": {"min": 5, "max": 6, "nullCount": 0, "emptyCount": 0},
                "price": {"min": 1, "max": 2, "nullCount": 0, "emptyCount": 0},
            }
        }
    }
    assert plain.get_json() == {"data": {"fieldStatistics": None}}


# ----- Pagination headers on every items response ----------------------------------------------------


def test_head_returns_the_five_pagination_headers_and_no_body(client: FlaskClient, datasets: Datasets) -> None:
    """HEAD items answers 200 with all five X-Apify-Pagination-* headers and an empty body."""
    response = client.head(f"/v2/datasets/{datasets.target}/items?offset=1&limit=1&desc=1")

    assert response.status_code == 200
    assert response.data == b""
    assert {name: response.headers.get(name) for name in PAGINATION_HEADERS} == {
        "X-Apify-Pagination-Offset": "1",
        "X-Apify-Pagination-Limit": "1",
        "X-Apify-Pagination-Count": "1",
        "X-Apify-Pagination-Total": "3",
        "X-Apify-Pagination-Desc": "true",
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_carries_every_pagination_header(client: FlaskClient, datasets: Datasets, fmt: str) -> None:
    """GET items in each of the seven formats has all five pagination headers with the page's values."""
    without_limit = client.get(f"/v2/datasets/{datasets.target}/items?format={fmt}")
    paged = client.get(f"/v2/datasets/{datasets.target}/items?format={fmt}&offset=2&limit=5")
    past_the_end = client.get(f"/v2/datasets/{datasets.target}/items?format={fmt}&offset=10")

    for response in (without_limit, paged, past_the_end):
        assert response.status_code == 200
        assert all(name in response.headers for name in PAGINATION_HEADERS), response.headers
    assert without_limit.data and paged.data
    assert [without_limit.headers[name] for name in PAGINATION_HEADERS] == ["0", "999999999999", "3", "3", "false"]
    assert [paged.headers[name] for name in PAGINATION_HEADERS] == ["2", "5", "1", "3", "false"]
    assert [past_the_end.headers[name] for name in PAGINATION_HEADERS] == ["10", "999999999999", "0", "3", "false"]


def test_pagination_count_is_rows_covered_not_items_left_after_skip_empty(
    client: FlaskClient, app: Flask, datasets: Datasets
) -> None:
    """With skipEmpty, Count still reports the rows the page covers, so the client's offset advances correctly."""
    repo: DatasetRepository = app.extensions["storage_emulator"]
    repo.push_items(datasets.other, [{"a": 1}, {}, {}, {"a": 4}])

    response = client.get(f"/v2/datasets/{datasets.other}/items?skipEmpty=true&limit=3")

    assert json.loads(response.data) == [{"a": 1}]
    assert response.headers["X-Apify-Pagination-Count"] == "3"
    assert response.headers["X-Apify-Pagination-Total"] == "4"


# ----- PUT /v2/datasets/{id} ---------------------------------------------------------------------------


BAD_UPDATES = [
    pytest.param(b'{"generalAccess": "EVERYONE"}', "'generalAccess'", id="general-access-unknown"),
    pytest.param(b'{"generalAccess": 3}', "'generalAccess'", id="general-access-number"),
    pytest.param(b'{"name": "bad name"}', "'name'", id="name-with-space"),
    pytest.param(b'{"name": "-lead"}', "'name'", id="name-leading-dash"),
    pytest.param(b'{"name": "../escape"}', "'name'", id="name-traversal"),
    pytest.param(b'{"name": "' + b"x" * 64 + b'"}', "'name'", id="name-too-long"),
    pytest.param(b'{"name": 42}', "'name'", id="name-number"),
    pytest.param(b'{"name": ["a"]}', "'name'", id="name-list"),
    pytest.param(b'{"title": 5}', "'title'", id="title-number"),
    pytest.param(b'["name", "x"]', "JSON object", id="body-array"),
    pytest.param(b'"x"', "JSON object", id="body-string"),
    pytest.param(b"{name: x}", "not valid JSON", id="body-not-json"),
]


@pytest.mark.parametrize("body, mentions", BAD_UPDATES)
def test_update_rejects_bad_bodies_and_changes_nothing(
    client: FlaskClient, storage_root: Path, tmp_path: Path, datasets: Datasets, body: bytes, mentions: str
) -> None:
    """A PUT with a bad field or a non-object body is 400 naming the problem; name, folder and access stay."""
    before = disk_state(storage_root)

    response = client.put(f"/v2/datasets/{datasets.target}", data=body, content_type="application/json")

    assert_apify_error(response, 400, "invalid-input", mentions=mentions)
    assert disk_state(storage_root) == before
    assert not (tmp_path / "escape").exists() and not (storage_root / "escape").exists()
    data = client.get(f"/v2/datasets/{datasets.target}").get_json()["data"]
    assert (data["name"], data["generalAccess"], data["title"]) == ("target", "FOLLOW_USER_SETTING", None)


def test_rename_to_an_existing_name_is_409_and_moves_nothing(
    client: FlaskClient, storage_root: Path, datasets: Datasets
) -> None:
    """Renaming ``target`` to ``other`` is 409 name-not-unique; both datasets keep their folders and items."""
    before = disk_state(storage_root)

    response = client.put(f"/v2/datasets/{datasets.target}", json={"name": "other"})

    assert_apify_error(response, 409, "name-not-unique", mentions="other")
    assert disk_state(storage_root) == before
    assert client.get("/v2/datasets/~target").get_json()["data"]["id"] == datasets.target
    assert client.get("/v2/datasets/~other").get_json()["data"]["id"] == datasets.other


@pytest.mark.parametrize("method", ["put", "delete"])
def test_update_or_delete_of_a_missing_dataset_is_404(
    client: FlaskClient, storage_root: Path, datasets: Datasets, method: str
) -> None:
    """PUT and DELETE of an unknown dataset are 404 record-not-found and touch nothing."""
    before = disk_state(storage_root)

    response = getattr(client, method)("/v2/datasets/aaaaaaaaaaaaaaaaa", json={"name": "renamed"})

    assert_apify_error(response, 404, "record-not-found", mentions="Dataset was not found")
    assert disk_state(storage_root) == before


# ----- Path traversal on the items endpoints -----------------------------------------------------------


# An encoded slash (%2F) is decoded before routing, so those refs become extra path segments and stop at
# the router (404, route not found); the others reach the dataset handlers. Both must be 4xx and write nothing.
TRAVERSAL_REFS = [
    "..",
    "%2e%2e",
    "%2E%2E",
    "~..",
    "~..%2F..",
    "~..%2F..%2Foutside",
    "..%2F..%2Foutside",
    "%2e%2e%2f%2e%2e%2foutside",
    "a%5Cb",
    "..%5C..%5Coutside",
    "~..%5C..%5Coutside",
    "%00",
    "~a%00b",
    "~",
]


@pytest.mark.parametrize("ref", TRAVERSAL_REFS)
def test_traversal_refs_on_items_endpoints_are_4xx_and_write_nothing(
    client: FlaskClient, storage_root: Path, tmp_path: Path, datasets: Datasets, ref: str
) -> None:
    """Every items, statistics and update call with a traversal ref is 4xx; nothing appears outside or inside."""
    before = disk_state(storage_root)
    folders_before = sorted(p.name for p in (storage_root / "datasets").iterdir())

    responses = {
        "push": client.post(f"/v2/datasets/{ref}/items", json=[{"escaped": True}]),
        "push-override": client.get(f"/v2/datasets/{ref}/items?method=POST", data=b'{"escaped": true}'),
        "read": client.get(f"/v2/datasets/{ref}/items"),
        "head": client.head(f"/v2/datasets/{ref}/items"),
        "stats": client.get(f"/v2/datasets/{ref}/statistics"),
        "rename": client.put(f"/v2/datasets/{ref}", json={"name": "outside"}),
        "delete": client.delete(f"/v2/datasets/{ref}"),
    }

    for what, response in responses.items():
        assert 400 <= response.status_code < 500, (what, response.status_code, response.data)
        if what != "head":
            assert_apify_error(response, response.status_code, response.get_json()["error"]["type"])
    assert not (tmp_path / "outside").exists()
    assert not (storage_root / "outside").exists()
    assert sorted(p.name for p in (storage_root / "datasets").iterdir()) == folders_before
    assert disk_state(storage_root) == before


@pytest.mark.parametrize(
    "raw_path",
    [
        "/v2/datasets/../../outside/items",
        "/v2/datasets/%2e%2e/%2e%2e/outside/items",
        "/v2/datasets/%2e%2e%2f%2e%2e%2foutside/items",
        "/v2/datasets/~..%2f..%2foutside/items",
        "/v2/datasets/..%5c..%5coutside/items",
    ],
)
def test_traversal_over_a_real_socket_writes_nothing(
    live_server: Any, storage_root: Path, tmp_path: Path, datasets: Datasets, raw_path: str
) -> None:
    """Raw, un-normalized traversal paths sent over a real socket are 4xx and create nothing."""
    before = disk_state(storage_root)
    host, port = live_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", raw_path, body=b'{"escaped": true}', headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    assert 400 <= response.status < 500, (response.status, body)
    assert set(json.loads(body)) == {"error"}
    assert not (tmp_path / "outside").exists()
    assert not list(tmp_path.rglob("*escaped*"))
    assert disk_state(storage_root) == before
