"""A tiny local website for crawls: page n links to 2n+1, 2n+2 and back to 0."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

SITE_PAGES = 30


class SitePage(BaseHTTPRequestHandler):
    """Page n links to pages 2n+1 and 2n+2 (and back to 0), up to SITE_PAGES."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        n = int(self.path.rsplit("/", 1)[1])
        links = [k for k in (0, 2 * n + 1, 2 * n + 2) if k < SITE_PAGES]
        body = "".join(f'<a href="/page/{k}">{k}</a>' for k in links).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SitePage)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
