"""``serve --record FILE`` and ``storage-emulator log FILE``, with the official client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient
from serve_process import ServeProcess
from test_cli import run_cli

from storage_emulator.testing import EmulatorServer
from storage_emulator.web.request_log import BODY_LIMIT


@pytest.fixture
def serve_process() -> Iterator[list[ServeProcess]]:
    """Collect serve processes started by a test and terminate each one at the end."""
    started: list[ServeProcess] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.stop()


def read_record(path: Path) -> list[dict[str, Any]]:
    """Parse a record file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_record_then_log_what_the_official_client_sent(tmp_path: Path, serve_process: list[ServeProcess]) -> None:
    """Every request of the client is one JSON line; ``log`` counts them per route and status."""
    record = tmp_path / "requests.jsonl"
    server = ServeProcess(
        ["serve", "--port", "0", "--root", str(tmp_path / "root"), "--quiet", "--record", str(record)],
        tmp_path / "serve.err",
    )
    serve_process.append(server)
    url, _ = server.wait_for_url()
    client = ApifyClient(token="local", api_url=url, max_retries=0)
    dataset = client.datasets().get_or_create(name="recorded")
    client.dataset(dataset.id).push_items([{"a": 1}])
    client.dataset(dataset.id).list_items()
    client.dataset(dataset.id).list_items(limit=1)
    assert client.dataset("aaaaaaaaaaaaaaaaa").get() is None
    assert server.stop() == 0

    entries = read_record(record)
    summary = run_cli("log", str(record))

    assert [(e["method"], e["route"], e["status"]) for e in entries] == [
        ("POST", "/v2/datasets", 201),
        ("POST", "/v2/datasets/<ref>/items", 201),
        ("GET", "/v2/datasets/<ref>/items", 200),
        ("GET", "/v2/datasets/<ref>/items", 200),
        ("GET", "/v2/datasets/<ref>", 404),
    ]
    assert entries[0]["query"] == "name=recorded"
    assert entries[1]["path"] == f"/v2/datasets/{dataset.id}/items" and entries[1]["request_bytes"] > 0
    assert all(e["duration_ms"] >= 0 and e["response_bytes"] > 0 for e in entries)
    assert "request_body" not in entries[0]
    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    items_line = next(line for line in lines if "/v2/datasets/<ref>/items" in line and "GET" in line)
    assert items_line.split()[:2] == ["2", "GET"] and items_line.split()[3] == "200"
    assert lines[-1] == "5 request(s)"


def test_record_bodies_are_cut_at_the_limit(tmp_path: Path) -> None:
    """``--record-bodies`` keeps the first 4 KiB of each body and says when it cut."""
    record = tmp_path / "requests.jsonl"
    config = {"RECORD_FILE": str(record), "RECORD_BODIES": True}
    big = json.dumps([{"n": n, "text": "x" * 50} for n in range(200)]).encode()
    with EmulatorServer(root=tmp_path / "root", config=config) as server:
        created = httpx.post(f"{server.url}/v2/datasets?name=bodies", timeout=10).json()["data"]
        headers = {"Content-Type": "application/json"}
        httpx.post(f"{server.url}/v2/datasets/{created['id']}/items", content=big, headers=headers, timeout=10)

    create, push = read_record(record)
    assert create["request_body"] == "" and create["request_body_truncated"] is False
    assert json.loads(create["response_body"])["data"]["name"] == "bodies"
    assert push["request_bytes"] > BODY_LIMIT and push["request_body_truncated"] is True
    assert push["request_bytes"] == len(big)
    assert push["request_body"] == big[:BODY_LIMIT].decode()


def test_log_skips_unreadable_lines(tmp_path: Path) -> None:
    """A line that is not a record entry is counted as skipped, not fatal."""
    record = tmp_path / "requests.jsonl"
    good = {"method": "GET", "path": "/v2/datasets", "route": "/v2/datasets", "status": 200, "duration_ms": 1.5}
    record.write_text(json.dumps(good) + "\nnot json\n" + json.dumps({**good, "duration_ms": 2.5}) + "\n")

    result = run_cli("log", str(record))

    assert result.returncode == 0
    assert "      2  GET     /v2/datasets     200       2.00" in result.stdout
    assert result.stdout.splitlines()[-1] == "2 request(s); 1 unreadable line(s) skipped"


def test_record_bodies_needs_record(tmp_path: Path) -> None:
    """``--record-bodies`` alone is refused before anything is served."""
    result = run_cli("serve", "--port", "0", "--root", str(tmp_path / "root"), "--record-bodies")

    assert result.returncode == 2
    assert "--record-bodies needs --record FILE" in result.stderr
