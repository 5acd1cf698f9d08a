"""The dataset collection endpoints over HTTP: every parameter and every error path, both dialects."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from envelopes import assert_apify_error, assert_org_error
from flask.testing import FlaskClient

from storage_emulator import DEFAULT_ACCOUNT, Account, DatasetRepository
from storage_emulator.naming import ID_PATTERN

OTHER = Account(id="otherAccount00001", username="alice")


def folders(storage_root: Path) -> list[str]:
    return sorted(p.name for p in (storage_root / "datasets").iterdir())


# ----- POST /v2/datasets ---------------------------------------------------------------------------


def test_create_named_is_201_with_location_then_200(client: FlaskClient, storage_root: Path) -> None:
    first = client.post("/v2/datasets?name=my-data", json={})
    second = client.post("/v2/datasets?name=my-data", json={})

    assert first.status_code == 201
    data = first.get_json()["data"]
    assert first.headers["Location"] == f"http://localhost/v2/datasets/{data['id']}"
    assert second.status_code == 200 and "Location" not in second.headers
    assert second.get_json()["data"]["id"] == data["id"]
    assert folders(storage_root) == ["my-data"]


@pytest.mark.parametrize(
    "body, content_type",
    [(b"{}", "application/json"), (b"", "application/x-www-form-urlencoded"), (b"", None)],
    ids=["python-json", "js-empty-form", "curl-no-body"],
)
def test_create_accepts_the_three_client_body_shapes(
    client: FlaskClient, body: bytes, content_type: str | None
) -> None:
    response = client.post("/v2/datasets?name=shape", data=body, content_type=content_type)

    assert response.status_code == 201
    assert response.get_json()["data"]["name"] == "shape"


def test_create_with_schema_stores_and_returns_it(client: FlaskClient, storage_root: Path) -> None:
    schema = {"actorSpecification": 1, "fields": {"type": "object", "properties": {"a": {"type": "string"}}}}
    response = client.post("/v2/datasets?name=typed", json={"schema": schema})

    assert response.get_json()["data"]["schema"] == schema
    assert response.get_json()["data"]["fields"] == ["a"]
    on_disk = json.loads((storage_root / "datasets" / "typed" / "__metadata__.json").read_text())
    assert on_disk["schema"] == schema


def test_create_without_name_is_always_a_new_unnamed_dataset(client: FlaskClient) -> None:
    a = client.post("/v2/datasets").get_json()["data"]
    b = client.post("/v2/datasets").get_json()["data"]

    assert a["id"] != b["id"] and a["name"] is None


def test_dataset_object_has_every_field_the_client_requires(client: FlaskClient) -> None:
    data = client.post("/v2/datasets?name=fields", json={}).get_json()["data"]

    assert ID_PATTERN.match(data["id"])
    assert data["userId"] == DEFAULT_ACCOUNT.id and data["username"] == DEFAULT_ACCOUNT.username
    for key in ("createdAt", "modifiedAt", "accessedAt"):
        assert data[key].endswith("Z")
        assert datetime.fromisoformat(data[key]).tzinfo is not None
    assert data["itemCount"] == 0 and data["cleanItemCount"] == 0
    assert data["consoleUrl"] == f"http://localhost/view/datasets/{data['id']}"
    assert data["stats"] == {"readCount": 0, "writeCount": 0, "storageBytes": 0}
    assert data["generalAccess"] == "FOLLOW_USER_SETTING"
    assert data["actId"] is None and data["actRunId"] is None
    assert data["itemsPublicUrl"].startswith(f"http://localhost/v2/datasets/{data['id']}/items?signature=")
    assert isinstance(data["urlSigningSecretKey"], str)


def test_console_url_page_renders(client: FlaskClient) -> None:
    url = client.post("/v2/datasets?name=page", json={}).get_json()["data"]["consoleUrl"]

    response = client.get(url.replace("http://localhost", ""))

    assert response.status_code == 200 and b"page" in response.data and response.mimetype == "text/html"


def test_dataset_page_shows_items_as_json_and_escapes_them(client: FlaskClient) -> None:
    created = client.post("/v2/datasets?name=shown", json={}).get_json()["data"]
    item = {"price": {"amount": 1.5}, "ok": True, "html": "<b>x</b>"}
    client.post(f"/v2/datasets/{created['id']}/items", json=[item])

    page = client.get(f"/view/datasets/{created['id']}").get_data(as_text=True)

    assert "{&#34;amount&#34;: 1.5}" in page and "<td>true</td>" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    index = client.get("/").get_data(as_text=True)
    assert f'href="/view/datasets/{created["id"]}"' in index


# ----- GET /v2/datasets ----------------------------------------------------------------------------


def make_datasets(client: FlaskClient, count: int) -> list[str]:
    return [client.post(f"/v2/datasets?name=ds-{i:02d}", json={}).get_json()["data"]["id"] for i in range(count)]


def test_list_defaults(client: FlaskClient) -> None:
    ids = make_datasets(client, 3)
    client.post("/v2/datasets")  # unnamed: hidden by default

    data = client.get("/v2/datasets").get_json()["data"]

    assert [item["id"] for item in data["items"]] == ids
    assert (data["total"], data["offset"], data["limit"], data["desc"], data["count"]) == (3, 0, 1000, False, 3)
    assert all(isinstance(item["name"], str) for item in data["items"])


def test_list_offset_limit_desc(client: FlaskClient) -> None:
    ids = make_datasets(client, 5)

    data = client.get("/v2/datasets?offset=1&limit=2&desc=true").get_json()["data"]

    assert [item["id"] for item in data["items"]] == [ids[3], ids[2]]
    assert (data["total"], data["offset"], data["limit"], data["desc"], data["count"]) == (5, 1, 2, True, 2)


@pytest.mark.parametrize("limit, effective", [("0", 1000), ("5000", 1000), ("1000", 1000), ("1", 1)])
def test_list_limit_zero_means_default_and_is_capped(client: FlaskClient, limit: str, effective: int) -> None:
    assert client.get(f"/v2/datasets?limit={limit}").get_json()["data"]["limit"] == effective


@pytest.mark.parametrize("true_value, false_value", [("true", "false"), ("1", "0"), ("TRUE", "False")])
def test_list_booleans_accept_both_client_spellings(client: FlaskClient, true_value: str, false_value: str) -> None:
    make_datasets(client, 1)
    unnamed = client.post("/v2/datasets").get_json()["data"]["id"]

    with_unnamed = client.get(f"/v2/datasets?unnamed={true_value}").get_json()["data"]
    without = client.get(f"/v2/datasets?unnamed={false_value}").get_json()["data"]

    assert unnamed in [item["id"] for item in with_unnamed["items"]]
    assert with_unnamed["total"] == 2 and without["total"] == 1
    # An unnamed dataset is listed with its id as the name (the Python client requires a string).
    assert {item["name"] for item in with_unnamed["items"] if item["id"] == unnamed} == {unnamed}


def test_list_ownership(client: FlaskClient, app) -> None:  # type: ignore[no-untyped-def]
    repo: DatasetRepository = app.extensions["storage_emulator"]
    mine = make_datasets(client, 1)[0]
    shared, _ = repo.get_or_create_dataset(name="shared", owner=OTHER)
    repo.get_or_create_dataset(name="private", owner=OTHER)
    repo.update_dataset(shared.id, shared_with=[DEFAULT_ACCOUNT.id])

    def ids(query: str) -> list[str]:
        return [item["id"] for item in client.get(f"/v2/datasets{query}").get_json()["data"]["items"]]

    assert ids("?ownership=ownedByMe") == [mine]
    assert ids("?ownership=sharedWithMe") == [shared.id]
    assert sorted(ids("")) == sorted([mine, shared.id])


def test_list_ignores_unknown_parameters(client: FlaskClient) -> None:
    make_datasets(client, 1)
    assert client.get("/v2/datasets?chunkSize=10&whatever=1").get_json()["data"]["total"] == 1


# ----- GET /v2/datasets/{id} -----------------------------------------------------------------------


def test_get_by_id_tilde_name_and_username_name(client: FlaskClient) -> None:
    created = client.post("/v2/datasets?name=find-me", json={}).get_json()["data"]

    for ref in (created["id"], "~find-me", "local~find-me", "local%7Efind-me"):
        response = client.get(f"/v2/datasets/{ref}")
        assert response.status_code == 200, ref
        assert response.get_json()["data"]["id"] == created["id"]


def test_get_moves_accessed_at(client: FlaskClient) -> None:
    created = client.post("/v2/datasets?name=touch", json={}).get_json()["data"]
    time.sleep(0.01)  # the times are shown to the millisecond

    fetched = client.get(f"/v2/datasets/{created['id']}").get_json()["data"]

    assert fetched["accessedAt"] > created["accessedAt"]
    assert fetched["modifiedAt"] == created["modifiedAt"]


@pytest.mark.parametrize("ref", ["aaaaaaaaaaaaaaaaa", "~nope", "alice~nope", "%2e%2e", "..", "~..", "~-x"])
def test_get_missing_is_record_not_found(client: FlaskClient, ref: str) -> None:
    response = client.get(f"/v2/datasets/{ref}")

    assert_apify_error(response, 404, "record-not-found", mentions="Dataset was not found")


def test_method_query_parameter_overrides_the_verb(client: FlaskClient, storage_root: Path) -> None:
    response = client.get("/v2/datasets?name=via-get&method=POST")

    assert response.status_code == 201
    assert folders(storage_root) == ["via-get"]


# ----- Routing errors in both dialects --------------------------------------------------------------


def test_unknown_route_in_apify_dialect(client: FlaskClient) -> None:
    assert_apify_error(client.get("/v2/nothing-here"), 404, "record-not-found")


def test_wrong_method_in_apify_dialect(client: FlaskClient) -> None:
    assert_apify_error(client.patch("/v2/datasets"), 405, "method-not-allowed")


def test_unknown_route_in_org_dialect(client: FlaskClient) -> None:
    assert_org_error(client.get("/api/v1/nothing"), 404, "not_found")


def test_wrong_method_in_org_dialect(client: FlaskClient) -> None:
    assert_org_error(client.post("/api/v1/org/local/datasets"), 405, "method_not_allowed")


def test_unexpected_error_is_a_generic_500_in_the_envelope(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    @app.get("/v2/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    response = client.get("/v2/boom")

    assert_apify_error(response, 500, "internal-error")
    assert b"secret internal detail" not in response.data


# ----- Bad input: 400 naming the parameter, nothing written ----------------------------------------


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
        ("limit=-5", "limit"),
        ("limit=1.5", "limit"),
        ("desc=yes", "desc"),
        ("unnamed=maybe", "unnamed"),
        ("ownership=everyone", "ownership"),
    ],
)
def test_list_rejects_bad_parameters(client: FlaskClient, query: str, parameter: str) -> None:
    assert_apify_error(client.get(f"/v2/datasets?{query}"), 400, "invalid-input", mentions=f"'{parameter}'")


@pytest.mark.parametrize(
    "name",
    [
        "-lead",
        "trail-",
        "a b",
        "x" * 64,
        "a.b",
        "..",
        "../escape",
        "a/b",
        "a%2Fb",
        "%2e%2e",
        "back%5Cslash",
        "/abs",
        "%2Fetc%2Fpasswd",
        "~tilde",
        "under_score",
        "caf%C3%A9",
    ],
)
def test_create_rejects_bad_names_and_writes_nothing(
    client: FlaskClient, storage_root: Path, tmp_path: Path, name: str
) -> None:
    response = client.post(f"/v2/datasets?name={name}", json={})

    assert_apify_error(response, 400, "invalid-input", mentions="'name'")
    assert folders(storage_root) == []
    assert not (tmp_path / "escape").exists() and not (storage_root / "escape").exists()


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"schema": "nope"}', b'{"schema": {"fields": {"type": 12}}}'],
    ids=["not-json", "array", "schema-string", "schema-invalid"],
)
def test_create_rejects_bad_bodies_and_writes_nothing(client: FlaskClient, storage_root: Path, body: bytes) -> None:
    response = client.post("/v2/datasets?name=bad-body", data=body, content_type="application/json")

    assert_apify_error(response, 400, "invalid-input")
    assert folders(storage_root) == []


# ----- GET /api/v1/org/{org}/datasets --------------------------------------------------------------


@pytest.fixture
def org_data(app) -> DatasetRepository:  # type: ignore[no-untyped-def]
    """Five datasets of `local` with org fields, one public and one private of `alice`."""
    repo: DatasetRepository = app.extensions["storage_emulator"]
    specs = [
        ("alpha", ["nlp", "text"], "mit", ["classification"], "First corpus of reviews", 3),
        ("beta", ["vision"], "apache-2.0", ["detection"], "Street images", 1),
        ("gamma", ["nlp"], "mit", ["qa"], "Questions and answers", 5),
        ("delta", [], None, [], None, 0),
        ("epsilon", ["tabular"], "cc-by-4.0", ["regression"], "House prices", 2),
    ]
    for name, tags, license_, tasks, summary, items in specs:
        dataset, _ = repo.get_or_create_dataset(name=name)
        repo.update_dataset(dataset.id, tags=tags, license=license_, task_categories=tasks, summary=summary)
        if items:
            repo.push_items(dataset.id, [{"i": i} for i in range(items)])
    public, _ = repo.get_or_create_dataset(name="public-one", owner=OTHER)
    repo.update_dataset(public.id, general_access="ANYONE_WITH_ID_CAN_READ", tags=["nlp"])
    repo.get_or_create_dataset(name="private-one", owner=OTHER)
    return repo


def org_names(client: FlaskClient, query: str = "", org: str = "local") -> list[str]:
    body = client.get(f"/api/v1/org/{org}/datasets{query}").get_json()
    return [row["name"] for row in body["datasets"]]


def test_org_listing_shape_and_defaults(client: FlaskClient, org_data: DatasetRepository) -> None:
    body = client.get("/api/v1/org/local/datasets").get_json()

    assert set(body) == {"datasets", "has_next", "has_prev", "limit", "page", "total", "total_pages"}
    assert (body["total"], body["page"], body["limit"], body["total_pages"]) == (5, 1, 50, 1)
    assert (body["has_next"], body["has_prev"]) == (False, False)
    # Default sort: created_at descending.
    assert [row["name"] for row in body["datasets"]] == [
        "local/epsilon",
        "local/delta",
        "local/gamma",
        "local/beta",
        "local/alpha",
    ]
    row = body["datasets"][-1]
    assert row["version"] == "0.1.0" and row["format"] == "json" and row["is_public"] is False
    assert row["row_count"] == 3 and row["file_size_bytes"] > 0 and row["origin"] == {}
    assert row["summary"] == "First corpus of reviews" and row["license"] == "mit"
    assert row["size_category"] == "n<1K" and row["download_count"] == 0
    assert len(row["id"]) == 36 and row["created_at"].endswith("Z") and row["updated_at"].endswith("Z")


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?name=gamma", ["local/gamma"]),
        ("?search=CORPUS", ["local/alpha"]),
        ("?search=et", ["local/beta"]),  # name substring
        ("?tags=nlp&sort_dir=asc", ["local/alpha", "local/gamma"]),
        ("?tags=vision&tags=tabular&sort_dir=asc", ["local/beta", "local/epsilon"]),
        ("?license=mit&license=cc-by-4.0&sort_dir=asc", ["local/alpha", "local/gamma", "local/epsilon"]),
        ("?task_categories=qa", ["local/gamma"]),
        (
            "?format=json&sort_by=name&sort_dir=asc",
            ["local/alpha", "local/beta", "local/delta", "local/epsilon", "local/gamma"],
        ),
        ("?format=parquet", []),
        ("?size_category=n<1K&name=delta", ["local/delta"]),
        ("?sort_by=row_count&sort_dir=desc&limit=2", ["local/gamma", "local/alpha"]),
        ("?sort_by=file_size_bytes&sort_dir=asc&limit=1", ["local/delta"]),
        ("?sort_by=updated_at&sort_dir=desc&limit=1", ["local/epsilon"]),
    ],
)
def test_org_listing_filters_and_sorts(
    client: FlaskClient, org_data: DatasetRepository, query: str, expected: list[str]
) -> None:
    assert org_names(client, query) == expected


def test_org_listing_pages(client: FlaskClient, org_data: DatasetRepository) -> None:
    pages = [client.get(f"/api/v1/org/local/datasets?limit=2&page={p}").get_json() for p in (1, 2, 3, 4)]

    assert [len(p["datasets"]) for p in pages] == [2, 2, 1, 0]
    assert [(p["has_prev"], p["has_next"]) for p in pages] == [
        (False, True),
        (True, True),
        (True, False),
        (True, False),
    ]
    assert all(p["total"] == 5 and p["total_pages"] == 3 for p in pages)
    seen = [row["id"] for p in pages for row in p["datasets"]]
    assert len(seen) == len(set(seen)) == 5


def test_org_listing_include_public_adds_only_public_datasets_of_other_orgs(
    client: FlaskClient, org_data: DatasetRepository
) -> None:
    assert "alice/public-one" not in org_names(client)
    with_public = org_names(client, "?include_public=true")
    assert "alice/public-one" in with_public and "alice/private-one" not in with_public
    assert org_names(client, "", org="alice") == ["alice/private-one", "alice/public-one"]


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("sort_by=size", "sort_by"),
        ("sort_dir=up", "sort_dir"),
        ("include_public=perhaps", "include_public"),
    ],
)
def test_org_listing_rejects_bad_parameters_with_422(client: FlaskClient, query: str, parameter: str) -> None:
    body = assert_org_error(client.get(f"/api/v1/org/local/datasets?{query}"), 422, "validation_error")

    assert body["errors"][0]["loc"] == ["query", parameter]
    assert body["errors"][0]["msg"]


def test_org_listing_reports_every_bad_parameter_at_once(client: FlaskClient) -> None:
    body = assert_org_error(client.get("/api/v1/org/local/datasets?limit=0&page=0"), 422, "validation_error")

    assert [e["loc"] for e in body["errors"]] == [["query", "page"], ["query", "limit"]]


# ----- Broken metadata on disk ---------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", '{"id": "abc", "na'], ids=["empty", "truncated"])
def test_broken_metadata_never_breaks_the_server(client: FlaskClient, storage_root: Path, content: str) -> None:
    good = client.post("/v2/datasets?name=good", json={}).get_json()["data"]["id"]
    broken = storage_root / "datasets" / "broken"
    broken.mkdir()
    (broken / "__metadata__.json").write_text(content)

    listing = client.get("/v2/datasets")
    assert listing.status_code == 200
    assert [item["id"] for item in listing.get_json()["data"]["items"]] == [good]
    org = client.get("/api/v1/org/local/datasets")
    assert org.status_code == 200
    assert [row["name"] for row in org.get_json()["datasets"]] == ["local/good"]

    direct = client.get("/v2/datasets/~broken")
    assert_apify_error(direct, 409, "dataset-corrupted", mentions="fsck --repair")
    again = client.post("/v2/datasets?name=broken", json={})
    assert_apify_error(again, 409, "dataset-corrupted")
    assert (broken / "__metadata__.json").read_text() == content


def test_items_public_url_uses_the_configured_public_url(storage_root: Path) -> None:
    from storage_emulator.web import create_app

    http = create_app({"ROOT": str(storage_root), "PUBLIC_URL": "https://emulator.example/"}).test_client()

    data = http.post("/v2/datasets?name=public", json={}).get_json()["data"]

    assert data["itemsPublicUrl"].startswith(f"https://emulator.example/v2/datasets/{data['id']}/items?signature=")
    assert data["consoleUrl"] == f"http://localhost/view/datasets/{data['id']}"
