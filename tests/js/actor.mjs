// A small, unmodified Apify SDK Actor for JS: crawl a site with CheerioCrawler over RequestQueueV2.
// Input {startUrl, maxPages}: one item per page to the default dataset and the named dataset js-pages,
// a `page` charge per page, OUTPUT and a final status message.
import { Actor } from 'apify';
import { CheerioCrawler, RequestQueueV2 } from 'crawlee';

await Actor.init();
const input = await Actor.getInput();
const named = await Actor.openDataset('js-pages');
const requestQueue = await RequestQueueV2.open();
const crawler = new CheerioCrawler({
    requestQueue,
    maxRequestsPerCrawl: input.maxPages ?? 100,
    async requestHandler({ request, $, enqueueLinks, pushData }) {
        const links = $('a[href]').length;
        await enqueueLinks({ strategy: 'same-hostname' });
        await pushData({ url: request.url, links });
        await named.pushData({ url: request.url });
        await Actor.charge({ eventName: 'page' });
    },
});
await Actor.setStatusMessage('Crawling');
const stats = await crawler.run([input.startUrl]);
await Actor.setValue('OUTPUT', { handled: stats.requestsFinished, failed: stats.requestsFailed });
await Actor.exit({ statusMessage: `Crawled ${stats.requestsFinished} pages` });
