"""``storage-emulator serve`` on its production servers: keep-alive, access log, signals, several workers."""

from __future__ import annotations

import http.client
import json
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from apify_client import ApifyClient
from serve_process import ServeProcess

from storage_emulator import DatasetRepository
from storage_emulator.models import METADATA_FILENAME

ACCESS_LINE_MARK = "storage_emulator.access"


def start(serve_process: list[ServeProcess], tmp_path: Path, *args: str) -> tuple[ServeProcess, str]:
    """Start ``serve --port 0 ARGS`` and return it with its URL."""
    server = ServeProcess(["serve", "--port", "0", *args], tmp_path / f"serve-{len(serve_process)}.err")
    serve_process.append(server)
    url, _ = server.wait_for_url()
    return server, url


def connection(url: str) -> http.client.HTTPConnection:
    """Open one HTTP/1.1 connection to the server."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def get_json(conn: http.client.HTTPConnection, method: str, path: str) -> tuple[int, Any, bool]:
    """Send one request on ``conn``; return the status, the JSON body and whether the server keeps the connection."""
    conn.request(method, path)
    response = conn.getresponse()
    body = response.read()
    return response.status, json.loads(body) if body else None, not response.will_close


@pytest.mark.parametrize("quiet", [False, True], ids=["access-log", "quiet"])
def test_serve_keeps_the_connection_alive_and_logs_each_request(
    tmp_path: Path, serve_process: list[ServeProcess], quiet: bool
) -> None:
    """Three requests travel over one connection; one access line each unless ``--quiet``."""
    server, url = start(serve_process, tmp_path, "--root", str(tmp_path / "root"), *(["--quiet"] if quiet else []))
    conn = connection(url)

    created_status, created, kept_after_create = get_json(conn, "POST", "/v2/datasets?name=alive")
    first_socket = conn.sock
    got_status, got, kept_after_get = get_json(conn, "GET", f"/v2/datasets/{created['data']['id']}")
    missing_status, missing, kept_after_404 = get_json(conn, "GET", "/v2/nothing-here")
    same_socket = conn.sock is first_socket and first_socket is not None
    conn.close()
    exit_status = server.stop()

    assert (created_status, got_status, missing_status) == (201, 200, 404)
    assert got["data"]["name"] == "alive"
    assert missing["error"]["type"] == "record-not-found"
    assert kept_after_create and kept_after_get and kept_after_404 and same_socket
    assert exit_status == 0
    access_lines = [line for line in server.stderr_text().splitlines() if ACCESS_LINE_MARK in line]
    if quiet:
        assert access_lines == []
    else:
        assert len(access_lines) == 3, access_lines
        assert '"POST /v2/datasets?name=alive" 201' in access_lines[0]
        assert '"GET /v2/nothing-here" 404' in access_lines[2]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_writes_pending_read_counters_on_shutdown(
    tmp_path: Path, serve_process: list[ServeProcess], signum: int
) -> None:
    """Reads kept in memory (written at most once a second) reach the metadata file on a clean shutdown."""
    root = tmp_path / "root"
    repo = DatasetRepository(root)
    dataset, _ = repo.get_or_create_dataset(name="counted")
    repo.push_items(dataset.id, [{"n": 1}])
    server, url = start(serve_process, tmp_path, "--root", str(root), "--quiet")
    conn = connection(url)

    statuses = [get_json(conn, "GET", f"/v2/datasets/{dataset.id}/items")[0] for _ in range(3)]
    conn.close()
    exit_status = server.stop(signum)

    assert statuses == [200, 200, 200]
    assert exit_status == 0
    metadata = json.loads((root / "datasets" / "counted" / METADATA_FILENAME).read_text(encoding="utf-8"))
    assert metadata["read_count"] == 3


def fresh_client(url: str) -> ApifyClient:
    """Return a new official client: its own connection pool, so its requests may land on another worker."""
    return ApifyClient(token="local", api_url=url, api_public_url=url, max_retries=0)


def answering_pids(url: str, *, wanted: int, attempts: int = 200) -> set[int]:
    """Ask ``/health`` over fresh connections until ``wanted`` distinct processes answered (or attempts run out)."""
    pids: set[int] = set()
    for _ in range(attempts):
        conn = connection(url)
        status, body, _ = get_json(conn, "GET", "/health")
        conn.close()
        assert status == 200
        pids.add(body["data"]["pid"])
        if len(pids) >= wanted:
            break
    return pids


def test_two_workers_agree_with_the_official_client(tmp_path: Path, serve_process: list[ServeProcess]) -> None:
    """With ``--workers 2``, ids, names, counters and listings agree whichever worker answers."""
    root = tmp_path / "root"
    server, url = start(serve_process, tmp_path, "--root", str(root), "--workers", "2", "--quiet")
    rounds = 12

    ids = {fresh_client(url).datasets().get_or_create(name="shared").id for _ in range(rounds)}
    (shared_id,) = ids
    for n in range(rounds):
        fresh_client(url).dataset(shared_id).push_items([{"n": n}])
        fresh_client(url).datasets().get_or_create(name=f"made-{n}")
    listings = [[d.name for d in fresh_client(url).datasets().list().items] for _ in range(rounds)]
    counts = [fresh_client(url).dataset(shared_id).get().item_count for _ in range(rounds)]
    pages = [fresh_client(url).dataset(shared_id).list_items().items for _ in range(rounds)]
    worker_pids = answering_pids(url, wanted=2)
    exit_status = server.stop()

    expected_names = ["shared", *(f"made-{n}" for n in range(rounds))]
    assert all(listing == expected_names for listing in listings), listings
    assert counts == [rounds] * rounds
    assert all(sorted(item["n"] for item in page) == list(range(rounds)) for page in pages)
    assert len(worker_pids) == 2, "fresh connections should reach both workers"
    assert exit_status == 0
    metadata = json.loads((root / "datasets" / "shared" / METADATA_FILENAME).read_text(encoding="utf-8"))
    assert (metadata["item_count"], metadata["read_count"]) == (rounds, rounds)  # every worker wrote its reads
    assert sorted(p.name for p in (root / "datasets").iterdir()) == sorted(expected_names)
