"""The org-scoped dataset listing (Dreadnode-style ``/api/v1/org/{org}/datasets``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, request

from ..errors import InsufficientPermissions, InvalidParameter, RecordNotFound, TokenNotProvided
from ..org_listing import SORT_DIRECTIONS, SORT_FIELDS, OrgDatasetQuery, list_org_datasets, org_exists
from .access import current_caller, policy, registry, repo
from .envelopes import json_response, org_validation_error
from .params import choice_param, int_param

bp = Blueprint("org", __name__, url_prefix="/api/v1")

ORG_LIMIT_MAX = 200
# FastAPI's boolean query values, which the real org API (a FastAPI service) accepts.
ORG_TRUE = ("true", "1", "yes", "on")
ORG_FALSE = ("false", "0", "no", "off")

T = TypeVar("T")


@bp.get("/org/<org>/datasets")
def list_org_datasets_view(org: str) -> Response:
    """List an organization's datasets, filtered, sorted and paged."""
    problems: list[InvalidParameter] = []

    def checked(parse: Callable[[], T | None], fallback: T) -> T:
        # Collect every bad parameter, so one 422 names them all (as FastAPI does).
        try:
            value = parse()
        except InvalidParameter as exc:
            problems.append(exc)
            return fallback
        return fallback if value is None else value

    args = request.args
    query = OrgDatasetQuery(
        org=org,
        name=args.get("name"),
        search=args.get("search") or None,
        tags=tuple(args.getlist("tags")),
        license=tuple(args.getlist("license")),
        task_categories=tuple(args.getlist("task_categories")),
        format=tuple(args.getlist("format")),
        size_category=tuple(args.getlist("size_category")),
        sort_by=checked(lambda: choice_param(args, "sort_by", SORT_FIELDS, "created_at"), "created_at"),
        sort_dir=checked(lambda: choice_param(args, "sort_dir", SORT_DIRECTIONS, "desc"), "desc"),
        page=checked(lambda: int_param(args, "page", 1, minimum=1), 1),
        limit=checked(lambda: int_param(args, "limit", 50, minimum=1, maximum=ORG_LIMIT_MAX), 50),
        include_public=checked(lambda: _org_bool(args, "include_public"), False),
    )
    if problems:
        return org_validation_error(problems)
    caller = current_caller()
    if registry().enforced and caller is None:
        raise TokenNotProvided("Authentication failed")
    if not policy().may_list_org(org, caller):
        # Also for an org that does not exist: a caller who may not list it may not learn that either.
        raise InsufficientPermissions(f"You are not a member of the organization '{org}'")
    if not org_exists(repo(), org):
        raise RecordNotFound(f"Organization '{org}' was not found")
    body: dict[str, Any] = list_org_datasets(repo(), query)
    return json_response(body)


def _org_bool(args: Any, name: str) -> bool:
    raw = (args.get(name) or "false").strip().lower()
    if raw in ORG_TRUE:
        return True
    if raw in ORG_FALSE:
        return False
    raise InvalidParameter(name, "must be a boolean (true or false)")
