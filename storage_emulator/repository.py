"""The direct Python API over a storage root's datasets: find, create, change and delete them and their items.

Usable without Flask; the HTTP layer is a thin shell around it. What every storage kind does the same way
(folders, names, locks, listings, access, repair) is in ``storage_collection``; this module adds only what
is a dataset's own: item files, item counts and the dataset schema's rules.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .accounts import Account
from .errors import DatasetCorrupted, DatasetNotFound, InvalidInput
from .item_schema import check_schema, validate_items
from .item_store import ItemStore, encode_item
from .models import DATASETS_DIR, DatasetMetadata, utc_now
from .policy import OWNERSHIP_VALUES
from .storage_collection import UNSET, Finding, StorageCollection, StoragePage
from .transform import is_clean_item

log = logging.getLogger(__name__)

__all__ = ["OWNERSHIP_VALUES", "DatasetPage", "DatasetRepository", "ItemsPage"]

DatasetPage = StoragePage[DatasetMetadata]
"""One page of a dataset listing."""

# Fields update_dataset takes beyond name, title and access: the org listing's, and sharing.
ORG_FIELDS = frozenset(
    {"summary", "tags", "license", "task_categories", "size_category", "format", "version", "origin", "shared_with"}
)


@dataclass(frozen=True)
class ItemsPage:
    """A page of a dataset's items: the rows ``indices`` of the dataset, read lazily."""

    dataset: DatasetMetadata
    total: int
    offset: int
    limit: int | None
    desc: bool
    indices: range
    store: ItemStore

    @property
    def count(self) -> int:
        """Rows of the dataset this page covers (Apify's ``X-Apify-Pagination-Count``)."""
        return len(self.indices)

    def items(self) -> Iterator[dict[str, Any]]:
        """Read the page's items from disk; call again for a second pass.

        Raises ``DatasetCorrupted`` at a missing or unreadable item file: a page never holds fewer rows
        than ``count`` says.
        """
        return self.store.read(self.indices)


class DatasetRepository(StorageCollection[DatasetMetadata]):
    """Datasets under one storage root, e.g. ``DatasetRepository("./storage")``."""

    KIND_DIR = DATASETS_DIR
    NOUN = "dataset"
    LABEL = "dataset"
    METADATA = DatasetMetadata
    NOT_FOUND = DatasetNotFound
    CORRUPTED = DatasetCorrupted

    @property
    def datasets_dir(self) -> Path:
        """Return ``<root>/datasets``."""
        return self.kind_dir

    def _store(self, folder: str) -> ItemStore:
        return ItemStore(self.kind_dir / folder)

    # ----- the kind's hooks into the core ------------------------------------------------------------

    def _synthesized_fields(self, folder: str) -> dict[str, Any]:
        return {"item_count": self._store(folder).highest_index()}

    def _reconcile(self, folder: str, dataset: DatasetMetadata) -> DatasetMetadata:
        """Adopt item files past ``item_count`` (a crashed push, another tool) and count clean items."""
        store = self._store(folder)
        new_count, adopted, size = store.adopt_orphans(dataset.item_count)
        if new_count != dataset.item_count:
            self._log_adopted(dataset, new_count)
            dataset = dataset.model_copy(update={"item_count": new_count})
        if dataset.clean_counted_items < dataset.item_count:
            dataset = self._count_clean(store, dataset, adopted, size)
        return dataset

    @staticmethod
    def _log_adopted(dataset: DatasetMetadata, new_count: int) -> None:
        log.warning(
            "dataset %s: adopted %d item file(s) past item_count %d",
            dataset.id,
            new_count - dataset.item_count,
            dataset.item_count,
        )

    def _count_clean(
        self, store: ItemStore, dataset: DatasetMetadata, adopted: list[dict[str, Any]], adopted_size: int
    ) -> DatasetMetadata:
        start = dataset.clean_counted_items
        known_start = dataset.item_count - len(adopted)
        # Counting is tolerant: a missing file counts as not clean here; serving it is what fails loudly.
        items: Iterable[dict[str, Any]] = store.read(range(start + 1, known_start + 1), skip_unreadable=True)
        clean = (dataset.clean_item_count or 0) + sum(1 for item in items if is_clean_item(item))
        clean += sum(1 for item in adopted if is_clean_item(item))
        # Counting from scratch (a folder another tool wrote): measure the files; else add the newly counted ones.
        if start == 0:
            storage_bytes = store.total_bytes()
        else:
            storage_bytes = dataset.storage_bytes + store.size_of(range(start + 1, known_start + 1)) + adopted_size
        return dataset.model_copy(
            update={
                "clean_item_count": clean,
                "clean_counted_items": dataset.item_count,
                "storage_bytes": storage_bytes,
            }
        )

    def _check_contents(self, folder: str, dataset: DatasetMetadata, repair: bool) -> list[Finding]:
        store = self._store(folder)
        findings = []
        if store.path_for(dataset.item_count + 1).exists():
            findings.append(Finding(folder, f"item files past item_count {dataset.item_count}", repaired=repair))
            if repair:
                with self._write_session(dataset.id, None) as (current_folder, fresh):
                    self.write_metadata(current_folder, fresh)  # the session reconciled it
        missing = [i for i in range(1, dataset.item_count + 1) if not store.path_for(i).exists()]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            findings.append(Finding(folder, f"{len(missing)} item file(s) missing: {shown}"))
        return findings

    # ----- datasets ---------------------------------------------------------------------------------

    list_datasets = StorageCollection.list_storages
    """List the caller's datasets (and those shared with it), oldest first, named ones unless ``unnamed``."""

    all_datasets = StorageCollection.all_storages
    """Return every readable one of every owner, oldest first."""

    def get_dataset(self, ref: str, *, caller: Account | None = None, touch_accessed: bool = False) -> DatasetMetadata:
        """Return the dataset named by ``ref`` (id, ``~name`` or ``username~name``) or raise ``DatasetNotFound``.

        ``touch_accessed`` counts the call as an access (``accessedAt``); it is written within a second.
        """
        return self.get(ref, caller=caller, touch_accessed=touch_accessed)

    def _as_read(self, folder: str, dataset: DatasetMetadata) -> DatasetMetadata:
        if dataset.clean_counted_items < dataset.item_count:
            # Items written by another tool: count them in memory (a plain read never writes), once per state
            # of the metadata file, since every request resolves its dataset through here.
            counted = self._count_clean(self._store(folder), dataset, [], 0)
            self.index.refine(folder, dataset, counted)
            return counted
        return dataset

    def get_or_create_dataset(
        self, name: str | None = None, schema: dict[str, Any] | None = None, *, owner: Account | None = None
    ) -> tuple[DatasetMetadata, bool]:
        """Return ``(dataset, created)``: the owner's dataset of this name, created if it did not exist.

        Without a name, always create a new unnamed dataset. Idempotent across threads and processes. A
        ``schema`` is checked before anything is written; an existing dataset keeps its own.
        """
        if schema is not None:
            check_schema(schema)
        fields = {"schema": schema, "item_count": 0, "clean_item_count": 0}
        return self._get_or_create(name, owner, fields)

    def update_dataset(
        self,
        ref: str,
        *,
        caller: Account | None = None,
        name: str | None = UNSET,
        general_access: str | None = None,
        title: str | None = UNSET,
        **org_fields: Any,
    ) -> DatasetMetadata:
        """Rename a dataset (``name=None`` makes it unnamed; its folder follows), or set access, title, org fields."""
        unknown = set(org_fields) - ORG_FIELDS
        if unknown:
            raise InvalidInput(f"Unknown dataset field(s): {', '.join(sorted(unknown))}")
        return self._update(
            ref, caller=caller, name=name, general_access=general_access, title=title, changes=org_fields
        )

    def delete_dataset(self, ref: str, *, caller: Account | None = None) -> None:
        """Delete a dataset and its folder."""
        self._delete(ref, caller=caller)

    # ----- items ------------------------------------------------------------------------------------

    def push_items(
        self, ref: str, items: Sequence[dict[str, Any]], *, caller: Account | None = None
    ) -> DatasetMetadata:
        """Append items to a dataset, all or nothing, and return its updated metadata.

        Items that break the dataset schema's ``fields`` are refused (``SchemaValidationFailed``) before
        anything is written, whichever way they come in.
        """
        encoded = [encode_item(item) for item in items]  # encode first: a bad item fails before anything is written
        clean = sum(1 for item in items if is_clean_item(item))
        with self._write_session(ref, caller) as (folder, dataset):
            validate_items(items, dataset.dataset_schema)  # the schema is fixed at creation; read under the lock
            store = self._store(folder)
            try:
                written = store.append(encoded, dataset.item_count + 1)
            except FileExistsError as exc:
                raise DatasetCorrupted(
                    f"dataset {dataset.id}: {Path(exc.filename or '').name} already exists where the next item "
                    "goes (another tool wrote to the dataset during this push, or something else sits at that "
                    "path); nothing was stored. Retry the push; if this repeats, move that path aside."
                ) from exc
            now = utc_now()
            updated = dataset.model_copy(
                update={
                    "item_count": dataset.item_count + len(encoded),
                    "clean_item_count": (dataset.clean_item_count or 0) + clean,
                    "clean_counted_items": dataset.item_count + len(encoded),
                    "write_count": dataset.write_count + 1,
                    "modified_at": now,
                    "accessed_at": now,
                    "storage_bytes": dataset.storage_bytes + written,
                }
            )
            self.write_metadata(folder, updated)
            return updated

    def read_items(
        self,
        ref: str,
        *,
        caller: Account | None = None,
        offset: int = 0,
        limit: int | None = None,
        desc: bool = False,
        count_read: bool = True,
    ) -> ItemsPage:
        """Return a lazy page of items: rows ``offset .. offset+limit`` in dataset order (newest first if ``desc``)."""
        folder, dataset = self._locate(ref, caller)
        if count_read:
            self._record_access(dataset.id, counted_read=True)
        dataset = self.reads.merged(dataset)
        total = dataset.item_count
        start = min(offset, total)
        stop = total if limit is None else min(total, offset + limit)
        if desc:
            indices = range(total - start, total - stop, -1)
        else:
            indices = range(start + 1, stop + 1)
        return ItemsPage(dataset, total, offset, limit, desc, indices, self._store(folder))
