"""Churn: processes creating, deleting, renaming, listing and resolving datasets on one server at once.

Every answer must be a success or a 4xx (never >= 500), and every listing a consistent snapshot: no
dataset twice, none that was never created. ``CHURN_SECONDS`` sets how long the race runs (default 6;
the figures in the README come from a 30-second run).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

from storage_emulator import DatasetRepository

CHURN_SECONDS = float(os.environ.get("CHURN_SECONDS", "6"))
ROLES = ["creator", "creator", "deleter", "renamer", "lister", "lister", "resolver", "pusher"]


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """Send one request; return the status and the parsed JSON body (or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def churn(role: str, base: str, seconds: float, seed: int) -> dict[str, Any]:
    """Play one role against the server until time is up; report statuses, ids made and listing faults."""
    rng = random.Random(seed)
    statuses: Counter[str] = Counter()
    created: list[str] = []
    listed: set[str] = set()
    faults: list[str] = []
    known: list[str] = []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        if role == "creator":
            name = f"c{seed}-{n}" if n % 3 else ""
            status, body = call(f"{base}/v2/datasets?name={name}", "POST", {})
            if status in (200, 201):
                created.append(body["data"]["id"])
        elif role == "lister":
            path = "/v2/datasets?unnamed=true&limit=1000" if n % 2 else "/api/v1/org/local/datasets?limit=200"
            status, body = call(base + path)
            if status == 200:
                rows = body["data"]["items"] if "data" in body else body["datasets"]
                ids = [row["id"] for row in rows]
                if len(ids) != len(set(ids)):
                    faults.append(f"a dataset twice in one listing of {path}")
                if "data" in body:
                    listed.update(ids)
        else:
            status, body = call(f"{base}/v2/datasets?unnamed=true&limit=50&desc=true")
            statuses[str(status)] += 1
            if status == 200:
                known = [row["id"] for row in body["data"]["items"]] or known
            if not known:
                continue
            target = rng.choice(known)
            if role == "deleter":
                status, _ = call(f"{base}/v2/datasets/{target}", "DELETE")
            elif role == "renamer":
                status, _ = call(f"{base}/v2/datasets/{target}", "PUT", {"name": f"r{seed}-{n}"})
            elif role == "resolver":
                status, _ = call(f"{base}/v2/datasets/{target}")
                statuses[str(status)] += 1
                status, _ = call(f"{base}/v2/datasets/{target}/items?limit=5")
            else:  # pusher
                status, _ = call(f"{base}/v2/datasets/{target}/items", "POST", [{"n": n}, {"n": n + 1}])
        statuses[str(status)] += 1
    return {"statuses": statuses, "created": created, "listed": sorted(listed), "faults": faults}


def test_churn_never_answers_5xx_and_listings_stay_consistent(repo: DatasetRepository, live_server: Any) -> None:
    """Eight processes race on one root; all answers are < 500 and listings hold each real dataset once."""
    seeded = [repo.get_or_create_dataset(f"seed-{i}")[0].id for i in range(20)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(ROLES)) as pool:
        jobs = [pool.apply_async(churn, (role, live_server.url, CHURN_SECONDS, i)) for i, role in enumerate(ROLES)]
        results = [job.get(timeout=CHURN_SECONDS + 120) for job in jobs]

    statuses: Counter[str] = sum((Counter(r["statuses"]) for r in results), Counter())
    print(f"churn {CHURN_SECONDS:g} s, {len(ROLES)} processes: {sum(statuses.values())} requests, {dict(statuses)}")
    assert not [code for code in statuses if int(code) >= 500], statuses
    assert sum(statuses.values()) > 100, "the race did not run"
    assert statuses["201"] > 0 and statuses["204"] > 0, "nothing was created or deleted: no churn to test"
    assert [fault for r in results for fault in r["faults"]] == []
    ever_created = set(seeded) | {dataset_id for r in results for dataset_id in r["created"]}
    never_created = {dataset_id for r in results for dataset_id in r["listed"]} - ever_created
    assert never_created == set()
