"""Crawlee for JS `RequestQueueV2` (locking by default) over the JS client from npm, and a BasicCrawler crawl."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from local_site import SITE_PAGES, site  # noqa: F401 - the local-site fixture

JS_DIR = Path(__file__).resolve().parent / "js"


def test_request_queue_v2_locks_reclaims_handles_and_crawls(live_server: Any, apify: Any, site: str) -> None:  # noqa: F811
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH: install Node.js 20+ to run the JS tests")
    if not (JS_DIR / "node_modules" / "@crawlee" / "basic" / "package.json").is_file():
        pytest.fail("tests/js/node_modules is missing: run `(cd tests/js && npm ci)` first")

    done = subprocess.run(
        [node, str(JS_DIR / "run_request_queue.js"), live_server.url, site], capture_output=True, text=True, timeout=180
    )

    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lifecycle = result["lifecycle"]
    assert lifecycle["order"] == ["front", "1", "3", "2"]
    assert (lifecycle["total"], lifecycle["handled"]) == (5, 4)
    queue = apify.request_queue(lifecycle["queueId"]).get()
    assert queue.name == "js-lifecycle" and queue.pending_request_count == 1
    assert sorted(result["crawl"]["handled"]) == sorted(f"{site}/page/{n}" for n in range(SITE_PAGES))
    assert result["crawl"]["failed"] == 0
    crawled = apify.request_queue("~js-crawl").get()
    assert (crawled.total_request_count, crawled.handled_request_count) == (SITE_PAGES, SITE_PAGES)
