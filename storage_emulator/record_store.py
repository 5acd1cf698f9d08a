"""The records of one key-value store folder: file names, sidecars, atomic writes, the sorted key index.

This is the one module that knows how records sit on disk. It writes the Crawlee for Python 1.x layout
(``quote(key, safe="")`` holds the bytes, ``<file>.__metadata__.json`` the key, type and size) and reads
what the JS tools write too (``<key>.<ext>`` without sidecars, or sidecars that are a JSON *string*).

Writes hold the store's lock (the caller takes it) and go through an intent file, so the value and its
sidecar never disagree after a crash: both are written to temp files, the intent names them, then both
are renamed into place and the intent removed; whoever finds an intent left by a crash finishes it.
Readers take no lock: they check that no write was in flight around their read, and retry under the
lock when one was.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import mimetypes
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote

from pydantic import ValidationError

from .errors import InvalidRecordKey, KeyValueStoreCorrupted, RecordNotFoundInStore, RequestTooLarge
from .models import METADATA_FILENAME, RECORD_SIDECAR_SUFFIX, RecordSidecar

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 9_437_184
"""The platform's limit on one record's value (9 MiB), counted after decompression."""
KEY_PATTERN = re.compile(r"^[a-zA-Z0-9!\-_.'()]{1,256}$")
KEY_RULE = "must be 1 to 256 characters of a-z, A-Z, 0-9 and !-_.'() (and not '.' or '..')"
MAX_FILE_NAME_BYTES = 255
FALLBACK_PREFIX = "~key-"
"""File names of records whose escaped key cannot be a file name; ``~`` never occurs in a key."""
TEMP_PREFIX = ".~tmp-"
INTENT_PREFIX = ".~intent-"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
INPUT_KEY = "INPUT"
JS_DEFAULT_CONTENT_TYPE = "text/plain"
_COPY_CHUNK = 1 << 16


def check_key(key: str) -> str:
    """Return ``key`` if the platform accepts it, else raise ``InvalidRecordKey``."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key) or key in (".", ".."):
        raise InvalidRecordKey(f"The record key '{key}' is not valid: it {KEY_RULE}")
    return key


def file_name_for(key: str) -> str:
    """Return the value file's name for a key: Crawlee's ``quote(key, safe="")``, or a fallback.

    The fallback (a hash of the key, the real key in the sidecar) serves keys whose escaped form is too
    long for a file name with its sidecar suffix, or would collide with the layout's own files.
    """
    escaped = quote(key, safe="")
    too_long = len(escaped.encode()) + len(RECORD_SIDECAR_SUFFIX) > MAX_FILE_NAME_BYTES
    if too_long or escaped == METADATA_FILENAME or escaped.endswith(RECORD_SIDECAR_SUFFIX):
        return FALLBACK_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:40]
    return escaped


@dataclass(frozen=True)
class RecordInfo:
    """One record as listed: its key, the file holding its bytes, its size and type."""

    key: str
    file: str
    size: int
    content_type: str | None
    """``None`` in key listings, which read no sidecars; ``find`` and ``open`` always say it."""
    sidecar: str | None
    """The sidecar's file name; ``None`` for a record the JS tools wrote without one."""


@dataclass(frozen=True)
class _Listing:
    state: tuple[int, int]
    keys: list[str]
    records: dict[str, RecordInfo]


class RecordStore:
    """Read and write the records of one store folder; ``js_style`` serves files that have no sidecar."""

    def __init__(self, folder: Path, *, js_style: bool, cache: RecordIndexCache | None = None) -> None:
        self.folder = folder
        self.js_style = js_style
        self._cache = cache or RecordIndexCache()

    # ----- the key index ------------------------------------------------------------------------------

    def listing(self) -> _Listing:
        """Return every record, keys sorted; one ``stat`` of the folder when nothing changed since last time."""
        state = _folder_state(self.folder)
        cached = self._cache.get(self.folder)
        if cached is not None and cached.state == state:
            return cached
        records = self._scan()
        listing = _Listing(state, sorted(records), records)
        self._cache.put(self.folder, listing)
        return listing

    def _scan(self) -> dict[str, RecordInfo]:
        files: dict[str, os.DirEntry[str]] = {}
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if entry.name.startswith((TEMP_PREFIX, INTENT_PREFIX)) or entry.name == METADATA_FILENAME:
                        continue
                    if entry.is_file(follow_symlinks=False):
                        files[entry.name] = entry
        except FileNotFoundError:
            return {}
        records: dict[str, RecordInfo] = {}
        sidecars = [name for name in files if name.endswith(RECORD_SIDECAR_SUFFIX)]
        claimed: set[str] = set()
        for sidecar_name in sidecars:
            info = self._from_sidecar(sidecar_name, files)
            if info is not None:
                records[info.key] = info
                claimed.update((info.file, sidecar_name))
        for name, entry in files.items():
            if name in claimed or name.endswith(RECORD_SIDECAR_SUFFIX):
                continue
            key, content_type = _js_key_and_type(name)
            # The JS tools write no sidecars; the Apify CLI leaves a bare INPUT.json in any store.
            if (self.js_style or key == INPUT_KEY) and key not in records:
                records[key] = RecordInfo(key, name, _size(entry), content_type, None)
        return records

    def _from_sidecar(self, sidecar_name: str, files: dict[str, os.DirEntry[str]]) -> RecordInfo | None:
        file = sidecar_name[: -len(RECORD_SIDECAR_SUFFIX)]
        if file in files and not file.startswith(FALLBACK_PREFIX):
            # Crawlee's layout: the file name is quote(key), so a listing needs no sidecar read at all.
            return RecordInfo(unquote(file), file, _size(files[file]), None, sidecar_name)
        sidecar = self._read_sidecar(sidecar_name)
        if sidecar is None:
            return None
        if file not in files and sidecar.extension is not None:
            file = f"{sidecar.key}.{sidecar.extension}"  # the JS tools' sidecar sits beside <key>.<ext>
        entry = files.get(file)
        if entry is None:
            return None  # a sidecar whose value is gone (a delete cut short): no record
        return RecordInfo(sidecar.key, file, _size(entry), sidecar.content_type, sidecar_name)

    def _read_sidecar(self, sidecar_name: str) -> RecordSidecar | None:
        try:
            data = json.loads((self.folder / sidecar_name).read_bytes())
            if isinstance(data, str):
                data = json.loads(data)  # the JS tools write the sidecar as a JSON string of the object
            return RecordSidecar.model_validate(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ValidationError) as exc:
            log.warning("skipping record sidecar %s/%s: %s", self.folder.name, sidecar_name, exc)
            return None

    def find(self, key: str) -> RecordInfo:
        """Return the record of ``key`` or raise ``RecordNotFoundInStore``.

        Two ``stat``s for a record in the emulator's (Crawlee's) layout; only a record the JS tools or the
        Apify CLI wrote under another file name needs the key index.
        """
        file = file_name_for(key)
        sidecar_name = file + RECORD_SIDECAR_SUFFIX
        sidecar = self._read_sidecar(sidecar_name)
        if sidecar is not None and sidecar.key == key:
            candidates = [file] if sidecar.extension is None else [file, f"{key}.{sidecar.extension}"]
            for value_file in candidates:  # the JS tools' sidecar sits beside <key>.<ext>
                try:
                    size = os.stat(self.folder / value_file).st_size
                except FileNotFoundError:
                    continue
                return RecordInfo(key, value_file, size, sidecar.content_type, sidecar_name)
            raise RecordNotFoundInStore(key)  # a delete cut short between the value and the sidecar
        info = self.listing().records.get(key)
        if info is None:
            raise RecordNotFoundInStore(key)
        return info

    # ----- reading ------------------------------------------------------------------------------------

    def open(self, key: str, *, lock: Callable[[], Any]) -> tuple[RecordInfo, IO[bytes]]:
        """Open a record's value for streaming, consistent with its sidecar; the caller closes the file.

        Lock-free when no write is in flight; otherwise ``lock()`` (a context manager) is held while the
        crashed or running write is finished, and the open is repeated.
        """
        opened = self._open_consistent(key)
        if opened is not None:
            return opened
        with lock():
            self._recover_file(file_name_for(key))
            opened = self._open_consistent(key)
        if opened is None:
            raise KeyValueStoreCorrupted(f"The record '{key}' of {self.folder.name} cannot be read consistently")
        return opened

    def _open_consistent(self, key: str) -> tuple[RecordInfo, IO[bytes]] | None:
        intent = self._intent_path(file_name_for(key))
        if intent.exists():
            return None
        info = self.find(key)
        before = _stat_of(self.folder / info.sidecar) if info.sidecar else None
        try:
            handle = open(self.folder / info.file, "rb")  # noqa: SIM115 - streamed, closed by the caller
        except FileNotFoundError:
            return None  # replaced or deleted since it was listed
        size = os.fstat(handle.fileno()).st_size
        after = _stat_of(self.folder / info.sidecar) if info.sidecar else None
        if intent.exists() or before != after:
            handle.close()
            return None
        return RecordInfo(info.key, info.file, size, info.content_type, info.sidecar), handle

    # ----- writing (the caller holds the store's lock) ------------------------------------------------

    def write(
        self, key: str, chunks: Iterable[bytes], content_type: str, *, limit: int = MAX_RECORD_BYTES
    ) -> RecordInfo:
        """Store a record's bytes and type atomically, value and sidecar together; return what was stored."""
        file = file_name_for(key)
        self._recover_file(file)
        value_tmp, sidecar_tmp, intent_tmp = (self.folder / f"{TEMP_PREFIX}{secrets.token_hex(6)}" for _ in range(3))
        intent = self._intent_path(file)
        try:
            size = _copy_limited(chunks, value_tmp, limit)
            sidecar = {"key": key, "content_type": content_type, "size": size}
            sidecar_tmp.write_text(json.dumps(sidecar, ensure_ascii=False, indent=2), encoding="utf-8")
            plan = {value_tmp.name: file, sidecar_tmp.name: file + RECORD_SIDECAR_SUFFIX}
            intent_tmp.write_text(json.dumps(plan), encoding="utf-8")
            os.replace(intent_tmp, intent)  # from here on the write completes, even across a crash
        except BaseException:
            for temp in (value_tmp, sidecar_tmp, intent_tmp):
                temp.unlink(missing_ok=True)
            raise
        # The JS tools and the Apify CLI name files by key and extension: look for such a copy to replace.
        previous = self.listing().records.get(key) if self.js_style or key == INPUT_KEY else None
        before = _folder_state(self.folder)
        self._finish(intent, plan)
        if previous is not None:  # one key, one file: drop a JS-named copy (``INPUT.json`` once ``INPUT`` is written)
            for stale in {previous.file, previous.sidecar} - {file, file + RECORD_SIDECAR_SUFFIX, None}:
                with suppress(FileNotFoundError):
                    os.unlink(self.folder / str(stale))
        info = RecordInfo(key, file, size, content_type, file + RECORD_SIDECAR_SUFFIX)
        self._note_change(before, key, info)
        return info

    def delete(self, key: str) -> None:
        """Remove a record: the value first, so a crash in between leaves a sidecar that means nothing."""
        self._recover_file(file_name_for(key))
        info = self.find(key)
        before = _folder_state(self.folder)
        with suppress(FileNotFoundError):
            os.unlink(self.folder / info.file)
        if info.sidecar:
            with suppress(FileNotFoundError):
                os.unlink(self.folder / info.sidecar)
        self._note_change(before, key, None)

    def _note_change(self, before: tuple[int, int], key: str, info: RecordInfo | None) -> None:
        """Apply our own change to the cached key index, if it was current just before the change.

        Otherwise another writer changed the folder meanwhile, and the next listing scans it again.
        """
        cached = self._cache.get(self.folder)
        if cached is None or cached.state != before:
            return
        records = cached.records  # changed in place: readers look up single keys, never iterate it
        keys = cached.keys
        if info is None:
            if records.pop(key, None) is not None:
                keys = [k for k in keys if k != key] if len(keys) < 64 else _without(keys, key)
        else:
            if key not in records:
                keys = _with(keys, key)
            records[key] = info
        self._cache.put(self.folder, _Listing(_folder_state(self.folder), keys, records))

    def _intent_path(self, file: str) -> Path:
        return self.folder / f"{INTENT_PREFIX}{file}"

    def _recover_file(self, file: str) -> bool:
        """Finish the write of one value file that a crash left half-done (under the lock); tell if there was one."""
        intent = self._intent_path(file)
        try:
            plan = json.loads(intent.read_bytes())
        except FileNotFoundError:
            return False
        except ValueError:
            intent.unlink(missing_ok=True)  # never complete (it is renamed into place whole): cannot happen
            return False
        self._finish(intent, plan)
        return True

    def recover(self) -> list[str]:
        """Finish every write a crash left half-done (under the store's lock); return the files finished."""
        names = [name[len(INTENT_PREFIX) :] for name in self.pending_intents()]
        return [name for name in names if self._recover_file(name)]

    def _finish(self, intent: Path, plan: dict[str, str]) -> None:
        for temp, final in plan.items():
            if os.path.exists(self.folder / temp):
                os.replace(self.folder / temp, self.folder / final)
        intent.unlink(missing_ok=True)

    def pending_intents(self) -> list[str]:
        """Return the intent files of writes in flight or cut off by a crash (lists the folder)."""
        try:
            return [name for name in os.listdir(self.folder) if name.startswith(INTENT_PREFIX)]
        except FileNotFoundError:
            return []

    def stray_temp_files(self) -> list[str]:
        """Return temp files no intent names (left by a write that crashed before its intent was written)."""
        named: set[str] = set()
        for intent in self.pending_intents():
            with suppress(OSError, ValueError):
                named.update(json.loads((self.folder / intent).read_bytes()))
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        return [name for name in names if name.startswith(TEMP_PREFIX) and name not in named]


class RecordIndexCache:
    """Sorted key listings of store folders, each valid for one state (mtime) of its folder."""

    MAX_FOLDERS = 1024

    def __init__(self) -> None:
        self._listings: dict[Path, _Listing] = {}
        self._lock = threading.Lock()

    def get(self, folder: Path) -> _Listing | None:
        """Return the listing kept for a folder, if any."""
        return self._listings.get(folder)

    def put(self, folder: Path, listing: _Listing) -> None:
        """Keep a folder's listing."""
        with self._lock:
            if len(self._listings) >= self.MAX_FOLDERS:
                self._listings.clear()
            self._listings[folder] = listing


def _with(keys: list[str], key: str) -> list[str]:
    position = bisect.bisect_left(keys, key)
    return [*keys[:position], key, *keys[position:]]


def _without(keys: list[str], key: str) -> list[str]:
    position = bisect.bisect_left(keys, key)
    if position < len(keys) and keys[position] == key:
        return [*keys[:position], *keys[position + 1 :]]
    return keys


def _folder_state(folder: Path) -> tuple[int, int]:
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return (0, 0)
    # Creating, renaming or removing an entry moves the folder's mtime; rewriting a file in place
    # (another tool) does not, but every writer here and in Crawlee goes through a rename.
    return (st.st_mtime_ns, st.st_ino)


def _stat_of(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        return 0


def _copy_limited(chunks: Iterable[bytes], path: Path, limit: int) -> int:
    """Write the chunks to a new file, refusing more than ``limit`` bytes; return how many were written."""
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(
                    f"The record is larger than the limit of {limit} bytes (at least {size} bytes were sent)"
                )
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return size


def _js_key_and_type(file_name: str) -> tuple[str, str]:
    """Return the key and type of a file the JS tools wrote without a sidecar: ``<key>.<ext>``."""
    stem, dot, extension = file_name.rpartition(".")
    if not dot or not stem:
        return unquote(file_name), JS_DEFAULT_CONTENT_TYPE
    content_type = mimetypes.types_map.get(f".{extension.lower()}", JS_DEFAULT_CONTENT_TYPE)
    if content_type == "application/json":
        content_type = "application/json; charset=utf-8"
    return unquote(stem), content_type


def iter_file(handle: IO[bytes]) -> Iterator[bytes]:
    """Yield a file's bytes in chunks and close it."""
    try:
        while chunk := handle.read(_COPY_CHUNK):
            yield chunk
    finally:
        handle.close()
