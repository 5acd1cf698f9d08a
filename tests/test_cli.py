"""The ``storage-emulator`` command line, run as a real subprocess over real files in tmp_path."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from serve_process import ServeProcess

from storage_emulator import DatasetRepository
from storage_emulator.models import METADATA_FILENAME as METADATA

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STORAGE = REPO_ROOT / "sample_storage"
ROOT_ENV = "STORAGE_EMULATOR_ROOT"
CLI_TIMEOUT_SECONDS = 60

NESTED_ITEMS: list[dict[str, Any]] = [
    {"name": "a", "price": {"amount": 1.5, "currency": "EUR"}},
    {"name": "b", "tags": ["x", "y"]},
    {"name": 'ü,"q"'},
]
# Named datasets of the default account in sample_storage, oldest first (see sample_storage/README.md).
SAMPLE_LOCAL_NAMED = [
    ("quotes-toscrape", 10),
    ("products", 22),
    ("news-articles", 15),
    ("job-listings", 12),
    ("default", 8),
]


def cli_env(root: Path | None = None) -> dict[str, str]:
    """Return the environment for a CLI run: ours, without STORAGE_EMULATOR_ROOT unless ``root`` is given."""
    env = {key: value for key, value in os.environ.items() if key != ROOT_ENV}
    if root is not None:
        env[ROOT_ENV] = str(root)
    return env


def run_cli(
    *args: str, root: Path | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m storage_emulator [--root ROOT] ARGS`` to completion and capture its output."""
    command = [sys.executable, "-m", "storage_emulator"]
    if root is not None:
        command += ["--root", str(root)]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env if env is not None else cli_env(),
        cwd=cwd,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def tree_digest(folder: Path) -> str:
    """Hash every file (path and bytes) under a folder, to prove it did not change."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def metadata(root: Path, folder: str) -> dict[str, Any]:
    """Read a dataset's ``__metadata__.json``."""
    return json.loads((root / "datasets" / folder / "__metadata__.json").read_text())  # type: ignore[no-any-return]


def item_files(root: Path, folder: str) -> list[dict[str, Any]]:
    """Read a dataset's item files in index order."""
    return [json.loads(path.read_text()) for path in sorted((root / "datasets" / folder).glob("[0-9]*.json"))]


def assert_clean_failure(result: subprocess.CompletedProcess[str], *mentions: str) -> None:
    """A failed command exits non-zero with one ``error:`` message on stderr, not a traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert "error:" in result.stderr, result.stderr
    for text in mentions:
        assert text in result.stderr, result.stderr


@pytest.fixture
def sample_root(tmp_path: Path) -> Path:
    """Return a copy of sample_storage in tmp_path."""
    root = tmp_path / "sample"
    shutil.copytree(SAMPLE_STORAGE, root)
    return root


@pytest.fixture
def nested_root(tmp_path: Path) -> Path:
    """Return a root with the dataset ``nested`` holding NESTED_ITEMS, written through the repository."""
    root = tmp_path / "nested-root"
    repo = DatasetRepository(root)
    dataset, _ = repo.get_or_create_dataset(name="nested")
    repo.push_items(dataset.id, NESTED_ITEMS)
    return root


def parse_ls(stdout: str) -> list[tuple[str, str, str, int]]:
    """Parse ``ls`` output into (id, name, owner, items) rows, checking the header line."""
    lines = stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "OWNER", "ITEMS", "MODIFIED"]
    rows = []
    for line in lines[1 : lines.index("")]:  # the key-value stores follow after a blank line
        dataset_id, name, owner, items, _modified = line.split()
        rows.append((dataset_id, name, owner, int(items)))
    return rows


# ----- ls, show ----------------------------------------------------------------------------------------


def test_ls_lists_named_datasets_oldest_first(sample_root: Path) -> None:
    """``ls`` prints one row per named dataset of the local account, oldest first, with its item count."""
    before = tree_digest(sample_root / "datasets")

    result = run_cli("ls", root=sample_root)

    assert result.returncode == 0, result.stderr
    rows = parse_ls(result.stdout)
    assert [(name, count) for _, name, owner, count in rows if owner == "local"] == SAMPLE_LOCAL_NAMED
    assert ("Pr0dUcTs4nOrD1c0u", "products", "local", 22) in rows
    assert "(unnamed)" not in result.stdout and "UnN4m3dRun7xKp2Qs" not in result.stdout
    assert tree_digest(sample_root / "datasets") == before  # listing never writes


def test_ls_unnamed_adds_unnamed_datasets(sample_root: Path) -> None:
    """``ls --unnamed`` also lists the unnamed dataset, shown as ``(unnamed)``."""
    result = run_cli("ls", "--unnamed", root=sample_root)

    assert result.returncode == 0, result.stderr
    rows = parse_ls(result.stdout)
    assert ("UnN4m3dRun7xKp2Qs", "(unnamed)", "local", 6) in rows
    assert len(rows) == len(SAMPLE_LOCAL_NAMED) + 1


@pytest.mark.parametrize("ref", ["~products", "Pr0dUcTs4nOrD1c0u"])
def test_show_prints_metadata_then_first_items(sample_root: Path, ref: str) -> None:
    """``show REF --items 2`` prints the dataset object as JSON, then its first two items one per line."""
    before = tree_digest(sample_root / "datasets")

    result = run_cli("show", ref, "--items", "2", root=sample_root)

    assert result.returncode == 0, result.stderr
    shown, end = json.JSONDecoder().raw_decode(result.stdout)
    assert (shown["id"], shown["name"], shown["itemCount"]) == ("Pr0dUcTs4nOrD1c0u", "products", 22)
    items = [json.loads(line) for line in result.stdout[end:].splitlines() if line.strip()]
    assert items == item_files(sample_root, "products")[:2]
    assert tree_digest(sample_root / "datasets") == before


def test_show_of_a_missing_dataset_is_a_clean_error(sample_root: Path) -> None:
    """``show ~missing`` exits non-zero with 'Dataset was not found' on stderr."""
    assert_clean_failure(run_cli("show", "~missing", root=sample_root), "Dataset was not found")


# ----- push --------------------------------------------------------------------------------------------


def test_push_json_array_with_create_then_jsonl(tmp_path: Path) -> None:
    """``push --create ~fresh`` stores a JSON array's items; a JSONL push appends after them, in order."""
    root = tmp_path / "root"
    array_file = tmp_path / "items.json"
    array_file.write_text(json.dumps([{"n": 1}, {"n": 2, "nested": {"k": "v"}}, {"n": 3}]))
    jsonl_file = tmp_path / "more.jsonl"
    jsonl_file.write_text('{"n": 4}\n\n{"n": 5, "text": "caf\\u00e9"}\n')

    created = run_cli("push", "--create", "~fresh", str(array_file), root=root)
    appended = run_cli("push", "~fresh", str(jsonl_file), root=root)

    assert created.returncode == 0, created.stderr
    assert "pushed 3 item(s)" in created.stdout
    assert appended.returncode == 0, appended.stderr
    assert "pushed 2 item(s)" in appended.stdout and "now holds 5" in appended.stdout
    assert sorted(p.name for p in (root / "datasets").iterdir()) == ["fresh"]
    assert metadata(root, "fresh")["name"] == "fresh"
    assert metadata(root, "fresh")["item_count"] == 5
    assert item_files(root, "fresh") == [
        {"n": 1},
        {"n": 2, "nested": {"k": "v"}},
        {"n": 3},
        {"n": 4},
        {"n": 5, "text": "café"},
    ]
    assert DatasetRepository(root).get_dataset("~fresh").item_count == 5


def test_push_in_small_batches_keeps_order(tmp_path: Path) -> None:
    """``--batch-size 2`` pushes seven items in four locked appends, all stored in file order."""
    root = tmp_path / "root"
    items_file = tmp_path / "seven.json"
    items_file.write_text(json.dumps([{"i": i} for i in range(7)]))

    result = run_cli("push", "--create", "--batch-size", "2", "~batched", str(items_file), root=root)

    assert result.returncode == 0, result.stderr
    assert item_files(root, "batched") == [{"i": i} for i in range(7)]
    assert metadata(root, "batched")["item_count"] == 7
    assert metadata(root, "batched")["write_count"] == 4


def test_push_to_a_missing_dataset_without_create_stores_nothing(tmp_path: Path) -> None:
    """Without ``--create``, pushing to an unknown ``~name`` fails and creates no folder."""
    root = tmp_path / "root"
    items_file = tmp_path / "items.json"
    items_file.write_text('[{"a": 1}]')

    result = run_cli("push", "~nowhere", str(items_file), root=root)

    assert_clean_failure(result, "Dataset was not found")
    assert list((root / "datasets").iterdir()) == []


def json_error_line(text: str) -> int:
    """Return the line Python's own JSON parser blames for ``text`` (3.11 and 3.13 word it differently)."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.lineno
    raise AssertionError("the text is valid JSON")


PRETTY_WITH_TRAILING_COMMA = '[\n  {"a": 1},\n  {"a": 2},\n]\n'
BAD_FILES = [
    pytest.param("bad.json", '[{"a": 1}, 2]', "index 1", id="array-with-a-number"),
    pytest.param("bad.json", "42", "number", id="scalar"),
    pytest.param("bad.json", "", "empty", id="empty-file"),
    pytest.param("bad.jsonl", '{"b": 1}\n{"b":\n{"b": 3}\n', "line 2", id="jsonl-bad-line-2"),
    pytest.param(
        "pretty.json",
        PRETTY_WITH_TRAILING_COMMA,
        f"line {json_error_line(PRETTY_WITH_TRAILING_COMMA)}",
        id="pretty-json-trailing-comma",
    ),
]


@pytest.mark.parametrize("filename, content, mentions", BAD_FILES)
def test_push_of_a_bad_file_stores_nothing(tmp_path: Path, filename: str, content: str, mentions: str) -> None:
    """A bad file fails with a clear error naming the problem (and where); the dataset keeps its one item."""
    root = tmp_path / "root"
    repo = DatasetRepository(root)
    dataset, _ = repo.get_or_create_dataset(name="target")
    repo.push_items(dataset.id, [{"kept": 1}])
    before = tree_digest(root / "datasets")
    bad_file = tmp_path / filename
    bad_file.write_text(content)

    result = run_cli("push", "~target", str(bad_file), root=root)

    assert_clean_failure(result, mentions)
    assert tree_digest(root / "datasets") == before
    assert item_files(root, "target") == [{"kept": 1}]


def test_push_create_of_a_bad_file_creates_no_dataset(tmp_path: Path) -> None:
    """``push --create`` parses the whole file first: a bad one creates no dataset folder."""
    root = tmp_path / "root"
    bad_file = tmp_path / "bad.json"
    bad_file.write_text('[{"a": 1}, {"b": 2}, null]')

    result = run_cli("push", "--create", "~would-be-new", str(bad_file), root=root)

    assert_clean_failure(result, "index 2")
    assert not (root / "datasets").exists() or list((root / "datasets").iterdir()) == []


def test_push_of_a_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    """A file that does not exist is an ``error:`` line naming it, not a traceback; nothing is created."""
    root = tmp_path / "root"
    missing = tmp_path / "no-such-file.json"

    result = run_cli("push", "--create", "~target", str(missing), root=root)

    assert_clean_failure(result, "no-such-file.json")
    assert not (root / "datasets" / "target").exists()


def test_push_breaking_the_schema_stores_nothing(tmp_path: Path) -> None:
    """Items that break the dataset schema are refused whole: the valid first item is not stored either."""
    root = tmp_path / "root"
    schema = {"fields": {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]}}
    DatasetRepository(root).get_or_create_dataset(name="typed", schema=schema)
    before = tree_digest(root / "datasets")
    items_file = tmp_path / "items.json"
    items_file.write_text('[{"price": 1}, {"price": "one"}]')

    result = run_cli("push", "~typed", str(items_file), root=root)

    assert_clean_failure(result, "Schema validation failed")
    assert tree_digest(root / "datasets") == before
    assert metadata(root, "typed")["item_count"] == 0


# ----- export ------------------------------------------------------------------------------------------


def test_export_csv_to_a_file(nested_root: Path, tmp_path: Path) -> None:
    """``export --format csv -o FILE`` writes a BOM, a header of flattened columns, and one row per item."""
    out = tmp_path / "out.csv"

    result = run_cli("export", "~nested", "--format", "csv", "-o", str(out), root=nested_root)

    assert result.returncode == 0, result.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["name", "price/amount", "price/currency", "tags/0", "tags/1"],
        ["a", "1.5", "EUR", "", ""],
        ["b", "", "", "x", "y"],
        ['ü,"q"', "", "", "", ""],
    ]


def test_export_xlsx_to_a_file(nested_root: Path, tmp_path: Path) -> None:
    """``export --format xlsx`` writes a workbook openpyxl reads back, numbers kept as numbers."""
    out = tmp_path / "out.xlsx"

    result = run_cli("export", "~nested", "--format", "xlsx", "-o", str(out), root=nested_root)

    assert result.returncode == 0, result.stderr
    rows = list(openpyxl.load_workbook(out).active.iter_rows(values_only=True))
    assert rows == [
        ("name", "price/amount", "price/currency", "tags/0", "tags/1"),
        ("a", 1.5, "EUR", None, None),
        ("b", None, None, "x", "y"),
        ('ü,"q"', None, None, None, None),
    ]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_export_to_stdout(nested_root: Path, tmp_path: Path, fmt: str) -> None:
    """``-o -`` writes the export to standard output and nothing else there; no file named '-' appears."""
    result = run_cli("export", "~nested", "--format", fmt, "-o", "-", root=nested_root, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    if fmt == "json":
        assert json.loads(result.stdout) == NESTED_ITEMS
    else:
        assert [json.loads(line) for line in result.stdout.splitlines()] == NESTED_ITEMS
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(
    "args, mentions",
    [(("~nested", "--format", "yaml"), "'format'"), (("~missing", "--format", "csv"), "Dataset was not found")],
    ids=["bad-format", "missing-dataset"],
)
def test_export_failure_writes_no_file(nested_root: Path, tmp_path: Path, args: tuple[str, ...], mentions: str) -> None:
    """An export that cannot run fails cleanly before creating its output file."""
    out = tmp_path / "out.file"

    result = run_cli("export", *args, "-o", str(out), root=nested_root)

    assert_clean_failure(result, mentions)
    assert not out.exists()


# ----- fsck --------------------------------------------------------------------------------------------


def test_fsck_of_a_clean_root(tmp_path: Path) -> None:
    """``fsck`` on a root written by the emulator exits 0 and says 'no problems found'."""
    root = tmp_path / "root"
    repo = DatasetRepository(root)
    for name in ("one", "two"):
        dataset, _ = repo.get_or_create_dataset(name=name)
        repo.push_items(dataset.id, [{"a": 1}, {"a": 2}])
    repo.get_or_create_dataset()  # an unnamed one, empty
    before = tree_digest(root / "datasets")

    result = run_cli("fsck", root=root)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "no problems found"
    assert tree_digest(root / "datasets") == before


# ----- the root from the environment ---------------------------------------------------------------------


def test_env_var_root_is_used_when_root_is_absent(sample_root: Path, tmp_path: Path) -> None:
    """With no ``--root``, STORAGE_EMULATOR_ROOT picks the root; ./storage of the working folder is not made."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    items_file = tmp_path / "items.json"
    items_file.write_text('[{"via": "env"}]')

    listed = run_cli("ls", env=cli_env(sample_root), cwd=cwd)
    pushed = run_cli("push", "--create", "~from-env", str(items_file), env=cli_env(sample_root), cwd=cwd)

    assert listed.returncode == 0, listed.stderr
    assert [name for _, name, owner, _ in parse_ls(listed.stdout) if owner == "local"] == [
        name for name, _ in SAMPLE_LOCAL_NAMED
    ]
    assert pushed.returncode == 0, pushed.stderr
    assert item_files(sample_root, "from-env") == [{"via": "env"}]
    assert not (cwd / "storage").exists()


def test_root_option_beats_the_env_var(sample_root: Path, tmp_path: Path) -> None:
    """``--root`` wins over STORAGE_EMULATOR_ROOT."""
    other = tmp_path / "other-root"

    result = run_cli("--root", str(other), "ls", env=cli_env(sample_root))

    assert result.returncode == 0, result.stderr
    assert parse_ls(result.stdout) == []
    assert (other / "datasets").is_dir()


def test_root_may_follow_the_subcommand(sample_root: Path, tmp_path: Path) -> None:
    """As the README says, ``--root`` also works after the subcommand (``ls --root DIR``, ``push … --root DIR``)."""
    items_file = tmp_path / "items.json"
    items_file.write_text('[{"after": true}]')
    root = tmp_path / "after-root"

    listed = run_cli("ls", "--root", str(sample_root))
    pushed = run_cli("push", "--create", "~late", str(items_file), "--root", str(root))

    assert listed.returncode == 0, listed.stderr
    assert [name for _, name, owner, _ in parse_ls(listed.stdout) if owner == "local"] == [
        name for name, _ in SAMPLE_LOCAL_NAMED
    ]
    assert pushed.returncode == 0, pushed.stderr
    assert item_files(root, "late") == [{"after": True}]


# ----- serve -------------------------------------------------------------------------------------------


def http_json(url: str, *, data: bytes | None = None) -> tuple[int, Any]:
    """Send a request and return (status, parsed JSON body)."""
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        return response.status, json.loads(body) if body else None


def test_serve_seeds_a_copy_and_answers(tmp_path: Path, serve_process: list[ServeProcess]) -> None:
    """``serve --port 0 --root DIR --seed sample_storage`` prints its URL, serves a copy, leaves the seed alone."""
    seed_before = tree_digest(SAMPLE_STORAGE)
    root = tmp_path / "served"
    server = ServeProcess(
        ["serve", "--port", "0", "--root", str(root), "--seed", str(SAMPLE_STORAGE)], tmp_path / "serve.err"
    )
    serve_process.append(server)

    url, printed = server.wait_for_url()
    status, listing = http_json(f"{url}/v2/datasets")
    pushed_status, _ = http_json(f"{url}/v2/datasets/~products/items", data=b'{"title": "added while served"}')
    _, items = http_json(f"{url}/v2/datasets/~products/items?offset=22")
    http_json(f"{url}/v2/datasets/~products/items?limit=1")  # a second read within the second: kept in memory
    exit_status = server.stop()

    assert any("Copied" in line for line in printed), printed
    assert status == 200
    assert [item["name"] for item in listing["data"]["items"]] == [name for name, _ in SAMPLE_LOCAL_NAMED]
    assert pushed_status == 201
    assert items == [{"title": "added while served"}]
    assert json.loads((root / "datasets" / "products" / "000000023.json").read_text()) == items[0]
    assert not (SAMPLE_STORAGE / "datasets" / "products" / "000000023.json").exists()
    assert tree_digest(SAMPLE_STORAGE) == seed_before
    assert exit_status == 0  # SIGTERM is a clean shutdown...
    read_count = json.loads((root / "datasets" / "products" / METADATA).read_text())["read_count"]
    seed_read_count = json.loads((SAMPLE_STORAGE / "datasets" / "products" / METADATA).read_text())["read_count"]
    assert read_count == seed_read_count + 2  # ...that writes the read still held in memory


def test_serve_does_not_reseed_an_existing_root(tmp_path: Path, serve_process: list[ServeProcess]) -> None:
    """``--seed`` copies only when the root does not exist: an existing root is served as it is."""
    root = tmp_path / "existing"
    DatasetRepository(root).get_or_create_dataset(name="mine")
    server = ServeProcess(
        ["--root", str(root), "serve", "--port", "0", "--seed", str(SAMPLE_STORAGE)], tmp_path / "serve.err"
    )
    serve_process.append(server)

    url, printed = server.wait_for_url()
    _, listing = http_json(f"{url}/v2/datasets")
    server.stop()

    assert not any("Copied" in line for line in printed), printed
    assert [item["name"] for item in listing["data"]["items"]] == ["mine"]
    assert sorted(p.name for p in (root / "datasets").iterdir()) == ["mine"]
