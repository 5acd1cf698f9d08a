"""The pytest plugin in throwaway projects (pytester), and ``EmulatorServer`` used without pytest."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from apify_client import ApifyClient

from storage_emulator.testing import EmulatorServer

pytest_plugins = ["pytester"]

STRICT_INI = """
[pytest]
filterwarnings = error
addopts = -p no:cacheprovider
"""

PLUGIN_TESTS = """
import asyncio


def test_function_scope_serves_a_fresh_root(apify_emulator, apify_client):
    dataset = apify_client.datasets().get_or_create(name="plugin-made")
    apify_client.dataset(dataset.id).push_items([{"a": 1}])
    assert (apify_emulator.root / "datasets" / "plugin-made" / "000000001.json").is_file()
    assert apify_emulator.repo.get_dataset("~plugin-made").item_count == 1
    assert apify_emulator.url.startswith("http://127.0.0.1:")


def test_the_next_test_sees_an_empty_root(apify_client):
    assert apify_client.datasets().list().items == []


def test_session_server_and_reset(apify_emulator_session):
    repo = apify_emulator_session.repo
    repo.get_or_create_dataset(name="left-over")
    apify_emulator_session.reset()
    assert repo.list_datasets().items == []
    assert not any((apify_emulator_session.root / "datasets").iterdir())


def test_async_client(apify_client_async):
    async def main():
        dataset = await apify_client_async.datasets().get_or_create(name="async-made")
        await apify_client_async.dataset(dataset.id).push_items([{"b": 2}])
        page = await apify_client_async.dataset(dataset.id).list_items()
        return page.items

    assert asyncio.run(main()) == [{"b": 2}]
"""


def test_plugin_fixtures_work_in_a_throwaway_project(pytester: pytest.Pytester) -> None:
    """Installing the package is enough: the four fixtures work, with warnings turned into errors."""
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(test_uses_plugin=PLUGIN_TESTS)

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=4)


def test_plugin_serves_one_session_server_per_xdist_worker(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Under pytest-xdist each worker has its own session server, on its own port."""
    seen = tmp_path / "seen"
    seen.mkdir()
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(
        test_workers=f"""
import json, os
from pathlib import Path

def test_note_the_server(apify_emulator_session):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    note = {{"worker": worker, "url": apify_emulator_session.url}}
    Path({str(seen)!r}, worker + ".json").write_text(json.dumps(note))
"""
    )

    result = pytester.runpytest_subprocess("-n", "2", "--dist", "each")

    result.assert_outcomes(passed=2)
    notes = [json.loads(path.read_text()) for path in sorted(seen.iterdir())]
    assert [note["worker"] for note in notes] == ["gw0", "gw1"]
    assert notes[0]["url"] != notes[1]["url"]


def test_client_fixtures_skip_without_apify_client(pytester: pytest.Pytester) -> None:
    """Where apify-client cannot be imported, the client fixtures skip the test instead of failing it."""
    pytester.makeini(STRICT_INI)
    pytester.makeconftest("import sys\nsys.modules['apify_client'] = None  # as if it were not installed\n")
    pytester.makepyfile(
        test_skips="""
def test_sync(apify_client):
    raise AssertionError("not reached")

def test_async(apify_client_async):
    raise AssertionError("not reached")

def test_server_alone(apify_emulator):
    assert apify_emulator.url
"""
    )

    result = pytester.runpytest_subprocess("-rs")

    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*needs apify-client installed*"])


def test_emulator_server_without_pytest_fixtures() -> None:
    """``EmulatorServer()`` serves a temporary root on a free port and removes it when the block ends."""
    with EmulatorServer() as server:
        client = ApifyClient(token="local", api_url=server.url, max_retries=0)
        dataset = client.datasets().get_or_create(name="outside-pytest")
        client.dataset(dataset.id).push_items([{"x": 1}])
        root, url = server.root, server.url
        on_disk = (root / "datasets" / "outside-pytest" / "000000001.json").read_text(encoding="utf-8")

    assert json.loads(on_disk) == {"x": 1}
    assert not root.exists()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/v2/datasets", timeout=5)


def test_emulator_server_with_accounts_is_enforced(tmp_path: Path) -> None:
    """Accounts given as a list turn on enforced mode: a wrong token is refused, the right one works."""
    accounts = [{"username": "alice", "token": "alice-token"}]
    with EmulatorServer(root=tmp_path / "root", accounts=accounts) as server:
        refused = ApifyClient(token="wrong", api_url=server.url, max_retries=0)
        with pytest.raises(Exception, match="authentication token is not valid"):
            refused.datasets().list()
        alice = ApifyClient(token="alice-token", api_url=server.url, max_retries=0)
        made = alice.datasets().get_or_create(name="alices")

    assert made.username == "alice"
    assert (tmp_path / "root").is_dir()  # a root of the caller's own is kept
