"""The direct Python API over a storage root: find, create, change and delete datasets and their items.

Usable without Flask; the HTTP layer is a thin shell around it. Every read-modify-write of a dataset holds
a cross-process file lock, so the server, scripts and the CLI can write one root at once.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import shutil
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import ValidationError

from .accounts import DEFAULT_ACCOUNT, Account
from .dataset_index import DatasetIndex
from .errors import DatasetCorrupted, DatasetNotFound, InvalidInput, InvalidParameter, NameNotUnique
from .files import atomic_write_text
from .item_store import ItemStore, encode_item
from .models import (
    DATASETS_DIR,
    EMULATOR_DIR,
    GENERAL_ACCESS_VALUES,
    METADATA_FILENAME,
    DatasetMetadata,
    utc_now,
)
from .naming import (
    FOREIGN_ID_PATTERN,
    ID_PATTERN,
    check_name,
    id_for_folder,
    is_valid_name,
    lock_key,
    new_id,
    safe_child,
)
from .read_tracker import ReadTracker
from .transform import is_clean_item

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 60
UUID_LENGTH = 36

_UNSET: Any = object()

MAX_CACHED_SELECTIONS = 256
OWNERSHIP_VALUES = ("ownedByMe", "sharedWithMe")
# Fields update_dataset takes beyond name, title and access: the org listing's, and sharing.
ORG_FIELDS = frozenset(
    {"summary", "tags", "license", "task_categories", "size_category", "format", "version", "origin", "shared_with"}
)


@dataclass(frozen=True)
class DatasetPage:
    """One page of a dataset listing."""

    total: int
    offset: int
    limit: int
    desc: bool
    items: list[DatasetMetadata]


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
        """Read the page's items from disk; call again for a second pass."""
        return self.store.read(self.indices)


def _first_error(exc: ValidationError) -> tuple[str, str]:
    """Return where pydantic's first error is (dotted field path, may be empty) and what it says."""
    first = exc.errors()[0]
    return ".".join(str(part) for part in first["loc"]), first["msg"]


def _flush_at_exit(repo_ref: weakref.ref[DatasetRepository]) -> None:
    repo = repo_ref()
    if repo is not None:
        repo.flush_reads()


class DatasetRepository:
    """Datasets under one storage root, e.g. ``DatasetRepository("./storage")``."""

    def __init__(self, root: str | os.PathLike[str], *, default_account: Account = DEFAULT_ACCOUNT) -> None:
        self.root = Path(root)
        self.default_account = default_account
        self.datasets_dir = self.root / DATASETS_DIR
        self.locks_dir = self.root / EMULATOR_DIR / "locks"
        self.datasets_dir.mkdir(parents=True, exist_ok=True)
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        self.index = DatasetIndex(str(self.datasets_dir), self.read_metadata)
        self.reads = ReadTracker()
        self._selections: dict[Hashable, tuple[int, list[DatasetMetadata]]] = {}
        # Pending read counters are written at exit; a weak reference lets the repository be collected.
        atexit.register(_flush_at_exit, weakref.ref(self))

    # ----- ownership -------------------------------------------------------------------------------

    def owner_id(self, dataset: DatasetMetadata) -> str:
        """Return the owner's account id; datasets written by other tools belong to the default account."""
        return dataset.user_id or self.default_account.id

    def owner_username(self, dataset: DatasetMetadata) -> str:
        """Return the owner's username."""
        if dataset.username:
            return dataset.username
        if self.owner_id(dataset) == self.default_account.id:
            return self.default_account.username
        return dataset.user_id or self.default_account.username

    def _folder_for(self, name: str | None, dataset_id: str, owner: Account) -> str:
        if name is None:
            return dataset_id
        if owner.id == self.default_account.id:
            return name  # as Crawlee and `apify run` name folders, so they find the same dataset
        return f"{owner.username}~{name}"  # '~' never occurs in names: no clash with the default account

    # ----- reading metadata -------------------------------------------------------------------------

    def read_metadata(self, folder: str) -> DatasetMetadata:
        """Read a folder's metadata, synthesizing it for folders that have no metadata file."""
        path = self.datasets_dir / folder
        try:
            data = (path / METADATA_FILENAME).read_bytes()
        except FileNotFoundError:
            if not path.is_dir():
                raise DatasetNotFound(folder) from None
            return self.synthesize_metadata(folder)
        except OSError as exc:
            raise DatasetCorrupted(self._corrupt_message(folder, exc)) from exc
        try:
            return DatasetMetadata.from_file(data)
        except ValidationError as exc:
            raise DatasetCorrupted(self._corrupt_message(folder, exc)) from exc

    def _corrupt_message(self, folder: str, exc: Exception) -> str:
        if isinstance(exc, ValidationError):
            where, rule = _first_error(exc)
            detail = f"{where}: {rule}" if where else rule
        else:
            detail = str(exc) or type(exc).__name__
        return (
            f"The metadata file datasets/{folder}/{METADATA_FILENAME} cannot be read ({detail}); "
            "run `storage-emulator fsck --repair` to rebuild it from the folder"
        )

    def synthesize_metadata(self, folder: str) -> DatasetMetadata:
        """Describe a folder written without a metadata file (as the JS tools do by default)."""
        path = self.datasets_dir / folder
        mtime = os.stat(path).st_mtime
        when = datetime.fromtimestamp(mtime, tz=UTC)
        # Unnamed datasets live in a folder named by their id: a 17-character id (ours) or a UUID (the JS tools').
        is_id_folder = ID_PATTERN.match(folder) is not None or (
            len(folder) == UUID_LENGTH and FOREIGN_ID_PATTERN.match(folder) is not None
        )
        dataset_id = folder if is_id_folder else id_for_folder(folder)
        name = None if is_id_folder or not is_valid_name(folder) else folder
        count = ItemStore(path).highest_index()
        return DatasetMetadata(
            id=dataset_id, name=name, accessed_at=when, created_at=when, modified_at=when, item_count=count
        )

    def _metadata_path(self, folder: str) -> Path:
        return self.datasets_dir / folder / METADATA_FILENAME

    def write_metadata(self, folder: str, dataset: DatasetMetadata) -> None:
        """Replace a folder's metadata file atomically (callers hold the dataset's lock)."""
        atomic_write_text(self._metadata_path(folder), dataset.to_json())
        self.index.remember(folder, dataset)

    # ----- resolving --------------------------------------------------------------------------------

    def _locate(self, ref: str, caller: Account | None = None) -> tuple[str, DatasetMetadata]:
        """Resolve an id, ``~name`` or ``username~name`` to its folder and metadata, or raise."""
        if not ref or "/" in ref or "\\" in ref or "\x00" in ref:
            raise DatasetNotFound(ref)
        if "~" in ref:
            username, _, name = ref.partition("~")
            if not is_valid_name(name):
                raise DatasetNotFound(ref)
            if username:
                return self._locate_by_name(name, owner_username=username)
            caller = caller or self.default_account
            return self._locate_by_name(name, owner_username=caller.username)
        return self._locate_by_id(ref)

    def _locate_by_id(self, dataset_id: str) -> tuple[str, DatasetMetadata]:
        if not FOREIGN_ID_PATTERN.match(dataset_id):
            raise DatasetNotFound(dataset_id)
        candidates = [self.index.folder_of(dataset_id), dataset_id]  # unnamed datasets live in <id>/
        for folder in candidates:
            if folder is None or not self._is_dataset_folder(folder):
                continue
            try:
                dataset = self.index.get(folder)
            except DatasetCorrupted:
                if folder == dataset_id:
                    raise
                continue
            if dataset.id == dataset_id:
                return folder, dataset
        for folder, dataset in self.index.scan():  # moved or made by another process since we last looked
            if dataset.id == dataset_id:
                return folder, dataset
        raise DatasetNotFound(dataset_id)

    def _locate_by_name(self, name: str, *, owner_username: str) -> tuple[str, DatasetMetadata]:
        owner = self._account_named(owner_username)
        fast_folder = self._folder_for(name, "", owner)
        if self._is_dataset_folder(fast_folder):
            dataset = self.index.get(fast_folder)  # a broken folder of that name raises DatasetCorrupted
            if dataset.name == name and self.owner_username(dataset) == owner_username:
                return fast_folder, dataset
        # Not in its canonical folder: only a folder named by hand or by another tool can hold it, so what
        # the index has seen is enough (a rescan per miss would make creating n datasets cost O(n^2)).
        for folder, dataset in self.index.known():
            if dataset.name == name and self.owner_username(dataset) == owner_username:
                if self._is_dataset_folder(folder):
                    return folder, dataset
        raise DatasetNotFound(f"{owner_username}~{name}")

    def _is_dataset_folder(self, folder: str) -> bool:
        """Tell whether ``datasets/<folder>`` is a real directory (not a symlink, which could lead outside)."""
        path = self.datasets_dir / folder
        return path.is_dir() and not path.is_symlink()

    def _account_named(self, username: str) -> Account:
        if username == self.default_account.username:
            return self.default_account
        return Account(id="", username=username)

    # ----- locks ------------------------------------------------------------------------------------

    @contextmanager
    def locked(self, kind: str, key: str) -> Iterator[None]:
        """Hold the cross-process lock ``kind`` (``dataset`` by id, ``name`` by folder) for ``key``."""
        lock = FileLock(self.locks_dir / f"{kind}-{lock_key(key)}.lock", timeout=LOCK_TIMEOUT_SECONDS)
        with lock:
            yield

    @contextmanager
    def _write_session(self, ref: str, caller: Account | None) -> Iterator[tuple[str, DatasetMetadata]]:
        """Lock a dataset and yield its folder and fresh-from-disk metadata for a read-modify-write."""
        folder, dataset = self._locate(ref, caller)
        with self.locked("dataset", dataset.id):
            # Re-read under the lock: another process may have changed (or moved) it meanwhile.
            try:
                fresh = self.read_metadata(folder)
            except DatasetNotFound:
                fresh = None
            if fresh is None or fresh.id != dataset.id:
                folder, fresh = self._locate_by_id(dataset.id)
            yield folder, self.reconcile(folder, fresh)

    def reconcile(self, folder: str, dataset: DatasetMetadata) -> DatasetMetadata:
        """Adopt item files past ``item_count`` (a crashed push, another tool) and count clean items.

        Called under the dataset's lock. The result is not yet written; the caller writes it.
        """
        store = ItemStore(self.datasets_dir / folder)
        new_count, adopted, size = store.adopt_orphans(dataset.item_count)
        if new_count != dataset.item_count:
            log.warning(
                "dataset %s: adopted %d item file(s) past item_count %d",
                dataset.id,
                new_count - dataset.item_count,
                dataset.item_count,
            )
            dataset = dataset.model_copy(update={"item_count": new_count})
        if dataset.clean_counted_items < dataset.item_count:
            dataset = self._count_clean(store, dataset, adopted, size)
        return dataset

    def _count_clean(
        self, store: ItemStore, dataset: DatasetMetadata, adopted: list[dict[str, Any]], adopted_size: int
    ) -> DatasetMetadata:
        start = dataset.clean_counted_items
        known_start = dataset.item_count - len(adopted)
        items: Iterable[dict[str, Any]] = store.read(range(start + 1, known_start + 1))
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

    # ----- datasets ---------------------------------------------------------------------------------

    def list_datasets(
        self,
        *,
        caller: Account | None = None,
        offset: int = 0,
        limit: int = 1000,
        desc: bool = False,
        unnamed: bool = False,
        ownership: str | None = None,
    ) -> DatasetPage:
        """List the caller's datasets (and those shared with it), oldest first, named ones unless ``unnamed``."""
        caller = caller or self.default_account
        if ownership is not None and ownership not in OWNERSHIP_VALUES:
            raise InvalidParameter("ownership", "must be one of " + ", ".join(OWNERSHIP_VALUES))
        matches = self.select(
            ("apify-list", caller.id, unnamed, ownership),
            lambda datasets: [
                dataset
                for dataset in datasets
                if (unnamed or dataset.name is not None) and self._visible_in_listing(dataset, caller, ownership)
            ],
        )
        if desc:
            matches = matches[::-1]
        page = [self.reads.merged(dataset) for dataset in matches[offset : offset + limit]]
        return DatasetPage(total=len(matches), offset=offset, limit=limit, desc=desc, items=page)

    def select(
        self, key: Hashable, build: Callable[[list[DatasetMetadata]], list[DatasetMetadata]]
    ) -> list[DatasetMetadata]:
        """Return ``build(every dataset, oldest first)``, reusing the result for ``key`` while nothing changed.

        Listings ask the same question again and again (page after page); only the ``stat``s that prove
        nothing changed are paid again. ``build`` must depend on nothing but the datasets and ``key``. The
        datasets carry no pending read counters: merge them (``reads.merged``) into what is shown.
        """
        pairs = self.index.scan()
        cached = self._selections.get(key)
        if cached is not None and cached[0] == self.index.generation:
            return cached[1]
        selected = build([dataset for _, dataset in pairs])
        if len(self._selections) >= MAX_CACHED_SELECTIONS:
            self._selections.clear()  # searches make endless keys; old ones are cheap to rebuild
        self._selections[key] = (self.index.generation, selected)
        return selected

    def _visible_in_listing(self, dataset: DatasetMetadata, caller: Account, ownership: str | None) -> bool:
        owned = self.owner_id(dataset) == caller.id
        shared = caller.id in dataset.shared_with
        if ownership == "ownedByMe":
            return owned
        if ownership == "sharedWithMe":
            return shared and not owned
        return owned or shared

    def all_datasets(self) -> list[DatasetMetadata]:
        """Return every readable dataset of every owner, oldest first."""
        return [self.reads.merged(dataset) for _, dataset in self.index.scan()]

    def get_dataset(self, ref: str, *, caller: Account | None = None, touch_accessed: bool = False) -> DatasetMetadata:
        """Return the dataset named by ``ref`` (id, ``~name`` or ``username~name``) or raise ``DatasetNotFound``.

        ``touch_accessed`` counts the call as an access (``accessedAt``); it is written within a second.
        """
        folder, dataset = self._locate(ref, caller)
        if dataset.clean_counted_items < dataset.item_count:
            # Items written by another tool: count them in memory (a plain read never writes), once per state
            # of the metadata file, since every request resolves its dataset through here.
            counted = self._count_clean(ItemStore(self.datasets_dir / folder), dataset, [], 0)
            self.index.refine(folder, dataset, counted)
            dataset = counted
        if touch_accessed and self._record_access(dataset.id, item_read=False):
            _, dataset = self._locate_by_id(dataset.id)  # the counters were just written: show them
        return self.reads.merged(dataset)

    def _record_access(self, dataset_id: str, *, item_read: bool) -> bool:
        """Count an access; write the pending counters if it is time, and tell whether they were written."""
        if self.reads.record(dataset_id, utc_now(), item_read=item_read):
            self.flush_reads(dataset_id)
            return True
        return False

    def flush_reads(self, dataset_id: str | None = None) -> None:
        """Write pending read counters (of one dataset, or of all) to the metadata files."""
        for pending_id in [dataset_id] if dataset_id else self.reads.pending_ids():
            taken = self.reads.take(pending_id)
            if taken is None:
                continue
            reads, accessed_at = taken
            try:
                with self._write_session(pending_id, None) as (folder, dataset):
                    accessed = max(dataset.accessed_at, accessed_at)
                    updated = dataset.model_copy(
                        update={"read_count": dataset.read_count + reads, "accessed_at": accessed}
                    )
                    self.write_metadata(folder, updated)
            except DatasetNotFound:
                pass  # deleted meanwhile: nothing to count

    def get_or_create_dataset(
        self, name: str | None = None, schema: dict[str, Any] | None = None, *, owner: Account | None = None
    ) -> tuple[DatasetMetadata, bool]:
        """Return ``(dataset, created)``: the owner's dataset of this name, created if it did not exist.

        Without a name, always create a new unnamed dataset. Idempotent across threads and processes.
        """
        owner = owner or self.default_account
        if name is None:
            return self._create(None, schema, owner), True
        check_name(name)
        folder = self._folder_for(name, "", owner)
        safe_child(self.datasets_dir, folder)
        with self.locked("name", folder):
            try:
                existing_folder, existing = self._locate_by_name(name, owner_username=owner.username)
            except DatasetNotFound:
                pass
            else:
                return existing, False
            if (self.datasets_dir / folder).exists():
                raise NameNotUnique(
                    f"The folder datasets/{folder} already holds another dataset; the name '{name}' cannot be used"
                )
            return self._create(name, schema, owner), True

    def _create(self, name: str | None, schema: dict[str, Any] | None, owner: Account) -> DatasetMetadata:
        now = utc_now()
        while True:
            dataset_id = new_id()
            folder = self._folder_for(name, dataset_id, owner)
            if not (self.datasets_dir / folder).exists():
                break
        dataset = DatasetMetadata(
            id=dataset_id,
            name=name,
            accessed_at=now,
            created_at=now,
            modified_at=now,
            item_count=0,
            user_id=owner.id,
            username=owner.username,
            schema=schema,
            url_signing_secret_key=secrets.token_urlsafe(24),
            clean_item_count=0,
        )
        # Build the folder under a hidden temp name and rename it into place: a dataset appears whole.
        staging = self.datasets_dir / f".creating-{dataset_id}"
        staging.mkdir()
        try:
            atomic_write_text(staging / METADATA_FILENAME, dataset.to_json())
            os.rename(staging, safe_child(self.datasets_dir, folder))
            self.index.remember(folder, dataset)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return dataset

    def update_dataset(
        self,
        ref: str,
        *,
        caller: Account | None = None,
        name: str | None = _UNSET,
        general_access: str | None = None,
        title: str | None = _UNSET,
        **org_fields: Any,
    ) -> DatasetMetadata:
        """Rename a dataset (``name=None`` makes it unnamed; its folder follows), or set access, title, org fields."""
        changes: dict[str, Any] = {}
        if general_access is not None:
            if general_access not in GENERAL_ACCESS_VALUES:
                raise InvalidParameter("generalAccess", "must be one of " + ", ".join(GENERAL_ACCESS_VALUES))
            changes["general_access"] = general_access
        if title is not _UNSET:
            changes["title"] = title
        changes.update(self._checked_org_fields(org_fields))
        if name is not _UNSET and name is not None:
            check_name(name)
        with self._write_session(ref, caller) as (folder, dataset):
            if name is not _UNSET and name != dataset.name:
                folder = self._move(folder, dataset, name)
                changes["name"] = name
            updated = self._validated(dataset, {**changes, "modified_at": utc_now()})
            self.write_metadata(folder, updated)
            return updated

    @staticmethod
    def _validated(dataset: DatasetMetadata, changes: dict[str, Any]) -> DatasetMetadata:
        """Apply changes through the model's validation, so a bad value is refused before anything is written."""
        data = {**dataset.model_dump(by_alias=True), **changes}
        try:
            return DatasetMetadata.model_validate(data)
        except ValidationError as exc:
            field, rule = _first_error(exc)
            raise InvalidParameter(field, rule, location="body") from None

    def _checked_org_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - ORG_FIELDS
        if unknown:
            raise InvalidInput(f"Unknown dataset field(s): {', '.join(sorted(unknown))}")
        return fields

    def _move(self, folder: str, dataset: DatasetMetadata, new_name: str | None) -> str:
        """Move the dataset's folder to follow its new name (called under the dataset lock)."""
        owner = Account(id=self.owner_id(dataset), username=self.owner_username(dataset))
        target = self._folder_for(new_name, dataset.id, owner)
        target_path = safe_child(self.datasets_dir, target)
        with self.locked("name", target):
            if new_name is not None:
                try:
                    self._locate_by_name(new_name, owner_username=owner.username)
                except DatasetNotFound:
                    pass
                else:
                    raise NameNotUnique(f"Dataset with name '{new_name}' already exists")
            if target_path.exists():
                raise NameNotUnique(f"The folder datasets/{target} is already taken")
            os.rename(self.datasets_dir / folder, target_path)
            self.index.forget(folder)
        return target

    def delete_dataset(self, ref: str, *, caller: Account | None = None) -> None:
        """Delete a dataset and its folder."""
        with self._write_session(ref, caller) as (folder, _dataset):
            # Rename first so the dataset vanishes at once, then remove the files at leisure.
            doomed = self.datasets_dir / f".deleting-{folder}-{secrets.token_hex(4)}"
            os.rename(self.datasets_dir / folder, doomed)
            self.index.forget(folder)
        shutil.rmtree(doomed, ignore_errors=True)

    # ----- items ------------------------------------------------------------------------------------

    def push_items(
        self, ref: str, items: Sequence[dict[str, Any]], *, caller: Account | None = None
    ) -> DatasetMetadata:
        """Append items to a dataset, all or nothing, and return its updated metadata."""
        encoded = [encode_item(item) for item in items]  # encode first: a bad item fails before anything is written
        clean = sum(1 for item in items if is_clean_item(item))
        with self._write_session(ref, caller) as (folder, dataset):
            store = ItemStore(self.datasets_dir / folder)
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
            self._record_access(dataset.id, item_read=True)
        dataset = self.reads.merged(dataset)
        total = dataset.item_count
        start = min(offset, total)
        stop = total if limit is None else min(total, offset + limit)
        if desc:
            indices = range(total - start, total - stop, -1)
        else:
            indices = range(start + 1, stop + 1)
        return ItemsPage(dataset, total, offset, limit, desc, indices, ItemStore(self.datasets_dir / folder))
