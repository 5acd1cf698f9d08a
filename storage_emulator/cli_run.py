"""``storage-emulator run -- CMD ARGS...``: run an unmodified Actor "at home", against this emulator.

It creates a run and its default dataset, key-value store (holding ``INPUT``) and request queue, serves
the storage root on 127.0.0.1 for the duration (or uses ``--server``, an emulator serving the same
root), runs CMD with the variables the platform sets, forwards SIGINT and SIGTERM to it, records how it
ended on the run, prints a summary and exits with CMD's exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from .accounts import DEFAULT_ACCOUNT, Account, AccountRegistry
from .errors import InvalidInput
from .events import PlatformEvents
from .key_value_stores import KeyValueStoreRepository
from .repository import DatasetRepository
from .request_queues import RequestQueueRepository
from .runs import RunRecord, RunRepository, normalize_pricing
from .serializers import iso_time

INPUT_KEY = "INPUT"
OPEN_MODE_TOKEN = "local-emulator-token"
"""The token a run gets in open mode (any token is accepted then; the Python SDK wants one)."""
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
DEFAULT_PERSIST_STATE_SECS = 60.0
"""The platform's interval of ``persistState`` events."""


def add_run_command(commands: Any) -> None:
    """Add ``run`` to the command line (``commands`` shares the --root option)."""
    run = commands.add_parser(
        "run",
        help="run an Actor command at home: a run, its default storages and the platform's variables",
        description="Run CMD as the Apify platform runs an Actor, with this emulator as the API.",
    )
    run.add_argument("--input", default=None, help="the INPUT record: a JSON file, or JSON text")
    run.add_argument("--pricing", default=None, metavar="FILE", help="the run's pricingInfo (JSON file)")
    run.add_argument("--name", default=None, help="the Actor's name, shown in listings")
    run.add_argument("--server", default=None, metavar="URL", help="use this emulator (serving the same --root)")
    run.add_argument("--token", default=None, help="API token (enforced mode: the run's owner; default: any)")
    run.add_argument("--accounts", default=None, metavar="FILE", help="accounts file (as for serve)")
    run.add_argument(
        "--events",
        action="store_true",
        help="serve the platform events websocket (persistState on an interval; the first Ctrl-C sends aborting)",
    )
    run.add_argument(
        "--persist-state-interval",
        type=float,
        default=DEFAULT_PERSIST_STATE_SECS,
        metavar="SECS",
        help=f"seconds between persistState events with --events (default {DEFAULT_PERSIST_STATE_SECS:g})",
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- the command and its arguments")
    run.set_defaults(handler=cmd_run)


def read_input(value: str | None) -> tuple[bytes, str] | None:
    """Return the INPUT record's bytes and type from ``--input`` (a file, or JSON text), or ``None``."""
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type == "application/json":
            content_type = "application/json; charset=utf-8"
        return path.read_bytes(), content_type
    try:
        json.loads(value)
    except ValueError:
        raise InvalidInput(f"--input: '{value[:80]}' is neither a file nor JSON text") from None
    return value.encode("utf-8"), "application/json; charset=utf-8"


def read_pricing(path: str | None) -> dict[str, Any] | None:
    """Return the run's pricing from ``--pricing FILE`` in the platform's full shape, or ``None``."""
    if path is None:
        return None
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInput(f"--pricing: {path} is not JSON ({exc})") from None
    return normalize_pricing(raw)


def create_run(
    root: Path,
    *,
    owner: Account,
    input_record: tuple[bytes, str] | None = None,
    pricing_info: dict[str, Any] | None = None,
    actor_name: str | None = None,
    command: Sequence[str] = (),
    origin: str = "CLI",
) -> RunRecord:
    """Create a run and its default dataset, key-value store (with ``INPUT``) and request queue."""
    dataset, _ = DatasetRepository(root).get_or_create_dataset(owner=owner)
    stores = KeyValueStoreRepository(root)
    store, _ = stores.get_or_create_key_value_store(owner=owner)
    if input_record is not None:
        stores.set_record(store.id, INPUT_KEY, input_record[0], content_type=input_record[1], caller=owner)
    queue, _ = RequestQueueRepository(root).get_or_create_request_queue(owner=owner)
    return RunRepository(root).create_run(
        owner=owner,
        default_dataset_id=dataset.id,
        default_key_value_store_id=store.id,
        default_request_queue_id=queue.id,
        pricing_info=pricing_info,
        actor_name=actor_name,
        origin=origin,
        command=list(command),
    )


def run_environment(run: RunRecord, *, api_url: str, token: str, events_url: str | None = None) -> dict[str, str]:
    """Return the variables the platform sets for a run (spec §7), aliases included."""
    api_url = api_url.rstrip("/")
    env = {
        "APIFY_IS_AT_HOME": "1",
        "APIFY_API_BASE_URL": api_url,
        "APIFY_API_PUBLIC_BASE_URL": api_url,
        "APIFY_TOKEN": token,
        "ACTOR_RUN_ID": run.id,
        "APIFY_ACTOR_RUN_ID": run.id,
        "ACTOR_ID": run.to_api()["actId"],
        "APIFY_ACTOR_ID": run.to_api()["actId"],
        "ACTOR_BUILD_ID": run.to_api()["buildId"],
        "ACTOR_BUILD_NUMBER": run.to_api()["buildNumber"],
        "APIFY_USER_ID": run.user_id,
        "ACTOR_DEFAULT_DATASET_ID": run.default_dataset_id,
        "ACTOR_DEFAULT_KEY_VALUE_STORE_ID": run.default_key_value_store_id,
        "ACTOR_DEFAULT_REQUEST_QUEUE_ID": run.default_request_queue_id,
        "APIFY_DEFAULT_DATASET_ID": run.default_dataset_id,
        "APIFY_DEFAULT_KEY_VALUE_STORE_ID": run.default_key_value_store_id,
        "APIFY_DEFAULT_REQUEST_QUEUE_ID": run.default_request_queue_id,
        "ACTOR_INPUT_KEY": INPUT_KEY,
        "APIFY_INPUT_KEY": INPUT_KEY,
        "ACTOR_STARTED_AT": iso_time(run.started_at),
        "ACTOR_TIMEOUT_AT": iso_time(run.started_at + timedelta(seconds=run.timeout_secs)),
        "ACTOR_MEMORY_MBYTES": str(run.memory_mbytes),
        "APIFY_HEADLESS": "1",
    }
    if run.pricing_info is not None:
        env["APIFY_ACTOR_PRICING_INFO"] = json.dumps(run.pricing_info)
        env["APIFY_CHARGED_ACTOR_EVENT_COUNTS"] = json.dumps(run.charged_event_counts)
    if run.max_total_charge_usd is not None:
        env["ACTOR_MAX_TOTAL_CHARGE_USD"] = str(run.max_total_charge_usd)
    if events_url is not None:
        env["ACTOR_EVENTS_WEBSOCKET_URL"] = events_url
        env["APIFY_ACTOR_EVENTS_WS_URL"] = events_url
    return env


# What the caller's environment must not leak into a run: local-only switches the SDKs refuse at home, or
# ones that would point them elsewhere.
CLEARED_VARIABLES = (
    "ACTOR_TEST_PAY_PER_EVENT",
    "ACTOR_USE_CHARGING_LOG_DATASET",
    "ACTOR_EVENTS_WEBSOCKET_URL",
    "APIFY_ACTOR_EVENTS_WS_URL",
    "ACTOR_STORAGES_JSON",
    "APIFY_ACTOR_PRICING_INFO",
    "APIFY_CHARGED_ACTOR_EVENT_COUNTS",
    "ACTOR_MAX_TOTAL_CHARGE_USD",
)


@contextmanager
def serving(root: Path, accounts_file: str | None) -> Iterator[str]:
    """Serve the root on 127.0.0.1 and a free port in a background thread; yield its URL."""
    from werkzeug.serving import make_server

    from .web import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per request
    app = create_app({"ROOT": str(root), "ACCOUNTS_FILE": accounts_file})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _owner_and_token(root: Path, args: argparse.Namespace) -> tuple[Account, str]:
    registry = AccountRegistry.load(root, Path(args.accounts) if args.accounts else None)
    if not registry.enforced:
        return DEFAULT_ACCOUNT, args.token or OPEN_MODE_TOKEN
    if not args.token:
        raise InvalidInput("--token: the storage root enforces accounts; pass the token of the run's owner")
    account = registry.by_token(args.token)
    if account is None:
        raise InvalidInput("--token: no account has this token")
    return account, args.token


def cmd_run(args: argparse.Namespace) -> int:
    """Create a run, run the command at home against the emulator, record how it ended; exit with its code."""
    from .cli import resolve_root

    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise InvalidInput("run: give the Actor's command after '--', e.g. `storage-emulator run -- python main.py`")
    root = resolve_root(args)
    owner, token = _owner_and_token(root, args)
    run = create_run(
        root,
        owner=owner,
        input_record=read_input(args.input),
        pricing_info=read_pricing(args.pricing),
        actor_name=args.name,
        command=command,
    )
    if args.persist_state_interval <= 0:
        raise InvalidInput("--persist-state-interval: must be a number of seconds > 0")
    with ExitStack() as stack:
        events = None
        if args.events:
            events = stack.enter_context(PlatformEvents(persist_state_interval=args.persist_state_interval))
        if args.server:
            return _run_child(root, run, command, api_url=args.server, token=token, browse=args.server, events=events)
        url = stack.enter_context(serving(root, args.accounts))
        # This server stops with the run: point at the one a person starts to browse afterwards.
        return _run_child(root, run, command, api_url=url, token=token, browse=None, events=events)


def _run_child(
    root: Path,
    run: RunRecord,
    command: list[str],
    *,
    api_url: str,
    token: str,
    browse: str | None,
    events: PlatformEvents | None,
) -> int:
    env = {key: value for key, value in os.environ.items() if key not in CLEARED_VARIABLES}
    env.update(run_environment(run, api_url=api_url, token=token, events_url=events.url if events else None))
    print(f"storage-emulator: run {run.id} at {api_url}: {' '.join(command)}", file=sys.stderr, flush=True)
    runs = RunRepository(root)
    try:
        # Its own process group: a terminal's Ctrl-C reaches only us, and we forward it once.
        child = subprocess.Popen(command, env=env, process_group=0)
    except OSError as exc:
        runs.finish_run(run.id, status="FAILED", exit_code=127)
        raise InvalidInput(f"run: cannot start {command[0]}: {exc.strerror or exc}") from None
    aborted = threading.Event()
    aborting_sent = threading.Event()

    def forward(signum: int, frame: FrameType | None) -> None:
        aborted.set()
        if signum == signal.SIGINT and events is not None and events.connected and not aborting_sent.is_set():
            # As the platform does: first tell the Actor (JS exits on it); a second Ctrl-C interrupts it.
            aborting_sent.set()
            events.abort()
            print("storage-emulator: sent aborting; Ctrl-C again to interrupt the Actor", file=sys.stderr, flush=True)
            return
        child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        returncode = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    exit_code = returncode if returncode >= 0 else 128 - returncode  # killed by signal n: 128 + n
    status = "ABORTED" if aborted.is_set() else "SUCCEEDED" if exit_code == 0 else "FAILED"
    finished = runs.finish_run(run.id, status=status, exit_code=exit_code)
    print_summary(root, finished, browse=browse)
    return exit_code


def print_summary(root: Path, run: RunRecord, *, browse: str | None) -> None:
    """Print how the run ended and what its storages hold (to standard error: stdout is the Actor's)."""
    out = sys.stderr
    owner = Account(id=run.user_id, username=run.username)
    print(f"\nrun {run.id}: {run.status}, exit code {run.exit_code}", file=out)
    datasets = DatasetRepository(root)
    for dataset in datasets.all_datasets():
        if dataset.id == run.default_dataset_id or _touched(dataset, run, owner, datasets):
            label = "default" if dataset.id == run.default_dataset_id else dataset.name or dataset.id
            print(f"  dataset {label}: {dataset.item_count} item(s)", file=out)
    stores = KeyValueStoreRepository(root)
    keys = stores.list_keys(run.default_key_value_store_id, limit=sys.maxsize).items
    print(f"  key-value store default: {len(keys)} record(s): {', '.join(k.key for k in keys[:10])}", file=out)
    queues = RequestQueueRepository(root)
    for queue in queues.all_request_queues():
        if queue.id == run.default_request_queue_id or _touched(queue, run, owner, queues):
            label = "default" if queue.id == run.default_request_queue_id else queue.name or queue.id
            print(
                f"  request queue {label}: {queue.handled_request_count} handled, "
                f"{queue.pending_request_count} pending",
                file=out,
            )
    if run.charged_event_counts:
        charges = ", ".join(f"{name} × {count}" for name, count in sorted(run.charged_event_counts.items()))
        print(f"  charged: {charges} (${run.charged_usd():g})", file=out)
    if browse is not None:
        print(f"  browse: {browse.rstrip('/')}/view/runs/{run.id}", file=out)
    else:
        print(
            f"  browse: `storage-emulator serve --root {root}`, then http://127.0.0.1:8000/view/runs/{run.id}", file=out
        )


def _touched(storage: Any, run: RunRecord, owner: Account, kind: Any) -> bool:
    """Tell whether the run's owner wrote this storage during the run."""
    owned: bool = kind.policy.owner_username(storage) == owner.username
    return owned and storage.modified_at >= run.started_at
