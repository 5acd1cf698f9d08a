"""The storage core: what every kind of storage (datasets, key-value stores, request queues) does the same way.

One folder per storage under ``<root>/<kind dir>/``, a ``__metadata__.json`` in each, found by id, ``~name``
or ``username~name``; names unique per owner and kind; creation idempotent across processes (a per-name
file lock and a staging folder renamed into place); every read-modify-write under the storage's lock
with the metadata re-read from disk; listings through the folder index; read counters throttled; the
access policy; and the check / repair of a whole kind folder. A kind subclasses ``StorageCollection``
and adds only what is its own (items, records, requests) through three hooks: ``_synthesize`` (a folder
without metadata), ``_reconcile`` (fix-ups under the lock before a write) and ``_check_contents`` (fsck).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import secrets
import shutil
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import ValidationError

from .accounts import DEFAULT_ACCOUNT, Account, AccountRegistry
from .errors import InvalidParameter, NameNotUnique, StorageCorrupted, StorageNotFound
from .files import atomic_write_text
from .folder_index import FolderIndex, Snapshot
from .locks import LOCK_POLL_SECONDS, LOCK_WAIT_SECONDS, StorageLocks
from .models import EMULATOR_DIR, GENERAL_ACCESS_VALUES, METADATA_FILENAME, StorageMetadata, utc_now
from .naming import FOREIGN_ID_PATTERN, ID_PATTERN, check_name, id_for_folder, is_valid_name, new_id, safe_child
from .policy import OWNERSHIP_VALUES, AccessPolicy
from .read_tracker import ReadTracker

log = logging.getLogger(__name__)

M = TypeVar("M", bound=StorageMetadata)

UUID_LENGTH = 36
MAX_CACHED_SELECTIONS = 256
STAGING_PREFIX = ".creating-"
DELETING_PREFIX = ".deleting-"
STALE_STAGING_SECONDS = 60.0
"""A staging folder younger than this may belong to a create in progress: fsck leaves it alone."""
BROKEN_SUFFIX = ".broken"
UNSET: Any = object()
"""Marks an update argument that was not given (``None`` is a value: it clears a name or title)."""
# Identity fields a repair can pick out of a metadata file too broken to parse as JSON.
_SALVAGE_PATTERN = re.compile(r'"(id|name|user_id|userId|username|url_signing_secret_key)"\s*:\s*"([^"\\]{1,200})"')


@dataclass(frozen=True)
class StoragePage(Generic[M]):
    """One page of a listing of storages."""

    total: int
    offset: int
    limit: int
    desc: bool
    items: list[M]


@dataclass(frozen=True)
class Finding:
    """One problem found in one storage folder, and whether it was repaired."""

    folder: str
    problem: str
    repaired: bool = False


def first_error(exc: ValidationError) -> tuple[str, str]:
    """Return where pydantic's first error is (dotted field path, may be empty) and what it says."""
    first = exc.errors()[0]
    return ".".join(str(part) for part in first["loc"]), first["msg"]


def _flush_at_exit(ref: weakref.ref[StorageCollection[Any]]) -> None:
    collection = ref()
    if collection is not None:
        collection.flush_reads()


class StorageCollection(Generic[M]):
    """The storages of one kind under a storage root."""

    KIND_DIR: ClassVar[str]
    """The kind's folder under the root (``datasets``)."""
    NOUN: ClassVar[str]
    """The kind in lock file names (``dataset``)."""
    LABEL: ClassVar[str]
    """The kind in messages (``dataset``, ``key-value store``)."""
    METADATA: ClassVar[type[StorageMetadata]]
    NOT_FOUND: ClassVar[type[StorageNotFound]]
    CORRUPTED: ClassVar[type[StorageCorrupted]]
    LOCK_POLL_SECONDS: ClassVar[float] = LOCK_POLL_SECONDS
    """How often a writer retries a busy storage lock; a kind whose locks are short and contended polls faster."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        default_account: Account = DEFAULT_ACCOUNT,
        accounts: AccountRegistry | None = None,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
    ) -> None:
        self.root = Path(root)
        self.kind_dir = self.root / self.KIND_DIR
        self.kind_dir.mkdir(parents=True, exist_ok=True)
        self.locks = StorageLocks(
            self.root / EMULATOR_DIR / "locks", wait_seconds=lock_wait_seconds, poll_seconds=self.LOCK_POLL_SECONDS
        )
        self.policy = AccessPolicy(accounts or AccountRegistry.load(self.root), default_account=default_account)
        self.index: FolderIndex[M] = FolderIndex(str(self.kind_dir), self.read_metadata)
        self.reads = ReadTracker()
        self._selections: dict[Hashable, tuple[int, list[M]]] = {}
        # Pending read counters are written at exit; a weak reference lets the collection be collected.
        atexit.register(_flush_at_exit, weakref.ref(self))

    @property
    def default_account(self) -> Account:
        """Return the account that owns what other tools wrote."""
        return self.policy.default_account

    def _folder_for(self, name: str | None, storage_id: str, owner: Account) -> str:
        if name is None:
            return storage_id
        if owner.id == self.default_account.id:
            return name  # as Crawlee and `apify run` name folders, so they find the same storage
        return f"{owner.username}~{name}"  # '~' never occurs in names: no clash with the default account

    # ----- metadata files ---------------------------------------------------------------------------

    def read_metadata(self, folder: str) -> M:
        """Read a folder's metadata, synthesizing it for folders that have no metadata file.

        Raises the kind's not-found error for a folder that does not exist (or vanished meanwhile) and its
        corrupted error for a metadata file that cannot be read.
        """
        path = self.kind_dir / folder
        try:
            data = (path / METADATA_FILENAME).read_bytes()
        except FileNotFoundError:
            if not path.is_dir():
                raise self.NOT_FOUND(folder) from None
            try:
                return self._synthesize(folder)
            except FileNotFoundError:
                raise self.NOT_FOUND(folder) from None
        except NotADirectoryError:
            raise self.NOT_FOUND(folder) from None
        except OSError as exc:
            raise self.CORRUPTED(self._corrupt_message(folder, exc)) from exc
        try:
            return self.METADATA.from_file(data)  # type: ignore[return-value]
        except ValidationError as exc:
            raise self.CORRUPTED(self._corrupt_message(folder, exc)) from exc

    def _corrupt_message(self, folder: str, exc: Exception) -> str:
        if isinstance(exc, ValidationError):
            where, rule = first_error(exc)
            detail = f"{where}: {rule}" if where else rule
        else:
            detail = str(exc) or type(exc).__name__
        return (
            f"The metadata file {self.KIND_DIR}/{folder}/{METADATA_FILENAME} cannot be read ({detail}); "
            "run `storage-emulator fsck --repair` to rebuild it from the folder"
        )

    def _identity_of_folder(self, folder: str) -> dict[str, Any]:
        """Return the id, name and owner a folder's name tells, as the emulator and the other tools name them."""
        # Unnamed storages live in a folder named by their id: a 17-character id (ours) or a UUID (the JS tools').
        if ID_PATTERN.match(folder) or (len(folder) == UUID_LENGTH and FOREIGN_ID_PATTERN.match(folder)):
            return {"id": folder, "name": None}
        username, tilde, name = folder.partition("~")
        if tilde and is_valid_name(username) and is_valid_name(name):
            return {"id": id_for_folder(folder), "name": name, "username": username}
        return {"id": id_for_folder(folder), "name": folder if is_valid_name(folder) else None}

    def _synthesize(self, folder: str) -> M:
        """Describe a folder written without a metadata file (as the JS tools do by default)."""
        when = datetime.fromtimestamp(os.stat(self.kind_dir / folder).st_mtime, tz=UTC)
        fields = {**self._identity_of_folder(folder), "accessed_at": when, "created_at": when, "modified_at": when}
        return self.METADATA.model_validate({**fields, **self._synthesized_fields(folder)})  # type: ignore[return-value]

    def _synthesized_fields(self, folder: str) -> dict[str, Any]:
        """Return the kind's own fields of a folder that has no metadata file (counted from its files)."""
        return {}

    def write_metadata(self, folder: str, metadata: M) -> None:
        """Replace a folder's metadata file atomically (callers hold the storage's lock)."""
        atomic_write_text(self.kind_dir / folder / METADATA_FILENAME, metadata.to_json())
        self.index.remember(folder, metadata)

    # ----- resolving --------------------------------------------------------------------------------

    def _locate(self, ref: str, caller: Account | None = None) -> tuple[str, M]:
        """Resolve an id, ``~name`` or ``username~name`` to its folder and metadata, or raise."""
        if not ref or "/" in ref or "\\" in ref or "\x00" in ref:
            raise self.NOT_FOUND(ref)
        if "~" in ref:
            username, _, name = ref.partition("~")
            if not is_valid_name(name):
                raise self.NOT_FOUND(ref)
            return self._locate_by_name(name, owner_username=username or (caller or self.default_account).username)
        return self._locate_by_id(ref)

    def _locate_by_id(self, storage_id: str) -> tuple[str, M]:
        if not FOREIGN_ID_PATTERN.match(storage_id):
            raise self.NOT_FOUND(storage_id)
        for folder in (self.index.folder_of(storage_id), storage_id):  # unnamed storages live in <id>/
            if folder is None or not self._is_storage_folder(folder):
                continue
            try:
                metadata = self.index.get(folder)
            except StorageCorrupted:
                if folder == storage_id:
                    raise
                continue
            if metadata is not None and metadata.id == storage_id:
                return folder, metadata
        for folder, metadata in self.index.scan():  # moved or made by another process since we last looked
            if metadata.id == storage_id:
                return folder, metadata
        raise self.NOT_FOUND(storage_id)

    def _locate_by_name(self, name: str, *, owner_username: str) -> tuple[str, M]:
        owner = self._account_named(owner_username)
        fast_folder = self._folder_for(name, "", owner)
        if self._is_storage_folder(fast_folder):
            metadata = self.index.get(fast_folder)  # a broken folder of that name raises the corrupted error
            if metadata is not None and self._named(metadata, name, owner_username):
                return fast_folder, metadata
        # Not in its canonical folder: only a folder named by hand or by another tool can hold it, so what
        # the index has seen is enough (a rescan per miss would make creating n storages cost O(n^2)).
        for folder, metadata in self.index.known():
            if self._named(metadata, name, owner_username) and self._is_storage_folder(folder):
                return folder, metadata
        raise self.NOT_FOUND(f"{owner_username}~{name}")

    def _named(self, metadata: M, name: str, owner_username: str) -> bool:
        return metadata.name == name and self.policy.owner_username(metadata) == owner_username

    def _is_storage_folder(self, folder: str) -> bool:
        """Tell whether ``<kind dir>/<folder>`` is a real directory (not a symlink, which could lead outside)."""
        path = self.kind_dir / folder
        return path.is_dir() and not path.is_symlink()

    def _account_named(self, username: str) -> Account:
        if username == self.default_account.username:
            return self.default_account
        return self.policy.accounts.by_username(username) or Account(id="", username=username)

    # ----- locks and write sessions -----------------------------------------------------------------

    @contextmanager
    def locked(self, storage_id: str) -> Iterator[None]:
        """Hold the storage's cross-process lock (by id) for a read-modify-write."""
        with self.locks.hold(self.NOUN, storage_id):
            yield

    @contextmanager
    def _name_locked(self, folder: str) -> Iterator[None]:
        with self.locks.hold(f"{self.NOUN}-name", folder):
            yield

    @contextmanager
    def _write_session(self, ref: str, caller: Account | None) -> Iterator[tuple[str, M]]:
        """Lock a storage and yield its folder and fresh-from-disk metadata for a read-modify-write."""
        folder, metadata = self._locate(ref, caller)
        with self.locked(metadata.id):
            # Re-read under the lock: another process may have changed (or moved, or deleted) it meanwhile.
            try:
                fresh: M | None = self.read_metadata(folder)
            except StorageNotFound:
                fresh = None
            if fresh is None or fresh.id != metadata.id:
                folder, fresh = self._locate_by_id(metadata.id)
            try:
                yield folder, self._reconcile(folder, fresh)
            except FileNotFoundError:
                # Only a writer outside the lock (a tool, a person) removes a folder we hold the lock of.
                raise self.NOT_FOUND(ref) from None

    def _reconcile(self, folder: str, metadata: M) -> M:
        """Bring the metadata in line with the folder before a write (under the lock; not yet written)."""
        return metadata

    # ----- listing ----------------------------------------------------------------------------------

    def list_storages(
        self,
        *,
        caller: Account | None = None,
        offset: int = 0,
        limit: int = 1000,
        desc: bool = False,
        unnamed: bool = False,
        ownership: str | None = None,
    ) -> StoragePage[M]:
        """List the caller's storages (and those shared with it), oldest first, named ones unless ``unnamed``."""
        caller = caller or self.default_account
        if ownership is not None and ownership not in OWNERSHIP_VALUES:
            raise InvalidParameter("ownership", "must be one of " + ", ".join(OWNERSHIP_VALUES))
        policy = self.policy
        matches = self.select(
            ("apify-list", caller.id, unnamed, ownership),
            lambda storages: [
                storage
                for storage in storages
                if (unnamed or storage.name is not None) and policy.visible_in_listing(storage, caller, ownership)
            ],
        )
        if desc:
            matches = matches[::-1]
        page = [self.reads.merged(storage) for storage in matches[offset : offset + limit]]
        return StoragePage(total=len(matches), offset=offset, limit=limit, desc=desc, items=page)

    def select(self, key: Hashable, build: Callable[[list[M]], list[M]]) -> list[M]:
        """Return ``build(every storage, oldest first)``, reusing the result for ``key`` while nothing changed.

        Listings ask the same question again and again (page after page); only the ``stat``s that prove
        nothing changed are paid again. ``build`` must depend on nothing but the storages and ``key``. The
        storages carry no pending read counters: merge them (``reads.merged``) into what is shown.
        """
        snapshot: Snapshot[M] = self.index.snapshot()
        cached = self._selections.get(key)
        if cached is not None and cached[0] == snapshot.generation:
            return cached[1]
        selected = build([metadata for _, metadata in snapshot.listing])
        if len(self._selections) >= MAX_CACHED_SELECTIONS:
            self._selections.clear()  # searches make endless keys; old ones are cheap to rebuild
        self._selections[key] = (snapshot.generation, selected)
        return selected

    def all_storages(self) -> list[M]:
        """Return every readable storage of this kind, of every owner, oldest first."""
        return [self.reads.merged(metadata) for _, metadata in self.index.scan()]

    def get(self, ref: str, *, caller: Account | None = None, touch_accessed: bool = False) -> M:
        """Return the storage named by ``ref`` (id, ``~name`` or ``username~name``) or raise the kind's not-found.

        ``touch_accessed`` counts the call as an access (``accessedAt``); it is written within a second.
        """
        folder, metadata = self._locate(ref, caller)
        metadata = self._as_read(folder, metadata)
        if touch_accessed and self._record_access(metadata.id, counted_read=False):
            _, metadata = self._locate_by_id(metadata.id)  # the counters were just written: show them
        return self.reads.merged(metadata)

    def _as_read(self, folder: str, metadata: M) -> M:
        """Return the metadata as a reader sees it (a kind may derive counts in memory); never writes."""
        return metadata

    # ----- read counters ----------------------------------------------------------------------------

    def _record_access(self, storage_id: str, *, counted_read: bool) -> bool:
        """Count an access; write the pending counters if it is time, and tell whether they were written."""
        if self.reads.record(storage_id, utc_now(), item_read=counted_read):
            return self.flush_reads(storage_id)
        return False

    def flush_reads(self, storage_id: str | None = None) -> bool:
        """Write pending read counters (of one storage, or of all); tell whether every write succeeded.

        A write that fails (the lock busy, the disk full, the file broken) is logged and its counts are
        kept for the next flush, so neither the read that triggered it nor the counts are lost.
        """
        ok = True
        for pending_id in [storage_id] if storage_id else self.reads.pending_ids():
            taken = self.reads.take(pending_id)
            if taken is None:
                continue
            reads, accessed_at = taken
            try:
                with self._write_session(pending_id, None) as (folder, metadata):
                    updated = metadata.model_copy(
                        update={
                            "read_count": metadata.read_count + reads,
                            "accessed_at": max(metadata.accessed_at, accessed_at),
                        }
                    )
                    self.write_metadata(folder, updated)
            except StorageNotFound:
                pass  # deleted meanwhile: nothing to count
            except Exception as exc:  # noqa: BLE001 - any failure: keep the counts, never fail the read
                log.warning(
                    "%s %s: read counters not written (%s); kept for the next flush", self.NOUN, pending_id, exc
                )
                self.reads.restore(pending_id, reads, accessed_at)
                ok = False
        return ok

    # ----- create, update, delete -------------------------------------------------------------------

    def _get_or_create(self, name: str | None, owner: Account | None, fields: dict[str, Any]) -> tuple[M, bool]:
        """Return ``(storage, created)``: the owner's storage of this name, created if it did not exist."""
        owner = owner or self.default_account
        if name is None:
            return self._create(None, owner, fields), True
        check_name(name)
        folder = self._folder_for(name, "", owner)
        safe_child(self.kind_dir, folder)
        with self._name_locked(folder):
            try:
                _, existing = self._locate_by_name(name, owner_username=owner.username)
            except StorageNotFound:
                pass
            else:
                return existing, False
            if (self.kind_dir / folder).exists():
                raise NameNotUnique(
                    f"The folder {self.KIND_DIR}/{folder} already holds another {self.NOUN}; "
                    f"the name '{name}' cannot be used"
                )
            return self._create(name, owner, fields), True

    def _create(self, name: str | None, owner: Account, fields: dict[str, Any]) -> M:
        now = utc_now()
        while True:
            storage_id = new_id()
            folder = self._folder_for(name, storage_id, owner)
            if not (self.kind_dir / folder).exists():
                break
        metadata: M = self.METADATA.model_validate(  # type: ignore[assignment]
            {
                "id": storage_id,
                "name": name,
                "accessed_at": now,
                "created_at": now,
                "modified_at": now,
                "user_id": owner.id,
                "username": owner.username,
                "url_signing_secret_key": secrets.token_urlsafe(24),
                **fields,
            }
        )
        # Build the folder under a hidden temp name and rename it into place: a storage appears whole.
        self.kind_dir.mkdir(parents=True, exist_ok=True)  # a reset or a person may have removed it
        staging = self.kind_dir / f"{STAGING_PREFIX}{storage_id}"
        staging.mkdir()
        try:
            atomic_write_text(staging / METADATA_FILENAME, metadata.to_json())
            os.rename(staging, safe_child(self.kind_dir, folder))
            self.index.remember(folder, metadata)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return metadata

    def _update(
        self,
        ref: str,
        *,
        caller: Account | None,
        name: str | None,
        general_access: str | None,
        title: str | None,
        changes: dict[str, Any],
    ) -> M:
        """Rename a storage (``name=None`` makes it unnamed; its folder follows), set access, title and ``changes``."""
        changes = dict(changes)
        if general_access is not None:
            if general_access not in GENERAL_ACCESS_VALUES:
                raise InvalidParameter("generalAccess", "must be one of " + ", ".join(GENERAL_ACCESS_VALUES))
            changes["general_access"] = general_access
        if title is not UNSET:
            changes["title"] = title
        if name is not UNSET and name is not None:
            check_name(name)
        with self._write_session(ref, caller) as (folder, metadata):
            if name is not UNSET and name != metadata.name:
                folder = self._move(folder, metadata, name)
                changes["name"] = name
            updated = self._validated(metadata, {**changes, "modified_at": utc_now()})
            self.write_metadata(folder, updated)
            return updated

    def _validated(self, metadata: M, changes: dict[str, Any]) -> M:
        """Apply changes through the model's validation, so a bad value is refused before anything is written."""
        data = {**metadata.model_dump(by_alias=True), **changes}
        try:
            validated: M = self.METADATA.model_validate(data)  # type: ignore[assignment]
        except ValidationError as exc:
            field, rule = first_error(exc)
            raise InvalidParameter(field, rule, location="body") from None
        if metadata.js_style:
            validated.mark_js_style()  # a file the JS tools wrote stays readable to them
        return validated

    def _move(self, folder: str, metadata: M, new_name: str | None) -> str:
        """Move the storage's folder to follow its new name (called under the storage's lock)."""
        owner = Account(id=self.policy.owner_id(metadata), username=self.policy.owner_username(metadata))
        target = self._folder_for(new_name, metadata.id, owner)
        target_path = safe_child(self.kind_dir, target)
        with self._name_locked(target):
            if new_name is not None:
                try:
                    self._locate_by_name(new_name, owner_username=owner.username)
                except StorageNotFound:
                    pass
                else:
                    raise NameNotUnique(f"{self.NOT_FOUND.label} with name '{new_name}' already exists")
            if target_path.exists():
                raise NameNotUnique(f"The folder {self.KIND_DIR}/{target} is already taken")
            os.rename(self.kind_dir / folder, target_path)
            self.index.forget(folder)
        return target

    def _delete(self, ref: str, *, caller: Account | None) -> None:
        """Delete a storage and its folder."""
        with self._write_session(ref, caller) as (folder, _metadata):
            # Rename first so the storage vanishes at once, then remove the files at leisure.
            doomed = self.kind_dir / f"{DELETING_PREFIX}{folder}-{secrets.token_hex(4)}"
            os.rename(self.kind_dir / folder, doomed)
            self.index.forget(folder)
        shutil.rmtree(doomed, ignore_errors=True)

    # ----- check and repair -------------------------------------------------------------------------

    def check(self, *, repair: bool = False) -> list[Finding]:
        """Check every folder of this kind; with ``repair``, fix each problem found, under the storage's lock."""
        findings: list[Finding] = []
        try:
            entries = sorted(os.scandir(self.kind_dir), key=lambda e: e.name)
        except FileNotFoundError:
            return findings
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if entry.name.startswith((STAGING_PREFIX, DELETING_PREFIX)):
                findings.extend(self._check_leftover(entry.name, repair))
            elif not entry.name.startswith("."):
                findings.extend(self._check_folder(entry.name, repair))
        return findings

    def _check_leftover(self, folder: str, repair: bool) -> list[Finding]:
        path = self.kind_dir / folder
        if folder.startswith(STAGING_PREFIX):
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                return []  # the create it belonged to just finished
            if age < STALE_STAGING_SECONDS:
                return []  # a create may be in progress
        if repair:
            shutil.rmtree(path, ignore_errors=True)
        return [Finding(folder, "leftover of an interrupted create or delete", repaired=repair)]

    def _check_folder(self, folder: str, repair: bool) -> list[Finding]:
        path = self.kind_dir / folder
        findings = []
        for tmp in path.glob(".*.tmp"):
            if repair:
                tmp.unlink(missing_ok=True)
            findings.append(Finding(folder, f"stray temp file {tmp.name} of an interrupted write", repaired=repair))
        try:
            metadata = self.read_metadata(folder)
        except StorageNotFound:
            return findings  # deleted meanwhile
        except StorageCorrupted as exc:
            lost = self._rebuild_metadata(folder) if repair else []
            problem = exc.message + "".join(f"; rebuilt without {what}" for what in lost)
            findings.append(Finding(folder, problem, repaired=repair))
            return findings
        if (path / METADATA_FILENAME).exists():  # a folder without one is a valid layout (the JS tools')
            findings.extend(self._check_contents(folder, metadata, repair))
        return findings

    def _check_contents(self, folder: str, metadata: M, repair: bool) -> list[Finding]:
        """Check the kind's own files of a folder whose metadata reads fine."""
        return []

    def _rebuild_metadata(self, folder: str) -> list[str]:
        """Rebuild a broken metadata file, keeping what it and the folder's name still tell (id, owner, name).

        Everything happens under the storage's lock, and the broken file is kept aside as
        ``.__metadata__.json.broken``. Returns what could not be recovered.
        """
        path = self.kind_dir / folder / METADATA_FILENAME
        rebuilt, lost = self._rebuilt_metadata(folder, self._salvage(path))
        with self.locked(rebuilt.id):
            try:
                self.read_metadata(folder)
            except StorageCorrupted:
                pass
            except StorageNotFound:
                return []  # deleted meanwhile
            else:
                return []  # repaired by someone else meanwhile
            os.replace(path, path.with_name(f".{METADATA_FILENAME}{BROKEN_SUFFIX}"))
            self.write_metadata(folder, self._reconcile(folder, rebuilt))
        return lost

    def _salvage(self, path: Path) -> dict[str, Any]:
        """Return whatever fields a broken metadata file still holds (all of them if it is valid JSON)."""
        try:
            data = path.read_bytes()
        except OSError:
            return {}
        try:
            parsed = json.loads(data)
        except ValueError:
            text = data.decode("utf-8", "replace")
            return {key: value for key, value in _SALVAGE_PATTERN.findall(text)}
        return parsed if isinstance(parsed, dict) else {}

    def _rebuilt_metadata(self, folder: str, salvaged: dict[str, Any]) -> tuple[M, list[str]]:
        """Merge the folder's own description with each salvaged field that is valid; list what was lost."""
        base = self._synthesize(folder)
        data = base.model_dump(by_alias=True)
        for key, value in salvaged.items():
            if key in ("name", "username") and base.name is not None:
                continue  # the folder's name is where lookups go: it decides the name and the owner
            try:
                candidate = self.METADATA.model_validate({**data, key: value})
            except ValidationError:
                continue
            data = candidate.model_dump(by_alias=True)
        rebuilt: M = self.METADATA.model_validate(data)  # type: ignore[assignment]
        if rebuilt.username and not rebuilt.user_id:  # write the owner down, as a create would have
            rebuilt = rebuilt.model_copy(update={"user_id": self.policy.owner_id(rebuilt)})
        lost = []
        if "id" not in salvaged or rebuilt.id != salvaged.get("id"):
            lost.append(f"its id (a stable one was derived from the folder name: {rebuilt.id})")
        if rebuilt.user_id and not rebuilt.url_signing_secret_key:
            rebuilt = rebuilt.model_copy(update={"url_signing_secret_key": secrets.token_urlsafe(24)})
            lost.append("its signing key (a new one was made: URLs signed with the old one stop working)")
        if not (rebuilt.user_id or rebuilt.username) and base.name is None:
            lost.append(f"its owner ({self.default_account.username} now owns it)")
        return rebuilt, lost
