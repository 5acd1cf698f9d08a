"""Actor runs: the run context an unmodified Actor asks the API for when it runs "at home".

A run is one small JSON file in the emulator's own folder, never a storage::

    <root>/.storage-emulator/runs/
        <runId>.json      # a ``RunRecord``; written atomically, every change under the run's file lock

A run names its default dataset, key-value store and request queue (created with it), its owner, its
status, status message and exit code, its pricing (``pricingInfo``: ``None`` or the platform's full shape)
and the pay-per-event charges counted so far, with the idempotency keys already charged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .accounts import DEFAULT_ACCOUNT, Account
from .errors import (
    CannotChargeApifyEvent,
    CannotChargeNonPayPerEventActor,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidParameter,
    RunCorrupted,
    RunNotFound,
)
from .files import atomic_write_text
from .locks import LOCK_WAIT_SECONDS, StorageLocks
from .models import EMULATOR_DIR, utc_now
from .naming import ID_PATTERN, new_id, safe_child
from .serializers import iso_time

log = logging.getLogger(__name__)

RUNS_DIR = "runs"
"""The runs' folder under ``<root>/.storage-emulator``."""
RUN_FILE_SUFFIX = ".json"
STATUSES = ("READY", "RUNNING", "SUCCEEDED", "FAILED", "TIMING-OUT", "TIMED-OUT", "ABORTING", "ABORTED")
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"})
PRICING_MODELS = ("FREE", "FLAT_PRICE_PER_MONTH", "PRICE_PER_DATASET_ITEM", "PAY_PER_EVENT")
PAY_PER_EVENT = "PAY_PER_EVENT"
PLATFORM_EVENT_PREFIX = "apify-"
MAX_IDEMPOTENCY_KEY_LENGTH = 256
MAX_STATUS_MESSAGE_LENGTH = 1000
MAX_EVENT_NAME_LENGTH = 256
LOCAL_ACTOR_ID = "localEmulatorActr"
"""The ``actId`` of runs started here: there is no Actor, only a command (17 characters, as ids are)."""
LOCAL_BUILD_ID = "localEmulatorBuld"
LOCAL_BUILD_NUMBER = "0.0.1"


class RunRecord(BaseModel):
    """One run as stored in ``<runId>.json`` (snake_case; ``to_api`` gives the platform's Run object)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    """Run id: 17 characters of ``[a-zA-Z0-9]``."""
    user_id: str
    """Owner's account id."""
    username: str
    """Owner's username."""
    actor_name: str | None = None
    """What ``storage-emulator run --name`` called the Actor (shown in listings and pages)."""
    origin: str = "API"
    """``meta.origin``: ``CLI`` for runs started by ``storage-emulator run``."""
    command: list[str] = Field(default_factory=list)
    """The command the run executes (informational)."""
    status: str = "RUNNING"
    """One of ``STATUSES``."""
    status_message: str | None = None
    """The Actor's last status message."""
    is_status_message_terminal: bool | None = None
    """Whether the status message is the final one."""
    status_message_level: str | None = None
    """JS's ``level`` of the last status message (``INFO``, ``ERROR``...)."""
    started_at: datetime
    finished_at: datetime | None = None
    exit_code: int | None = None
    default_dataset_id: str
    default_key_value_store_id: str
    default_request_queue_id: str
    general_access: str = "FOLLOW_USER_SETTING"
    timeout_secs: int = 3600
    memory_mbytes: int = 1024
    disk_mbytes: int = 2048
    max_total_charge_usd: float | None = None
    pricing_info: dict[str, Any] | None = None
    """``None`` (not pay-per-anything), or the platform's full pricing object (``normalize_pricing``)."""
    charged_event_counts: dict[str, int] = Field(default_factory=dict)
    """Events charged so far, by name."""
    charge_keys: dict[str, str] = Field(default_factory=dict)
    """Idempotency keys already charged → ``"<event>:<count>"``, so that a repeated key charges once."""

    def to_api(self) -> dict[str, Any]:
        """Return the platform's Run object (what ``GET /v2/actor-runs/{runId}`` answers in ``data``)."""
        options: dict[str, Any] = {
            "build": "latest",
            "timeoutSecs": self.timeout_secs,
            "memoryMbytes": self.memory_mbytes,
            "diskMbytes": self.disk_mbytes,
        }
        if self.max_total_charge_usd is not None:
            options["maxTotalChargeUsd"] = self.max_total_charge_usd
        finished = self.finished_at
        duration = ((finished or utc_now()) - self.started_at).total_seconds()
        return {
            "id": self.id,
            "actId": LOCAL_ACTOR_ID,
            "userId": self.user_id,
            "actorTaskId": None,
            "startedAt": iso_time(self.started_at),
            "finishedAt": iso_time(finished) if finished else None,
            "status": self.status,
            "statusMessage": self.status_message,
            "isStatusMessageTerminal": self.is_status_message_terminal,
            "meta": {"origin": self.origin},
            "stats": {"runTimeSecs": round(max(duration, 0.0), 3), "durationMillis": int(max(duration, 0.0) * 1000)},
            "options": options,
            "buildId": LOCAL_BUILD_ID,
            "buildNumber": LOCAL_BUILD_NUMBER,
            "exitCode": self.exit_code,
            "generalAccess": self.general_access,
            "defaultKeyValueStoreId": self.default_key_value_store_id,
            "defaultDatasetId": self.default_dataset_id,
            "defaultRequestQueueId": self.default_request_queue_id,
            "pricingInfo": self.pricing_info,
            "chargedEventCounts": dict(self.charged_event_counts),
            "usageTotalUsd": self.charged_usd(),
        }

    def to_list_item(self) -> dict[str, Any]:
        """Return the run as a listing shows it (the Python client's list item wants these fields)."""
        full = self.to_api()
        keys = (
            "id actId userId actorTaskId status startedAt finishedAt buildId buildNumber meta usageTotalUsd "
            "defaultKeyValueStoreId defaultDatasetId defaultRequestQueueId"
        ).split()
        return {key: full[key] for key in keys}

    def charged_usd(self) -> float:
        """Return what the charged events cost at their prices (0 for a run that is not pay-per-event)."""
        events = event_prices(self.pricing_info)
        return round(sum(events.get(name, 0.0) * count for name, count in self.charged_event_counts.items()), 6)


def event_prices(pricing_info: dict[str, Any] | None) -> dict[str, float]:
    """Return the price of each pay-per-event event (empty for other pricing models)."""
    if not pricing_info or pricing_info.get("pricingModel") != PAY_PER_EVENT:
        return {}
    events = pricing_info.get("pricingPerEvent", {}).get("actorChargeEvents", {})
    return {name: float(event.get("eventPriceUsd") or 0.0) for name, event in events.items()}


def normalize_pricing(raw: Any, *, now: datetime | None = None) -> dict[str, Any] | None:
    """Return a pricing object in the platform's full shape, or ``None``; raise ``InvalidInput`` naming the rule.

    The Python client rejects a ``pricingInfo`` without ``apifyMarginPercentage``, ``createdAt`` and
    ``startedAt`` (and pay-per-event events without a title and description), which kills ``Actor.init``:
    the missing ones are filled in here. ``{"pricingModel": "PAY_PER_EVENT", "pricingPerEvent":
    {"actorChargeEvents": {"page": {"eventPriceUsd": 0.01}}}}`` is enough.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidParameter("pricing", "must be a JSON object or null", location="body")
    model = raw.get("pricingModel")
    if model not in PRICING_MODELS:
        raise InvalidParameter("pricing.pricingModel", "must be one of " + ", ".join(PRICING_MODELS), location="body")
    when = iso_time(now or utc_now())
    pricing: dict[str, Any] = {"apifyMarginPercentage": 0, "createdAt": when, "startedAt": when, **raw}
    if model != PAY_PER_EVENT:
        return pricing
    per_event = raw.get("pricingPerEvent")
    events = per_event.get("actorChargeEvents") if isinstance(per_event, dict) else None
    if not isinstance(events, dict) or not events:
        raise InvalidParameter(
            "pricing.pricingPerEvent.actorChargeEvents",
            "must be an object of one or more events for PAY_PER_EVENT",
            location="body",
        )
    normalized: dict[str, Any] = {}
    for name, event in events.items():
        price = event.get("eventPriceUsd") if isinstance(event, dict) else None
        if not isinstance(price, int | float) or isinstance(price, bool) or price < 0:
            raise InvalidParameter(
                f"pricing.pricingPerEvent.actorChargeEvents.{name}.eventPriceUsd",
                "must be a number ≥ 0",
                location="body",
            )
        normalized[name] = {"eventTitle": name, "eventDescription": name, **event}
    pricing["pricingPerEvent"] = {**per_event, "actorChargeEvents": normalized}  # type: ignore[dict-item]
    return pricing


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a run id (17 of ``[a-zA-Z0-9]``), else raise ``RunNotFound``: no path from it."""
    if not isinstance(run_id, str) or not ID_PATTERN.match(run_id):
        raise RunNotFound(run_id)
    return run_id


class RunRepository:
    """The runs under ``<root>/.storage-emulator/runs``."""

    def __init__(self, root: str | os.PathLike[str], *, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / EMULATOR_DIR / RUNS_DIR
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.locks = StorageLocks(self.root / EMULATOR_DIR / "locks", wait_seconds=lock_wait_seconds)

    def path_to_run(self, run_id: str) -> Path:
        """Return the file of a run, after checking the id (the second wall is ``safe_child``)."""
        return safe_child(self.runs_dir, check_run_id(run_id) + RUN_FILE_SUFFIX)

    def _read(self, run_id: str) -> RunRecord:
        path = self.path_to_run(run_id)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise RunNotFound(run_id) from None
        except OSError as exc:
            raise RunCorrupted(f"The run file of {run_id} cannot be read ({exc})") from exc
        try:
            return RunRecord.model_validate_json(data)
        except ValidationError as exc:
            raise RunCorrupted(f"The run file of {run_id} cannot be read ({exc.errors()[0]['msg']})") from exc

    def _write(self, run: RunRecord) -> None:
        atomic_write_text(self.path_to_run(run.id), run.model_dump_json(indent=2))

    @contextmanager
    def _locked(self, run_id: str) -> Iterator[RunRecord]:
        check_run_id(run_id)
        with self.locks.hold("run", run_id):
            yield self._read(run_id)

    def create_run(
        self,
        *,
        owner: Account = DEFAULT_ACCOUNT,
        default_dataset_id: str,
        default_key_value_store_id: str,
        default_request_queue_id: str,
        pricing_info: dict[str, Any] | None = None,
        actor_name: str | None = None,
        origin: str = "API",
        command: list[str] | None = None,
        max_total_charge_usd: float | None = None,
        timeout_secs: int = 3600,
        memory_mbytes: int = 1024,
    ) -> RunRecord:
        """Create a ``RUNNING`` run over existing default storages and return it."""
        run = RunRecord(
            id=new_id(),
            user_id=owner.id,
            username=owner.username,
            actor_name=actor_name,
            origin=origin,
            command=list(command or []),
            started_at=utc_now(),
            default_dataset_id=default_dataset_id,
            default_key_value_store_id=default_key_value_store_id,
            default_request_queue_id=default_request_queue_id,
            pricing_info=pricing_info,
            max_total_charge_usd=max_total_charge_usd,
            timeout_secs=timeout_secs,
            memory_mbytes=memory_mbytes,
        )
        with self.locks.hold("run", run.id):
            self._write(run)
        return run

    def get_run(self, run_id: str) -> RunRecord:
        """Return a run, or raise ``RunNotFound``."""
        return self._read(run_id)

    def list_runs(self, *, owner: Account, status: str | None = None, desc: bool = False) -> list[RunRecord]:
        """Return the owner's runs, oldest first (``desc``: newest first); a broken file is skipped and logged."""
        runs = []
        for path in self.runs_dir.glob("*" + RUN_FILE_SUFFIX):
            run_id = path.name[: -len(RUN_FILE_SUFFIX)]
            if not ID_PATTERN.match(run_id):
                continue
            try:
                run = self._read(run_id)
            except (RunNotFound, RunCorrupted) as exc:
                log.warning("run %s skipped in the listing: %s", run_id, exc)
                continue
            if run.user_id == owner.id and (status is None or run.status == status):
                runs.append(run)
        runs.sort(key=lambda run: (run.started_at, run.id), reverse=desc)
        return runs

    def update_run(
        self,
        run_id: str,
        *,
        status_message: str | None = None,
        is_status_message_terminal: bool | None = None,
        level: str | None = None,
        general_access: str | None = None,
    ) -> RunRecord:
        """Change the status message (and its terminal flag and level) or the general access of a run."""
        if status_message is not None and len(status_message) > MAX_STATUS_MESSAGE_LENGTH:
            raise InvalidParameter(
                "statusMessage", f"must be at most {MAX_STATUS_MESSAGE_LENGTH} characters", location="body"
            )
        with self._locked(run_id) as run:
            changes: dict[str, Any] = {}
            if status_message is not None:
                changes["status_message"] = status_message
                changes["is_status_message_terminal"] = bool(is_status_message_terminal)
                changes["status_message_level"] = level
            elif is_status_message_terminal is not None:
                changes["is_status_message_terminal"] = is_status_message_terminal
            if general_access is not None:
                changes["general_access"] = general_access
            updated = run.model_copy(update=changes)
            self._write(updated)
            return updated

    def finish_run(self, run_id: str, *, status: str, exit_code: int | None) -> RunRecord:
        """Record how a run ended: its terminal status, exit code and finish time."""
        if status not in TERMINAL_STATUSES:
            raise InvalidParameter("status", "must be one of " + ", ".join(sorted(TERMINAL_STATUSES)))
        with self._locked(run_id) as run:
            updated = run.model_copy(update={"status": status, "exit_code": exit_code, "finished_at": utc_now()})
            self._write(updated)
            return updated

    def charge(self, run_id: str, *, event_name: Any, count: Any, idempotency_key: str | None) -> RunRecord:
        """Count ``count`` events of ``event_name``; a repeated ``idempotency_key`` charges once.

        Refuses a run that is not pay-per-event, a platform (``apify-``) event, an event that is not in the
        run's ``actorChargeEvents``, and a key already used for a different charge.
        """
        if not isinstance(event_name, str) or not 1 <= len(event_name) <= MAX_EVENT_NAME_LENGTH:
            raise InvalidParameter(
                "eventName", f"must be a string of 1 to {MAX_EVENT_NAME_LENGTH} characters", location="body"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidParameter("count", "must be an integer ≥ 1", location="body")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            raise InvalidIdempotencyKey(
                f"The idempotency-key header must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
            )
        if event_name.startswith(PLATFORM_EVENT_PREFIX):
            raise CannotChargeApifyEvent(f"Cannot charge the platform event '{event_name}': only Apify charges those")
        with self._locked(run_id) as run:
            pricing = run.pricing_info
            if not pricing or pricing.get("pricingModel") != PAY_PER_EVENT:
                raise CannotChargeNonPayPerEventActor("Cannot charge a run of an Actor that is not pay-per-event")
            if event_name not in event_prices(pricing):
                raise InvalidInput(f"The event '{event_name}' is not one of the Actor's charge events")
            charge = f"{event_name}:{count}"
            if idempotency_key is not None and idempotency_key in run.charge_keys:
                if run.charge_keys[idempotency_key] != charge:
                    raise InvalidIdempotencyKey("The idempotency-key was already used for a different charge")
                return run  # charged already: once is enough
            counts = dict(run.charged_event_counts)
            counts[event_name] = counts.get(event_name, 0) + count
            keys = dict(run.charge_keys)
            if idempotency_key is not None:
                keys[idempotency_key] = charge
            updated = run.model_copy(update={"charged_event_counts": counts, "charge_keys": keys})
            self._write(updated)
            return updated
