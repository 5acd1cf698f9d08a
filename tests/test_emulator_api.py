"""The emulator's own routes: /health, /_emulator/reset and /_emulator/capabilities."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from envelopes import assert_apify_error
from flask import Flask
from flask.testing import FlaskClient

from storage_emulator import DatasetRepository, __version__
from storage_emulator.accounts import default_accounts_path
from storage_emulator.testing import EmulatorServer
from storage_emulator.web import create_app
from storage_emulator.web.emulator_api import ROUTE_PARAMETERS, UNSERVED_ENDPOINTS

ACCOUNTS = [
    {"username": "alice", "token": "alice-token"},
    {"username": "root", "token": "root-token", "admin": True},
]


def write_accounts(root: Path, accounts: list[dict[str, Any]]) -> Path:
    """Write an accounts file into the root (enforced mode)."""
    path = default_accounts_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"accounts": accounts}), encoding="utf-8")
    return path


def test_health_tells_status_version_root_mode_and_counts(client: FlaskClient, storage_root: Path) -> None:
    """``GET /health`` answers 200 with what is served and how many storages of each kind."""
    repo = DatasetRepository(storage_root)
    repo.get_or_create_dataset(name="one")
    repo.get_or_create_dataset(name="two")
    (storage_root / "key_value_stores" / "default").mkdir(parents=True)

    response = client.get("/health")

    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["status"] == "ok" and data["version"] == __version__
    assert data["root"] == str(storage_root.resolve())
    assert data["mode"] == "open"
    assert data["pid"] == os.getpid()
    assert data["counts"] == {"datasets": 2, "key_value_stores": 1, "request_queues": 0}


def test_reset_empties_the_root_for_the_official_client(tmp_path: Path) -> None:
    """After ``POST /_emulator/reset`` the client sees no datasets; the files are gone, accounts stay."""
    from apify_client import ApifyClient

    root = tmp_path / "root"
    accounts_file = write_accounts(root, [{"username": "local", "token": "root-token", "admin": True}])
    (root / "key_value_stores" / "default").mkdir(parents=True)
    (root / "key_value_stores" / "default" / "INPUT.json").write_text("{}")
    with EmulatorServer(root=root) as server:
        client = ApifyClient(token="root-token", api_url=server.url, max_retries=0)
        made = client.datasets().get_or_create(name="before-reset")
        client.dataset(made.id).push_items([{"a": 1}])
        client.dataset(made.id).list_items()  # a read held in memory, to be forgotten
        status, body = post(server.url + "/_emulator/reset", token="root-token")
        after = client.datasets().list().items
        gone = client.dataset(made.id).get()
        again = client.datasets().get_or_create(name="before-reset")
        server.repo.flush_reads()

    assert status == 200
    assert body["data"]["removed"] == {"datasets": 1, "key_value_stores": 1, "request_queues": 0}
    assert after == [] and gone is None
    assert again.id != made.id and again.item_count == 0
    assert sorted(p.name for p in (root / "datasets").iterdir()) == ["before-reset"]
    metadata = json.loads((root / "datasets" / "before-reset" / "__metadata__.json").read_text())
    assert metadata["read_count"] == 0  # the new dataset starts from nothing
    assert list((root / "key_value_stores").iterdir()) == []
    assert accounts_file.is_file()
    assert not [p for p in (root / ".storage-emulator").iterdir() if p.name.startswith("reset-")]


def post(url: str, *, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    """POST (JSON body if given) and return the status and the parsed answer, errors included."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_reset_removes_symlinks_without_following_them(client: FlaskClient, storage_root: Path, tmp_path: Path) -> None:
    """A symlink planted in datasets/ is removed as a link; what it points at is left alone."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.json").write_text("{}")
    DatasetRepository(storage_root)
    (storage_root / "datasets" / "planted").symlink_to(outside, target_is_directory=True)

    response = client.post("/_emulator/reset")

    assert response.status_code == 200
    assert list((storage_root / "datasets").iterdir()) == []
    assert (outside / "keep.json").read_text() == "{}"


@pytest.fixture
def enforced_client(storage_root: Path) -> FlaskClient:
    """Return a test client of an enforced-mode app with one plain and one admin account."""
    write_accounts(storage_root, ACCOUNTS)
    return create_app({"ROOT": str(storage_root), "TESTING": True}).test_client()


@pytest.mark.parametrize(
    ("headers", "status", "error_type"),
    [
        ({}, 401, "token-not-provided"),
        ({"Authorization": "Bearer nobody"}, 401, "invalid-token"),
        ({"Authorization": "Bearer alice-token"}, 403, "insufficient-permissions"),
    ],
    ids=["no-token", "unknown-token", "not-admin"],
)
def test_enforced_reset_needs_an_admin_token(
    enforced_client: FlaskClient, storage_root: Path, headers: dict[str, str], status: int, error_type: str
) -> None:
    """In enforced mode reset is refused in the Apify envelope, and nothing is removed."""
    DatasetRepository(storage_root).get_or_create_dataset(name="kept")

    response = enforced_client.post("/_emulator/reset", headers=headers)

    assert_apify_error(response, status, error_type)
    assert (storage_root / "datasets" / "kept").is_dir()


def test_enforced_reset_with_an_admin_token(enforced_client: FlaskClient, storage_root: Path) -> None:
    """An account with ``"admin": true`` may reset."""
    DatasetRepository(storage_root).get_or_create_dataset(name="removed")

    response = enforced_client.post("/_emulator/reset", headers={"Authorization": "Bearer root-token"})

    assert response.status_code == 200
    assert list((storage_root / "datasets").iterdir()) == []


def test_a_non_boolean_admin_flag_is_refused(storage_root: Path) -> None:
    """``"admin": "yes"`` in the accounts file is an error naming the account, not a silent admin."""
    from storage_emulator.errors import InvalidInput

    write_accounts(storage_root, [{"username": "bob", "token": "t", "admin": "yes"}])

    with pytest.raises(InvalidInput, match="'bob' has a non-boolean admin"):
        create_app({"ROOT": str(storage_root)})


def test_capabilities_document_every_served_route(app: Flask, client: FlaskClient) -> None:
    """Every route of the app is listed with its methods and documented parameters."""
    response = client.get("/_emulator/capabilities")

    assert response.status_code == 200
    data = response.get_json()["data"]
    served = {(r.rule, r.endpoint) for r in app.url_map.iter_rules() if r.endpoint not in UNSERVED_ENDPOINTS}
    assert {(route["path"], route["endpoint"]) for route in data["routes"]} == served
    undocumented = [route["endpoint"] for route in data["routes"] if not route["documented"]]
    assert undocumented == []
    items = next(route for route in data["routes"] if route["endpoint"] == "apify.read_items")
    assert items["methods"] == ["GET", "HEAD"] and "skipHidden" in items["honoured"]
    assert data["commonParameters"] == ["token", "method"]
    assert set(ROUTE_PARAMETERS) >= {endpoint for _, endpoint in served}


def test_ignored_parameters_are_accepted(client: FlaskClient, repo: DatasetRepository) -> None:
    """A parameter listed as accepted and ignored changes nothing and is not refused."""
    dataset, _ = repo.get_or_create_dataset(name="ignoring")
    repo.push_items(dataset.id, [{"a": 1}])

    plain = client.get(f"/v2/datasets/{dataset.id}/items")
    with_ignored = client.get(f"/v2/datasets/{dataset.id}/items?simplified=1")

    assert with_ignored.status_code == 200 and with_ignored.get_json() == plain.get_json()


def test_unknown_emulator_route_answers_in_the_apify_envelope(client: FlaskClient) -> None:
    """The emulator's own prefix answers unknown routes in the Apify envelope too."""
    assert_apify_error(client.get("/_emulator/nothing"), 404, "record-not-found")
    assert_apify_error(client.get("/_emulator/reset"), 405, "method-not-allowed")
