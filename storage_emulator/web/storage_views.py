"""What every storage kind's routes parse the same way: listing parameters, update bodies, create bodies."""

from __future__ import annotations

from typing import Any

from flask import request

from ..policy import OWNERSHIP_VALUES
from ..storage_collection import StoragePage
from .bodies import json_object_body
from .params import bool_param, choice_param, int_param, string_or_null

LIST_LIMIT_MAX = 1000


def list_arguments() -> dict[str, Any]:
    """Parse a listing's ``offset``, ``limit`` (``0``, as the Python iterator sends, = the default), ``desc`` etc."""
    args = request.args
    limit = int_param(args, "limit", 0) or LIST_LIMIT_MAX
    return {
        "offset": int_param(args, "offset", 0) or 0,
        "limit": min(limit, LIST_LIMIT_MAX),
        "desc": bool_param(args, "desc"),
        "unnamed": bool_param(args, "unnamed"),
        "ownership": choice_param(args, "ownership", OWNERSHIP_VALUES, None),
    }


def page_head(page: StoragePage[Any]) -> dict[str, Any]:
    """Return the fields of a listing's ``data`` beside its ``items``."""
    return {
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
        "desc": page.desc,
        "count": len(page.items),
        "unnamed": bool_param(request.args, "unnamed"),
    }


def update_changes() -> dict[str, Any]:
    """Parse an update body (``name``, ``title``, ``generalAccess``) into repository keyword arguments."""
    body = json_object_body()
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = string_or_null(body, "name") or None  # "" makes it unnamed, as null does
    if "title" in body:
        changes["title"] = string_or_null(body, "title")
    if body.get("generalAccess") is not None:
        changes["general_access"] = body["generalAccess"]
    return changes


def create_schema() -> Any:
    """Read the optional ``{"schema": ...}`` of a create body (JSON ``{}``, an empty form body, or nothing)."""
    if request.mimetype == "application/x-www-form-urlencoded":
        return None  # the JS client's empty form body
    return json_object_body().get("schema")  # checked by the repository before anything is written
