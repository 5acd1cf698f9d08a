"""The ``storage-emulator`` command: serve a storage root, and work on its files directly."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .accounts import AccountRegistry, add_account, default_accounts_path, read_accounts
from .cli_kv import add_kv_commands, print_stores
from .cli_run import add_run_command
from .errors import EmulatorError, InvalidInput
from .formats import ExportOptions, render
from .key_value_stores import KeyValueStoreRepository
from .models import GENERAL_ACCESS_VALUES, ORG_FORMATS
from .push_body import parse_items
from .repository import DatasetRepository
from .request_queues import RequestQueueRepository
from .rq_cli import add_commands as add_rq_commands
from .rq_cli import print_queues
from .serializers import dataset_resource, iso_time
from .serving import DEFAULT_THREADS, serve_threaded, serve_workers, workers_supported
from .web import DEFAULT_ROOT, create_app
from .web.faults import FaultStore, read_rules_file
from .web.request_log import summarise

ROOT_ENV = "STORAGE_EMULATOR_ROOT"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _default_root() -> str:
    return os.environ.get(ROOT_ENV, DEFAULT_ROOT)


class _Subcommands:
    """Add subcommands that all inherit the shared options."""

    def __init__(self, actions: Any, parent: argparse.ArgumentParser) -> None:
        self.actions = actions
        self.parent = parent

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """Add one subcommand."""
        return self.actions.add_parser(name, parents=[self.parent], **kwargs)  # type: ignore[no-any-return]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="storage-emulator",
        description="Offline emulator of the Apify API v2 storage (datasets, key-value stores, request queues).",
    )
    parser.add_argument(
        "--root", default=None, help=f"storage root (default: ${ROOT_ENV} or {DEFAULT_ROOT}, as Crawlee uses)"
    )
    # Every subcommand also takes --root, so it may come before or after the subcommand.
    root_option = argparse.ArgumentParser(add_help=False)
    root_option.add_argument("--root", dest="sub_root", default=None, help="storage root (same as the global --root)")
    commands = _Subcommands(parser.add_subparsers(dest="command", required=True), root_option)

    serve = commands.add_parser("serve", help="serve the storage root over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--public-url", default=None, help="public base URL for itemsPublicUrl (default: served URL)")
    serve.add_argument(
        "--seed", default=None, metavar="DIR", help="if the root does not exist yet, start it as a copy of DIR"
    )
    serve.add_argument(
        "--accounts",
        default=None,
        metavar="FILE",
        help="accounts file: enforce tokens and access (default: <root>/.storage-emulator/accounts.json if present)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser calls from this origin ('*' for any); repeatable; CORS is off without it",
    )
    serve.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help=f"threads per process (default {DEFAULT_THREADS})"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve with N processes over the one root (gunicorn; Unix only; default 1: one threaded process)",
    )
    serve.add_argument("--quiet", action="store_true", help="no access-log line per request")
    serve.add_argument(
        "--faults",
        default=None,
        metavar="FILE",
        help="fault rules (JSON; see README) replacing any the root holds: inject 429/5xx, drops, delays",
    )
    serve.add_argument(
        "--record", default=None, metavar="FILE", help="append one JSON line per request to FILE (see `log`)"
    )
    serve.add_argument(
        "--record-bodies", action="store_true", help="with --record: also the request and response bodies, truncated"
    )
    serve.set_defaults(handler=cmd_serve)

    log_command = commands.add_parser("log", help="summarise a --record file: counts and median durations per route")
    log_command.add_argument("file", help="the file written by serve --record")
    log_command.set_defaults(handler=cmd_log)

    accounts = commands.add_parser("accounts", help="manage the accounts of enforced mode")
    accounts_commands = _Subcommands(accounts.add_subparsers(dest="accounts_command", required=True), root_option)
    add = accounts_commands.add_parser("add", help="add an account (or renew its token) and print its token")
    add.add_argument("username")
    add.add_argument("--org", action="append", default=[], help="an org whose listing it may read; repeatable")
    add.add_argument(
        "--admin", action="store_true", help="may reset the emulator and inject faults (POST /_emulator/...)"
    )
    add.add_argument("--accounts", default=None, metavar="FILE", help="accounts file (default: in the root)")
    add.set_defaults(handler=cmd_accounts_add)
    listing = accounts_commands.add_parser("list", help="list the accounts (without tokens)")
    listing.add_argument("--accounts", default=None, metavar="FILE", help="accounts file (default: in the root)")
    listing.set_defaults(handler=cmd_accounts_list)

    share = commands.add_parser("share", help="share a dataset with another account (read access)")
    share.add_argument("ref", help="id, ~name or username~name")
    share.add_argument("username", help="the account to share with")
    share.add_argument("--remove", action="store_true", help="stop sharing instead")
    share.add_argument("--accounts", default=None, metavar="FILE", help="accounts file (default: in the root)")
    share.set_defaults(handler=cmd_share)

    set_fields = commands.add_parser("set", help="set a dataset's title, access or org-listing fields")
    set_fields.add_argument("ref", help="id, ~name or username~name")
    set_fields.add_argument("--title")
    set_fields.add_argument("--general-access", choices=GENERAL_ACCESS_VALUES)
    set_fields.add_argument("--summary")
    set_fields.add_argument("--tags", help="comma-separated")
    set_fields.add_argument("--license")
    set_fields.add_argument("--task-categories", help="comma-separated")
    set_fields.add_argument("--size-category")
    set_fields.add_argument("--format", choices=ORG_FORMATS)
    set_fields.add_argument("--version", help="semantic version X.Y.Z")
    set_fields.set_defaults(handler=cmd_set)

    ls = commands.add_parser("ls", help="list datasets and key-value stores")
    ls.add_argument("--unnamed", action="store_true", help="include unnamed storages")
    ls.set_defaults(handler=cmd_ls)

    show = commands.add_parser("show", help="print one dataset's metadata and first items")
    show.add_argument("ref", help="id, ~name or username~name")
    show.add_argument("--items", type=int, default=5, help="how many items to print (default 5)")
    show.set_defaults(handler=cmd_show)

    push = commands.add_parser("push", help="append items from a JSON array or JSONL file")
    push.add_argument("ref", help="id, ~name or username~name")
    push.add_argument("file", help="a .json file holding an array (or one object), or a .jsonl file")
    push.add_argument("--create", action="store_true", help="create the named dataset (~name) if missing")
    push.add_argument("--batch-size", type=int, default=1000, help="items per locked append (default 1000)")
    push.set_defaults(handler=cmd_push)

    export = commands.add_parser("export", help="write a dataset's items to a file in one of the seven formats")
    export.add_argument("ref", help="id, ~name or username~name")
    export.add_argument("--format", default="json", help="json, jsonl, csv, html, xlsx, xml or rss")
    export.add_argument("-o", "--output", required=True, help="file to write ('-' for standard output)")
    export.set_defaults(handler=cmd_export)

    add_kv_commands(commands)
    add_run_command(commands)

    fsck = commands.add_parser("fsck", help="check the storage root for damage (every storage kind)")
    fsck.add_argument("--repair", action="store_true", help="repair what can be repaired")
    fsck.set_defaults(handler=cmd_fsck)
    add_rq_commands(commands)
    return parser


def resolve_root(args: argparse.Namespace) -> Path:
    """Return the storage root chosen by ``--root`` (before or after the subcommand) or the environment."""
    return Path(getattr(args, "sub_root", None) or args.root or _default_root())


def exposure_warning(host: str, *, enforced: bool) -> str | None:
    """Return a warning when open mode (no tokens checked) would listen beyond this machine."""
    if enforced or host in LOOPBACK_HOSTS:
        return None
    return (
        f"WARNING: open mode on {host}: anyone who can reach this port can read and change every dataset; "
        "bind 127.0.0.1 or configure accounts (storage-emulator accounts add NAME)"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the root until interrupted (SIGINT or SIGTERM), then write the pending read counters."""
    root = resolve_root(args)
    if args.workers < 1 or args.threads < 1:
        raise InvalidInput("--workers and --threads must be at least 1")
    if args.record_bodies and not args.record:
        raise InvalidInput("--record-bodies needs --record FILE")
    if args.workers > 1:
        unsupported = workers_supported()
        if unsupported:
            raise InvalidInput(unsupported)
    fault_rules = read_rules_file(Path(args.faults)) if args.faults else None
    if args.seed and not root.exists():
        shutil.copytree(args.seed, root)
        print(f"Copied {args.seed} to {root} (the copy is what gets served and changed)")
    # Fault rules last for one run of the server: those of an earlier run are dropped.
    FaultStore(root).clear()
    if fault_rules is not None:
        FaultStore(root).add(fault_rules)
        print(f"{len(fault_rules)} fault rule(s) from {args.faults}; GET /_emulator/faults lists them")
    config = {
        "ROOT": str(root),
        "PUBLIC_URL": args.public_url,
        "ACCOUNTS_FILE": args.accounts,
        "CORS_ORIGINS": args.cors_origin,
        "ACCESS_LOG": not args.quiet,
        "RECORD_FILE": args.record,
        "RECORD_BODIES": args.record_bodies,
    }
    enforced = AccountRegistry.load(root, Path(args.accounts) if args.accounts else None).enforced

    def announce(url: str) -> None:
        print(f"storage-emulator serving {root.resolve()} at {url}")
        mode = "enforced (tokens and access rules apply)" if enforced else "open (any token or none acts as 'local')"
        processes = f"{args.workers} worker processes" if args.workers > 1 else "1 process"
        print(f"mode: {mode}; {processes} of {args.threads} threads; keep-alive on")
        warning = exposure_warning(args.host, enforced=enforced)
        if warning:
            print(warning)
        print(f'Python: ApifyClient(token="local", api_url="{url}")   JS: new ApifyClient({{ baseUrl: "{url}" }})')
        sys.stdout.flush()

    if args.workers > 1:
        return serve_workers(
            lambda: create_app(config),
            args.host,
            args.port,
            workers=args.workers,
            threads=args.threads,
            on_ready=announce,
        )
    return serve_threaded(create_app(config), args.host, args.port, threads=args.threads, on_ready=announce)


def cmd_log(args: argparse.Namespace) -> int:
    """Print the requests of a --record file grouped by method, route and status."""
    with open(args.file, encoding="utf-8") as lines:
        groups, bad = summarise(lines)
    route_width = max([5, *(len(group.route) for group in groups)])
    print(f"{'COUNT':>7}  {'METHOD':<7} {'ROUTE':<{route_width}}  STATUS  MEDIAN_MS")
    for group in groups:
        route = f"{group.route:<{route_width}}"
        print(f"{group.count:>7}  {group.method:<7} {route}  {group.status:>6}  {group.median_ms:9.2f}")
    total = sum(group.count for group in groups)
    print(f"{total} request(s)" + (f"; {bad} unreadable line(s) skipped" if bad else ""))
    return 0


def _repo(args: argparse.Namespace) -> DatasetRepository:
    return DatasetRepository(resolve_root(args))


def cmd_ls(args: argparse.Namespace) -> int:
    """Print one line per dataset, then one per key-value store."""
    repo = _repo(args)
    page = repo.list_datasets(unnamed=args.unnamed, limit=sys.maxsize)
    id_width = max([17, *(len(dataset.id) for dataset in page.items)])
    print(f"{'ID':<{id_width}}  {'NAME':<30}  {'OWNER':<12}  {'ITEMS':>9}  MODIFIED")
    for dataset in page.items:
        modified = iso_time(dataset.modified_at)
        name = dataset.name or "(unnamed)"
        owner = repo.policy.owner_username(dataset)
        print(f"{dataset.id:<{id_width}}  {name:<30}  {owner:<12}  {dataset.item_count:>9}  {modified}")
    print("\nKey-value stores:")  # each kind under its own title and header, after a blank line
    print_stores(KeyValueStoreRepository(repo.root), unnamed=args.unnamed)
    queues = RequestQueueRepository(repo.root)
    if queues.list_request_queues(unnamed=args.unnamed, limit=1).total:
        print("\nRequest queues:")
        print_queues(queues, unnamed=args.unnamed)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print a dataset's metadata (as the API shows it) and its first items."""
    repo = _repo(args)
    dataset = repo.get_dataset(args.ref)
    shown = dataset_resource(dataset, repo, base_url="http://127.0.0.1:8000", public_url="", may_write=False)
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    page = repo.read_items(args.ref, limit=args.items, count_read=False)
    for item in page.items():
        print(json.dumps(item, ensure_ascii=False))
    return 0


def _read_items_file(path: Path) -> list[dict[str, Any]]:
    """Read a JSON array (or one object) or a JSONL file; ``.jsonl``, or a whole-file parse that fails, means JSONL."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        return _read_jsonl(path, data)
    try:
        return parse_items(data)
    except InvalidInput as whole_file_error:
        if len(data.strip().splitlines()) < 2:
            raise InvalidInput(f"{path}: {whole_file_error.message}") from None
        try:
            return _read_jsonl(path, data)
        except InvalidInput:
            # Neither reading works: the whole-file error is the one that points at the real mistake.
            raise InvalidInput(f"{path}: {whole_file_error.message}") from None


def _read_jsonl(path: Path, data: bytes) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            try:
                items.extend(parse_items(line))
            except InvalidInput as exc:
                raise InvalidInput(f"{path}, line {number}: {exc.message}") from None
    return items


def cmd_push(args: argparse.Namespace) -> int:
    """Append the file's items in locked batches, with a progress bar."""
    repo = _repo(args)
    items = _read_items_file(Path(args.file))  # parsed whole first: a bad file stores nothing
    if args.create and args.ref.startswith("~"):
        repo.get_or_create_dataset(name=args.ref[1:])
    dataset = repo.get_dataset(args.ref)
    with tqdm(total=len(items), unit="item", desc="push", disable=None) as bar:
        for start in range(0, len(items), args.batch_size):
            batch = items[start : start + args.batch_size]
            dataset = repo.push_items(dataset.id, batch)
            bar.update(len(batch))
    print(f"pushed {len(items)} item(s) to {dataset.name or dataset.id}; it now holds {dataset.item_count}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the dataset's items to a file, with a progress bar."""
    repo = _repo(args)
    page = repo.read_items(args.ref)
    bar = tqdm(total=page.count, unit="item", desc="export", disable=None)

    def items() -> Iterator[dict[str, Any]]:
        bar.reset()
        for item in page.items():
            bar.update(1)
            yield item

    chunks = render(args.format.lower(), items, ExportOptions())
    with bar, sys.stdout.buffer if args.output == "-" else open(args.output, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return 0


def _accounts_path(args: argparse.Namespace) -> Path:
    return Path(args.accounts) if args.accounts else default_accounts_path(resolve_root(args))


def cmd_accounts_add(args: argparse.Namespace) -> int:
    """Add an account and print its new token."""
    account = add_account(_accounts_path(args), args.username, orgs=tuple(args.org), admin=args.admin)
    print(f"account {account.username} (id {account.id}) token:")
    print(account.token)
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    """Print the configured accounts."""
    path = _accounts_path(args)
    if not path.exists():
        print(f"no accounts file at {path}: open mode")
        return 0
    for account in read_accounts(path):
        orgs = ", ".join(account.orgs) or "-"
        admin = "  admin" if account.admin else ""
        print(f"{account.username:<20} {account.id:<17}  orgs: {orgs}  general_access: {account.general_access}{admin}")
    return 0


def cmd_share(args: argparse.Namespace) -> int:
    """Share a dataset with an account, or stop sharing it."""
    repo = _repo(args)
    account = AccountRegistry.load(repo.root, Path(args.accounts) if args.accounts else None).by_username(args.username)
    if account is None:
        raise InvalidInput(f"No account named '{args.username}'")
    dataset = repo.get_dataset(args.ref)
    shared = [i for i in dataset.shared_with if i != account.id] + ([] if args.remove else [account.id])
    repo.update_dataset(dataset.id, shared_with=shared)
    print(f"{dataset.name or dataset.id} is {'no longer ' if args.remove else ''}shared with {account.username}")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    """Set dataset fields from the command line."""
    repo = _repo(args)
    changes: dict[str, Any] = {}
    for option in ("title", "summary", "license", "size_category", "format", "version", "general_access"):
        value = getattr(args, option)
        if value is not None:
            changes[option] = value
    for option in ("tags", "task_categories"):
        value = getattr(args, option)
        if value is not None:
            changes[option] = [part.strip() for part in value.split(",") if part.strip()]
    dataset = repo.update_dataset(repo.get_dataset(args.ref).id, **changes)
    print(json.dumps(dataset.model_dump(mode="json", by_alias=True, include=set(changes)), indent=2))
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    """Report (and with --repair, fix) damage in the storage root; exit 1 if unrepaired problems remain."""
    root = resolve_root(args)
    findings = []
    for kind in (DatasetRepository(root), KeyValueStoreRepository(root), RequestQueueRepository(root)):
        for finding in kind.check(repair=args.repair):
            state = "repaired" if finding.repaired else "found"
            print(f"{state}: {kind.KIND_DIR}/{finding.folder}: {finding.problem}")
            findings.append(finding)
    if not findings:
        print("no problems found")
    return 1 if any(not finding.repaired for finding in findings) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except EmulatorError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:  # a missing or unreadable file named on the command line
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
