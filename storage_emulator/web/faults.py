"""Fault injection: make chosen requests answer 429/500/502/503, lose their connection, or wait first.

Rules come from ``serve --faults FILE`` or ``POST /_emulator/faults``, are listed at ``GET /_emulator/faults``
and cleared by ``DELETE /_emulator/faults`` and by reset. A rule, in JSON::

    {"method": "GET", "path": "/v2/datasets/*", "status": 503, "times": 2}
    {"path": "/v2/datasets/*/items", "drop": true, "probability": 0.5, "seed": 7}
    {"method": "POST", "path": "/v2/datasets", "delay_ms": 1500, "times": 1}

``method`` (default ``*``) and ``path`` (a glob over the path without the query; ``*`` also matches ``/``)
choose the requests; exactly one action follows: ``status`` (429, 500, 502 or 503, answered in the Apify
error envelope, with ``Retry-After: retry_after`` seconds for 429 and 503, default 0), ``drop`` (the
connection is shut without an answer) or ``delay_ms`` (the request then proceeds). ``times`` caps how
often the rule fires (default: always); ``probability`` (default 1) fires it on that share of the
requests it matches, drawn from ``seed`` when given, so a run is repeatable. The first rule that
matches and fires wins; the emulator's own routes (``/health``, ``/_emulator/...``) are never faulted.

The rules and their counters live in ``<root>/.storage-emulator/faults.json`` (read-modify-write under a
file lock), so every worker process of ``serve --workers N`` sees the same rules and the same counts.
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import time
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock
from flask import Flask, Response, request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

from ..errors import InjectedFault, InvalidInput, InvalidParameter
from ..files import atomic_write_text
from ..models import EMULATOR_DIR
from ..serving import drop_connection
from .envelopes import error_response

FAULTS_FILENAME = "faults.json"
EXTENSION = "storage_emulator_faults"
EXEMPT_PREFIX = "/_emulator/"
EXEMPT_PATHS = frozenset({"/health"})
RETRY_AFTER_STATUSES = (429, 503)


class FaultRule(BaseModel):
    """One fault rule, as written in a faults file or posted to ``/_emulator/faults``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = "*"
    """HTTP method to match (``*``: any), after any ``?method=`` override."""
    path: str = Field(min_length=1)
    """Glob over the request path (no query); ``*`` matches any characters, ``/`` included."""
    status: Literal[429, 500, 502, 503] | None = None
    """Answer this status in the Apify error envelope."""
    drop: StrictBool = False
    """Shut the connection without answering."""
    delay_ms: StrictInt | None = Field(default=None, ge=1, le=600_000)
    """Wait this many milliseconds, then serve the request as usual."""
    times: StrictInt | None = Field(default=None, ge=1)
    """Fire at most this many times (default: every time)."""
    probability: float = Field(default=1.0, gt=0, le=1)
    """Fire on this share of the matching requests."""
    seed: StrictInt | None = None
    """Seed of the probability draws, so the same requests fire in every run."""
    retry_after: StrictInt | None = Field(default=None, ge=0, le=3600)
    """``Retry-After`` seconds of a 429 or 503 answer (default 0)."""

    @model_validator(mode="after")
    def _one_action(self) -> FaultRule:
        actions = [self.status is not None, self.drop, self.delay_ms is not None]
        if sum(actions) != 1:
            raise ValueError("give exactly one action: status, drop (true) or delay_ms")
        if self.retry_after is not None and self.status not in RETRY_AFTER_STATUSES:
            raise ValueError("retry_after goes with status 429 or 503 only")
        return self

    def matches(self, method: str, path: str) -> bool:
        """Tell whether the rule chooses this request."""
        return (self.method == "*" or self.method.upper() == method) and fnmatch.fnmatchcase(path, self.path)

    def describe(self) -> str:
        """Say what the rule does, for messages."""
        action = f"status {self.status}" if self.status else "drop" if self.drop else f"delay {self.delay_ms} ms"
        return f"{action} for {self.method} {self.path}"


def parse_rules(data: Any, *, where: str = "body") -> list[FaultRule]:
    """Parse a rule, a list of rules or ``{"rules": [...]}``; a bad rule raises ``InvalidParameter`` naming it."""
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    raw_rules = data if isinstance(data, list) else [data]
    rules = []
    for index, raw in enumerate(raw_rules):
        name = f"rules[{index}]"
        if not isinstance(raw, dict):
            raise InvalidParameter(name, "must be a JSON object", location=where)
        try:
            rules.append(FaultRule.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise InvalidParameter(f"{name}.{field}" if field else name, message, location=where) from None
    return rules


def read_rules_file(path: Path) -> list[FaultRule]:
    """Read a faults file (JSON: a rule, a list of rules or ``{"rules": [...]}``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"The faults file {path} cannot be read: {exc}") from exc
    return parse_rules(data, where=str(path))


class FaultStore:
    """The fault rules of a storage root and how often each matched and fired, shared by every process."""

    def __init__(self, root: Path) -> None:
        self.path = root / EMULATOR_DIR / FAULTS_FILENAME
        self._lock = FileLock(str(self.path) + ".lock")
        self._cache: tuple[tuple[int, int, int], list[dict[str, Any]]] | None = None

    def _stat_key(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self) -> list[dict[str, Any]]:
        try:
            entries: list[dict[str, Any]] = json.loads(self.path.read_text(encoding="utf-8"))["rules"]
        except FileNotFoundError:
            return []
        return entries

    def _write(self, entries: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"rules": entries}, indent=2) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        """Return every rule with its ``id``, ``matched`` and ``injected`` counts."""
        key = self._stat_key()
        if key is None:
            return []
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._read())
        return self._cache[1]

    def add(self, rules: list[FaultRule]) -> list[dict[str, Any]]:
        """Append rules after the existing ones; return them as stored."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            entries = self._read()
            next_id = max((entry["id"] for entry in entries), default=0) + 1
            added = [
                {"id": next_id + n, "rule": rule.model_dump(exclude_defaults=True), "matched": 0, "injected": 0}
                for n, rule in enumerate(rules)
            ]
            self._write(entries + added)
        return added

    def clear(self) -> int:
        """Remove every rule; return how many there were."""
        if not self.path.exists():
            return 0
        with self._lock:
            count = len(self._read())
            self.path.unlink(missing_ok=True)
        return count

    def fire(self, method: str, path: str) -> tuple[int, FaultRule] | None:
        """Count the request against the rules that match it; return the rule that fires, if any."""
        if not any(_live(entry) and _rule(entry).matches(method, path) for entry in self.entries()):
            return None  # the common case: one stat, no lock
        with self._lock:
            entries = self._read()
            fired: tuple[int, FaultRule] | None = None
            for entry in entries:
                rule = _rule(entry)
                if not (_live(entry) and rule.matches(method, path)):
                    continue
                draw = entry["matched"]
                entry["matched"] += 1
                if _fires(rule, entry["id"], draw):
                    entry["injected"] += 1
                    fired = (entry["id"], rule)
                    break
            self._write(entries)
        return fired


def _rule(entry: dict[str, Any]) -> FaultRule:
    return FaultRule.model_validate(entry["rule"])


def _live(entry: dict[str, Any]) -> bool:
    times = entry["rule"].get("times")
    return times is None or entry["injected"] < times


def _fires(rule: FaultRule, rule_id: int, draw: int) -> bool:
    if rule.probability >= 1:
        return True
    rng = random.Random(f"{rule.seed}:{rule_id}:{draw}") if rule.seed is not None else random
    return rng.random() < rule.probability


def fault_store(app: Flask) -> FaultStore:
    """Return the app's fault store."""
    return app.extensions[EXTENSION]  # type: ignore[no-any-return]


def install(app: Flask, root: Path) -> None:
    """Check every request against the root's fault rules before it reaches its view."""
    store = FaultStore(root)
    app.extensions[EXTENSION] = store

    @app.before_request
    def inject_fault() -> Response | None:
        path = request.path
        if path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIX):
            return None
        fired = store.fire(request.method, path)
        if fired is None:
            return None
        rule_id, rule = fired
        if rule.delay_ms is not None:
            time.sleep(rule.delay_ms / 1000)
            return None
        message = f"Injected fault: rule {rule_id} ({rule.describe()})"
        if rule.drop:
            if drop_connection(request.environ):
                return Response(status=204)  # never arrives: the connection is already shut
            message += "; this server exposes no socket to drop, so it answers 503 instead"
        response = error_response(InjectedFault(rule.status or 503, message))
        if response.status_code in RETRY_AFTER_STATUSES:
            response.headers["Retry-After"] = str(rule.retry_after or 0)
        return response
