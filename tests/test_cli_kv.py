"""The ``kv`` commands, ``ls`` and ``fsck`` over key-value stores, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from storage_emulator.key_value_stores import KeyValueStoreRepository

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def cli(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``storage-emulator --root ROOT ARGS`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "storage_emulator", "--root", str(root), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_set_get_keys_rm_round_trip(tmp_path: Path, storage_root: Path) -> None:
    """A file and standard input go in as records; ``get`` gives the same bytes back; ``rm`` removes one."""
    image = tmp_path / "shot.png"
    image.write_bytes(PNG)
    assert cli(storage_root, "kv", "set", "shot", str(image), "--store", "~pics", "--create").returncode == 0
    assert cli(storage_root, "kv", "set", "note", "-", "--store", "~pics", stdin=b"hello\n").returncode == 0
    typed = cli(
        storage_root,
        "kv",
        "set",
        "cfg",
        "-",
        "--store",
        "~pics",
        "--content-type",
        "application/json",
        stdin=b'{"a": 1}',
    )
    assert typed.returncode == 0, typed.stderr

    keys = cli(storage_root, "kv", "keys", "--store", "~pics").stdout.decode().splitlines()
    assert keys == ["cfg\t8\tapplication/json", "note\t6\tapplication/octet-stream", f"shot\t{len(PNG)}\timage/png"]
    assert cli(storage_root, "kv", "get", "shot", "--store", "~pics").stdout == PNG
    out = tmp_path / "copy.png"
    assert cli(storage_root, "kv", "get", "shot", "--store", "~pics", "-o", str(out)).returncode == 0
    assert out.read_bytes() == PNG
    assert cli(storage_root, "kv", "rm", "note", "--store", "~pics").returncode == 0
    assert "note" not in cli(storage_root, "kv", "keys", "--store", "~pics").stdout.decode()
    missing = cli(storage_root, "kv", "get", "note", "--store", "~pics")
    assert missing.returncode == 2 and b"Record was not found" in missing.stderr


def test_the_default_store_is_crawlees_default_folder(storage_root: Path) -> None:
    """Without ``--store`` the commands use ``key_value_stores/default``, also when Crawlee left it unnamed."""
    folder = storage_root / "key_value_stores" / "default"
    folder.mkdir(parents=True)
    metadata = {
        "id": "crawleeDefaultKvs",
        "name": None,
        "accessed_at": "2026-01-01 00:00:00+00:00",
        "created_at": "2026-01-01 00:00:00+00:00",
        "modified_at": "2026-01-01 00:00:00+00:00",
    }
    (folder / "__metadata__.json").write_text(json.dumps(metadata))
    assert (
        cli(storage_root, "kv", "set", "INPUT", "-", "--content-type", "application/json", stdin=b'{"x": 1}').returncode
        == 0
    )
    assert (folder / "INPUT").read_bytes() == b'{"x": 1}'
    assert cli(storage_root, "kv", "get", "INPUT").stdout == b'{"x": 1}'


def test_bad_key_is_refused_with_exit_2_and_nothing_written(storage_root: Path) -> None:
    """The CLI keeps the key rules of the API."""
    KeyValueStoreRepository(storage_root).get_or_create_key_value_store("guarded")
    before = sorted(p.name for p in (storage_root / "key_value_stores" / "guarded").iterdir())
    refused = cli(storage_root, "kv", "set", "../x", "-", "--store", "~guarded", stdin=b"x")
    assert refused.returncode == 2 and b"record key" in refused.stderr
    assert sorted(p.name for p in (storage_root / "key_value_stores" / "guarded").iterdir()) == before


def test_ls_and_fsck_cover_key_value_stores(storage_root: Path) -> None:
    """``ls`` lists stores beside datasets; ``fsck`` reports and repairs a store's broken metadata."""
    stores = KeyValueStoreRepository(storage_root)
    store, _ = stores.get_or_create_key_value_store("state")
    stores.set_record(store.id, "k", b"v")
    listed = cli(storage_root, "ls").stdout.decode().split("\n\n")
    title, header, row = listed[1].splitlines()[:3]
    assert title == "Key-value stores:" and header.split() == ["ID", "NAME", "OWNER", "RECORDS", "MODIFIED"]
    assert row.split()[:4] == [store.id, "state", "local", "1"]

    meta = storage_root / "key_value_stores" / "state" / "__metadata__.json"
    meta.write_text(meta.read_text()[:60])
    found = cli(storage_root, "fsck")
    assert found.returncode == 1 and b"found: key_value_stores/state" in found.stdout
    repaired = cli(storage_root, "fsck", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert KeyValueStoreRepository(storage_root).get_key_value_store("~state").id == store.id
    assert cli(storage_root, "fsck").stdout.strip() == b"no problems found"
