"""``storage-emulator run --events``: the Python SDK connects to the events websocket and gets its events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from test_run_command import RUN_TIMEOUT, only_run, read_record

# Waits for a persistState from the platform (the SDK's own interval is set far away), then for aborting.
ACTOR = r"""
import asyncio
from apify import Actor, Event

async def main():
    async with Actor:
        persisted, aborting = asyncio.Event(), asyncio.Event()
        Actor.on(Event.PERSIST_STATE, lambda data: persisted.set())
        Actor.on(Event.ABORTING, lambda data: aborting.set())
        await asyncio.wait_for(persisted.wait(), 120)
        await Actor.set_value("PERSISTED", {"ok": True})
        print("persisted", flush=True)
        await asyncio.wait_for(aborting.wait(), 120)
        await Actor.set_value("ABORTING", {"ok": True})
        await Actor.exit(exit_code=0)

asyncio.run(main())
"""


def test_events_websocket_sends_persist_state_and_aborting(storage_root: Path) -> None:
    env = {**os.environ, "APIFY_PERSIST_STATE_INTERVAL_MILLIS": "3600000"}  # only the platform's events count
    command = [sys.executable, "-m", "storage_emulator", "run", "--root", str(storage_root), "--events"]
    command += ["--persist-state-interval", "0.2", "--", sys.executable, "-c", ACTOR]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as emulator:
        assert emulator.stdout is not None and emulator.stderr is not None
        line = emulator.stdout.readline().strip()
        assert line == "persisted", emulator.stderr.read()[-4000:]
        emulator.send_signal(signal.SIGINT)  # the first Ctrl-C sends aborting, and does not interrupt
        assert emulator.wait(timeout=RUN_TIMEOUT) == 0, emulator.stderr.read()[-4000:]
        assert "sent aborting" in emulator.stderr.read()
    run = only_run(storage_root)
    assert (run.status, run.exit_code) == ("ABORTED", 0)
    assert read_record(storage_root, run.default_key_value_store_id, "PERSISTED") == {"ok": True}
    assert read_record(storage_root, run.default_key_value_store_id, "ABORTING") == {"ok": True}


def test_events_url_is_set_only_with_events(storage_root: Path) -> None:
    script = "import os; print(os.environ.get('ACTOR_EVENTS_WEBSOCKET_URL', '-'))"
    base = [sys.executable, "-m", "storage_emulator", "run", "--root", str(storage_root)]
    plain = subprocess.run([*base, "--", sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert plain.stdout.strip() == "-"
    with_events = subprocess.run(
        [*base, "--events", "--", sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert with_events.stdout.strip().startswith("ws://127.0.0.1:")
