"""Section A: listing and looking up datasets in roots of many datasets, against an ``os.stat`` floor."""

from __future__ import annotations

import json
import os
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage_emulator.accounts import DEFAULT_ACCOUNT
from storage_emulator.item_store import encode_item
from storage_emulator.models import DATASETS_DIR, METADATA_FILENAME, DatasetMetadata
from storage_emulator.naming import new_id

from .harness import Http, Samples, ServerProcess, Table, fmt_duration, progress, repeat

LIST_PAGE = 1000
ORG_LISTING_PATH = f"/api/v1/org/{DEFAULT_ACCOUNT.username}/datasets"
ITEMS_EVERY = 50  # every 50th dataset holds a few items
ITEMS_PER_NONEMPTY = 3
GET_BY_ID_TARGET_SECONDS = 0.005
LIST_FLOOR_RATIO_TARGET = 2.0
TARGET_SIZE = 10_000


@dataclass(frozen=True)
class ListingConfig:
    """Sizes and repetition counts of section A."""

    sizes: tuple[int, ...]
    cold_samples: int
    warm_list_runs: int
    lookup_runs: int
    floor_runs: int
    create_runs: int


def build_root(root: Path, count: int) -> list[tuple[str, str]]:
    """Write ``count`` named datasets straight to disk, as the emulator would create them; return ``(id, name)``s.

    Every ``ITEMS_EVERY``-th dataset gets ``ITEMS_PER_NONEMPTY`` items. Creation times are one second apart,
    so the listing order is the creation order.
    """
    datasets = root / DATASETS_DIR
    datasets.mkdir(parents=True)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for index in range(count):
        name = f"ds-{index:05d}"
        folder = datasets / name
        folder.mkdir()
        item_count = ITEMS_PER_NONEMPTY if index % ITEMS_EVERY == 0 else 0
        size = 0
        for item_index in range(1, item_count + 1):
            data = encode_item({"n": item_index, "url": f"https://example.com/{index}/{item_index}"})
            (folder / f"{item_index:09d}.json").write_bytes(data)
            size += len(data)
        created = base + timedelta(seconds=index)
        metadata = DatasetMetadata(
            id=new_id(),
            name=name,
            accessed_at=created,
            created_at=created,
            modified_at=created,
            item_count=item_count,
            user_id=DEFAULT_ACCOUNT.id,
            username=DEFAULT_ACCOUNT.username,
            url_signing_secret_key=secrets.token_urlsafe(24),
            clean_item_count=item_count,
            clean_counted_items=item_count,
            storage_bytes=size,
        )
        (folder / METADATA_FILENAME).write_text(metadata.to_json(), encoding="utf-8")
        made.append((metadata.id, name))
    return made


def stat_every_metadata_file(root: Path) -> int:
    """The floor: a plain loop that lists ``datasets/`` and ``os.stat``s every metadata file."""
    folder = str(root / DATASETS_DIR)
    size = 0
    for name in os.listdir(folder):
        size += os.stat(f"{folder}/{name}/{METADATA_FILENAME}").st_size
    return size


def run_listing(table: Table, workspace: Path, config: ListingConfig, rng: random.Random) -> None:
    """Measure section A for every root size."""
    table.section(
        "A. Dataset listing and lookup (server in its own process, plain http.client; werkzeug closes every connection)"
    )
    largest = max(config.sizes)
    for count in config.sizes:
        _run_one_size(table, workspace, config, rng, count, with_targets=count == largest)


def _run_one_size(
    table: Table, workspace: Path, config: ListingConfig, rng: random.Random, count: int, *, with_targets: bool
) -> None:
    root = workspace / f"listing-{count}"
    progress(f"A: writing a root of {count:,} datasets")
    started = time.perf_counter()
    made = build_root(root, count)
    table.note(f"--- root of {count:,} named datasets ({count // ITEMS_EVERY} hold {ITEMS_PER_NONEMPTY} items) ---")
    table.row(f"build root [{count:,}] (direct metadata writes)", fmt_duration(time.perf_counter() - started))

    os.sync()  # let the writeback of the new root finish before anything is timed
    floor = repeat(lambda: stat_every_metadata_file(root), config.floor_runs)
    table.samples(f"floor: listdir + os.stat every metadata file [{count:,}]", floor)

    last_offset = (count - 1) // LIST_PAGE * LIST_PAGE
    first_page = f"/v2/datasets?limit={LIST_PAGE}"
    last_page = f"/v2/datasets?limit={LIST_PAGE}&offset={last_offset}"
    log = workspace / f"server-listing-{count}.log"

    def random_id() -> str:
        return rng.choice(made)[0]

    def random_name() -> str:
        return "~" + rng.choice(made)[1]

    # Cold: the first request of a freshly started server (the OS page cache stays warm: no root here).
    progress(f"A: cold samples [{count:,}] ({config.cold_samples} server starts per request kind)")
    cold_kinds: dict[str, Callable[[], str]] = {
        "list first page": lambda: first_page,
        f"list last page (offset {last_offset:,})": lambda: last_page,
        "get by id": lambda: f"/v2/datasets/{random_id()}",
        "get by name (~name)": lambda: f"/v2/datasets/{random_name()}",
        "org listing first page": lambda: ORG_LISTING_PATH,
    }
    startups: list[float] = []
    cold: dict[str, Samples] = {}
    for kind, make_path in cold_kinds.items():
        values = []
        for _ in range(config.cold_samples):
            with ServerProcess(root, log) as server:
                startups.append(server.startup_seconds)
                http = Http(server.url)
                http.connect()
                path = make_path()
                started = time.perf_counter()
                http.get(path)
                values.append(time.perf_counter() - started)
                http.close()
        cold[kind] = Samples(tuple(values))
    table.samples(f"server start: spawn until URL printed [{count:,}]", Samples(tuple(startups)))
    for kind, samples in cold.items():
        table.samples(f"COLD {kind} [{count:,}]", samples)

    progress(f"A: warm samples [{count:,}]")
    with ServerProcess(root, log) as server:
        http = Http(server.url)
        _check_listing(table, http, first_page, total=count, expected_count=min(LIST_PAGE, count))
        _check_listing(table, http, last_page, total=count, expected_count=count - last_offset)
        warm_first = repeat(lambda: http.get(first_page), config.warm_list_runs, warmup=2)
        warm_last = repeat(lambda: http.get(last_page), config.warm_list_runs, warmup=2)
        org_body = json.loads(http.get(ORG_LISTING_PATH))
        if org_body.get("total") != count:
            table.note(f"WARNING: the org listing reports total={org_body.get('total')}, expected {count}")
        warm_org = repeat(lambda: http.get(ORG_LISTING_PATH), config.warm_list_runs, warmup=2)
        not_found = repeat(lambda: http.get_status("/v2/no-such-route"), config.lookup_runs, warmup=5)
        # Lookups last: each GET of a dataset rewrites its metadata (accessedAt), which a later list re-parses.
        some_id, _ = made[len(made) // 2]
        got = json.loads(http.get(f"/v2/datasets/{some_id}"))["data"]
        if got.get("id") != some_id:
            table.note(f"WARNING: get by id returned {got.get('id')!r}, expected {some_id!r}")
        by_id = repeat(lambda: http.get(f"/v2/datasets/{random_id()}"), config.lookup_runs, warmup=5)
        by_name = repeat(lambda: http.get(f"/v2/datasets/{random_name()}"), config.lookup_runs, warmup=5)
        created, first_push = _create_then_push(http, config.create_runs)
        http.close()

    ratio_target = f"<= {LIST_FLOOR_RATIO_TARGET:g}x floor"
    for label, which, samples in (
        (f"WARM list first page (limit {LIST_PAGE})", "first", warm_first),
        (f"WARM list last page (offset {last_offset:,})", "last", warm_last),
    ):
        ratio = samples.median / floor.median
        table.samples(f"{label} [{count:,}]", samples)
        table.row(
            f"  ratio warm {which} page / floor [{count:,}]",
            f"{ratio:.1f}x",
            target=ratio_target if with_targets else "",
            met=ratio <= LIST_FLOOR_RATIO_TARGET if with_targets else None,
        )
    table.samples(
        f"WARM get by id (random ids) [{count:,}]",
        by_id,
        target="< 5 ms" if with_targets else "",
        met=by_id.median < GET_BY_ID_TARGET_SECONDS if with_targets else None,
    )
    table.samples(f"WARM get by name (~name, random) [{count:,}]", by_name)
    table.samples(f"WARM org listing first page (default limit) [{count:,}]", warm_org)
    table.samples(f"HTTP floor: GET of an unknown route (404 envelope) [{count:,}]", not_found)
    table.samples(f"WARM create by name: POST /v2/datasets?name=... [{count:,}]", created)
    table.samples(f"  then its first push by id (1 item) [{count:,}]", first_push)


def _create_then_push(http: Http, runs: int) -> tuple[Samples, Samples]:
    """Time what ``apify_client`` does to start writing: get-or-create by name, then push by the returned id."""
    created, pushed = [], []
    for index in range(runs):
        started = time.perf_counter()
        body = http.post(f"/v2/datasets?name=bench-new-{index}", b"{}")
        created.append(time.perf_counter() - started)
        dataset_id = json.loads(body)["data"]["id"]
        started = time.perf_counter()
        http.post(f"/v2/datasets/{dataset_id}/items", b'[{"n": 1}]')
        pushed.append(time.perf_counter() - started)
        http.post(f"/v2/datasets/{dataset_id}/items", b'[{"n": 2}]')  # a second write, as a crawler makes
    return Samples(tuple(created)), Samples(tuple(pushed))


def _check_listing(table: Table, http: Http, path: str, *, total: int, expected_count: int) -> None:
    data = json.loads(http.get(path))["data"]
    if data.get("total") != total or data.get("count") != expected_count:
        table.note(
            f"WARNING: GET {path} gave total={data.get('total')} count={data.get('count')}, "
            f"expected total={total} count={expected_count}"
        )
