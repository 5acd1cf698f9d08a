"""Run the emulator inside a test suite or script: ``EmulatorServer`` serves a root from a background thread.

    from storage_emulator.testing import EmulatorServer

    with EmulatorServer() as server:             # a fresh temporary root, 127.0.0.1, a free port
        client = ApifyClient(token="local", api_url=server.url)
        ...
        server.reset()                           # empty the root again (accounts stay)

Like moto's ``ThreadedMotoServer(port=0)``; the pytest plugin (``storage_emulator.pytest_plugin``) builds its
fixtures on it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from flask import Flask

from .accounts import default_accounts_path
from .repository import DatasetRepository
from .reset import reset_storages
from .serving import DEFAULT_THREADS, close_app, make_server, server_url
from .web import create_app, storage_kinds
from .web.faults import fault_store, parse_rules

AccountsArg = str | os.PathLike[str] | list[dict[str, Any]] | None


class EmulatorServer:
    """The emulator on a real keep-alive HTTP server in a background thread of this process."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        port: int = 0,
        accounts: AccountsArg = None,
        *,
        host: str = "127.0.0.1",
        threads: int = DEFAULT_THREADS,
        config: dict[str, Any] | None = None,
    ) -> None:
        """Prepare a server of ``root`` (``None``: a temporary folder, removed at stop) on ``host:port``.

        ``accounts`` turns on enforced mode: an accounts file's path, or the accounts themselves as written
        in that file (``[{"username": "alice", "token": "alice-token", "admin": true}]``). ``config`` adds
        app settings (``create_app``'s keys, e.g. ``{"RECORD_FILE": "requests.jsonl"}``).
        """
        self._temporary = root is None
        self.root = Path(tempfile.mkdtemp(prefix="storage-emulator-")) if root is None else Path(root)
        self.host = host
        self.port = port
        self.threads = threads
        app_config: dict[str, Any] = {"ROOT": str(self.root), **(config or {})}
        if isinstance(accounts, list):
            path = default_accounts_path(self.root)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"accounts": accounts}, indent=2), encoding="utf-8")
        elif accounts is not None:
            app_config["ACCOUNTS_FILE"] = str(accounts)
        self._app_config = app_config
        self._app: Flask | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""
        """The base URL (``http://127.0.0.1:PORT``), set by ``start()``."""

    @property
    def app(self) -> Flask:
        """Return the Flask app being served."""
        if self._app is None:
            raise RuntimeError("the EmulatorServer is not started")
        return self._app

    @property
    def repo(self) -> DatasetRepository:
        """Return the repository the server uses (the direct Python API over the same root)."""
        return self.app.extensions["storage_emulator"]  # type: ignore[no-any-return]

    def start(self) -> EmulatorServer:
        """Bind the port and serve from a daemon thread; the server is ready when this returns."""
        if self._server is not None:
            return self
        self._app = create_app(self._app_config)
        fault_store(self._app).clear()  # rules last for one run of a server, as with `serve`
        self._server = make_server(self._app, self.host, self.port, threads=self.threads)
        self.port = self._server.bind_addr[1]
        self.url = server_url(self.host, self.port)
        self._thread = threading.Thread(target=self._server.serve, name="storage-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, write the pending read counters, and remove a temporary root."""
        if self._server is None:
            return
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        close_app(self.app)
        self._server = None
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    def reset(self) -> None:
        """Empty the root (every storage kind; accounts stay) and clear the fault rules."""
        reset_storages(storage_kinds(self.app))
        fault_store(self.app).clear()

    def add_faults(self, rules: Any) -> list[dict[str, Any]]:
        """Add fault rules (a rule, a list of rules, as ``POST /_emulator/faults`` takes) and return them stored."""
        return fault_store(self.app).add(parse_rules(rules))

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorServer(root={str(self.root)!r}, url={self.url!r})"
