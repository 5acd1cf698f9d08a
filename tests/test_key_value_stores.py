"""Key-value stores through the repository: records as bytes, keys, the layout on disk, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage_emulator.errors import (
    InvalidRecordKey,
    KeyValueStoreNotFound,
    RecordNotFoundInStore,
    RequestTooLarge,
    SchemaValidationFailed,
)
from storage_emulator.key_value_stores import KeyValueStoreRepository
from storage_emulator.record_store import MAX_RECORD_BYTES, file_name_for
from storage_emulator.signing import create_signature, record_signature


@pytest.fixture
def stores(storage_root: Path) -> KeyValueStoreRepository:
    """Return a key-value store repository over the storage root."""
    return KeyValueStoreRepository(storage_root)


def read(stores: KeyValueStoreRepository, ref: str, key: str) -> tuple[bytes, str]:
    """Return a record's bytes and content type."""
    info, handle = stores.get_record(ref, key)
    with handle:
        return handle.read(), info.content_type


def files_of(folder: Path) -> dict[str, bytes]:
    """Map every file under a folder to its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_records_keep_exact_bytes_and_type_in_crawlees_layout(stores: KeyValueStoreRepository) -> None:
    """A record is stored as sent, with a Crawlee-for-Python sidecar, and read back byte for byte."""
    store, created = stores.get_or_create_key_value_store("my-store")
    assert created and stores.get_or_create_key_value_store("my-store") == (store, False)
    body = b'{"a": 1,  "spaces kept": true}'
    stores.set_record("~my-store", "INPUT", body, content_type="application/json; charset=utf-8")
    stores.set_record(store.id, "we!rd'(key)", b"\x00\xff", content_type="image/x-odd; q=1")

    folder = stores.kind_dir / "my-store"
    assert (folder / "INPUT").read_bytes() == body
    sidecar = json.loads((folder / "INPUT.__metadata__.json").read_text())
    assert sidecar == {"key": "INPUT", "content_type": "application/json; charset=utf-8", "size": len(body)}
    assert (folder / "we%21rd%27%28key%29").read_bytes() == b"\x00\xff"
    assert read(stores, store.id, "INPUT") == (body, "application/json; charset=utf-8")
    assert read(stores, "~my-store", "we!rd'(key)") == (b"\x00\xff", "image/x-odd; q=1")


def test_overwrite_delete_and_not_found(stores: KeyValueStoreRepository) -> None:
    """A second write replaces the record; a delete removes value and sidecar; missing ones raise typed errors."""
    store, _ = stores.get_or_create_key_value_store()
    stores.set_record(store.id, "k", b"one", content_type="text/plain")
    stores.set_record(store.id, "k", b"two!", content_type="text/csv")
    assert read(stores, store.id, "k") == (b"two!", "text/csv")
    stores.delete_record(store.id, "k")
    assert not stores.record_exists(store.id, "k")
    assert sorted(p.name for p in (stores.kind_dir / store.id).iterdir()) == ["__metadata__.json"]
    with pytest.raises(RecordNotFoundInStore):
        stores.get_record(store.id, "k")
    with pytest.raises(RecordNotFoundInStore):
        stores.delete_record(store.id, "k")
    with pytest.raises(KeyValueStoreNotFound):
        stores.get_key_value_store("aaaaaaaaaaaaaaaaa")


@pytest.mark.parametrize(
    "key",
    ["", ".", "..", "../escape", "a/b", "a\\b", "a\x00b", "/etc/passwd", "%2F..%2Fx", "x" * 257, "with space", "é"],
)
def test_bad_keys_are_refused_and_nothing_is_written(
    stores: KeyValueStoreRepository, storage_root: Path, key: str
) -> None:
    """Every key outside the platform's rule is a 400 ``invalid-record-key``; no file moves anywhere."""
    store, _ = stores.get_or_create_key_value_store("guarded")
    before = files_of(storage_root.parent)
    with pytest.raises(InvalidRecordKey) as refused:
        stores.set_record(store.id, key, b"x")
    assert refused.value.status == 400 and "record key" in refused.value.message
    assert files_of(storage_root.parent) == before
    assert not (storage_root.parent / "escape").exists() and not (stores.kind_dir / "escape").exists()


@pytest.mark.parametrize(
    "key", ["!" * 256, "__metadata__.json", "x.__metadata__.json", "'" * 100 + "a"], ids=["long", "meta", "x-meta", "q"]
)
def test_keys_the_layout_cannot_name_get_a_fallback_file(stores: KeyValueStoreRepository, key: str) -> None:
    """Valid keys whose escaped name is too long or collides with layout files still work, and break nothing."""
    store, _ = stores.get_or_create_key_value_store("edge")
    stores.set_record(store.id, key, b"value", content_type="text/plain")
    stores.set_record(store.id, "plain", b"p", content_type="text/plain")
    assert read(stores, store.id, key) == (b"value", "text/plain")
    assert [info.key for info in stores.list_keys(store.id).items] == sorted([key, "plain"])
    assert stores.get_key_value_store(store.id).name == "edge"  # the store's own metadata is intact
    assert len(file_name_for(key).encode()) + len(".__metadata__.json") <= 255


def test_the_size_limit_is_enforced_after_decompression_and_stores_nothing(stores: KeyValueStoreRepository) -> None:
    """9 MiB is accepted; one byte more is 413, and the earlier value stays."""
    store, _ = stores.get_or_create_key_value_store("sized")
    stores.set_record(store.id, "big", iter([b"a" * MAX_RECORD_BYTES]))
    with pytest.raises(RequestTooLarge):
        stores.set_record(store.id, "big", iter([b"b" * (MAX_RECORD_BYTES // 2)] * 2 + [b"b"]))
    data, _ = read(stores, store.id, "big")
    assert len(data) == MAX_RECORD_BYTES and data[:1] == b"a"
    assert [p.name for p in (stores.kind_dir / "sized").iterdir() if p.name.startswith(".")] == []


def test_list_keys_pages_prefixes_and_collections(stores: KeyValueStoreRepository) -> None:
    """Keys ascend; ``exclusiveStartKey`` and ``limit`` page; ``isTruncated`` and the next key say what follows."""
    schema = {"actorKeyValueStoreSchemaVersion": 1, "collections": {"pics": {"keyPrefix": "img-"}}}
    store, _ = stores.get_or_create_key_value_store("paged", schema=schema)
    for key in ["b", "a", "img-2", "img-1", "c"]:
        stores.set_record(store.id, key, key.encode())
    first = stores.list_keys(store.id, limit=2)
    assert [i.key for i in first.items] == ["a", "b"] and first.is_truncated and first.next_exclusive_start_key == "b"
    rest = stores.list_keys(store.id, exclusive_start_key="b")
    assert [i.key for i in rest.items] == ["c", "img-1", "img-2"]
    assert not rest.is_truncated and rest.next_exclusive_start_key is None
    assert [i.key for i in stores.list_keys(store.id, prefix="img").items] == ["img-1", "img-2"]
    assert [i.key for i in stores.list_keys(store.id, collection="pics").items] == ["img-1", "img-2"]
    with pytest.raises(Exception, match="collection") as unknown:
        stores.list_keys(store.id, collection="nope")
    assert getattr(unknown.value, "status", None) == 400
    assert [i.size for i in stores.list_keys(store.id, prefix="c").items] == [1]


def test_schema_collections_refuse_wrong_types_and_json(stores: KeyValueStoreRepository) -> None:
    """A collection's ``contentTypes`` and ``jsonSchema`` are enforced on write; other keys are free."""
    schema = {
        "actorKeyValueStoreSchemaVersion": 1,
        "collections": {
            "screens": {"keyPrefix": "shot-", "contentTypes": ["image/*"]},
            "state": {"key": "STATE", "contentTypes": ["application/json"], "jsonSchema": {"type": "object"}},
        },
    }
    store, _ = stores.get_or_create_key_value_store("typed", schema=schema)
    stores.set_record(store.id, "shot-1", b"png", content_type="image/png")
    stores.set_record(store.id, "STATE", b'{"ok": true}', content_type="application/json; charset=utf-8")
    stores.set_record(store.id, "other", b"anything", content_type="text/plain")
    for key, body, content_type in [
        ("shot-2", b"x", "text/plain"),
        ("STATE", b"[1]", "application/json"),
        ("STATE", b"{nope", "application/json"),
    ]:
        with pytest.raises(SchemaValidationFailed):
            stores.set_record(store.id, key, body, content_type=content_type)
    assert read(stores, store.id, "STATE") == (b'{"ok": true}', "application/json; charset=utf-8")
    assert not stores.record_exists(store.id, "shot-2")


def test_a_js_tools_folder_is_served_as_it_is(storage_root: Path) -> None:
    """``@crawlee/memory-storage`` writes ``<key>.<ext>`` and no sidecars (or double-encoded ones)."""
    folder = storage_root / "key_value_stores" / "js-store"
    folder.mkdir(parents=True)
    (folder / "INPUT.json").write_text('{"start": 1}')
    (folder / "photo.png").write_bytes(b"\x89PNG")
    (folder / "notes.txt").write_text("hi")
    (folder / "state.json").write_text("[1]")
    sidecar = {"extension": "json", "key": "state", "contentType": "application/json; charset=utf-8"}
    (folder / "state.__metadata__.json").write_text(json.dumps(json.dumps(sidecar)))
    stores = KeyValueStoreRepository(storage_root)

    assert [i.key for i in stores.list_keys("~js-store").items] == ["INPUT", "notes", "photo", "state"]
    assert read(stores, "~js-store", "INPUT") == (b'{"start": 1}', "application/json; charset=utf-8")
    assert read(stores, "~js-store", "photo") == (b"\x89PNG", "image/png")
    assert read(stores, "~js-store", "notes") == (b"hi", "text/plain")
    assert read(stores, "~js-store", "state")[0] == b"[1]"
    stores.set_record("~js-store", "INPUT", b'{"start": 2}', content_type="application/json")
    assert read(stores, "~js-store", "INPUT")[0] == b'{"start": 2}'
    assert not (folder / "INPUT.json").exists()  # one key, one file: the old JS-named copy is gone


def test_the_apify_clis_input_json_is_key_input_in_any_store(storage_root: Path) -> None:
    """``apify run`` leaves ``INPUT.json`` without a sidecar, even beside Crawlee-written records."""
    stores = KeyValueStoreRepository(storage_root)
    store, _ = stores.get_or_create_key_value_store("default")
    stores.set_record(store.id, "other", b"1")
    (stores.kind_dir / "default" / "INPUT.json").write_text('{"q": "x"}')
    assert read(stores, "~default", "INPUT") == (b'{"q": "x"}', "application/json; charset=utf-8")
    assert [i.key for i in stores.list_keys("~default").items] == ["INPUT", "other"]


def test_signature_vectors_of_the_spec() -> None:
    """Record URLs sign the raw key; keys URLs sign ``0.<expiresAt>.<storeId>`` as dataset items do."""
    assert record_signature("INPUT", "secret123") == "tGJeldSa4QryN8ardx8U"
    assert record_signature("my-record", "secret123") == "S88vfMnWwIyPf5e3iQHZ"
    assert create_signature("abcDEF1234567890a", "secret123") == "MC4wLjFzM3Nvc2M5Q1FFeDk0VjcxRlpDMQ=="
    assert (
        create_signature("abcDEF1234567890a", "secret123", expires_at_ms=1700000000000)
        == "MC4xNzAwMDAwMDAwMDAwLjFCbWMzMjh0c3ZBM29hRGtRNndCTg=="
    )


def test_a_page_of_keys_reads_no_directory_when_nothing_changed(stores: KeyValueStoreRepository) -> None:
    """The key index is reused while the folder is unchanged, and kept current by the store's own writes."""
    store, _ = stores.get_or_create_key_value_store("indexed")
    for i in range(50):
        stores.set_record(store.id, f"k{i:03d}", b"v")
    folder = stores.kind_dir / "indexed"
    first = stores._records("indexed", store).listing()
    assert stores._records("indexed", store).listing() is first  # no rescan while nothing changed
    stores.set_record(store.id, "k050", b"v")
    stores.delete_record(store.id, "k000")
    keys = [i.key for i in stores.list_keys(store.id, limit=1000).items]
    assert keys[0] == "k001" and keys[-1] == "k050" and len(keys) == 50
    (folder / "zz-foreign").write_bytes(b"z")  # another tool: a file and its sidecar appear
    (folder / "zz-foreign.__metadata__.json").write_text('{"key": "zz-foreign", "content_type": "text/plain"}')
    assert stores.list_keys(store.id).items[-1].key == "zz-foreign"
