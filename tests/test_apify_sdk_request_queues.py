"""The Apify Python SDK's platform request-queue client, single and shared mode, against a live server.

Each run is a fresh process: the SDK's event loop, caches and clientKey are its own, as in an Actor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from local_site import SITE_PAGES, site  # noqa: F401 - the local-site fixture

SDK_PRELUDE = r"""
import asyncio, json, re, sys
from apify import Configuration
from apify.storage_clients import ApifyStorageClient
from crawlee import Request, service_locator
from crawlee.storage_clients import MemoryStorageClient
from crawlee.storages import RequestQueue

api, mode, name = sys.argv[1], sys.argv[2], sys.argv[3]
config = Configuration(token="local-token", api_base_url=api, api_public_base_url=api)
service_locator.set_storage_client(MemoryStorageClient())  # only the queue goes to the emulator

async def open_queue():
    return await RequestQueue.open(
        name=name, storage_client=ApifyStorageClient(request_queue_access=mode), configuration=config
    )
"""

# Add, fetch, reclaim, fetch again, mark handled; print what happened.
SDK_LIFECYCLE = (
    SDK_PRELUDE
    + r"""
async def main():
    rq = await open_queue()
    await rq.add_requests(["https://example.com/1", "https://example.com/2", "https://example.com/3"])
    await rq.add_request("https://example.com/priority1", forefront=True)
    await rq.add_request("https://example.com/priority2", forefront=True)
    again = await rq.add_request("https://example.com/1")
    order, reclaimed = [], False
    while (request := await rq.fetch_next_request()) is not None:
        if request.url.endswith("/2") and not reclaimed:
            reclaimed = True
            await rq.reclaim_request(request)  # back at the end, fetched again later
            continue
        order.append(request.url.rsplit("/", 1)[1])
        await rq.mark_request_as_handled(request)
    fetched = await rq.get_request("https://example.com/1")  # by uniqueKey: the SDK GETs its computed id
    metadata = await rq.get_metadata()
    print(json.dumps({
        "order": order, "again_present": again.was_already_present, "finished": await rq.is_finished(),
        "handled": metadata.handled_request_count, "total": metadata.total_request_count,
        "got": fetched.url if fetched else None,
    }))
asyncio.run(main())
"""
)

# A BasicCrawler through the SDK's platform client: follow every link of the local site once.
SDK_CRAWL = (
    SDK_PRELUDE
    + r"""
from crawlee.crawlers import BasicCrawler

site = sys.argv[4]

async def main():
    rq = await open_queue()
    crawler = BasicCrawler(request_manager=rq, max_request_retries=1, configure_logging=False)
    handled = []

    @crawler.router.default_handler
    async def handler(context):
        response = await context.send_request(context.request.url)
        body = (await response.read()).decode()
        handled.append(context.request.url)
        await context.add_requests([site + path for path in re.findall(r'href="([^"]+)"', body)])

    stats = await crawler.run([site + "/page/0"], purge_request_queue=False)
    print(json.dumps({"handled": handled, "failed": stats.requests_failed}))
asyncio.run(main())
"""
)


def run_sdk(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["single", "shared"])
def test_sdk_adds_fetches_reclaims_and_handles(live_server: Any, apify: Any, mode: str) -> None:
    result = run_sdk(SDK_LIFECYCLE, live_server.url, mode, f"sdk-{mode}")

    assert result["order"] == ["priority2", "priority1", "1", "3", "2"]
    assert result["again_present"] and result["finished"]
    assert result["got"] == "https://example.com/1"
    assert (result["handled"], result["total"]) == (5, 5)
    queue = apify.request_queue(f"~sdk-{mode}").get()
    assert (queue.total_request_count, queue.handled_request_count, queue.pending_request_count) == (5, 5, 0)
    if mode == "single":
        assert not queue.had_multiple_clients


@pytest.mark.parametrize("mode", ["single", "shared"])
def test_basic_crawler_through_the_sdk_handles_every_page_once(
    live_server: Any,
    apify: Any,
    site: str,  # noqa: F811
    mode: str,
) -> None:
    result = run_sdk(SDK_CRAWL, live_server.url, mode, f"crawl-{mode}", site)

    assert sorted(result["handled"]) == sorted(f"{site}/page/{n}" for n in range(SITE_PAGES))
    assert result["failed"] == 0
    queue = apify.request_queue(f"~crawl-{mode}").get()
    assert (queue.total_request_count, queue.handled_request_count) == (SITE_PAGES, SITE_PAGES)
