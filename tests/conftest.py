"""Shared fixtures: a storage root in tmp_path, the app, a live server on port 0, the official client."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from serve_process import ServeProcess
from werkzeug.serving import make_server

from storage_emulator import DatasetRepository

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    """Return an empty storage root inside tmp_path."""
    return tmp_path / "storage"


@pytest.fixture
def repo(storage_root: Path) -> DatasetRepository:
    """Return a repository over the storage root."""
    return DatasetRepository(storage_root)


@pytest.fixture
def app(storage_root: Path) -> Flask:
    """Return the app serving the storage root."""
    from storage_emulator.web import create_app

    return create_app({"ROOT": str(storage_root), "TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return Flask's in-process test client."""
    return app.test_client()


class LiveServer:
    """A real threaded HTTP server on 127.0.0.1 and a free port."""

    def __init__(self, app: Flask) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per request
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()  # the socket is already listening, so the server is ready at once
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve() -> type[LiveServer]:
    """Return the LiveServer class, to serve an app of a test's own: ``with serve(app) as server: ...``."""
    return LiveServer


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """Serve the app on a real socket for the duration of a test."""
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def apify(live_server: LiveServer):  # type: ignore[no-untyped-def]
    """Return the official Python ApifyClient pointed at the live server, with retries off."""
    from apify_client import ApifyClient

    return ApifyClient(token="local-token", api_url=live_server.url, api_public_url=live_server.url, max_retries=0)


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    """Collect serve processes started by a test and terminate each one at the end."""
    started: list[ServeProcess] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.stop()
