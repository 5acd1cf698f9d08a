"""Enforced mode: tokens, ownership, sharing, signed URLs and org membership, endpoint by endpoint."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from storage_emulator import DatasetRepository
from storage_emulator.accounts import AccountRegistry, default_accounts_path
from storage_emulator.signing import create_signature, hmac_signature, verify_signature

TOKENS = {"owner": "owner-token", "other": "other-token", "shared": "shared-token"}
# A marker with characters an id (`[a-zA-Z0-9]{17}`) cannot hold, so finding it in a body means leaked data.
SECRET_SKU = "sku-secret_1"
ITEMS = [{"sku": SECRET_SKU, "price": 10}, {"sku": "B2", "price": 20}]
SECRET_NAME = "secret-plans"


@pytest.fixture
def enforced_root(storage_root: Path) -> Path:
    """A root with three accounts and one restricted dataset of `olivia`, shared with `sam`."""
    path = default_accounts_path(storage_root)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "accounts": [
                    {"username": "olivia", "token": TOKENS["owner"]},
                    {"username": "oscar", "token": TOKENS["other"]},
                    {"username": "sam", "token": TOKENS["shared"]},
                ]
            }
        )
    )
    repo = DatasetRepository(storage_root)
    accounts = AccountRegistry.load(storage_root)
    owner, sam = accounts.by_username("olivia"), accounts.by_username("sam")
    assert owner is not None and sam is not None
    schema = {"fields": {"type": "object", "properties": {"price": {"type": "number"}}}}
    dataset, _ = repo.get_or_create_dataset(name=SECRET_NAME, schema=schema, owner=owner)
    repo.push_items(dataset.id, ITEMS)
    repo.update_dataset(dataset.id, general_access="RESTRICTED", shared_with=[sam.id])
    return storage_root


@pytest.fixture
def enforced_app(enforced_root: Path) -> Flask:
    """The app over the enforced root."""
    from storage_emulator.web import create_app

    return create_app({"ROOT": str(enforced_root), "TESTING": True})


@pytest.fixture
def http(enforced_app: Flask) -> FlaskClient:
    """A test client of the enforced app."""
    return enforced_app.test_client()


@pytest.fixture
def secret(enforced_root: Path) -> tuple[str, str]:
    """The restricted dataset's id and signing key."""
    dataset = DatasetRepository(enforced_root).get_dataset("olivia~" + SECRET_NAME)
    assert dataset.url_signing_secret_key
    return dataset.id, dataset.url_signing_secret_key


ENDPOINTS = {
    "list": ("GET", "/v2/datasets", None),
    "create": ("POST", "/v2/datasets?name=fresh", b"{}"),
    "get": ("GET", "/v2/datasets/{id}", None),
    "update": ("PUT", "/v2/datasets/{id}", b'{"title": "changed"}'),
    "delete": ("DELETE", "/v2/datasets/{id}", None),
    "items": ("GET", "/v2/datasets/{id}/items", None),
    "items-head": ("HEAD", "/v2/datasets/{id}/items", None),
    "push": ("POST", "/v2/datasets/{id}/items", b'{"sku": "C3", "price": 30}'),
    "statistics": ("GET", "/v2/datasets/{id}/statistics", None),
    "org": ("GET", "/api/v1/org/olivia/datasets", None),
}

# caller -> endpoint -> (status, Apify error type or None)
EXPECTED: dict[str, dict[str, tuple[int, str | None]]] = {
    "no-token": {name: (401, "token-not-provided") for name in ENDPOINTS},
    "wrong-token": {name: (401, "invalid-token") for name in ENDPOINTS},
    "owner": {
        "list": (200, None),
        "create": (201, None),
        "get": (200, None),
        "update": (200, None),
        "delete": (204, None),
        "items": (200, None),
        "items-head": (200, None),
        "push": (201, None),
        "statistics": (200, None),
        "org": (200, None),
    },
    "other": {
        "list": (200, None),
        "create": (201, None),
        "get": (403, "insufficient-permissions"),
        "update": (403, "insufficient-permissions"),
        "delete": (403, "insufficient-permissions"),
        "items": (403, "insufficient-permissions"),
        "items-head": (403, None),
        "push": (403, "insufficient-permissions"),
        "statistics": (403, "insufficient-permissions"),
        "org": (403, None),
    },
    "shared": {
        "list": (200, None),
        "create": (201, None),
        "get": (200, None),
        "update": (403, "insufficient-permissions"),
        "delete": (403, "insufficient-permissions"),
        "items": (200, None),
        "items-head": (200, None),
        "push": (403, "insufficient-permissions"),
        "statistics": (200, None),
        "org": (403, None),
    },
    "signed-url": {
        **{name: (401, "token-not-provided") for name in ENDPOINTS},
        "items": (200, None),
        "items-head": (200, None),
    },
}

CASES = [(caller, endpoint) for caller in EXPECTED for endpoint in ENDPOINTS]


def call(http: FlaskClient, caller: str, endpoint: str, dataset: tuple[str, str]):  # type: ignore[no-untyped-def]
    method, path, body = ENDPOINTS[endpoint]
    path = path.format(id=dataset[0])
    headers = {}
    if caller in TOKENS:
        # The org dialect's SDK sends X-API-Key; the Apify clients send a Bearer token.
        headers = {"X-API-Key": TOKENS[caller]} if endpoint == "org" else {"Authorization": f"Bearer {TOKENS[caller]}"}
    elif caller == "wrong-token":
        headers = {"Authorization": "Bearer not-a-real-token"}
    elif caller == "signed-url":
        path += ("&" if "?" in path else "?") + "signature=" + create_signature(dataset[0], dataset[1])
    return http.open(path, method=method, data=body, headers=headers, content_type="application/json")


@pytest.mark.parametrize("caller, endpoint", CASES, ids=[f"{c}-{e}" for c, e in CASES])
def test_access_matrix(
    http: FlaskClient, secret: tuple[str, str], enforced_root: Path, caller: str, endpoint: str
) -> None:
    status, error_type = EXPECTED[caller][endpoint]
    folder = enforced_root / "datasets" / f"olivia~{SECRET_NAME}"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    response = call(http, caller, endpoint, secret)

    assert response.status_code == status
    if status >= 400:
        after = {p.name: p.read_bytes() for p in folder.iterdir()}
        assert after == before  # a refused request changes nothing, not even the metadata's counters
        if endpoint == "items-head":
            assert response.data == b""
        elif endpoint == "org":
            body = response.get_json()
            if status == 401:
                assert body == {"code": 401, "detail": "Authentication failed", "type": "authentication_error"}
            else:
                assert body["code"] == 403 and body["type"] == "permission_denied"
        else:
            assert response.get_json()["error"]["type"] == error_type
        # Refusals never carry the dataset's data.
        assert SECRET_SKU.encode() not in response.data and SECRET_NAME.encode() not in response.data


def test_owner_sees_the_signing_key_and_readers_do_not(http: FlaskClient, secret: tuple[str, str]) -> None:
    dataset_id = secret[0]
    owner = http.get(f"/v2/datasets/{dataset_id}", headers={"Authorization": f"Bearer {TOKENS['owner']}"})
    shared = http.get(f"/v2/datasets/{dataset_id}?token={TOKENS['shared']}")

    assert owner.get_json()["data"]["urlSigningSecretKey"] == secret[1]
    assert "itemsPublicUrl" in owner.get_json()["data"]
    assert "urlSigningSecretKey" not in shared.get_json()["data"]
    assert "itemsPublicUrl" not in shared.get_json()["data"]


def test_items_public_url_reads_without_a_token(http: FlaskClient, secret: tuple[str, str]) -> None:
    owner = http.get(f"/v2/datasets/{secret[0]}", headers={"Authorization": f"Bearer {TOKENS['owner']}"})
    public_url = owner.get_json()["data"]["itemsPublicUrl"]

    assert "signature=" in public_url
    assert http.get(public_url.replace("http://localhost", "")).get_json() == ITEMS
    assert http.get(f"/v2/datasets/{secret[0]}/items").status_code == 401


def test_listing_shows_own_and_shared_only(http: FlaskClient) -> None:
    def names(token: str, query: str = "") -> list[str]:
        data = http.get(f"/v2/datasets{query}", headers={"Authorization": f"Bearer {token}"}).get_json()["data"]
        return [item["name"] for item in data["items"]]

    assert names(TOKENS["owner"]) == [SECRET_NAME]
    assert names(TOKENS["other"]) == []
    assert names(TOKENS["shared"]) == [SECRET_NAME]
    assert names(TOKENS["shared"], "?ownership=ownedByMe") == []
    assert names(TOKENS["shared"], "?ownership=sharedWithMe") == [SECRET_NAME]


def test_username_name_does_not_reveal_existence_to_others(http: FlaskClient) -> None:
    headers = {"Authorization": f"Bearer {TOKENS['other']}"}
    existing = http.get(f"/v2/datasets/olivia~{SECRET_NAME}", headers=headers)
    missing = http.get("/v2/datasets/olivia~no-such-thing", headers=headers)

    assert existing.status_code == missing.status_code == 404
    assert existing.get_json() == missing.get_json()
    anonymous = http.get(f"/v2/datasets/olivia~{SECRET_NAME}")
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["type"] == "token-not-provided"


def test_general_access_opens_reads_but_never_writes(http: FlaskClient, secret: tuple[str, str]) -> None:
    owner = {"Authorization": f"Bearer {TOKENS['owner']}"}
    dataset_id = secret[0]

    assert http.get(f"/v2/datasets/{dataset_id}/items").status_code == 401
    http.put(f"/v2/datasets/{dataset_id}", json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"}, headers=owner)
    assert http.get(f"/v2/datasets/{dataset_id}/items").get_json() == ITEMS
    assert http.get(f"/v2/datasets/olivia~{SECRET_NAME}").status_code == 401  # by name still needs a token
    assert http.post(f"/v2/datasets/{dataset_id}/items", json={"x": 1}).status_code == 401

    http.put(f"/v2/datasets/{dataset_id}", json={"generalAccess": "ANYONE_WITH_NAME_CAN_READ"}, headers=owner)
    assert http.get(f"/v2/datasets/olivia~{SECRET_NAME}").status_code == 200


def test_follow_user_setting_follows_the_owner_account(enforced_root: Path, secret: tuple[str, str]) -> None:
    from storage_emulator.web import create_app

    path = default_accounts_path(enforced_root)
    data = json.loads(path.read_text())
    data["accounts"][0]["general_access"] = "ANYONE_WITH_ID_CAN_READ"
    path.write_text(json.dumps(data))
    DatasetRepository(enforced_root).update_dataset(secret[0], general_access="FOLLOW_USER_SETTING")
    http = create_app({"ROOT": str(enforced_root)}).test_client()

    assert http.get(f"/v2/datasets/{secret[0]}/items").status_code == 200


def test_signatures_are_refused_when_tampered_expired_or_for_another_dataset(
    http: FlaskClient, secret: tuple[str, str], enforced_root: Path
) -> None:
    dataset_id, key = secret
    expired = create_signature(dataset_id, key, expires_at_ms=int(time.time() * 1000) - 1000)
    valid = create_signature(dataset_id, key, expires_at_ms=int(time.time() * 1000) + 60_000)
    tampered = base64.urlsafe_b64encode(b"0.0.AAAAAAAAAAAAAAAAAAAAA").decode()
    other_dataset, _ = DatasetRepository(enforced_root).get_or_create_dataset(name="another")

    assert http.get(f"/v2/datasets/{dataset_id}/items?signature={valid}").get_json() == ITEMS
    assert http.get(f"/v2/datasets/{dataset_id}/items?signature={valid.rstrip('=')}").status_code == 200
    for bad in (expired, tampered, "%%%", valid[:-4]):
        response = http.get(f"/v2/datasets/{dataset_id}/items?signature={bad}")
        assert response.status_code == 403 and response.get_json()["error"]["type"] == "insufficient-permissions"
    # A signature is bound to its dataset.
    assert http.get(f"/v2/datasets/{other_dataset.id}/items?signature={valid}").status_code == 403


def test_spec_test_vector() -> None:
    assert hmac_signature("secret123", "0.0.abcDEF1234567890a") == "1s3sosc9CQEx94V71FZC1"
    assert create_signature("abcDEF1234567890a", "secret123") == "MC4wLjFzM3Nvc2M5Q1FFeDk0VjcxRlpDMQ=="
    for form in ("MC4wLjFzM3Nvc2M5Q1FFeDk0VjcxRlpDMQ", "MC4wLjFzM3Nvc2M5Q1FFeDk0VjcxRlpDMQ=="):
        assert verify_signature(form, "abcDEF1234567890a", "secret123")
    assert not verify_signature("MC4wLjFzM3Nvc2M5Q1FFeDk0VjcxRlpDMQ", "abcDEF1234567890b", "secret123")


def test_python_client_public_url_reads_without_a_token(enforced_app: Flask, secret: tuple[str, str], serve) -> None:  # type: ignore[no-untyped-def]
    from apify_client import ApifyClient

    with serve(enforced_app) as server:
        owner = ApifyClient(TOKENS["owner"], api_url=server.url, api_public_url=server.url, max_retries=0)
        anonymous = ApifyClient(api_url=server.url, api_public_url=server.url, max_retries=0)
        url = owner.dataset(secret[0]).create_items_public_url()
        jsonl_url = owner.dataset(secret[0]).create_items_public_url(item_format="jsonl")

        import urllib.error
        import urllib.request

        assert url.startswith(server.url + "/v2/datasets/") and "signature=" in url
        with urllib.request.urlopen(url) as response:
            assert json.loads(response.read()) == ITEMS
        with urllib.request.urlopen(jsonl_url) as response:
            assert [json.loads(line) for line in response.read().splitlines()] == ITEMS
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url.replace("signature=", "signature=x"))
        assert info.value.code == 403
        info.value.close()
        from apify_client.errors import ApifyApiError

        with pytest.raises(ApifyApiError) as refused:
            anonymous.dataset(secret[0]).list_items()
        assert refused.value.status_code == 401 and refused.value.type == "token-not-provided"
        signature = create_signature(secret[0], secret[1])
        assert anonymous.dataset(secret[0]).list_items(signature=signature).items == ITEMS
        assert list(anonymous.dataset(secret[0]).iterate_items(signature=signature)) == ITEMS


def test_org_listing_members_and_public_datasets(enforced_root: Path, enforced_app: Flask) -> None:
    accounts_path = default_accounts_path(enforced_root)
    data = json.loads(accounts_path.read_text())
    data["accounts"][1]["orgs"] = ["olivia"]  # oscar joins olivia's org
    accounts_path.write_text(json.dumps(data))
    from storage_emulator.web import create_app

    http = create_app({"ROOT": str(enforced_root)}).test_client()
    repo = DatasetRepository(enforced_root)
    sam = AccountRegistry.load(enforced_root).by_username("sam")
    public, _ = repo.get_or_create_dataset(name="sam-public", owner=sam)
    repo.update_dataset(public.id, general_access="ANYONE_WITH_ID_CAN_READ")
    repo.get_or_create_dataset(name="sam-private", owner=sam)

    member = http.get("/api/v1/org/olivia/datasets", headers={"X-API-Key": TOKENS["other"]})
    assert [row["name"] for row in member.get_json()["datasets"]] == [f"olivia/{SECRET_NAME}"]
    bearer = http.get("/api/v1/org/olivia/datasets", headers={"Authorization": f"Bearer {TOKENS['owner']}"})
    assert bearer.status_code == 200
    with_public = http.get(
        "/api/v1/org/olivia/datasets?include_public=true", headers={"X-API-Key": TOKENS["owner"]}
    ).get_json()
    assert sorted(row["name"] for row in with_public["datasets"]) == [f"olivia/{SECRET_NAME}", "sam/sam-public"]
    wrong = http.get("/api/v1/org/olivia/datasets", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    assert wrong.get_json() == {"code": 401, "detail": "Authentication failed", "type": "authentication_error"}


def test_open_mode_needs_no_configuration(client: FlaskClient) -> None:
    created = client.post("/v2/datasets?name=open", headers={"Authorization": "Bearer anything"})
    assert created.status_code == 201
    assert client.get("/v2/datasets/~open").status_code == 200  # no token at all
    assert client.get("/api/v1/org/local/datasets", headers={"X-API-Key": "whatever"}).status_code == 200


def test_python_client_expiring_public_url_is_refused_once_expired(
    enforced_app: Flask, secret: tuple[str, str], serve
) -> None:  # type: ignore[no-untyped-def]
    import urllib.error
    import urllib.request
    from datetime import timedelta

    from apify_client import ApifyClient

    with serve(enforced_app) as server:
        owner = ApifyClient(TOKENS["owner"], api_url=server.url, api_public_url=server.url, max_retries=0)
        url = owner.dataset(secret[0]).create_items_public_url(expires_in=timedelta(seconds=1))

        with urllib.request.urlopen(url) as response:
            assert json.loads(response.read()) == ITEMS
        time.sleep(1.2)  # past the expiry the client signed into the URL
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url)

    assert refused.value.code == 403
    assert json.loads(refused.value.read())["error"]["type"] == "insufficient-permissions"
    refused.value.close()


@pytest.mark.parametrize(
    "caller, status",
    [("none", 401), ("wrong-token", 401), ("other", 403), ("owner", 200), ("shared", 200)],
)
def test_dataset_html_page_follows_the_read_rules(
    http: FlaskClient, secret: tuple[str, str], caller: str, status: int
) -> None:
    """The consoleUrl page shows items, so it is refused exactly where reading them is."""
    headers = {"Authorization": f"Bearer {TOKENS[caller]}"} if caller in TOKENS else {}
    if caller == "wrong-token":
        headers = {"Authorization": "Bearer not-a-real-token"}

    response = http.get(f"/view/datasets/{secret[0]}", headers=headers)

    assert response.status_code == status
    assert (SECRET_SKU.encode() in response.data) == (status == 200)
