"""Run the benchmarks and print a table: ``.venv/bin/python -m benchmarks [--quick] [--only listing|items]``."""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import REPO_ROOT, Table, fmt_duration
from benchmarks.items import ItemsConfig, run_items
from benchmarks.key_value_stores import KeyValueConfig, run_key_value_stores
from benchmarks.listing import ListingConfig, run_listing
from benchmarks.request_queues import QueuesConfig, run_request_queues
from benchmarks.serving import FULL_SERVING, QUICK_SERVING, run_serving

FULL_LISTING = ListingConfig(
    sizes=(1_000, 10_000), cold_samples=5, warm_list_runs=30, lookup_runs=200, floor_runs=9, create_runs=10
)
QUICK_LISTING = ListingConfig(
    sizes=(500, 2_000), cold_samples=2, warm_list_runs=10, lookup_runs=50, floor_runs=5, create_runs=5
)
FULL_ITEMS = ItemsConfig(
    items=100_000, batch=1_000, page=100, page_runs=30, crawlee_page_runs=10, floor_per_batch=1_000
)
FULL_KEY_VALUE = KeyValueConfig(records=100_000, record_runs=200, page_runs=30)
QUICK_KEY_VALUE = KeyValueConfig(records=10_000, record_runs=50, page_runs=10)
QUICK_ITEMS = ItemsConfig(items=10_000, batch=1_000, page=100, page_runs=15, crawlee_page_runs=5, floor_per_batch=1_000)
FULL_QUEUES = QueuesConfig(requests=100_000, consumed=10_000, consumers=4, head_runs=50)
QUICK_QUEUES = QueuesConfig(requests=5_000, consumed=1_000, consumers=4, head_runs=20)


def build_parser() -> argparse.ArgumentParser:
    """Build the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a fast check (about a minute)")
    parser.add_argument("--only", choices=("listing", "items", "kvs", "queues", "serving"), help="run one section only")
    parser.add_argument(
        "--tmp", default=None, help="parent folder of the scratch storage roots (default: the system temp dir)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random ids and names looked up")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (its path is printed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections and print their figures."""
    args = build_parser().parse_args(argv)
    listing = QUICK_LISTING if args.quick else FULL_LISTING
    items = QUICK_ITEMS if args.quick else FULL_ITEMS
    workspace = Path(tempfile.mkdtemp(prefix="storage-emulator-bench-", dir=args.tmp))
    table = Table()
    started = time.perf_counter()
    code_before = _code_fingerprint()
    try:
        _print_machine(workspace, args, listing, items)
        table.header()
        if args.only in (None, "listing"):
            run_listing(table, workspace, listing, random.Random(args.seed))
        if args.only in (None, "items"):
            run_items(table, workspace, items)
        if args.only in (None, "kvs"):
            run_key_value_stores(table, workspace, QUICK_KEY_VALUE if args.quick else FULL_KEY_VALUE)
        if args.only in (None, "serving"):
            run_serving(table, workspace, QUICK_SERVING if args.quick else FULL_SERVING)
        if args.only in (None, "queues"):
            run_request_queues(table, workspace, QUICK_QUEUES if args.quick else FULL_QUEUES)
        table.summary()
        if _code_fingerprint() != code_before:
            print("\nWARNING: the storage_emulator code changed during the run; the figures may mix versions")
    finally:
        if args.keep:
            print(f"\nscratch folder kept: {workspace}")
        else:
            shutil.rmtree(workspace, ignore_errors=True)
    print(f"\ntotal wall time: {fmt_duration(time.perf_counter() - started)}")
    return 0


def _print_machine(workspace: Path, args: argparse.Namespace, listing: ListingConfig, items: ItemsConfig) -> None:
    import psutil

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print("storage-emulator benchmarks" + (" (--quick)" if args.quick else ""))
    print(
        f"machine: {platform.platform()}; {os.cpu_count()} CPUs ({affinity} usable); "
        f"RAM {psutil.virtual_memory().total / 2**30:.1f} GiB"
    )
    print(f"python:  {platform.python_implementation()} {platform.python_version()} ({sys.executable})")
    print(
        "packages: "
        + ", ".join(
            f"{name} {_version(name)}"
            for name in ("flask", "werkzeug", "pydantic", "crawlee", "apify-client", "psutil")
        )
    )
    print(f"scratch: {workspace} on {_filesystem(workspace)}")
    print(f"code:    {REPO_ROOT / 'storage_emulator'}, {_code_fingerprint()}")
    print(
        f"sizes:   A: roots of {', '.join(f'{n:,}' for n in listing.sizes)} datasets, "
        f"{listing.cold_samples} cold samples (one server start each), {listing.warm_list_runs} warm list requests, "
        f"{listing.lookup_runs} lookups, floor x{listing.floor_runs}"
    )
    print(
        f"         B: {items.items:,} items in batches of {items.batch:,}; pages of {items.page} "
        f"(x{items.page_runs} emulator, x{items.crawlee_page_runs} Crawlee); "
        f"FS floor: {items.floor_per_batch} files per batch"
    )
    print("times are wall-clock from the client side; p90 is nearest-rank (with few samples, the maximum)\n")


def _code_fingerprint() -> str:
    """Identify the package code measured: a hash of its sources and the newest file's time."""
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted((REPO_ROOT / "storage_emulator").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest))
    return f"sources sha256 {digest.hexdigest()[:12]} (newest file {stamp})"


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def _filesystem(path: Path) -> str:
    """Return the mount's device and type holding ``path`` (from /proc/mounts)."""
    best = ("?", "?", "")
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                device, mount_point, fs_type, *_ = line.split()
                inside = str(path).startswith(mount_point.rstrip("/") + "/") or str(path) == mount_point
                if inside and len(mount_point) >= len(best[2]):
                    best = (device, fs_type, mount_point)
    except OSError:
        pass
    return f"{best[0]} ({best[1]}, mounted at {best[2] or '?'})"


if __name__ == "__main__":
    raise SystemExit(main())
