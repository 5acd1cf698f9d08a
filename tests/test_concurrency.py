"""Name-based creation races between real processes: one dataset, one folder, one id."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

RACERS = 8

HTTP_RACER = """
import sys, time
from apify_client import ApifyClient
url, start_at = sys.argv[1], float(sys.argv[2])
client = ApifyClient(token="t", api_url=url, max_retries=0)
while time.time() < start_at:
    time.sleep(0.001)
print(client.datasets().get_or_create(name="raced").id)
"""

REPOSITORY_RACER = """
import sys, time
from storage_emulator import DatasetRepository
root, start_at = sys.argv[1], float(sys.argv[2])
repo = DatasetRepository(root)
while time.time() < start_at:
    time.sleep(0.001)
print(repo.get_or_create_dataset(name="raced")[0].id)
"""


def race(script: str, target: str) -> list[str]:
    """Start RACERS processes that all call get-or-create at the same instant; return their ids."""
    start_at = time.time() + 3  # time for every interpreter to start and import
    procs = [
        subprocess.Popen([sys.executable, "-c", script, target, str(start_at)], stdout=subprocess.PIPE, text=True)
        for _ in range(RACERS)
    ]
    outputs = [proc.communicate(timeout=60)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * RACERS
    return outputs


def test_processes_racing_through_http_get_one_dataset(live_server, storage_root: Path) -> None:  # type: ignore[no-untyped-def]
    ids = race(HTTP_RACER, live_server.url)

    assert len(set(ids)) == 1 and len(ids[0]) == 17
    assert [p.name for p in (storage_root / "datasets").iterdir()] == ["raced"]


def test_processes_racing_through_the_repository_get_one_dataset(storage_root: Path) -> None:
    storage_root.mkdir(parents=True)

    ids = race(REPOSITORY_RACER, str(storage_root))

    assert len(set(ids)) == 1
    assert [p.name for p in (storage_root / "datasets").iterdir()] == ["raced"]
