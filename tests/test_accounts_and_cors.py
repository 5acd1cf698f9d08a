"""Accounts from the CLI, the open-mode exposure warning, and CORS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage_emulator.accounts import AccountRegistry, default_accounts_path, read_accounts
from storage_emulator.cli import exposure_warning


def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storage_emulator", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_accounts_add_prints_a_token_that_the_server_accepts(storage_root: Path) -> None:
    from storage_emulator.web import create_app

    result = run_cli(storage_root, "accounts", "add", "alice", "--org", "team")

    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    accounts = read_accounts(default_accounts_path(storage_root))
    assert [(a.username, a.token, a.orgs) for a in accounts] == [("alice", token, ("team",))]
    http = create_app({"ROOT": str(storage_root)}).test_client()
    assert http.post("/v2/datasets?name=mine", headers={"Authorization": f"Bearer {token}"}).status_code == 201
    assert http.post("/v2/datasets?name=anon").status_code == 401  # the file switched the root to enforced mode
    listing = run_cli(storage_root, "accounts", "list")
    assert "alice" in listing.stdout and token not in listing.stdout


def test_accounts_add_again_renews_the_token(storage_root: Path) -> None:
    first = run_cli(storage_root, "accounts", "add", "bob").stdout.strip().splitlines()[-1]
    second = run_cli(storage_root, "accounts", "add", "bob").stdout.strip().splitlines()[-1]

    registry = AccountRegistry.load(storage_root)
    assert first != second
    assert registry.by_token(second) is not None and registry.by_token(first) is None


def test_accounts_add_rejects_a_bad_username(storage_root: Path) -> None:
    result = run_cli(storage_root, "accounts", "add", "../evil")

    assert result.returncode == 2 and "username" in result.stderr
    assert not default_accounts_path(storage_root).exists()


def test_share_from_the_cli(storage_root: Path) -> None:
    from storage_emulator import DatasetRepository

    token = run_cli(storage_root, "accounts", "add", "carol").stdout.strip().splitlines()[-1]
    DatasetRepository(storage_root).get_or_create_dataset(name="to-share")

    result = run_cli(storage_root, "share", "~to-share", "carol")

    assert result.returncode == 0, result.stderr
    from storage_emulator.web import create_app

    http = create_app({"ROOT": str(storage_root)}).test_client()
    listing = http.get("/v2/datasets?ownership=sharedWithMe", headers={"Authorization": f"Bearer {token}"})
    assert [item["name"] for item in listing.get_json()["data"]["items"]] == ["to-share"]


@pytest.mark.parametrize(
    "host, enforced, warns",
    [
        ("127.0.0.1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", False, True),
        ("192.0.2.1", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_open_mode_on_a_public_interface_warns(host: str, enforced: bool, warns: bool) -> None:
    warning = exposure_warning(host, enforced=enforced)
    assert (warning is not None) == warns
    if warning:
        assert host in warning and "open mode" in warning


def test_cors_is_off_by_default(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/v2/datasets", headers={"Origin": "http://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_for_a_configured_origin(storage_root: Path) -> None:
    from storage_emulator.web import create_app

    http = create_app({"ROOT": str(storage_root), "CORS_ORIGINS": ["http://app.example"]}).test_client()

    preflight = http.options(
        "/v2/datasets",
        headers={
            "Origin": "http://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    got = http.get("/v2/datasets", headers={"Origin": "http://app.example"})
    assert got.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert "X-Apify-Pagination-Total" in got.headers["Access-Control-Expose-Headers"]
    stranger = http.get("/v2/datasets", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
