#!/usr/bin/env node
// Drive the official JavaScript `apify-client` 2.x key-value store calls against a running storage-emulator.
//
// Usage: node run_kv_client.js <base-url>. Prints one JSON object with what it saw and exits 0; a failed
// check prints its message to stderr and exits 1. tests/test_js_key_value_stores.py runs it.
'use strict';

const assert = require('node:assert/strict');
const { ApifyClient } = require('apify-client');

const MISSING_ID = 'aaaaaaaaaaaaaaaaa';

async function main() {
    const baseUrl = process.argv[2] || process.env.STORAGE_EMULATOR_URL;
    const client = new ApifyClient({ baseUrl, publicBaseUrl: baseUrl, token: 'js-token', maxRetries: 0 });

    const created = await client.keyValueStores().getOrCreate('js-store');
    const again = await client.keyValueStores().getOrCreate('js-store');
    assert.equal(again.id, created.id);
    const store = client.keyValueStore(created.id);
    assert.equal((await store.get()).name, 'js-store');
    assert.ok(created.createdAt instanceof Date);

    await store.setRecord({ key: 'INPUT', value: { hello: 'wörld', list: [1, 2] } });
    await store.setRecord({ key: 'text', value: 'plain', contentType: 'text/plain; charset=utf-8' });
    await store.setRecord({ key: 'bin', value: Buffer.from([0, 1, 2, 255]), contentType: 'application/octet-stream' });
    await store.setRecord({ key: 'large', value: 'z'.repeat(5000), contentType: 'text/plain' }); // brotli on the wire

    const input = await store.getRecord('INPUT');
    assert.deepEqual(input.value, { hello: 'wörld', list: [1, 2] });
    assert.equal((await store.getRecord('text')).value, 'plain');
    const bin = await store.getRecord('bin', { buffer: true });
    assert.deepEqual([...bin.value], [0, 1, 2, 255]);
    assert.equal((await store.getRecord('large')).value, 'z'.repeat(5000));
    assert.equal(await store.recordExists('bin'), true);
    assert.equal(await store.recordExists('nope'), false);
    assert.equal(await store.getRecord('nope'), undefined);
    assert.equal(await client.keyValueStore(MISSING_ID).get(), undefined);

    const page = await store.listKeys({ limit: 2 });
    assert.equal(page.isTruncated, true);
    assert.equal(page.nextExclusiveStartKey, 'bin');
    const keys = [];
    let start;
    for (;;) {
        const next = await store.listKeys({ exclusiveStartKey: start, limit: 2 });
        keys.push(...next.items.map((item) => item.key));
        if (next.nextExclusiveStartKey === null) break; // the JS iterator's own stop condition
        start = next.nextExclusiveStartKey;
    }
    assert.deepEqual(keys, ['INPUT', 'bin', 'large', 'text']);

    const publicUrl = await store.getRecordPublicUrl('INPUT');
    const fetched = await fetch(publicUrl);
    assert.deepEqual(await fetched.json(), { hello: 'wörld', list: [1, 2] });

    await store.deleteRecord('text');
    assert.equal(await store.getRecord('text'), undefined);
    const updated = await store.update({ title: 'JS title' });
    assert.equal(updated.title, 'JS title');
    const listed = await client.keyValueStores().list();
    assert.ok(listed.items.some((item) => item.id === created.id));
    await store.delete();
    assert.equal(await store.get(), undefined);
    console.log(JSON.stringify({ storeId: created.id, keys }));
}

main().catch((error) => {
    console.error(error && error.stack ? error.stack : String(error));
    process.exit(1);
});
