"""The ``storage-emulator kv`` commands: key-value stores and their records, straight on the files."""

from __future__ import annotations

import argparse
import mimetypes
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import KeyValueStoreNotFound
from .key_value_stores import KeyValueStoreRepository
from .record_store import iter_file
from .serializers import iso_time

DEFAULT_STORE = "~default"
"""The store the commands use without ``--store``: Crawlee's ``default`` folder, named or not."""
STDIN_CHUNK = 1 << 16


def add_kv_commands(commands: Any) -> None:
    """Add ``kv ls|keys|get|set|rm`` to the command line (``commands`` shares the --root option)."""
    kv = commands.add_parser("kv", help="key-value stores and their records")
    sub = kv.add_subparsers(dest="kv_command", required=True)
    parent = commands.parent

    ls = sub.add_parser("ls", parents=[parent], help="list key-value stores")
    ls.add_argument("--unnamed", action="store_true", help="include unnamed stores")
    ls.set_defaults(handler=cmd_kv_ls)

    keys = sub.add_parser("keys", parents=[parent], help="list a store's keys, sizes and types")
    keys.add_argument("--store", default=DEFAULT_STORE, help="id, ~name or username~name (default ~default)")
    keys.add_argument("--prefix", default=None, help="only keys that start with this")
    keys.set_defaults(handler=cmd_kv_keys)

    get = sub.add_parser("get", parents=[parent], help="write a record's bytes to standard output or a file")
    get.add_argument("key")
    get.add_argument("--store", default=DEFAULT_STORE, help="id, ~name or username~name (default ~default)")
    get.add_argument("-o", "--output", default="-", help="file to write ('-', the default, for standard output)")
    get.set_defaults(handler=cmd_kv_get)

    put = sub.add_parser("set", parents=[parent], help="store a file's bytes (or standard input's) as a record")
    put.add_argument("key")
    put.add_argument("file", help="the file to store, or '-' for standard input")
    put.add_argument("--store", default=DEFAULT_STORE, help="id, ~name or username~name (default ~default)")
    put.add_argument("--content-type", default=None, help="the record's type (default: guessed from the file name)")
    put.add_argument("--create", action="store_true", help="create the named store (~name) if missing")
    put.set_defaults(handler=cmd_kv_set)

    rm = sub.add_parser("rm", parents=[parent], help="delete a record")
    rm.add_argument("key")
    rm.add_argument("--store", default=DEFAULT_STORE, help="id, ~name or username~name (default ~default)")
    rm.set_defaults(handler=cmd_kv_rm)


def _stores(args: argparse.Namespace) -> KeyValueStoreRepository:
    from .cli import resolve_root

    stores = KeyValueStoreRepository(resolve_root(args))
    if getattr(args, "store", None) == DEFAULT_STORE:
        try:
            stores.get_key_value_store(DEFAULT_STORE)
        except KeyValueStoreNotFound:
            args.store = stores.read_metadata("default").id  # Crawlee's unnamed default store lives in default/
    return stores


def print_stores(stores: KeyValueStoreRepository, *, unnamed: bool) -> None:
    """Print one line per key-value store."""
    page = stores.list_key_value_stores(unnamed=unnamed, limit=sys.maxsize)
    id_width = max([17, *(len(store.id) for store in page.items)])
    print(f"{'ID':<{id_width}}  {'NAME':<30}  {'OWNER':<12}  {'RECORDS':>9}  MODIFIED")
    for store in page.items:
        count = len(stores.list_keys(store.id, limit=sys.maxsize).items)
        name = store.name or "(unnamed)"
        owner = stores.policy.owner_username(store)
        print(f"{store.id:<{id_width}}  {name:<30}  {owner:<12}  {count:>9}  {iso_time(store.modified_at)}")


def cmd_kv_ls(args: argparse.Namespace) -> int:
    """Print one line per key-value store."""
    print_stores(_stores(args), unnamed=args.unnamed)
    return 0


def cmd_kv_keys(args: argparse.Namespace) -> int:
    """Print a store's keys with their sizes and types."""
    stores = _stores(args)
    for listed in stores.list_keys(args.store, prefix=args.prefix, limit=sys.maxsize).items:
        info = stores.record_info(args.store, listed.key)  # a listing reads no sidecars; the type is in one
        print(f"{info.key}\t{info.size}\t{info.content_type}")
    return 0


def cmd_kv_get(args: argparse.Namespace) -> int:
    """Copy a record's bytes out."""
    _info, handle = _stores(args).get_record(args.store, args.key, count_read=False)
    if args.output == "-":
        for chunk in iter_file(handle):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    else:
        with handle, open(args.output, "wb") as out:
            shutil.copyfileobj(handle, out)
    return 0


def _chunks_of(path: str) -> Iterator[bytes]:
    source = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - closed below
    try:
        while chunk := source.read(STDIN_CHUNK):
            yield chunk
    finally:
        if source is not sys.stdin.buffer:
            source.close()


def cmd_kv_set(args: argparse.Namespace) -> int:
    """Store a file (or standard input) as a record."""
    stores = _stores(args)
    if args.create and args.store.startswith("~"):
        stores.get_or_create_key_value_store(name=args.store[1:])
    if args.file != "-":
        Path(args.file).stat()  # a missing file fails before anything is written
    content_type = (
        args.content_type
        or (mimetypes.guess_type(args.file)[0] if args.file != "-" else None)
        or "application/octet-stream"
    )
    info = stores.set_record(args.store, args.key, _chunks_of(args.file), content_type=content_type)
    print(f"stored {info.key}: {info.size} bytes, {info.content_type}")
    return 0


def cmd_kv_rm(args: argparse.Namespace) -> int:
    """Delete a record."""
    _stores(args).delete_record(args.store, args.key)
    print(f"deleted {args.key}")
    return 0
