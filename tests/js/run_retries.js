#!/usr/bin/env node
// Drive the official JavaScript `apify-client` against a storage-emulator with injected faults.
//
// Usage: node run_retries.js <base-url> <dataset-id> <max-retries>
// Prints one JSON object: {"ok": true, "id": ...} when `dataset(id).get()` succeeded (after retries), or
// {"ok": false, "statusCode": ..., "type": ..., "attempt": ...} when the client gave up.
// tests/test_faults.py runs this and checks the fault rule's counters on the server.
'use strict';

const { ApifyClient } = require('apify-client');

async function main() {
    const [baseUrl, datasetId, maxRetries] = process.argv.slice(2);
    const client = new ApifyClient({
        baseUrl,
        token: 'local',
        maxRetries: Number(maxRetries),
        minDelayBetweenRetriesMillis: 10,
    });
    try {
        const dataset = await client.dataset(datasetId).get();
        console.log(JSON.stringify({ ok: true, id: dataset.id }));
    } catch (error) {
        console.log(
            JSON.stringify({ ok: false, statusCode: error.statusCode, type: error.type, attempt: error.attempt }),
        );
    }
}

main().catch((error) => {
    console.error(error);
    process.exit(1);
});
