"""The official JavaScript apify-client 2.x against a live server, checked from both sides of the wire."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from storage_emulator import DEFAULT_ACCOUNT

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "run_client.js"
ITEM_COUNT = 3000  # run_client.js pushes this many items: one on its own, then the rest in one array
MIN_COMPRESS_BYTES = 1024  # apify-client 2.x brotli-compresses request bodies of at least this many bytes


@dataclass(frozen=True)
class SeenRequest:
    """One request as it reached the server."""

    method: str
    raw_uri: str
    """Path and query exactly as sent, before any percent-decoding."""
    content_type: str | None
    content_encoding: str | None
    content_length: int | None

    @property
    def path(self) -> str:
        """Return the path without the query."""
        return urlsplit(self.raw_uri).path

    @property
    def query(self) -> dict[str, str]:
        """Return the query parameters (last value wins)."""
        return {key: values[-1] for key, values in parse_qs(urlsplit(self.raw_uri).query).items()}


class RequestRecorder:
    """WSGI middleware: note each request's method, raw URI and body headers, then pass it on."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.seen: list[SeenRequest] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Record the request and hand it to the wrapped app."""
        query = environ.get("QUERY_STRING", "")
        raw_uri = environ.get("RAW_URI") or environ["PATH_INFO"] + (f"?{query}" if query else "")
        length = environ.get("CONTENT_LENGTH")
        self.seen.append(
            SeenRequest(
                method=environ["REQUEST_METHOD"],
                raw_uri=raw_uri,
                content_type=environ.get("CONTENT_TYPE") or None,
                content_encoding=environ.get("HTTP_CONTENT_ENCODING"),
                content_length=int(length) if length else None,
            )
        )
        return self.app(environ, start_response)


def node_command() -> list[str]:
    """Return the command that runs the JS script, failing (never skipping) when Node or the client is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH: install Node.js 20+ to run the JS client test")
    if not (JS_DIR / "node_modules" / "apify-client" / "package.json").is_file():
        pytest.fail("tests/js/node_modules is missing: run `(cd tests/js && npm ci)` first (scripts/test.sh does)")
    return [node, str(SCRIPT)]


def pinned_client_version() -> str:
    """Return the apify-client version that tests/js/package.json pins."""
    return json.loads((JS_DIR / "package.json").read_text(encoding="utf-8"))["dependencies"]["apify-client"]


def read_json(path: Path) -> Any:
    """Load one JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def test_js_client_end_to_end(app: Flask, live_server: Any, storage_root: Path) -> None:
    """Create, push (brotli), list, download CSV and look up datasets with the JS client; check wire and disk."""
    command = node_command()
    recorder = RequestRecorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    # The client routes through proxy-agent, which honours *_PROXY: keep loopback traffic direct.
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    proc = subprocess.run(
        [*command, live_server.url], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert proc.returncode == 0, f"run_client.js failed:\n{proc.stderr}\n{proc.stdout}"
    results = json.loads(proc.stdout)
    dataset_id = results["id"]
    assert results["clientVersion"] == pinned_client_version(), "stale tests/js/node_modules: run `npm ci` there"
    assert results["username"] == DEFAULT_ACCOUNT.username
    assert (results["itemCount"], results["cleanItemCount"]) == (ITEM_COUNT, ITEM_COUNT - 6)
    assert results["listed"] == {"page": 28, "tail": 10, "iterated": ITEM_COUNT}
    assert results["csv"]["rows"] == ITEM_COUNT
    assert set(results["csv"]["columns"]) == {"id", "name", "city", "price", "#secret", "#only"}
    assert results["missingIsUndefined"] is True
    assert results["byName"] == {"tilde": dataset_id, "username": dataset_id}

    seen = recorder.seen
    creates = [r for r in seen if r.method == "POST" and r.path == "/v2/datasets"]
    assert [r.query for r in creates] == [{"name": "js-made"}] * 2
    assert all((r.content_length or 0) == 0 for r in creates), "the JS client's create body should be empty"

    pushes = [r for r in seen if r.method == "POST" and r.path == f"/v2/datasets/{dataset_id}/items"]
    assert [r.content_encoding for r in pushes] == [None, "br"], "the small push goes plain, the big one brotli"
    assert all((r.content_type or "").startswith("application/json") for r in pushes)
    assert (pushes[0].content_length or 0) < MIN_COMPRESS_BYTES < results["bigPushBytes"]
    assert (pushes[1].content_length or 0) < results["bigPushBytes"] / 2, "the brotli body should be much smaller"

    reads = [r.query for r in seen if r.method == "GET" and r.path == f"/v2/datasets/{dataset_id}/items"]
    page_query = {"offset": "995", "limit": "30", "desc": "1", "clean": "1", "skipEmpty": "1", "fields": "name,id,city"}
    assert page_query in reads, "the JS client sends booleans as 1/0"
    assert {"offset": "2990", "limit": "20", "skipHidden": "0", "desc": "0"} in reads
    assert {"chunkSize": "1000", "limit": "1000", "offset": "2000"} in reads
    assert {"format": "csv"} in reads

    lookups = {r.raw_uri for r in seen if r.method == "GET"}
    assert {"/v2/datasets/~js-made", f"/v2/datasets/{DEFAULT_ACCOUNT.username}~js-made"} <= lookups
    assert "/v2/datasets/aaaaaaaaaaaaaaaaa" in lookups

    folder = storage_root / "datasets" / "js-made"
    metadata = read_json(folder / "__metadata__.json")
    assert (metadata["id"], metadata["name"], metadata["item_count"]) == (dataset_id, "js-made", ITEM_COUNT)
    assert len(list(folder.glob("[0-9]*.json"))) == ITEM_COUNT
    first = {"id": 0, "name": "item-0", "city": "Praha", "price": 0.25, "#secret": "s0"}
    assert read_json(folder / "000000001.json") == first
    assert read_json(folder / "000000003.json") == {"id": 2, "name": "item-2", "city": 'Rio, "RJ"', "price": 2.25}
    assert read_json(folder / "000000981.json") == {"#only": "hidden-980"}
    assert read_json(folder / "000001000.json") == {}
    assert read_json(folder / f"{ITEM_COUNT:09d}.json") == {}
