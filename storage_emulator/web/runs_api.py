"""Routes of the run context: ``/v2/actor-runs...`` and ``/v2/users/me...``, the mirror of ``runs.py``.

The default-storage shortcuts (``/v2/actor-runs/{runId}/dataset[/…]``, ``/key-value-store[/…]``,
``/request-queue[/…]``) resolve the run's default storage and dispatch to the very view that answers
``/v2/datasets/{id}[/…]`` (and so on): same rules, same errors, no copied code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import NotFound

from ..errors import InsufficientPermissions, InvalidParameter
from ..models import GENERAL_ACCESS_VALUES, utc_now
from ..runs import STATUSES, RunRecord, RunRepository
from ..serializers import iso_time
from .access import current_caller, registry, require_caller, token_not_provided
from .bodies import json_object_body
from .envelopes import json_response
from .params import bool_param, choice_param, int_param

bp = Blueprint("runs", __name__, url_prefix="/v2")

LOCAL_PROXY_PASSWORD = "local-emulator-proxy-password"
"""What ``/users/me`` answers as the proxy password: there is no proxy here, but the SDKs ask for one."""
PLATFORM_FEATURES = (
    "ACTORS STORAGE SCHEDULER PROXY PROXY_EXTERNAL_ACCESS PROXY_RESIDENTIAL PROXY_SERPS WEBHOOKS "
    "ACTORS_PUBLIC_ALL ACTORS_PUBLIC_DEVELOPER"
).split()
SHORTCUT_KINDS = {
    "dataset": ("datasets", "default_dataset_id"),
    "key-value-store": ("key-value-stores", "default_key_value_store_id"),
    "request-queue": ("request-queues", "default_request_queue_id"),
}
MAX_LIST_LIMIT = 1000
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE"]


def runs() -> RunRepository:
    """Return the app's run repository."""
    return current_app.extensions["storage_emulator_runs"]  # type: ignore[no-any-return]


def _owned_run(run_id: str) -> RunRecord:
    """Return a run the caller owns (enforced mode), or raise."""
    caller = require_caller()
    run = runs().get_run(run_id)
    if registry().enforced and run.user_id != caller.id:
        raise InsufficientPermissions("Insufficient permissions for the Actor run")
    return run


@bp.get("/actor-runs")
def list_runs() -> Response:
    """List the caller's runs, oldest first (``desc=1``: newest first), optionally of one ``status``."""
    caller = require_caller()
    offset = int_param(request.args, "offset", 0) or 0
    limit = int_param(request.args, "limit", MAX_LIST_LIMIT, minimum=1, maximum=MAX_LIST_LIMIT) or MAX_LIST_LIMIT
    desc = bool_param(request.args, "desc")
    status = choice_param(request.args, "status", STATUSES, None)
    every = runs().list_runs(owner=caller, status=status, desc=desc)
    page = every[offset : offset + limit]
    return json_response(
        {
            "data": {
                "total": len(every),
                "count": len(page),
                "offset": offset,
                "limit": limit,
                "desc": desc,
                "items": [run.to_list_item() for run in page],
            }
        }
    )


@bp.get("/actor-runs/<run_id>")
def get_run(run_id: str) -> Response:
    """Return a run (no token needed, as the docs say: its id is the secret)."""
    return json_response({"data": runs().get_run(run_id).to_api()})


@bp.put("/actor-runs/<run_id>")
def update_run(run_id: str) -> Response:
    """Change a run's status message (with ``isStatusMessageTerminal`` and JS's ``level``) or general access."""
    _owned_run(run_id)
    body = json_object_body()
    message = body.get("statusMessage")
    if message is not None and not isinstance(message, str):
        raise InvalidParameter("statusMessage", "must be a string", location="body")
    terminal = body.get("isStatusMessageTerminal")
    if terminal is not None and not isinstance(terminal, bool):
        raise InvalidParameter("isStatusMessageTerminal", "must be a boolean", location="body")
    level = body.get("level")
    if level is not None and not isinstance(level, str):
        raise InvalidParameter("level", "must be a string", location="body")
    access = body.get("generalAccess")
    if access is not None and access not in GENERAL_ACCESS_VALUES:
        raise InvalidParameter("generalAccess", "must be one of " + ", ".join(GENERAL_ACCESS_VALUES), location="body")
    run = runs().update_run(
        run_id, status_message=message, is_status_message_terminal=terminal, level=level, general_access=access
    )
    return json_response({"data": run.to_api()})


@bp.post("/actor-runs/<run_id>/charge")
def charge_run(run_id: str) -> Response:
    """Charge pay-per-event events; a repeated ``idempotency-key`` header charges once. 201 ``{}``."""
    _owned_run(run_id)
    body = json_object_body()
    runs().charge(
        run_id,
        event_name=body.get("eventName"),
        count=body.get("count", 1),
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return json_response({}, status=201)


@bp.route("/actor-runs/<run_id>/<any(dataset, 'key-value-store', 'request-queue'):kind>", methods=_ALL_METHODS)
@bp.route(
    "/actor-runs/<run_id>/<any(dataset, 'key-value-store', 'request-queue'):kind>/<path:rest>", methods=_ALL_METHODS
)
def default_storage(run_id: str, kind: str, rest: str = "") -> Any:
    """Answer ``/actor-runs/{runId}/<kind>[/…]`` with the view of ``/<kinds>/{the run's default id}[/…]``."""
    kinds, field = SHORTCUT_KINDS[kind]
    storage_id = getattr(runs().get_run(run_id), field)
    path = f"/v2/{kinds}/{storage_id}" + (f"/{rest}" if rest else "")
    adapter = current_app.url_map.bind_to_environ(request.environ)
    endpoint, args = adapter.match(path, method=request.method)
    if endpoint == request.endpoint:
        raise NotFound()  # never loops back into this view
    return current_app.view_functions[endpoint](**args)


def _user(caller: Any) -> dict[str, Any]:
    feature = {
        "isEnabled": True,
        "disabledReason": None,
        "disabledReasonType": None,
        "isTrial": False,
        "trialExpirationAt": None,
    }
    return {
        "id": caller.id,
        "username": caller.username,
        "profile": {},
        "proxy": {"password": LOCAL_PROXY_PASSWORD, "groups": []},
        "plan": {"id": "LOCAL", "availableProxyGroups": {}},
        "effectivePlatformFeatures": {name: dict(feature) for name in PLATFORM_FEATURES},
        "isPaying": False,
    }


def _me() -> Any:
    caller = current_caller()
    if caller is None:
        raise token_not_provided()
    return caller


@bp.get("/users/me")
def get_me() -> Response:
    """Return the calling account (what the SDKs read: ``username`` and the proxy password and groups)."""
    return json_response({"data": _user(_me())})


def _usage_cycle() -> dict[str, str]:
    now = utc_now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(milliseconds=1)
    return {"startAt": iso_time(start), "endAt": iso_time(end)}


@bp.get("/users/me/limits")
def get_my_limits() -> Response:
    """Return generous local limits and the current use (the charges of the caller's runs)."""
    caller = _me()
    owned = runs().list_runs(owner=caller)
    return json_response(
        {
            "data": {
                "monthlyUsageCycle": _usage_cycle(),
                "limits": {
                    "maxMonthlyUsageUsd": 1_000_000,
                    "maxMonthlyActorComputeUnits": 1_000_000,
                    "maxMonthlyExternalDataTransferGbytes": 1_000_000,
                    "maxMonthlyProxySerps": 0,
                    "maxMonthlyResidentialProxyGbytes": 0,
                    "maxActorMemoryGbytes": 32,
                    "maxActorCount": 1_000_000,
                    "maxActorTaskCount": 1_000_000,
                    "maxConcurrentActorJobs": 1_000_000,
                    "maxTeamAccountSeatCount": 0,
                    "dataRetentionDays": 1_000_000,
                },
                "current": {
                    "monthlyUsageUsd": round(sum(run.charged_usd() for run in owned), 6),
                    "monthlyActorComputeUnits": 0,
                    "monthlyExternalDataTransferGbytes": 0,
                    "monthlyProxySerps": 0,
                    "monthlyResidentialProxyGbytes": 0,
                    "actorMemoryGbytes": 0,
                    "actorCount": 0,
                    "actorTaskCount": 0,
                    "activeActorJobCount": sum(1 for run in owned if run.status == "RUNNING"),
                    "teamAccountSeatCount": 0,
                },
            }
        }
    )


@bp.get("/users/me/usage/monthly")
def get_my_monthly_usage() -> Response:
    """Return this month's usage: nothing is billed here, so it is zero."""
    _me()
    return json_response(
        {
            "data": {
                "usageCycle": _usage_cycle(),
                "monthlyServiceUsage": {},
                "dailyServiceUsages": [],
                "totalUsageCreditsUsdBeforeVolumeDiscount": 0,
                "totalUsageCreditsUsdAfterVolumeDiscount": 0,
            }
        }
    )
