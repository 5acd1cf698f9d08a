#!/usr/bin/env node
// Drive the official JavaScript `apify-client` 2.x against a running storage-emulator.
//
// Usage: node run_client.js <base-url>   (or STORAGE_EMULATOR_URL=<base-url> node run_client.js)
// The base URL is the server root, e.g. http://127.0.0.1:5000; the client appends /v2 itself.
// On success prints one JSON object with the results and exits 0; on a failed check prints the
// assertion message to stderr and exits 1. tests/test_js_client.py runs this and checks both sides.
'use strict';

const assert = require('node:assert/strict');
const { ApifyClient } = require('apify-client');
const { version: clientVersion } = require('apify-client/package.json');

const DATASET_NAME = 'js-made';
const ITEM_COUNT = 3000;
const CITIES = ['Praha', 'Zürich', 'Rio, "RJ"', 'Oslo', 'New\nYork'];
const MISSING_ID = 'aaaaaaaaaaaaaaaaa';

/** Build the items to push: plain strings and numbers, a few hidden fields, empty and hidden-only items. */
function makeItems() {
    const items = [];
    for (let i = 0; i < ITEM_COUNT; i++) {
        if (i % 1000 === 999) {
            items.push({}); // empty: dropped by skipEmpty
        } else if (i % 1000 === 980) {
            items.push({ '#only': `hidden-${i}` }); // empty once hidden fields go: dropped by clean
        } else {
            const item = { id: i, name: `item-${i}`, city: CITIES[i % CITIES.length], price: (i % 100) + 0.25 };
            if (i % 10 === 0) item['#secret'] = `s${i}`;
            items.push(item);
        }
    }
    return items;
}

/** Drop the top-level fields whose name starts with `#`. */
function withoutHidden(item) {
    return Object.fromEntries(Object.entries(item).filter(([key]) => !key.startsWith('#')));
}

/** Keep only `fields`, in that order. */
function pick(item, fields) {
    return Object.fromEntries(fields.filter((f) => f in item).map((f) => [f, item[f]]));
}

/** Parse RFC 4180 CSV (quoted fields may hold commas, quotes and newlines) into an array of rows. */
function parseCsv(text) {
    const rows = [];
    let row = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
        const ch = text[i];
        if (quoted) {
            if (ch === '"' && text[i + 1] === '"') {
                field += '"';
                i++;
            } else if (ch === '"') {
                quoted = false;
            } else {
                field += ch;
            }
        } else if (ch === '"') {
            quoted = true;
        } else if (ch === ',') {
            row.push(field);
            field = '';
        } else if (ch === '\n' || ch === '\r') {
            if (ch === '\r' && text[i + 1] === '\n') i++;
            row.push(field);
            rows.push(row);
            row = [];
            field = '';
        } else {
            field += ch;
        }
    }
    assert.equal(quoted, false, 'CSV ends inside a quoted field');
    if (field !== '' || row.length) {
        row.push(field);
        rows.push(row);
    }
    return rows;
}

async function main() {
    const baseUrl = process.argv[2] || process.env.STORAGE_EMULATOR_URL;
    assert.ok(baseUrl, 'usage: node run_client.js <emulator base URL, e.g. http://127.0.0.1:5000>');
    // maxRetries 0: a 5xx or network error fails at once instead of being retried 8 times over minutes.
    const client = new ApifyClient({ baseUrl, publicBaseUrl: baseUrl, token: 'local-token', maxRetries: 0, timeoutSecs: 30 });
    const results = { clientVersion };

    // 1. getOrCreate twice (an empty form body each time) gives one dataset.
    const created = await client.datasets().getOrCreate(DATASET_NAME);
    const again = await client.datasets().getOrCreate(DATASET_NAME);
    assert.equal(again.id, created.id, 'getOrCreate twice returned two different datasets');
    assert.equal(created.name, DATASET_NAME);
    assert.equal(created.itemCount, 0);
    assert.ok(created.createdAt instanceof Date && !Number.isNaN(created.createdAt.getTime()), 'createdAt is not a date');
    const { id } = created;
    results.id = id;
    results.username = created.username;

    // 2. Push: one small object (sent as is), then the rest as one array, well over the 1024-byte
    //    threshold above which the client brotli-compresses the body.
    const items = makeItems();
    const dataset = client.dataset(id);
    await dataset.pushItems(items[0]);
    const rest = items.slice(1);
    results.bigPushBytes = Buffer.byteLength(JSON.stringify(rest));
    assert.ok(results.bigPushBytes > 100 * 1024, 'the big push is not big');
    await dataset.pushItems(rest);

    const afterPush = await dataset.get();
    assert.ok(afterPush, 'get() of the dataset just pushed to returned undefined');
    const expectedClean = items.filter((item) => Object.keys(withoutHidden(item)).length > 0).length;
    assert.equal(afterPush.itemCount, ITEM_COUNT, 'itemCount after the pushes');
    assert.equal(afterPush.cleanItemCount, expectedClean, 'cleanItemCount after the pushes');
    results.itemCount = afterPush.itemCount;
    results.cleanItemCount = afterPush.cleanItemCount;

    // 3. listItems: the client sends booleans as 1/0.
    const fields = ['name', 'id', 'city'];
    const options = { offset: 995, limit: 30, desc: true, clean: true, skipEmpty: true, fields };
    const page = await dataset.listItems(options);
    const expectedPage = [...items]
        .reverse()
        .slice(options.offset, options.offset + options.limit)
        .map(withoutHidden)
        .filter((item) => Object.keys(item).length > 0)
        .map((item) => pick(item, fields));
    assert.equal(expectedPage.length, 28, 'test setup: the window should hold one empty and one hidden-only item');
    assert.deepStrictEqual(page.items, expectedPage, 'listItems(desc, clean, fields) items');
    for (const item of page.items) assert.deepStrictEqual(Object.keys(item), fields, 'fields order');
    assert.deepStrictEqual(
        { total: page.total, offset: page.offset, limit: page.limit, count: page.count, desc: page.desc },
        { total: ITEM_COUNT, offset: options.offset, limit: options.limit, count: expectedPage.length, desc: true },
        'listItems pagination',
    );

    const tail = await dataset.listItems({ offset: ITEM_COUNT - 10, limit: 20, skipHidden: false, desc: false });
    assert.deepStrictEqual(tail.items, items.slice(ITEM_COUNT - 10), 'listItems(skipHidden: false) keeps hidden fields');
    assert.equal(tail.limit, 20);

    // The async iterator pages with limit=chunkSize (and sends the undocumented chunkSize too).
    const iterated = [];
    for await (const item of dataset.listItems({ chunkSize: 1000 })) iterated.push(item);
    assert.equal(iterated.length, ITEM_COUNT, 'items seen by iterating listItems');
    assert.deepStrictEqual(iterated, items, 'iterated items');
    results.listed = { page: page.items.length, tail: tail.items.length, iterated: iterated.length };

    // 4. downloadItems("csv") gives a Buffer; columns are the union of keys, a missing value is empty.
    const csv = await dataset.downloadItems('csv');
    assert.ok(Buffer.isBuffer(csv), 'downloadItems did not return a Buffer');
    const hasBom = csv.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf]));
    assert.ok(hasBom, 'CSV does not start with a UTF-8 BOM (bom defaults to true for csv)');
    const [header, ...rows] = parseCsv(csv.subarray(3).toString('utf8'));
    const columns = [...new Set(items.flatMap((item) => Object.keys(item)))];
    assert.deepStrictEqual([...header].sort(), [...columns].sort(), 'CSV header');
    assert.equal(rows.length, ITEM_COUNT, 'CSV rows');
    rows.forEach((row, i) => {
        const expected = header.map((column) => (column in items[i] ? String(items[i][column]) : ''));
        assert.deepStrictEqual(row, expected, `CSV row ${i}`);
    });
    results.csv = { bytes: csv.length, columns: header, rows: rows.length };

    // 5. A missing dataset is undefined, which the client only does for a 404 typed record-not-found.
    assert.equal(await client.dataset(MISSING_ID).get(), undefined, `dataset(${MISSING_ID}).get()`);
    assert.equal(await client.dataset('~not-there').get(), undefined, 'dataset(~not-there).get()');
    results.missingIsUndefined = true;

    // 6. By name: `~name` is sent as is, `username/name` becomes `username~name`.
    const byTilde = await client.dataset(`~${DATASET_NAME}`).get();
    assert.ok(byTilde, `dataset(~${DATASET_NAME}).get() returned undefined`);
    assert.equal(byTilde.id, id);
    const byUser = await client.dataset(`${created.username}/${DATASET_NAME}`).get();
    assert.ok(byUser, `dataset(${created.username}/${DATASET_NAME}).get() returned undefined`);
    assert.equal(byUser.id, id);
    results.byName = { tilde: byTilde.id, username: byUser.id };

    process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((err) => {
    const detail = err.statusCode ? ` [HTTP ${err.statusCode} ${err.type}: ${err.httpMethod} ${err.path}]` : '';
    process.stderr.write(`FAILED: ${err.message}${detail}\n${err.stack}\n`);
    process.exit(1);
});
