"""The direct Python API over a storage root's key-value stores: stores, their keys and their records.

A key-value store is one kind on the storage core (``storage_collection``): folders, names, locks,
listings, access and repair come from there. This module adds only what is a store's own: records
(``record_store``), keys and their pages, content types and the schema's ``collections``.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Any

import jsonschema
from jsonschema import validators

from .accounts import Account
from .errors import (
    InvalidParameter,
    KeyValueStoreCorrupted,
    KeyValueStoreNotFound,
    RecordNotFoundInStore,
    SchemaValidationFailed,
)
from .models import KEY_VALUE_STORES_DIR, KeyValueStoreMetadata, utc_now
from .record_store import MAX_RECORD_BYTES, RecordIndexCache, RecordInfo, RecordStore, check_key
from .storage_collection import UNSET, Finding, StorageCollection, StoragePage

KeyValueStorePage = StoragePage[KeyValueStoreMetadata]
"""One page of a key-value store listing."""

KEYS_LIMIT_MAX = 1000
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class KeysPage:
    """One page of a store's keys, ascending."""

    store: KeyValueStoreMetadata
    items: list[RecordInfo]
    limit: int
    exclusive_start_key: str | None
    is_truncated: bool

    @property
    def next_exclusive_start_key(self) -> str | None:
        """Return the key to start the next page after, or ``None`` on the last page."""
        return self.items[-1].key if self.is_truncated and self.items else None


def check_kv_schema(schema: Any) -> dict[str, Any]:
    """Return ``schema`` if it is a key-value store schema the emulator can honour, else raise ``InvalidParameter``."""
    if not isinstance(schema, dict):
        raise InvalidParameter("schema", "must be a JSON object", location="body")
    collections = schema.get("collections", {})
    if not isinstance(collections, dict):
        raise InvalidParameter("schema.collections", "must be an object of collections by name", location="body")
    for name, collection in collections.items():
        where = f"schema.collections.{name}"
        if not isinstance(collection, dict) or not (
            isinstance(collection.get("key"), str) or isinstance(collection.get("keyPrefix"), str)
        ):
            raise InvalidParameter(where, "must be an object with a 'key' or a 'keyPrefix' string", location="body")
        types = collection.get("contentTypes")
        if types is not None and not (isinstance(types, list) and all(isinstance(t, str) for t in types)):
            raise InvalidParameter(f"{where}.contentTypes", "must be a list of media types", location="body")
        if "jsonSchema" in collection:
            try:
                validators.validator_for(collection["jsonSchema"]).check_schema(collection["jsonSchema"])
            except jsonschema.SchemaError as exc:
                raise InvalidParameter(f"{where}.jsonSchema", f"is not a valid JSON Schema: {exc.message}") from None
    return schema


def _collections(store: KeyValueStoreMetadata) -> dict[str, dict[str, Any]]:
    collections = (store.kv_schema or {}).get("collections")
    return collections if isinstance(collections, dict) else {}


def _in_collection(key: str, collection: dict[str, Any]) -> bool:
    exact = collection.get("key")
    if isinstance(exact, str):
        return key == exact
    prefix: str = collection.get("keyPrefix", "")
    return key.startswith(prefix)


def _type_matches(content_type: str, allowed: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    wanted = allowed.split(";")[0].strip().lower()
    if wanted.endswith("/*"):
        return media.startswith(wanted[:-1])
    return media == wanted or wanted == "*/*"


class KeyValueStoreRepository(StorageCollection[KeyValueStoreMetadata]):
    """Key-value stores under one storage root, e.g. ``KeyValueStoreRepository("./storage")``."""

    KIND_DIR = KEY_VALUE_STORES_DIR
    NOUN = "key_value_store"
    LABEL = "key-value store"
    METADATA = KeyValueStoreMetadata
    NOT_FOUND = KeyValueStoreNotFound
    CORRUPTED = KeyValueStoreCorrupted

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._record_indexes = RecordIndexCache()

    def _records(self, folder: str, store: KeyValueStoreMetadata) -> RecordStore:
        # A folder the JS tools wrote (camelCase metadata, or none) holds records without sidecars.
        return RecordStore(self.kind_dir / folder, js_style=store.js_style, cache=self._record_indexes)

    def _synthesize(self, folder: str) -> KeyValueStoreMetadata:
        store = super()._synthesize(folder)
        store.mark_js_style()  # no metadata file: the JS tools' layout (or the Apify CLI's INPUT.json)
        return store

    def _check_contents(self, folder: str, store: KeyValueStoreMetadata, repair: bool) -> list[Finding]:
        records = self._records(folder, store)
        findings = []
        if records.pending_intents():
            findings.append(Finding(folder, "record writes cut off by a crash (readers finish them)", repaired=repair))
            if repair:
                with self.locked(store.id):
                    records.recover()
        if records.stray_temp_files():
            findings.append(Finding(folder, "temp files of interrupted record writes", repaired=repair))
            if repair:
                with self.locked(store.id):
                    for name in records.stray_temp_files():
                        (self.kind_dir / folder / name).unlink(missing_ok=True)
        return findings

    # ----- stores -----------------------------------------------------------------------------------

    list_key_value_stores = StorageCollection.list_storages
    """List the caller's key value stores (and those shared with it), oldest first, named ones unless ``unnamed``."""

    all_key_value_stores = StorageCollection.all_storages
    """Return every readable one of every owner, oldest first."""

    get_key_value_store = StorageCollection.get
    """Return the store named by ``ref`` (id, ``~name`` or ``username~name``) or raise ``KeyValueStoreNotFound``."""

    def get_or_create_key_value_store(
        self, name: str | None = None, schema: dict[str, Any] | None = None, *, owner: Account | None = None
    ) -> tuple[KeyValueStoreMetadata, bool]:
        """Return ``(store, created)``: the owner's store of this name, created if it did not exist."""
        if schema is not None:
            check_kv_schema(schema)
        return self._get_or_create(name, owner, {"schema": schema})

    def update_key_value_store(
        self,
        ref: str,
        *,
        caller: Account | None = None,
        name: str | None = UNSET,
        general_access: str | None = None,
        title: str | None = UNSET,
        shared_with: list[str] | None = None,
    ) -> KeyValueStoreMetadata:
        """Rename a store (``name=None`` makes it unnamed; its folder follows), or set access, title, sharing."""
        changes = {} if shared_with is None else {"shared_with": shared_with}
        return self._update(ref, caller=caller, name=name, general_access=general_access, title=title, changes=changes)

    def delete_key_value_store(self, ref: str, *, caller: Account | None = None) -> None:
        """Delete a store and all its records."""
        self._delete(ref, caller=caller)

    # ----- keys -------------------------------------------------------------------------------------

    def list_keys(
        self,
        ref: str,
        *,
        caller: Account | None = None,
        exclusive_start_key: str | None = None,
        limit: int = KEYS_LIMIT_MAX,
        prefix: str | None = None,
        collection: str | None = None,
    ) -> KeysPage:
        """Return a page of keys, ascending, after ``exclusive_start_key``; ``collection`` names a schema collection."""
        folder, store = self._locate(ref, caller)
        chosen = None
        if collection is not None:
            chosen = _collections(store).get(collection)
            if chosen is None:
                known = ", ".join(_collections(store)) or "none: the store has no schema collections"
                raise InvalidParameter("collection", f"must name a collection of the store's schema ({known})")
        listing = self._records(folder, store).listing()
        keys = listing.keys
        start = bisect.bisect_right(keys, exclusive_start_key) if exclusive_start_key is not None else 0
        if prefix:
            start = max(start, bisect.bisect_left(keys, prefix))
        items: list[RecordInfo] = []
        position = start
        while position < len(keys) and len(items) < limit:
            key = keys[position]
            if prefix and not key.startswith(prefix):
                break  # sorted: no later key has the prefix either
            if chosen is None or _in_collection(key, chosen):
                info = listing.records.get(key)
                if info is not None:
                    items.append(info)
            position += 1
        if chosen is None:
            truncated = position < len(keys) and (not prefix or keys[position].startswith(prefix))
        else:
            truncated = any(_in_collection(key, chosen) for key in _take_while_prefix(keys, position, prefix))
        return KeysPage(self.reads.merged(store), items, limit, exclusive_start_key, truncated)

    # ----- records ----------------------------------------------------------------------------------

    def get_record(
        self, ref: str, key: str, *, caller: Account | None = None, count_read: bool = True
    ) -> tuple[RecordInfo, IO[bytes]]:
        """Open a record for streaming: its info and an open binary file the caller must close."""
        folder, store = self._locate(ref, caller)
        check_key(key)
        info, handle = self._records(folder, store).open(key, lock=lambda: self.locked(store.id))
        if count_read:
            self._record_access(store.id, counted_read=True)
        return info, handle

    def record_info(self, ref: str, key: str, *, caller: Account | None = None) -> RecordInfo:
        """Return a record's key, size and content type, or raise ``RecordNotFoundInStore``."""
        folder, store = self._locate(ref, caller)
        return self._records(folder, store).find(check_key(key))

    def record_exists(self, ref: str, key: str, *, caller: Account | None = None) -> bool:
        """Tell whether the store has a record of this key."""
        folder, store = self._locate(ref, caller)
        try:
            self._records(folder, store).find(check_key(key))
        except RecordNotFoundInStore:
            return False
        return True

    def set_record(
        self,
        ref: str,
        key: str,
        value: bytes | Iterable[bytes],
        *,
        content_type: str | None = None,
        caller: Account | None = None,
    ) -> RecordInfo:
        """Store a record: exactly these bytes (or chunks) with this ``Content-Type``, all or nothing.

        Values over 9 MiB (``RequestTooLarge``), bad keys (``InvalidRecordKey``) and values a schema collection
        refuses (``SchemaValidationFailed``) store nothing.
        """
        check_key(key)
        content_type = content_type or "application/octet-stream"
        chunks: Iterable[bytes] = [value] if isinstance(value, bytes | bytearray) else value
        with self._write_session(ref, caller) as (folder, store):
            records = self._records(folder, store)
            checked = self._checked_against_collections(store, key, content_type, chunks)
            info = records.write(key, checked, content_type)
            now = utc_now()
            updated = store.model_copy(
                update={"write_count": store.write_count + 1, "modified_at": now, "accessed_at": now}
            )
            self.write_metadata(folder, updated)
            return info

    def _checked_against_collections(
        self, store: KeyValueStoreMetadata, key: str, content_type: str, chunks: Iterable[bytes]
    ) -> Iterable[bytes]:
        """Refuse a value that a schema collection covering its key does not allow (type, JSON Schema)."""
        rules = [(name, c) for name, c in _collections(store).items() if _in_collection(key, c)]
        if not rules:
            return chunks
        for name, collection in rules:
            allowed = collection.get("contentTypes")
            if allowed and not any(_type_matches(content_type, wanted) for wanted in allowed):
                raise SchemaValidationFailed(
                    f"The record '{key}' of collection '{name}' must have a content type of {', '.join(allowed)}; "
                    f"it was sent as '{content_type}'"
                )
        schemas = [(name, c["jsonSchema"]) for name, c in rules if "jsonSchema" in c]
        if not schemas:
            return chunks
        body = b"".join(chunks)  # a JSON Schema needs the whole value; it is bounded by the size limit
        if len(body) > MAX_RECORD_BYTES:
            return [body]  # the writer refuses it with the size error
        try:
            value = json.loads(body)
        except ValueError:
            raise SchemaValidationFailed(f"The record '{key}' of collection '{schemas[0][0]}' must be JSON") from None
        for name, schema in schemas:
            errors = sorted(validators.validator_for(schema)(schema).iter_errors(value), key=lambda e: list(e.path))
            if errors:
                where = "/" + "/".join(str(part) for part in errors[0].absolute_path)
                raise SchemaValidationFailed(
                    f"The record '{key}' does not match the JSON Schema of collection '{name}': "
                    f"{errors[0].message} (at {where})",
                    data={"validationErrors": [{"instancePath": where, "message": e.message} for e in errors[:10]]},
                )
        return [body]

    def delete_record(self, ref: str, key: str, *, caller: Account | None = None) -> None:
        """Remove a record; a key that is not there raises ``RecordNotFoundInStore``."""
        check_key(key)
        with self._write_session(ref, caller) as (folder, store):
            self._records(folder, store).delete(key)
            now = utc_now()
            updated = store.model_copy(
                update={"delete_count": store.delete_count + 1, "modified_at": now, "accessed_at": now}
            )
            self.write_metadata(folder, updated)

    def iter_records(
        self, ref: str, *, caller: Account | None = None, prefix: str | None = None, collection: str | None = None
    ) -> Iterator[tuple[RecordInfo, AbstractContextManager[IO[bytes]]]]:
        """Yield every record (or those under ``prefix`` / in ``collection``) with an opener for its bytes."""
        start: str | None = None
        while True:
            page = self.list_keys(ref, caller=caller, exclusive_start_key=start, prefix=prefix, collection=collection)
            for info in page.items:
                yield info, _Opener(self, ref, info.key, caller)
            if not page.is_truncated:
                return
            start = page.next_exclusive_start_key


def _take_while_prefix(keys: list[str], position: int, prefix: str | None) -> Iterator[str]:
    for key in keys[position:]:
        if prefix and not key.startswith(prefix):
            return
        yield key


class _Opener(AbstractContextManager[IO[bytes]]):
    """Open one record's bytes when entered, close them on exit."""

    def __init__(self, repo: KeyValueStoreRepository, ref: str, key: str, caller: Account | None) -> None:
        self._args = (repo, ref, key, caller)
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        repo, ref, key, caller = self._args
        _, self._handle = repo.get_record(ref, key, caller=caller, count_read=False)
        return self._handle

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
