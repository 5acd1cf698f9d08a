"""The ``rq`` commands (real subprocesses), the sample queue, and the HTML pages of queues."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT
from flask.testing import FlaskClient

from storage_emulator.request_queues import RequestQueueRepository
from storage_emulator.web import create_app

SAMPLE_QUEUE = REPO_ROOT / "sample_storage" / "request_queues" / "books-crawl"
BOOKS = "https://books.toscrape.com/catalogue"


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storage_emulator", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rq_add_ls_head_show_and_fsck(storage_root: Path, tmp_path: Path) -> None:
    requests_file = tmp_path / "requests.jsonl"
    requests_file.write_text('https://example.com/c\n{"url": "https://example.com/d", "userData": {"x": 1}}\n')

    first = cli(storage_root, "rq", "add", "https://example.com/a", "https://example.com/b")
    second = cli(storage_root, "rq", "add", "-f", str(requests_file), "--forefront", "-q", "~default")
    again = cli(storage_root, "rq", "add", "https://example.com/a")
    listed = cli(storage_root, "rq", "ls")
    head = cli(storage_root, "rq", "head", "--limit", "3")
    shown = cli(storage_root, "rq", "show", "~default", "--requests", "1")
    everything = cli(storage_root, "ls")

    assert first.stdout.strip() == "2 added, 0 already present in default"
    assert second.returncode == 0 and again.stdout.strip() == "0 added, 1 already present in default"
    assert "default" in listed.stdout and "       4         0         4" in listed.stdout
    assert [line.split()[-1] for line in head.stdout.splitlines()] == [
        "https://example.com/d",
        "https://example.com/c",
        "https://example.com/a",
    ]
    assert json.loads(shown.stdout.split("\n}\n")[0] + "}")["totalRequestCount"] == 4
    assert json.loads(shown.stdout.split("\n}\n")[1])["uniqueKey"] == "https://example.com/a"
    assert "Request queues:" in everything.stdout
    assert not RequestQueueRepository(storage_root).get_request_queue("~default").had_multiple_clients

    metadata_path = storage_root / "request_queues" / "default" / "__metadata__.json"
    metadata = json.loads(metadata_path.read_text())
    metadata_path.write_text(json.dumps({**metadata, "total_request_count": 9}))
    found = cli(storage_root, "fsck")
    repaired = cli(storage_root, "fsck", "--repair")

    assert found.returncode == 1 and "9/0/4 do not match the request files (4/0/4)" in found.stdout
    assert repaired.returncode == 0 and json.loads(metadata_path.read_text())["total_request_count"] == 4
    assert cli(storage_root, "fsck").stdout.strip() == "no problems found"


def test_rq_add_refuses_a_bad_file(storage_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("https://example.com/a\nnot a url\n")

    done = cli(storage_root, "rq", "add", "-f", str(bad))

    assert done.returncode == 2 and "line 2: neither JSON nor an http(s) URL" in done.stderr
    assert not (storage_root / "request_queues" / "default").exists()


def test_the_sample_queue_has_pending_handled_and_forefront_requests(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(REPO_ROOT / "sample_storage", root)
    client = create_app({"ROOT": str(root), "TESTING": True}).test_client()

    queue = client.get("/v2/request-queues/~books-crawl").get_json()["data"]
    head = client.get(f"/v2/request-queues/{queue['id']}/head?limit=100").get_json()["data"]["items"]

    assert (queue["totalRequestCount"], queue["handledRequestCount"], queue["pendingRequestCount"]) == (10, 3, 7)
    assert [item["url"] for item in head] == [
        f"{BOOKS}/tipping-the-velvet_999/index.html",
        f"{BOOKS}/a-light-in-the-attic_1000/index.html",
        *(f"{BOOKS}/page-{n}.html" for n in range(4, 9)),
    ]
    assert not (SAMPLE_QUEUE / ".queue-index.sqlite3").exists()  # the index is built on first use, not shipped


def test_pages_list_queues_and_show_their_requests(client: FlaskClient) -> None:
    queue_id = client.post("/v2/request-queues?name=shown").get_json()["data"]["id"]
    client.post(
        f"/v2/request-queues/{queue_id}/requests/batch?clientKey=c",
        json=[{"uniqueKey": "a", "url": "https://example.com/a", "userData": {"label": "L<b>"}}],
    )

    listing = client.get("/view/request-queues").get_data(as_text=True)
    page = client.get(f"/view/request-queues/{queue_id}").get_data(as_text=True)

    assert f'href="/view/request-queues/{queue_id}">shown</a>' in listing
    assert "https://example.com/a" in page and "L&lt;b&gt;" in page and "1 requests" in page
    assert 'href="/view/request-queues"' in client.get("/").get_data(as_text=True)
    assert client.get("/view/request-queues/nosuchqueue").status_code == 404
