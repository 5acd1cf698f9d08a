"""Key-value stores over HTTP with the official Python client, sync and async, on a live server."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from envelopes import assert_apify_error
from flask import Flask

from storage_emulator.accounts import AccountRegistry, default_accounts_path
from storage_emulator.key_value_stores import KeyValueStoreRepository
from storage_emulator.web import create_app

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def files_of(folder: Path) -> dict[str, bytes]:
    """Map every file under a folder (lock files aside) to its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".storage-emulator" not in p.parts
    }


def test_every_store_call_of_the_sync_client(apify: Any, storage_root: Path, live_server: Any) -> None:
    """get_or_create, get, update, list, delete, and each 404 turned into None as the client documents."""
    created = apify.key_value_stores().get_or_create(name="main")
    assert apify.key_value_stores().get_or_create(name="main").id == created.id
    store = apify.key_value_store(created.id)
    assert store.get().name == "main"
    assert apify.key_value_store("~main").get().id == created.id
    assert str(created.keys_public_url).startswith(live_server.url) and "signature=" in str(created.keys_public_url)
    assert created.url_signing_secret_key

    updated = store.update(name="renamed", title="A title", general_access="ANYONE_WITH_ID_CAN_READ")
    assert (updated.name, updated.title, updated.general_access) == ("renamed", "A title", "ANYONE_WITH_ID_CAN_READ")
    assert (storage_root / "key_value_stores" / "renamed").is_dir()
    unnamed = apify.key_value_stores().get_or_create()
    listing = apify.key_value_stores().list()
    assert [s.name for s in listing.items] == ["renamed"]
    assert {s.id for s in apify.key_value_stores().list(unnamed=True).items} == {created.id, unnamed.id}

    assert apify.key_value_store("nosuchstore000000").get() is None
    assert apify.key_value_store("nosuchstore000000").get_record("INPUT") is None
    assert apify.key_value_store("nosuchstore000000").record_exists("INPUT") is False
    store.delete()
    assert store.get() is None
    store.delete()  # a second delete's 404 is swallowed by the client


def test_every_record_call_of_the_sync_client(apify: Any, live_server: Any) -> None:
    """Values of every kind go in and come back as the client types them; bytes and types exactly."""
    store = apify.key_value_store(apify.key_value_stores().get_or_create(name="records").id)
    store.set_record("INPUT", {"start": "https://example.com", "ü": [1, 2.5, None]})
    store.set_record("text", "plain text ✓")
    store.set_record("image", PNG, content_type="image/png")
    store.set_record("csv", "a,b\n1,2\n", content_type="text/csv; charset=utf-8")
    store.set_record("big-json", {"rows": ["x" * 100] * 200})  # over 1 KB: the client gzips it
    with pytest.warns(UserWarning, match="Streaming a request body is experimental"):  # the client's own note
        store.set_record("stream", io.BytesIO(b"streamed " * 1000), content_type="application/octet-stream")

    assert store.get_record("INPUT")["value"] == {"start": "https://example.com", "ü": [1, 2.5, None]}
    assert store.get_record("text") == {
        "key": "text",
        "value": "plain text ✓",
        "content_type": "text/plain; charset=utf-8",
    }
    image = store.get_record_as_bytes("image")
    assert (image["value"], image["content_type"]) == (PNG, "image/png")
    assert store.get_record("csv")["value"] == "a,b\n1,2\n"
    assert store.get_record("big-json")["value"] == {"rows": ["x" * 100] * 200}
    with store.stream_record("stream") as streamed:
        assert streamed["value"].read() == b"streamed " * 1000
    assert store.record_exists("image") and not store.record_exists("missing")
    assert store.get_record("missing") is None and store.get_record_as_bytes("missing") is None

    keys = store.list_keys(limit=2)
    assert [k.key for k in keys.items] == ["INPUT", "big-json"] and keys.is_truncated
    assert keys.next_exclusive_start_key == "big-json"
    assert [k.key for k in store.iterate_keys()] == ["INPUT", "big-json", "csv", "image", "stream", "text"]
    assert all(str(k.record_public_url).startswith(live_server.url) for k in store.list_keys().items)

    store.delete_record("text")
    assert store.get_record("text") is None


def test_public_urls_read_without_a_token(storage_root: Path, serve: Any) -> None:
    """In enforced mode a signed record URL and an expiring keys URL read with no token; tampered ones are 403."""
    from apify_client import ApifyClient

    path = default_accounts_path(storage_root)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"accounts": [{"username": "kim", "token": "kim-token"}]}))
    with serve(create_app({"ROOT": str(storage_root)})) as server:
        kim = ApifyClient(token="kim-token", api_url=server.url, api_public_url=server.url, max_retries=0)
        store_id = kim.key_value_stores().get_or_create(name="private").id
        store = kim.key_value_store(store_id)
        store.set_record("OUTPUT", {"secret": 1})
        assert httpx.get(f"{server.url}/v2/key-value-stores/{store_id}/records/OUTPUT").status_code == 401

        record_url = store.get_record_public_url("OUTPUT")
        assert httpx.get(record_url).json() == {"secret": 1}
        assert httpx.get(record_url.replace("signature=", "signature=x")).status_code == 403
        keys_url = (
            store.create_keys_public_url(expires_in=None) if _takes_expiry(store) else store.create_keys_public_url()
        )
        listed = httpx.get(str(keys_url)).json()["data"]["items"]
        assert [item["key"] for item in listed] == ["OUTPUT"]
        assert httpx.get(listed[0]["recordPublicUrl"]).json() == {"secret": 1}

        other = httpx.get(
            f"{server.url}/v2/key-value-stores/{store_id}/records/OUTPUT", headers={"Authorization": "Bearer nobody"}
        )
        assert other.status_code == 401


def _takes_expiry(store: Any) -> bool:
    import inspect

    return "expires_in" in inspect.signature(store.create_keys_public_url).parameters


def test_another_users_store_is_refused_with_the_platforms_text(storage_root: Path, serve: Any) -> None:
    """A restricted store of another account: 403 with the message the client's integration tests expect."""
    from apify_client import ApifyClient
    from apify_client.errors import ApifyApiError

    path = default_accounts_path(storage_root)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"accounts": [{"username": "own", "token": "a"}, {"username": "oth", "token": "b"}]}))
    owner = AccountRegistry.load(storage_root).by_username("own")
    store, _ = KeyValueStoreRepository(storage_root).get_or_create_key_value_store("mine", owner=owner)
    with serve(create_app({"ROOT": str(storage_root)})) as server:
        other = ApifyClient(token="b", api_url=server.url, max_retries=0).key_value_store(store.id)
        with pytest.raises(ApifyApiError) as refused:
            other.list_keys()
        assert refused.value.status_code == 403
        assert refused.value.message.startswith("Insufficient permissions for the key-value store. Make sure")
        with pytest.raises(ApifyApiError):
            other.set_record("x", "y")


def test_the_async_client(live_server: Any) -> None:
    """The async client's store and record calls behave as the sync ones."""
    from apify_client import ApifyClientAsync

    async def run() -> None:
        client = ApifyClientAsync(token="t", api_url=live_server.url, api_public_url=live_server.url, max_retries=0)
        created = await client.key_value_stores().get_or_create(name="async-store")
        store = client.key_value_store(created.id)
        await store.set_record("state", {"n": 1})
        await store.set_record("blob", b"\x00" * 5000, content_type="application/x-blob")
        assert (await store.get_record("state"))["value"] == {"n": 1}
        blob = await store.get_record_as_bytes("blob")
        assert (blob["value"], blob["content_type"]) == (b"\x00" * 5000, "application/x-blob")
        assert await store.record_exists("state") and not await store.record_exists("nope")
        assert [k.key async for k in store.iterate_keys()] == ["blob", "state"]
        await store.delete_record("state")
        assert await store.get_record("state") is None
        await store.delete()
        assert await store.get() is None

    asyncio.run(run())


def test_input_as_the_sdk_reads_it(apify: Any, live_server: Any) -> None:
    """``Actor.get_input()`` asks ``records/INPUT?attachment=true``; ``Actor.set_value()`` PUTs JSON."""
    store_id = apify.key_value_stores().get_or_create().id
    apify.key_value_store(store_id).set_record("INPUT", {"query": "kettles"})
    response = httpx.get(f"{live_server.url}/v2/key-value-stores/{store_id}/records/INPUT?attachment=true")
    assert response.status_code == 200 and response.json() == {"query": "kettles"}
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "identity", None])
def test_records_are_stored_decompressed(client: Any, app: Flask, encoding: str | None) -> None:
    """gzip, deflate and br bodies are undone; the stored bytes are what the client meant."""
    import zlib

    import brotli

    raw = json.dumps({"compressed": encoding, "pad": "y" * 3000}).encode()
    body = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "br": brotli.compress,
        "identity": bytes,
        None: bytes,
    }[encoding](raw)
    store = client.post("/v2/key-value-stores?name=enc").get_json()["data"]
    headers = {"Content-Type": "application/json"} | ({"Content-Encoding": encoding} if encoding else {})
    put = client.put(f"/v2/key-value-stores/{store['id']}/records/r", data=body, headers=headers)
    assert put.status_code == 201 and put.get_json() == {}
    got = client.get(f"/v2/key-value-stores/{store['id']}/records/r")
    assert got.data == raw and got.content_type == "application/json"


def test_bad_input_is_refused_and_nothing_is_written(client: Any, storage_root: Path) -> None:
    """Bad keys, names, sizes, encodings and parameters: 4xx in the Apify envelope, the disk unchanged."""
    store = client.post("/v2/key-value-stores?name=guarded").get_json()["data"]
    base = f"/v2/key-value-stores/{store['id']}"
    before = files_of(storage_root)
    cases = [
        ("PUT", f"{base}/records/..", b"x", {}, 400, "invalid-record-key"),
        ("PUT", f"{base}/records/a%2Fb", b"x", {}, 400, "invalid-record-key"),
        ("PUT", f"{base}/records/a%5Cb", b"x", {}, 400, "invalid-record-key"),
        ("PUT", f"{base}/records/a%00b", b"x", {}, 400, "invalid-record-key"),
        ("PUT", f"{base}/records/%2Fetc%2Fpasswd", b"x", {}, 400, "invalid-record-key"),
        ("PUT", f"{base}/records/{'k' * 257}", b"x", {}, 400, "invalid-record-key"),
        ("PUT", f"{base}/records/ok", b"x", {"Content-Encoding": "bla"}, 415, "unsupported-content-encoding"),
        ("PUT", f"{base}/records/ok", b"not gzip", {"Content-Encoding": "gzip"}, 400, "invalid-input"),
        ("PUT", f"{base}/records/ok", b"x" * 9_437_185, {}, 413, "request-too-large"),
        ("POST", "/v2/key-value-stores?name=bad name", b"{}", {}, 400, "invalid-input"),
        ("POST", "/v2/key-value-stores?name=..", b"{}", {}, 400, "invalid-input"),
        ("POST", "/v2/key-value-stores", b'{"schema": {"collections": 5}}', {}, 400, "invalid-input"),
        ("PUT", base, b'{"name": "no/slash"}', {}, 400, "invalid-input"),
        ("PUT", base, b'{"generalAccess": "EVERYONE"}', {}, 400, "invalid-input"),
        ("GET", f"{base}/keys?limit=0", None, {}, 400, "invalid-input"),
        ("GET", f"{base}/keys?limit=1001", None, {}, 400, "invalid-input"),
        ("GET", f"{base}/keys?collection=nope", None, {}, 400, "invalid-input"),
        ("GET", "/v2/key-value-stores?limit=-1", None, {}, 400, "invalid-input"),
        ("GET", "/v2/key-value-stores?desc=maybe", None, {}, 400, "invalid-input"),
        ("GET", "/v2/key-value-stores?ownership=everyone", None, {}, 400, "invalid-input"),
        ("GET", f"{base}/records/missing", None, {}, 404, "record-not-found"),
        ("DELETE", f"{base}/records/missing", None, {}, 404, "record-not-found"),
        ("GET", "/v2/key-value-stores/nosuchstore000000", None, {}, 404, "record-not-found"),
        ("GET", "/v2/key-value-stores/..%2F..%2Fdatasets", None, {}, 404, "record-not-found"),
    ]
    for method, url, body, headers, status, error_type in cases:
        response = client.open(url, method=method, data=body, headers={"Content-Type": "application/json", **headers})
        assert_apify_error(response, status, error_type)
    assert files_of(storage_root) == before


def test_the_records_zip_holds_every_record_by_key(client: Any) -> None:
    """``GET /records`` is a ZIP named by key, with ``prefix`` honoured."""
    import zipfile

    store = client.post("/v2/key-value-stores?name=zipped").get_json()["data"]
    base = f"/v2/key-value-stores/{store['id']}/records"
    client.put(f"{base}/a-1", data=b"one", headers={"Content-Type": "text/plain"})
    client.put(f"{base}/a-2", data=PNG, headers={"Content-Type": "image/png"})
    client.put(f"{base}/b", data=b"bee", headers={"Content-Type": "text/plain"})
    everything = zipfile.ZipFile(io.BytesIO(client.get(base).data))
    assert sorted(everything.namelist()) == ["a-1", "a-2", "b"] and everything.read("a-2") == PNG
    prefixed = zipfile.ZipFile(io.BytesIO(client.get(f"{base}?prefix=a-").data))
    assert sorted(prefixed.namelist()) == ["a-1", "a-2"]


def test_the_html_pages_list_stores_and_show_records(client: Any) -> None:
    """The index lists stores beside datasets; a store's page (its consoleUrl) links every record, images inline."""
    store = client.post("/v2/key-value-stores?name=pictures").get_json()["data"]
    client.put(f"/v2/key-value-stores/{store['id']}/records/logo", data=PNG, headers={"Content-Type": "image/png"})
    client.put(f"/v2/key-value-stores/{store['id']}/records/INPUT", json={"a": 1})
    index = client.get("/").get_data(as_text=True)
    assert f'href="/view/key-value-stores/{store["id"]}">pictures</a>' in index
    console = client.get(store["consoleUrl"].removeprefix("http://localhost"))
    page = console.get_data(as_text=True)
    assert console.status_code == 200 and "2 record(s)" in page
    assert f'<img src="/v2/key-value-stores/{store["id"]}/records/logo?signature=' in page
    link = page.split('<a href="', 3)[3].split('"')[0]  # the first record's link: INPUT
    assert client.get(link).get_json() == {"a": 1}
