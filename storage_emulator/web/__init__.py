"""The Flask app: both dialects over one repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from flask import Flask
from werkzeug.exceptions import HTTPException

from ..accounts import AccountRegistry
from ..errors import EmulatorError
from ..locks import LOCK_WAIT_SECONDS
from ..repository import DatasetRepository
from ..request_queues import RequestQueueRepository
from ..serializers import ListItemEncoder
from . import apify_api, org_api, pages, request_queue_pages, request_queues_api
from .cors import enable_cors
from .envelopes import error_response

DEFAULT_ROOT = "./storage"


class MethodOverride:
    """WSGI middleware: ``?method=POST`` turns any request into that method, as the real API allows."""

    OVERRIDABLE = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        values = parse_qs(environ.get("QUERY_STRING", "")).get("method")
        if values and values[0].upper() in self.OVERRIDABLE:
            environ["REQUEST_METHOD"] = values[0].upper()
        return self.app(environ, start_response)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the emulator app; settings come from defaults, ``STORAGE_EMULATOR_*`` env vars, then ``config``."""
    app = Flask(__name__)
    app.config.from_mapping(
        ROOT=DEFAULT_ROOT, PUBLIC_URL=None, ACCOUNTS_FILE=None, CORS_ORIGINS=[], LOCK_WAIT_SECONDS=LOCK_WAIT_SECONDS
    )
    # STORAGE_EMULATOR_ROOT, _PUBLIC_URL, _ACCOUNTS_FILE, _CORS_ORIGINS (a JSON list), _LOCK_WAIT_SECONDS
    app.config.from_prefixed_env("STORAGE_EMULATOR")
    if config:
        app.config.from_mapping(config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    root = Path(app.config["ROOT"])
    accounts_file = Path(app.config["ACCOUNTS_FILE"]) if app.config["ACCOUNTS_FILE"] else None
    accounts = AccountRegistry.load(root, accounts_file)
    repo = DatasetRepository(root, accounts=accounts, lock_wait_seconds=float(app.config["LOCK_WAIT_SECONDS"]))
    app.extensions["storage_emulator"] = repo
    app.extensions["storage_emulator_list_items"] = ListItemEncoder(repo)
    app.extensions["storage_emulator_accounts"] = accounts
    app.extensions["storage_emulator_request_queues"] = RequestQueueRepository(
        root, accounts=accounts, lock_wait_seconds=float(app.config["LOCK_WAIT_SECONDS"])
    )
    if app.config["CORS_ORIGINS"]:
        enable_cors(app, list(app.config["CORS_ORIGINS"]))

    app.register_blueprint(apify_api.bp)
    app.register_blueprint(request_queues_api.bp)
    app.register_blueprint(request_queue_pages.bp)
    app.register_blueprint(org_api.bp)
    app.register_blueprint(pages.bp)
    app.register_error_handler(EmulatorError, error_response)
    app.register_error_handler(HTTPException, error_response)
    app.register_error_handler(Exception, error_response)
    app.wsgi_app = MethodOverride(app.wsgi_app)  # type: ignore[method-assign]
    return app
