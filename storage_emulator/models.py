"""The on-disk contract: file names and the dataset metadata model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

DATASETS_DIR = "datasets"
"""Folder under the storage root that holds one folder per dataset (as Crawlee and `apify run` use)."""

METADATA_FILENAME = "__metadata__.json"
"""The dataset's metadata file inside its folder."""

EMULATOR_DIR = ".storage-emulator"
"""Folder under the storage root for the emulator's own state (lock files, accounts)."""

ITEM_FILENAME_DIGITS = 9
"""Item files are named by their 1-based index, zero-padded to this many digits: ``000000001.json``."""

GeneralAccess = Literal["RESTRICTED", "ANYONE_WITH_ID_CAN_READ", "ANYONE_WITH_NAME_CAN_READ", "FOLLOW_USER_SETTING"]
GENERAL_ACCESS_VALUES: tuple[str, ...] = GeneralAccess.__args__  # type: ignore[attr-defined]

OrgFormat = Literal["parquet", "csv", "arrow", "feather", "json", "jsonl"]
ORG_FORMATS: tuple[str, ...] = OrgFormat.__args__  # type: ignore[attr-defined]
SEMVER_PATTERN = r"^\d+\.\d+\.\d+$"

DEFAULT_ORG_VERSION = "0.1.0"
"""Version reported by the org listing for a dataset that has no explicit version."""


def utc_now() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _aliases(snake: str, camel: str, **field_options: Any) -> Any:
    # Crawlee for Python writes snake_case, the JS tools camelCase: read both, write snake_case.
    return Field(validation_alias=AliasChoices(snake, camel), **field_options)


class StorageMetadata(BaseModel):
    """What every kind of storage keeps in its folder's ``__metadata__.json``: identity, owner, access.

    Each kind's model adds its own fields. The first five fields are Crawlee's; Crawlee keeps the rest on
    rewrite because its models allow extra keys, and so does this one (``extra="allow"``).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    JS_KEYS: ClassVar[dict[str, str]] = {
        "accessed_at": "accessedAt",
        "created_at": "createdAt",
        "modified_at": "modifiedAt",
        "user_id": "userId",
    }
    """Crawlee's fields as the JS tools name them (camelCase)."""

    id: str
    """Storage id: 17 characters of ``[a-zA-Z0-9]`` (UUIDs from the JS tools are kept as they are)."""
    name: str | None = None
    """Storage name, unique per owner and kind; ``None`` for an unnamed storage."""
    accessed_at: datetime = _aliases("accessed_at", "accessedAt")
    """Last read or write."""
    created_at: datetime = _aliases("created_at", "createdAt")
    """Creation time."""
    modified_at: datetime = _aliases("modified_at", "modifiedAt")
    """Last write."""

    user_id: str | None = _aliases("user_id", "userId", default=None)
    """Owner's account id; ``None`` (written by another tool) means the default local account."""
    username: str | None = None
    """Owner's username, kept beside the id so that ``username~name`` resolves without an accounts file."""
    title: str | None = None
    """Free-form title (Apify ``title``)."""
    general_access: GeneralAccess = _aliases("general_access", "generalAccess", default="FOLLOW_USER_SETTING")
    """Who may read without being the owner."""
    url_signing_secret_key: str | None = None
    """Secret for signed URLs; shown only to callers who may write."""
    shared_with: list[str] = Field(default_factory=list)
    """Account ids the owner shared this storage with (``ownership=sharedWithMe``)."""
    read_count: int = 0
    """Reads (Apify ``stats.readCount``)."""

    _js_style: bool = PrivateAttr(default=False)

    @field_validator("accessed_at", "created_at", "modified_at")
    @classmethod
    def _assume_utc(cls, value: datetime) -> datetime:
        # A file may carry dates without an offset; they are UTC, and mixing naive with aware would not sort.
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    @classmethod
    def from_file(cls, data: bytes) -> Self:
        """Parse a metadata file's bytes, remembering whether the JS tools wrote it (camelCase).

        Raises pydantic's ``ValidationError`` for anything that is not a valid metadata object. Parsing the
        JSON in pydantic's core is about four times faster than ``json.loads`` plus validation, which is
        most of what a first listing of a large root costs.
        """
        metadata = cls.model_validate_json(data)
        metadata._js_style = b'"createdAt"' in data and b'"created_at"' not in data
        return metadata

    @property
    def js_style(self) -> bool:
        """Tell whether the JS tools wrote this metadata (camelCase), or the folder had none (their default)."""
        return self._js_style

    def mark_js_style(self) -> None:
        """Keep the JS tools' style when this metadata is written (for folders they made without one)."""
        self._js_style = True

    def to_json(self) -> str:
        """Serialize in the style of the tool that owns the file.

        Crawlee for Python's style (snake_case, ``str(datetime)``, 2-space indent) by default; a file the JS
        tools wrote keeps their camelCase keys and ISO dates, so they still read it after we rewrite it.
        """
        data = self.model_dump(by_alias=True)
        if not self._js_style:
            return json.dumps(data, ensure_ascii=False, indent=2, default=str)
        for snake, camel in self.JS_KEYS.items():
            value = data.pop(snake)
            if isinstance(value, datetime):
                value = value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            data[camel] = value
        return json.dumps(data, ensure_ascii=False, indent="\t", default=str)


class DatasetMetadata(StorageMetadata):
    """Metadata of one dataset, stored as ``__metadata__.json`` in the dataset's folder.

    Layout of a storage root::

        <root>/datasets/<folder>/__metadata__.json   this model
        <root>/datasets/<folder>/000000001.json      item 1 (one JSON object per file)
        <root>/datasets/<folder>/000000002.json      item 2 ...
        <root>/.storage-emulator/locks/*.lock        cross-process locks

    ``<folder>`` is the dataset's name (for datasets of the default account), ``<username>~<name>``
    (for named datasets of other accounts) or the id (for unnamed datasets).
    """

    JS_KEYS: ClassVar[dict[str, str]] = {**StorageMetadata.JS_KEYS, "item_count": "itemCount"}

    item_count: int = _aliases("item_count", "itemCount")
    """Number of items; Crawlee derives the next item file's index from it."""
    dataset_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    """Dataset schema (Apify actor dataset schema: ``fields`` is a JSON Schema, ``views`` name views)."""
    clean_item_count: int | None = None
    """Items that are non-empty once hidden fields are dropped, counted over ``clean_counted_items``."""
    clean_counted_items: int = 0
    """How many items (from the start) ``clean_item_count`` covers; items pushed by other tools are counted later."""
    storage_bytes: int = 0
    """Bytes of the item files counted so far (Apify ``stats.storageBytes``)."""
    write_count: int = 0
    """Item pushes (Apify ``stats.writeCount``)."""

    # Fields of the org-scoped listing (Dreadnode-style API).
    summary: str | None = None
    """Short description, searched by the org listing's ``search``."""
    tags: list[str] = Field(default_factory=list)
    """Tags, filtered by the org listing's ``tags``."""
    license: str | None = None
    """License identifier, e.g. ``mit``."""
    task_categories: list[str] = Field(default_factory=list)
    """Task categories, filtered by the org listing's ``task_categories``."""
    size_category: str | None = None
    """Size category, e.g. ``n<1K``; derived from the item count when unset."""
    format: OrgFormat = "json"
    """Storage format reported by the org listing; items are JSON files."""
    version: str = Field(default=DEFAULT_ORG_VERSION, pattern=SEMVER_PATTERN)
    """Semantic version reported by the org listing."""
    origin: dict[str, Any] = Field(default_factory=dict)
    """Free-form provenance."""


KEY_VALUE_STORES_DIR = "key_value_stores"
"""Folder under the storage root that holds one folder per key-value store (as Crawlee and `apify run` use)."""

RECORD_SIDECAR_SUFFIX = ".__metadata__.json"
"""A record's sidecar file: ``<file name of the value>.__metadata__.json`` (Crawlee for Python's layout)."""


class KeyValueStoreMetadata(StorageMetadata):
    """Metadata of one key-value store, stored as ``__metadata__.json`` in the store's folder.

    Layout of a store (Crawlee for Python 1.x, which the emulator writes)::

        <root>/key_value_stores/<folder>/__metadata__.json          this model
        <root>/key_value_stores/<folder>/INPUT                      a record's bytes, as sent
        <root>/key_value_stores/<folder>/INPUT.__metadata__.json    {"key", "content_type", "size"}
        <root>/key_value_stores/<folder>/we%21rd%27key              the file name is quote(key, safe="")

    Folders are named as datasets' are (name, ``<username>~<name>``, or the id).
    """

    kv_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    """Key-value store schema (``actorKeyValueStoreSchemaVersion``, ``collections``)."""
    write_count: int = 0
    """Record writes (Apify ``stats.writeCount``)."""
    delete_count: int = 0
    """Record deletions (Apify ``stats.deleteCount``)."""
    list_count: int = 0
    """Key listings (Apify ``stats.listCount``)."""


class RecordSidecar(BaseModel):
    """A record's sidecar ``<file>.__metadata__.json``: its key (the file name is escaped), type and size."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    key: str
    """The record's key, unescaped."""
    content_type: str = _aliases("content_type", "contentType", default="application/octet-stream")
    """The ``Content-Type`` the record was stored with, verbatim."""
    size: int | None = None
    """Bytes of the value file (absent in the JS tools' sidecars)."""
    extension: str | None = None
    """The JS tools' file-name extension of the value (``<key>.<extension>``)."""
