"""The ``storage-emulator`` command: serve a storage root, and work on its files directly."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .web import DEFAULT_ROOT, create_app

ROOT_ENV = "STORAGE_EMULATOR_ROOT"


def _default_root() -> str:
    return os.environ.get(ROOT_ENV, DEFAULT_ROOT)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="storage-emulator", description="Offline Apify Dataset API emulator.")
    parser.add_argument(
        "--root", default=None, help=f"storage root (default: ${ROOT_ENV} or {DEFAULT_ROOT}, as Crawlee uses)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the storage root over HTTP")
    serve.add_argument("--root", dest="sub_root", default=None, help="storage root (same as the global --root)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--public-url", default=None, help="public base URL for itemsPublicUrl (default: served URL)")
    serve.add_argument(
        "--seed", default=None, metavar="DIR", help="if the root does not exist yet, start it as a copy of DIR"
    )
    serve.set_defaults(handler=cmd_serve)
    return parser


def resolve_root(args: argparse.Namespace) -> Path:
    """Return the storage root chosen by ``--root`` (before or after the subcommand) or the environment."""
    return Path(getattr(args, "sub_root", None) or args.root or _default_root())


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the root until interrupted."""
    from werkzeug.serving import make_server

    root = resolve_root(args)
    if args.seed and not root.exists():
        shutil.copytree(args.seed, root)
        print(f"Copied {args.seed} to {root} (the copy is what gets served and changed)")
    app = create_app({"ROOT": str(root), "PUBLIC_URL": args.public_url})
    server = make_server(args.host, args.port, app, threaded=True)
    url = f"http://{args.host}:{server.server_port}"
    print(f"storage-emulator serving {root.resolve()} at {url}")
    print(f'Python: ApifyClient(token="local", api_url="{url}")   JS: new ApifyClient({{ baseUrl: "{url}" }})')
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
