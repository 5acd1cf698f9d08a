"""Request bodies of the Apify dialect: JSON, possibly compressed, within the 9 MiB limit."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from ..errors import InvalidInput
from ..push_body import read_body


def json_body() -> Any:
    """Parse the (possibly compressed) JSON body, at most 9 MiB decoded; ``None`` when empty."""
    raw = read_body(request.stream, request.headers.get("Content-Encoding"))
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidInput("The request body is not valid JSON") from None
    except RecursionError:
        raise InvalidInput("The request body is JSON nested too deeply to read") from None


def json_object_body() -> dict[str, Any]:
    """Parse a JSON object body; an empty body (or the JS client's empty form) is ``{}``."""
    if request.mimetype == "application/x-www-form-urlencoded":
        return {}
    body = json_body()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object")
    return body


def json_array_body() -> list[Any]:
    """Parse a JSON array body (a batch)."""
    body = json_body()
    if not isinstance(body, list):
        raise InvalidInput("The request body must be a JSON array of requests")
    return body
