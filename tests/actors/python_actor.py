"""A small, unmodified Apify SDK Actor: crawl a site with Crawlee's BasicCrawler, as it would on the platform.

Input: ``{"startUrl": ..., "maxPages": ...}``. Pushes one item per page to the default dataset and to the
named dataset ``py-pages``, charges a ``page`` event per page, sets ``OUTPUT`` and a final status message.
"""

import asyncio
import re
import urllib.request
from urllib.parse import urljoin

from apify import Actor
from crawlee.crawlers import BasicCrawler, BasicCrawlingContext

LINK = re.compile(r'href="([^"]+)"')


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - the test's local site
        return response.read().decode()


async def main() -> None:
    async with Actor:
        actor_input = await Actor.get_input()
        named = await Actor.open_dataset(name="py-pages")
        crawler = BasicCrawler(max_requests_per_crawl=actor_input.get("maxPages", 100))

        @crawler.router.default_handler
        async def handle(context: BasicCrawlingContext) -> None:
            html = await asyncio.to_thread(fetch, context.request.url)
            links = [urljoin(context.request.url, href) for href in LINK.findall(html)]
            await context.add_requests(links)
            await context.push_data({"url": context.request.url, "links": len(links)})
            await named.push_data({"url": context.request.url})
            await Actor.charge("page")

        await Actor.set_status_message("Crawling")
        stats = await crawler.run([actor_input["startUrl"]])
        await Actor.set_value("OUTPUT", {"handled": stats.requests_finished, "failed": stats.requests_failed})
        await Actor.exit(status_message=f"Crawled {stats.requests_finished} pages")


if __name__ == "__main__":
    asyncio.run(main())
