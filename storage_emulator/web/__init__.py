"""The Flask app: both dialects over one repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from ..accounts import AccountRegistry
from ..errors import EmulatorError
from ..key_value_stores import KeyValueStoreRepository
from ..locks import LOCK_WAIT_SECONDS
from ..push_body import MAX_RAW_BODY_BYTES
from ..repository import DatasetRepository
from ..request_queues import RequestQueueRepository
from ..runs import RunRepository
from ..serializers import ListItemEncoder
from . import (
    apify_api,
    emulator_api,
    faults,
    key_value_stores_api,
    org_api,
    pages,
    request_queue_pages,
    request_queues_api,
    runs_api,
)
from .access import STORAGE_KINDS_EXTENSION, storage_kinds
from .cors import enable_cors
from .envelopes import error_response
from .request_log import ROUTE_ENVIRON_KEY, RequestLog

DEFAULT_ROOT = "./storage"
__all__ = ["DEFAULT_ROOT", "create_app", "storage_kinds"]


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


class RecordKeyConverter(BaseConverter):
    """Match the rest of the path, leading and doubled slashes included; the repository checks the key."""

    regex = ".+"
    part_isolating = False


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the emulator app; settings come from defaults, ``STORAGE_EMULATOR_*`` env vars, then ``config``."""
    app = Flask(__name__)
    app.config.from_mapping(
        ROOT=DEFAULT_ROOT,
        PUBLIC_URL=None,
        ACCOUNTS_FILE=None,
        CORS_ORIGINS=[],
        LOCK_WAIT_SECONDS=LOCK_WAIT_SECONDS,
        # Werkzeug refuses a larger Content-Length before reading and cuts a chunked body off past it.
        MAX_CONTENT_LENGTH=MAX_RAW_BODY_BYTES,
        ACCESS_LOG=False,  # one log line per request (logger storage_emulator.access); `serve` turns it on
        RECORD_FILE=None,  # append one JSON line per request to this file (see web/request_log.py)
        RECORD_BODIES=False,  # ... with the bodies, truncated
    )
    # STORAGE_EMULATOR_ROOT, _PUBLIC_URL, _ACCOUNTS_FILE, _CORS_ORIGINS (a JSON list), _LOCK_WAIT_SECONDS,
    # _MAX_CONTENT_LENGTH, _ACCESS_LOG, _RECORD_FILE, _RECORD_BODIES
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
    app.extensions["storage_emulator_key_value_stores"] = KeyValueStoreRepository(
        root, accounts=accounts, lock_wait_seconds=float(app.config["LOCK_WAIT_SECONDS"])
    )
    app.extensions["storage_emulator_request_queues"] = RequestQueueRepository(
        root, accounts=accounts, lock_wait_seconds=float(app.config["LOCK_WAIT_SECONDS"])
    )
    app.extensions["storage_emulator_runs"] = RunRepository(
        root, lock_wait_seconds=float(app.config["LOCK_WAIT_SECONDS"])
    )
    app.extensions[STORAGE_KINDS_EXTENSION] = [
        repo,
        app.extensions["storage_emulator_key_value_stores"],
        app.extensions["storage_emulator_request_queues"],
    ]
    if app.config["CORS_ORIGINS"]:
        enable_cors(app, list(app.config["CORS_ORIGINS"]))

    # A record key such as "%2Fetc" decodes to a path with "//": route it (and refuse it as a key), never
    # redirect or answer "no such route".
    app.url_map.merge_slashes = False
    app.url_map.converters["record_key"] = RecordKeyConverter
    app.register_blueprint(apify_api.bp)
    app.register_blueprint(key_value_stores_api.bp)
    app.register_blueprint(request_queues_api.bp)
    app.register_blueprint(request_queue_pages.bp)
    app.register_blueprint(runs_api.bp)
    app.register_blueprint(org_api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(emulator_api.bp)
    app.register_error_handler(EmulatorError, error_response)
    app.register_error_handler(HTTPException, error_response)
    app.register_error_handler(Exception, error_response)
    app.wsgi_app = MethodOverride(app.wsgi_app)  # type: ignore[method-assign]
    _add_request_log(app)
    faults.install(app, root)  # after the request log's hook, so faulted requests are recorded with their route
    return app


def _add_request_log(app: Flask) -> None:
    record_file = app.config["RECORD_FILE"]
    if not (app.config["ACCESS_LOG"] or record_file):
        return  # nothing to note: no per-request cost at all
    request_log = RequestLog(
        app.wsgi_app,
        access=bool(app.config["ACCESS_LOG"]),
        record_path=Path(record_file) if record_file else None,
        record_bodies=bool(app.config["RECORD_BODIES"]),
    )
    app.extensions["storage_emulator_request_log"] = request_log
    app.wsgi_app = request_log  # type: ignore[method-assign]

    @app.before_request
    def note_route() -> None:
        if request.url_rule is not None:
            request.environ[ROUTE_ENVIRON_KEY] = request.url_rule.rule
