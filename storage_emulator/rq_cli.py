"""The ``storage-emulator rq`` commands: list, show, add to and peek at request queues on disk."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import InvalidInput, RequestQueueNotFound
from .request_queue_serializers import request_json, request_queue_resource
from .request_queues import MAX_BATCH_REQUESTS, RequestQueueRepository
from .serializers import iso_time

DEFAULT_QUEUE = "~default"
"""Crawlee's default queue lives in ``request_queues/default``."""


def add_commands(commands: Any) -> None:
    """Add ``rq ls``, ``rq show``, ``rq add`` and ``rq head`` under ``rq``."""
    rq = commands.add_parser("rq", help="work on request queues")
    sub = rq.add_subparsers(dest="rq_command", required=True)
    parent = [commands.parent]
    ls = sub.add_parser("ls", parents=parent, help="list request queues")
    ls.add_argument("--unnamed", action="store_true", help="include unnamed queues")
    ls.set_defaults(handler=cmd_rq_ls)
    show = sub.add_parser("show", parents=parent, help="print a queue's metadata and first requests")
    show.add_argument("ref", nargs="?", default=DEFAULT_QUEUE, help="id, ~name or username~name (default ~default)")
    show.add_argument("--requests", type=int, default=10, help="how many requests to print (default 10)")
    show.set_defaults(handler=cmd_rq_show)
    add = sub.add_parser("add", parents=parent, help="add URLs, or the requests of a JSON/JSONL file")
    add.add_argument("urls", nargs="*", help="URLs to add (the uniqueKey is the URL as given)")
    add.add_argument("-f", "--file", help="a JSON array or JSONL file of URLs or request objects")
    add.add_argument("-q", "--queue", default=DEFAULT_QUEUE, help="id or ~name (default ~default; created if named)")
    add.add_argument("--forefront", action="store_true", help="add at the front of the queue")
    add.set_defaults(handler=cmd_rq_add)
    head = sub.add_parser("head", parents=parent, help="print the requests a consumer would take next")
    head.add_argument("ref", nargs="?", default=DEFAULT_QUEUE, help="id, ~name or username~name (default ~default)")
    head.add_argument("--limit", type=int, default=10, help="how many (default 10)")
    head.set_defaults(handler=cmd_rq_head)


def _repo(args: argparse.Namespace) -> RequestQueueRepository:
    from .cli import resolve_root  # the CLI module imports this one

    return RequestQueueRepository(resolve_root(args))


def cmd_rq_ls(args: argparse.Namespace) -> int:
    """Print one line per queue."""
    repo = _repo(args)
    print_queues(repo, unnamed=args.unnamed)
    return 0


def print_queues(repo: RequestQueueRepository, *, unnamed: bool) -> None:
    """Print the queue table (``ls`` and ``rq ls``)."""
    page = repo.list_request_queues(unnamed=unnamed, limit=sys.maxsize)
    print(f"{'ID':<17}  {'NAME':<30}  {'TOTAL':>8}  {'HANDLED':>8}  {'PENDING':>8}  MODIFIED")
    for queue in page.items:
        name = queue.name or "(unnamed)"
        print(
            f"{queue.id:<17}  {name:<30}  {queue.total_request_count:>8}  {queue.handled_request_count:>8}  "
            f"{queue.pending_request_count:>8}  {iso_time(queue.modified_at)}"
        )


def cmd_rq_show(args: argparse.Namespace) -> int:
    """Print a queue's metadata (as the API shows it) and its first requests."""
    repo = _repo(args)
    queue = repo.get_request_queue(args.ref)
    print(json.dumps(request_queue_resource(queue, repo, base_url="http://127.0.0.1:8000"), indent=2))
    for request in repo.list_requests(queue.id, limit=max(args.requests, 1)).items[: args.requests]:
        print(json.dumps(request_json(request), ensure_ascii=False))
    return 0


def cmd_rq_head(args: argparse.Namespace) -> int:
    """Print the head: what a consumer would take next (locks are left alone)."""
    repo = _repo(args)
    head = repo.get_head(args.ref, limit=max(args.limit, 1), as_client=False)
    for item in head.items:
        print(f"{item.id}  {item.method or 'GET':<6}  {item.url}")
    if not head.items:
        print("(the head is empty)")
    return 0


def cmd_rq_add(args: argparse.Namespace) -> int:
    """Add the URLs (and the file's requests) in batches of 25; print how many were new."""
    requests = [_as_request(url, "the command line") for url in args.urls]
    if args.file:
        requests += _read_requests_file(Path(args.file))
    if not requests:
        raise InvalidInput("nothing to add: give URLs or -f FILE")
    repo = _repo(args)
    try:
        queue = repo.get_request_queue(args.queue)
    except RequestQueueNotFound:
        if not args.queue.startswith("~"):
            raise
        queue, _ = repo.get_or_create_request_queue(args.queue[1:])
    added = present = 0
    for start in range(0, len(requests), MAX_BATCH_REQUESTS):
        batch = requests[start : start + MAX_BATCH_REQUESTS]
        for result in repo.add_requests(queue.id, batch, forefront=args.forefront, client_key="storage-emulator-cli"):
            added += not result.was_already_present
            present += result.was_already_present
    repo.flush_state(queue.id)
    print(f"{added} added, {present} already present in {queue.name or queue.id}")
    return 0


def _as_request(entry: Any, where: str) -> dict[str, Any]:
    if isinstance(entry, str):
        entry = {"url": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise InvalidInput(f"{where}: each request must be a URL or an object with a 'url'")
    return {"uniqueKey": entry["url"], **entry}


def _read_requests_file(path: Path) -> list[dict[str, Any]]:
    """Read a JSON array (of URLs or request objects) or a JSONL file of them (or of plain URLs)."""
    text = path.read_text(encoding="utf-8")
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, list):
        return [_as_request(entry, f"{path}, entry {n}") for n, entry in enumerate(whole)]
    requests = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                entry = json.loads(line)
            except ValueError:
                if not line.strip().startswith(("http://", "https://")):
                    raise InvalidInput(f"{path}, line {number}: neither JSON nor an http(s) URL") from None
                entry = line.strip()  # a plain list of URLs, one a line
            requests.append(_as_request(entry, f"{path}, line {number}"))
    return requests
