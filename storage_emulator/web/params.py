"""Query-parameter and JSON-body parsing: every rejection names the parameter and the rule."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidParameter

INTEGER_PATTERN = re.compile(r"^[+-]?[0-9]+$")
TRUE_VALUES = ("true", "1")
FALSE_VALUES = ("false", "0")


def bool_param(args: Mapping[str, str], name: str, default: bool = False) -> bool:
    """Parse a boolean sent as ``true``/``false`` (Python client) or ``1``/``0`` (JS client)."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise InvalidParameter(name, "must be a boolean: true, false, 1 or 0")


def int_param(
    args: Mapping[str, str], name: str, default: int | None, *, minimum: int = 0, maximum: int | None = None
) -> int | None:
    """Parse a whole number within ``minimum..maximum``."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    rule = f"must be an integer ≥ {minimum}" + (f" and ≤ {maximum}" if maximum is not None else "")
    text = raw.strip()
    # int() would also take "1_000" and non-ASCII digits; the API takes plain decimal numbers only.
    if not INTEGER_PATTERN.match(text):
        raise InvalidParameter(name, rule)
    value = int(text)
    if value < minimum or (maximum is not None and value > maximum):
        raise InvalidParameter(name, rule)
    return value


def list_param(args: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    """Parse a comma-separated list; ``None`` when absent or empty."""
    raw = args.get(name)
    if not raw:
        return None
    values = tuple(part.strip() for part in raw.split(",") if part.strip())
    return values or None


def choice_param(args: Mapping[str, str], name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    """Parse one of a fixed set of values."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise InvalidParameter(name, "must be one of " + ", ".join(choices))
    return raw


def string_or_null(body: dict[str, Any], field: str) -> str | None:
    """Return a body field that must be a string or null."""
    value = body[field]
    if value is not None and not isinstance(value, str):
        raise InvalidParameter(field, "must be a string or null", location="body")
    return value
