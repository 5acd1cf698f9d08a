"""The org listing driven by the real dreadnode SDK's API client (the `dreadnode` package, 2.x).

scripts/test.sh installs the package without its dependency tree (litellm, pandas, pyarrow, ... are not
needed by the API client), plus the four modules the client imports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask

from storage_emulator import DatasetRepository
from storage_emulator.accounts import AccountRegistry, default_accounts_path


@pytest.fixture
def org_root(storage_root: Path) -> Path:
    """A root in enforced mode: `acme` (token acme-key) owns three datasets; `rival` owns a public and a private one."""
    path = default_accounts_path(storage_root)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {"accounts": [{"username": "acme", "token": "acme-key"}, {"username": "rival", "token": "rival-key"}]}
        )
    )
    repo = DatasetRepository(storage_root)
    accounts = AccountRegistry.load(storage_root)
    acme, rival = accounts.by_username("acme"), accounts.by_username("rival")
    for name, tags, summary in [
        ("prompts", ["nlp"], "Jailbreak prompts"),
        ("images", ["vision"], "Screenshots"),
        ("logs", ["nlp", "ops"], "Agent logs"),
    ]:
        dataset, _ = repo.get_or_create_dataset(name=name, owner=acme)
        repo.update_dataset(dataset.id, tags=tags, summary=summary, license="mit")
    public, _ = repo.get_or_create_dataset(name="open-corpus", owner=rival)
    repo.update_dataset(public.id, general_access="ANYONE_WITH_ID_CAN_READ", tags=["nlp"])
    repo.get_or_create_dataset(name="secret-corpus", owner=rival)
    return storage_root


@pytest.fixture
def sdk_server(org_root: Path, serve):  # type: ignore[no-untyped-def]
    """A live server over the org root."""
    from storage_emulator.web import create_app

    app: Flask = create_app({"ROOT": str(org_root)})
    with serve(app) as server:
        yield server


def client(url: str, key: str | None):  # type: ignore[no-untyped-def]
    from dreadnode.app.api.client import ApiClient

    return ApiClient(url, api_key=key)


def test_sdk_lists_the_org_datasets(sdk_server) -> None:  # type: ignore[no-untyped-def]
    packages = client(sdk_server.url, "acme-key").list_datasets("acme", sort_by="name", sort_dir="asc")

    assert [p.full_name for p in packages] == ["acme/images", "acme/logs", "acme/prompts"]
    assert [p.name for p in packages] == ["images", "logs", "prompts"]
    assert {p.visibility for p in packages} == {"private"}
    assert packages[0].latest_version == "0.1.0" and packages[0].summary == "Screenshots"


def test_sdk_filters_and_pages(sdk_server) -> None:  # type: ignore[no-untyped-def]
    api = client(sdk_server.url, "acme-key")

    assert [p.full_name for p in api.list_datasets("acme", tags=["ops", "vision"], sort_by="name", sort_dir="asc")] == [
        "acme/images",
        "acme/logs",
    ]
    assert [p.full_name for p in api.list_datasets("acme", search="JAILBREAK")] == ["acme/prompts"]
    assert [p.full_name for p in api.list_datasets("acme", license=["apache-2.0"])] == []
    pages = [api.list_datasets("acme", sort_by="name", sort_dir="asc", page=n, limit=2) for n in (1, 2, 3)]
    assert [[p.name for p in page] for page in pages] == [["images", "logs"], ["prompts"], []]


def test_sdk_include_public_adds_only_public_datasets_of_other_orgs(sdk_server) -> None:  # type: ignore[no-untyped-def]
    packages = client(sdk_server.url, "acme-key").list_datasets("acme", include_public=True, tags=["nlp"])

    assert sorted(p.full_name for p in packages) == ["acme/logs", "acme/prompts", "rival/open-corpus"]
    assert {p.full_name: p.visibility for p in packages}["rival/open-corpus"] == "public"


def test_sdk_errors_carry_the_detail(sdk_server) -> None:  # type: ignore[no-untyped-def]
    from dreadnode.app.api.client import AuthenticationError

    with pytest.raises(AuthenticationError, match="401: Authentication failed"):
        client(sdk_server.url, "wrong-key").list_datasets("acme")
    with pytest.raises(AuthenticationError, match="401: Authentication failed"):
        client(sdk_server.url, None).list_datasets("acme")
    with pytest.raises(RuntimeError, match="403: .*not a member of the organization 'rival'"):
        client(sdk_server.url, "acme-key").list_datasets("rival")
    with pytest.raises(RuntimeError, match="422: .*'limit'"):
        client(sdk_server.url, "acme-key").list_datasets("acme", limit=500)
