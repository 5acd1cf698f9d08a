"""The emulator's own routes: ``/health`` and everything under ``/_emulator/`` (never an Apify path).

They answer ``{"data": ...}`` like the Apify API, and errors in its envelope. In enforced mode the routes
that change everything (reset, faults) need the token of an account with ``"admin": true``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Blueprint, Response, current_app, request

from .. import __version__
from ..errors import InsufficientPermissions, InvalidInput, InvalidToken
from ..reset import STORAGE_KIND_DIRS, reset_storages
from .access import registry, repo, request_token, storage_kinds, token_not_provided
from .envelopes import json_response
from .faults import fault_store, parse_rules

bp = Blueprint("emulator", __name__)

COMMON_PARAMETERS = ("token", "method")
"""Honoured on every route: the API token (also ``Authorization: Bearer`` or ``X-API-Key``) and ``?method=``."""

# endpoint -> (parameters honoured, parameters the real API takes that are accepted and ignored here)
ROUTE_PARAMETERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "apify.list_datasets": (("offset", "limit", "desc", "unnamed", "ownership"), ()),
    "apify.get_or_create_dataset": (("name", "body: schema"), ()),
    "apify.get_dataset": ((), ()),
    "apify.update_dataset": (("body: name", "body: title", "body: generalAccess"), ()),
    "apify.delete_dataset": ((), ()),
    "apify.push_items": (("body: an item or an array of items (gzip, deflate or br)",), ()),
    "apify.read_items": (
        (
            "format",
            "offset",
            "limit",
            "desc",
            "clean",
            "fields",
            "outputFields",
            "omit",
            "unwind",
            "flatten",
            "skipHidden",
            "skipEmpty",
            "skipFailedPages",
            "view",
            "attachment",
            "bom",
            "delimiter",
            "skipHeaderRow",
            "xmlRoot",
            "xmlRow",
            "signature",
        ),
        ("simplified",),
    ),
    "apify.get_statistics": ((), ()),
    "org.list_org_datasets_view": (
        (
            "name",
            "search",
            "tags",
            "license",
            "task_categories",
            "format",
            "size_category",
            "sort_by",
            "sort_dir",
            "page",
            "limit",
            "include_public",
        ),
        (),
    ),
    "key_value_stores.list_key_value_stores": (("offset", "limit", "desc", "unnamed", "ownership"), ()),
    "key_value_stores.get_or_create_key_value_store": (("name", "body: schema"), ()),
    "key_value_stores.get_key_value_store": ((), ()),
    "key_value_stores.update_key_value_store": (("body: name", "body: title", "body: generalAccess"), ()),
    "key_value_stores.delete_key_value_store": ((), ()),
    "key_value_stores.list_keys": (("exclusiveStartKey", "limit", "prefix", "collection", "signature"), ()),
    "key_value_stores.download_records": (("prefix", "collection", "signature"), ()),
    "key_value_stores.get_record": (("attachment", "signature"), ()),
    "key_value_stores.set_record": (
        ("body: the record's bytes (gzip, deflate or br)", "header: Content-Type", "header: Content-Encoding"),
        (),
    ),
    "key_value_stores.delete_record": ((), ()),
    "apify_request_queues.list_request_queues": (("offset", "limit", "desc", "unnamed", "ownership"), ()),
    "apify_request_queues.get_or_create_request_queue": (("name",), ()),
    "apify_request_queues.get_request_queue": ((), ()),
    "apify_request_queues.update_request_queue": (("body: name", "body: title", "body: generalAccess"), ()),
    "apify_request_queues.delete_request_queue": ((), ()),
    "apify_request_queues.add_request": (("forefront", "clientKey", "body: a request"), ()),
    "apify_request_queues.batch_add_requests": (("forefront", "clientKey", "body: up to 25 requests"), ()),
    "apify_request_queues.batch_delete_requests": (("clientKey", "body: ids or uniqueKeys"), ()),
    "apify_request_queues.list_requests": (("limit", "cursor", "exclusiveStartId", "filter", "clientKey"), ()),
    "apify_request_queues.unlock_requests": (("clientKey",), ()),
    "apify_request_queues.get_request": ((), ()),
    "apify_request_queues.update_request": (("forefront", "clientKey", "body: the request"), ()),
    "apify_request_queues.delete_request": (("clientKey",), ()),
    "apify_request_queues.get_head": (("limit", "clientKey"), ()),
    "apify_request_queues.lock_head": (("limit", "lockSecs", "clientKey"), ()),
    "apify_request_queues.prolong_request_lock": (("lockSecs", "forefront", "clientKey"), ()),
    "apify_request_queues.delete_request_lock": (("forefront", "clientKey"), ()),
    "request_queue_pages.view_request_queues": ((), ()),
    "request_queue_pages.view_request_queue": ((), ()),
    "runs.list_runs": (("offset", "limit", "desc", "status"), ()),
    "runs.get_run": ((), ()),
    "runs.update_run": (
        ("body: statusMessage", "body: isStatusMessageTerminal", "body: level", "body: generalAccess"),
        ("body: runId",),
    ),
    "runs.charge_run": (("body: eventName", "body: count", "header: idempotency-key"), ("body: requestId",)),
    "runs.default_storage": (("those of the default storage's own route",), ()),
    "runs.get_me": ((), ()),
    "runs.get_my_limits": ((), ()),
    "runs.get_my_monthly_usage": ((), ()),
    "pages.view_run": ((), ()),
    "pages.index": ((), ()),
    "pages.view_dataset": ((), ()),
    "pages.view_key_value_store": ((), ()),
    "emulator.health": ((), ()),
    "emulator.reset": ((), ()),
    "emulator.capabilities": ((), ()),
    "emulator.list_faults": ((), ()),
    "emulator.add_faults": (('body: a rule, a list of rules or {"rules": [...]}',), ()),
    "emulator.clear_faults": ((), ()),
}
UNSERVED_ENDPOINTS = frozenset({"static"})
"""Flask's static route: the app has no static folder."""


def require_admin() -> None:
    """In enforced mode, refuse the request unless its token belongs to an admin account."""
    accounts = registry()
    if not accounts.enforced:
        return
    token = request_token()
    if token is None:
        raise token_not_provided()
    account = accounts.by_token(token)
    if account is None:
        raise InvalidToken("User was not found or authentication token is not valid")
    if not account.admin:
        raise InsufficientPermissions(
            f"The account '{account.username}' is not an admin: only accounts with \"admin\": true in the "
            "accounts file may do this"
        )


def storage_counts() -> dict[str, int]:
    """Return how many storages of each kind the root holds (readable datasets; folders for the other kinds)."""
    root = repo().root
    counts = {"datasets": len(repo().all_datasets())}
    for kind in STORAGE_KIND_DIRS[1:]:
        folder = root / kind
        counts[kind] = (
            sum(1 for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)) if folder.is_dir() else 0
        )
    return counts


@bp.get("/health")
def health() -> Response:
    """Tell that the server answers, and what it serves."""
    return json_response(
        {
            "data": {
                "status": "ok",
                "version": __version__,
                "root": str(repo().root.resolve()),
                "mode": "enforced" if registry().enforced else "open",
                "pid": os.getpid(),
                "counts": storage_counts(),
            }
        }
    )


@bp.post("/_emulator/reset")
def reset() -> Response:
    """Empty the root (every storage kind; accounts stay) and clear the injected faults."""
    require_admin()
    removed = reset_storages(storage_kinds(current_app))
    fault_store(current_app).clear()
    return json_response({"data": {"removed": removed}})


@bp.get("/_emulator/faults")
def list_faults() -> Response:
    """List the fault rules with how often each matched and fired."""
    return json_response({"data": {"rules": fault_store(current_app).entries()}})


@bp.post("/_emulator/faults")
def add_faults() -> Response:
    """Add fault rules (a rule, a list of rules or ``{"rules": [...]}``) after the existing ones."""
    require_admin()
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError as exc:
        raise InvalidInput(f"The request body is not valid JSON: {exc}") from None
    added = fault_store(current_app).add(parse_rules(body))
    return json_response({"data": {"rules": added}}, 201)


@bp.delete("/_emulator/faults")
def clear_faults() -> Response:
    """Remove every fault rule."""
    require_admin()
    return json_response({"data": {"cleared": fault_store(current_app).clear()}})


@bp.get("/_emulator/capabilities")
def capabilities() -> Response:
    """List every served route with the parameters it honours and the ones it accepts and ignores."""
    routes: list[dict[str, Any]] = []
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint)):
        if rule.endpoint in UNSERVED_ENDPOINTS:
            continue
        honoured, ignored = ROUTE_PARAMETERS.get(rule.endpoint, ((), ()))
        routes.append(
            {
                "path": rule.rule,
                "methods": sorted((rule.methods or set()) - {"OPTIONS"}),
                "endpoint": rule.endpoint,
                "documented": rule.endpoint in ROUTE_PARAMETERS,
                "honoured": list(honoured),
                "ignored": list(ignored),
            }
        )
    return json_response({"data": {"commonParameters": list(COMMON_PARAMETERS), "routes": routes}})
