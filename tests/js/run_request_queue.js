#!/usr/bin/env node
// Drive Crawlee for JS `RequestQueueV2` (it locks by default) over the official `apify-client` against a
// running storage-emulator, then crawl a local site with `BasicCrawler` through it.
//
// Usage: node run_request_queue.js <base-url> <site-url>
// Prints one JSON object with what happened and exits 0; a failed check exits 1 with the message on stderr.
// tests/test_js_request_queues.py runs this and checks the emulator's side.
'use strict';

const assert = require('node:assert/strict');
const { ApifyClient } = require('apify-client');
const { RequestQueueV2 } = require('@crawlee/core');
const { BasicCrawler } = require('@crawlee/basic');

const [baseUrl, site] = process.argv.slice(2);
const client = new ApifyClient({ baseUrl, token: 'local-token', maxRetries: 2, minDelayBetweenRetriesMillis: 100 });

/** Add, fetch (head/lock), reclaim (delete lock), mark handled, prolong: the queue's whole life. */
async function lifecycle() {
    // The queue's own storage client is the emulator; everything else of Crawlee stays in memory.
    const rq = await RequestQueueV2.open('js-lifecycle', { storageClient: client });
    await rq.addRequests([{ url: 'https://example.com/1' }, { url: 'https://example.com/2' }, { url: 'https://example.com/3' }]);
    await rq.addRequest({ url: 'https://example.com/front' }, { forefront: true });
    const again = await rq.addRequest({ url: 'https://example.com/1' });
    assert.equal(again.wasAlreadyPresent, true);

    const order = [];
    let reclaimed = false;
    for (;;) {
        const request = await rq.fetchNextRequest();
        if (!request) {
            if (await rq.isFinished()) break;
            await new Promise((resolve) => setTimeout(resolve, 50));
            continue;
        }
        if (request.url.endsWith('/2') && !reclaimed) {
            reclaimed = true;
            await rq.reclaimRequest(request); // DELETE …/lock: back in the queue
            continue;
        }
        order.push(request.url.split('/').pop());
        await rq.markRequestHandled(request);
    }

    // The raw client: 404s become undefined, a lock is prolonged only by its holder.
    const rqClient = client.requestQueue(rq.id, { clientKey: 'js-raw-client' });
    assert.equal(await rqClient.getRequest('nosuchrequest00'), undefined);
    assert.equal(await client.requestQueue('nosuchqueueid00').get(), undefined);
    await rqClient.addRequest({ uniqueKey: 'raw', url: 'https://example.com/raw' });
    const locked = await rqClient.listAndLockHead({ lockSecs: 30, limit: 1 });
    assert.equal(locked.items.length, 1);
    assert.ok(locked.items[0].lockExpiresAt instanceof Date);
    const prolonged = await rqClient.prolongRequestLock(locked.items[0].id, { lockSecs: 60 });
    assert.ok(prolonged.lockExpiresAt.getTime() > locked.items[0].lockExpiresAt.getTime());
    const foreign = client.requestQueue(rq.id, { clientKey: 'someone-else' });
    await assert.rejects(foreign.deleteRequestLock(locked.items[0].id), (err) => err.statusCode === 409);
    await rqClient.deleteRequestLock(locked.items[0].id);
    const queue = await rqClient.get();
    return { order, queueId: rq.id, total: queue.totalRequestCount, handled: queue.handledRequestCount };
}

/** A BasicCrawler over RequestQueueV2: follow every link of the local site once. */
async function crawl() {
    const rq = await RequestQueueV2.open('js-crawl', { storageClient: client });
    const handled = [];
    const crawler = new BasicCrawler({
        requestQueue: rq,
        useSessionPool: false,
        maxRequestRetries: 1,
        async requestHandler({ request }) {
            const body = await (await fetch(request.url)).text();
            handled.push(request.url);
            const links = [...body.matchAll(/href="([^"]+)"/g)].map((m) => ({ url: site + m[1] }));
            await crawler.addRequests(links);
        },
    });
    const stats = await crawler.run([{ url: `${site}/page/0` }]);
    return { handled, failed: stats.requestsFailed };
}

(async () => {
    const result = { lifecycle: await lifecycle(), crawl: await crawl() };
    console.log(JSON.stringify(result));
})().catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
});
