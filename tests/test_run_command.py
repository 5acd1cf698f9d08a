"""``storage-emulator run``: an unmodified Apify SDK Actor for Python at home, and the command's own behaviour.

Every Actor run is a real process (the SDK, Crawlee and its event loop, as on the platform); the test
checks the storages on disk afterwards, through the repositories and the official client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from local_site import SITE_PAGES, site  # noqa: F401 - the local-site fixture

from storage_emulator.accounts import DEFAULT_ACCOUNT
from storage_emulator.cli_run import OPEN_MODE_TOKEN, create_run, run_environment
from storage_emulator.key_value_stores import KeyValueStoreRepository
from storage_emulator.repository import DatasetRepository
from storage_emulator.request_queues import RequestQueueRepository
from storage_emulator.runs import RunRecord, RunRepository, normalize_pricing

ACTORS = Path(__file__).resolve().parent / "actors"
PRICING = {
    "pricingModel": "PAY_PER_EVENT",
    "pricingPerEvent": {"actorChargeEvents": {"page": {"eventPriceUsd": 0.001}}},
}
RUN_TIMEOUT = 240


def emulator_run(root: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``storage-emulator run`` in its own process."""
    command = [sys.executable, "-m", "storage_emulator", "run", "--root", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT, **kwargs)


def only_run(root: Path) -> RunRecord:
    runs = RunRepository(root).list_runs(owner=DEFAULT_ACCOUNT)
    assert len(runs) == 1
    return runs[0]


def read_record(root: Path, store_id: str, key: str) -> Any:
    _, handle = KeyValueStoreRepository(root).get_record(store_id, key)
    with handle:
        return json.loads(handle.read())


def assert_crawled(
    root: Path,
    run: RunRecord,
    site: str,  # noqa: F811
    named_dataset: str = "py-pages",
    final_messages: tuple[str, ...] = (f"Crawled {SITE_PAGES} pages",),
) -> None:
    """Check what the test Actors write: every page once, in both datasets, OUTPUT, the charges."""
    pages = {f"{site}/page/{n}" for n in range(SITE_PAGES)}
    datasets = DatasetRepository(root)
    items = list(datasets.read_items(run.default_dataset_id).items())
    assert sorted(item["url"] for item in items) == sorted(pages)  # each page once
    named = list(datasets.read_items(f"~{named_dataset}").items())
    assert sorted(item["url"] for item in named) == sorted(pages)
    assert read_record(root, run.default_key_value_store_id, "OUTPUT") == {"handled": SITE_PAGES, "failed": 0}
    queue = RequestQueueRepository(root).get_request_queue(run.default_request_queue_id)
    assert (queue.total_request_count, queue.handled_request_count, queue.pending_request_count) == (
        SITE_PAGES,
        SITE_PAGES,
        0,
    )
    assert run.charged_event_counts == {"page": SITE_PAGES}
    assert run.status_message in final_messages and run.is_status_message_terminal is True


def test_python_sdk_actor_under_run(storage_root: Path, site: str, tmp_path: Path) -> None:  # noqa: F811
    pricing = tmp_path / "pricing.json"
    pricing.write_text(json.dumps(PRICING))
    actor_input = json.dumps({"startUrl": f"{site}/page/0", "maxPages": 100})

    done = emulator_run(
        storage_root,
        "--input",
        actor_input,
        "--pricing",
        str(pricing),
        "--name",
        "py-actor",
        "--",
        sys.executable,
        str(ACTORS / "python_actor.py"),
    )

    assert done.returncode == 0, done.stderr[-6000:]
    run = only_run(storage_root)
    assert (run.status, run.exit_code, run.actor_name) == ("SUCCEEDED", 0, "py-actor")
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert_crawled(storage_root, run, site)
    assert f"run {run.id}: SUCCEEDED, exit code 0" in done.stderr
    assert f"dataset default: {SITE_PAGES} item(s)" in done.stderr
    assert f"dataset py-pages: {SITE_PAGES} item(s)" in done.stderr
    assert f"request queue default: {SITE_PAGES} handled, 0 pending" in done.stderr
    assert f"charged: page × {SITE_PAGES}" in done.stderr


def test_python_sdk_actor_with_a_hand_set_environment(
    storage_root: Path,
    site: str,  # noqa: F811
    live_server: Any,
) -> None:
    record = (json.dumps({"startUrl": f"{site}/page/0"}).encode(), "application/json")
    run = create_run(storage_root, owner=DEFAULT_ACCOUNT, input_record=record, pricing_info=normalize_pricing(PRICING))
    # Only what the spec's §7 calls essential, no pricing variables: the SDK GETs the run for its pricing.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("APIFY_", "ACTOR_", "CRAWLEE_"))}
    essential = run_environment(run, api_url=live_server.url, token=OPEN_MODE_TOKEN)
    for key in ("APIFY_IS_AT_HOME", "APIFY_API_BASE_URL", "APIFY_API_PUBLIC_BASE_URL", "APIFY_TOKEN", "ACTOR_RUN_ID"):
        env[key] = essential[key]
    for key in ("DATASET", "KEY_VALUE_STORE", "REQUEST_QUEUE"):
        env[f"ACTOR_DEFAULT_{key}_ID"] = essential[f"ACTOR_DEFAULT_{key}_ID"]

    done = subprocess.run(
        [sys.executable, str(ACTORS / "python_actor.py")], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )

    assert done.returncode == 0, done.stderr[-6000:]
    assert_crawled(storage_root, RunRepository(storage_root).get_run(run.id), site)


def test_run_records_a_failing_exit_code_and_passes_it_on(storage_root: Path) -> None:
    done = emulator_run(storage_root, "--", sys.executable, "-c", "import sys; sys.exit(3)")
    assert done.returncode == 3
    run = only_run(storage_root)
    assert (run.status, run.exit_code) == ("FAILED", 3)


def test_run_sets_the_platform_variables(storage_root: Path, tmp_path: Path) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text('{"a": 1}')
    script = (
        "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k[:6] in ('APIFY_', 'ACTOR_')}))"
    )
    done = emulator_run(storage_root, "--input", str(input_file), "--", sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr
    env = json.loads(done.stdout.strip().splitlines()[-1])
    run = only_run(storage_root)
    assert env["APIFY_IS_AT_HOME"] == "1" and env["ACTOR_RUN_ID"] == run.id
    assert env["APIFY_API_BASE_URL"].startswith("http://127.0.0.1:")
    assert env["APIFY_API_PUBLIC_BASE_URL"] == env["APIFY_API_BASE_URL"]
    assert env["ACTOR_DEFAULT_DATASET_ID"] == run.default_dataset_id
    assert env["ACTOR_DEFAULT_KEY_VALUE_STORE_ID"] == run.default_key_value_store_id
    assert env["ACTOR_DEFAULT_REQUEST_QUEUE_ID"] == run.default_request_queue_id
    assert env["ACTOR_INPUT_KEY"] == "INPUT" and env["APIFY_TOKEN"]
    assert "APIFY_ACTOR_PRICING_INFO" not in env  # not pay-per-anything: the SDK reads the run's null
    assert read_record(storage_root, run.default_key_value_store_id, "INPUT") == {"a": 1}


def test_run_forwards_sigterm_and_records_the_abort(storage_root: Path) -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    command = [sys.executable, "-m", "storage_emulator", "run", "--root", str(storage_root), "--"]
    with subprocess.Popen(
        [*command, sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as emulator:
        assert emulator.stdout is not None
        assert emulator.stdout.readline().strip() == "ready"
        emulator.send_signal(signal.SIGTERM)
        assert emulator.wait(timeout=60) == 7  # the child's own exit code, from its SIGTERM handler
    run = only_run(storage_root)
    assert (run.status, run.exit_code) == ("ABORTED", 7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "{not json"], "--input"),
        (["--pricing", "missing.json"], "missing.json"),
        ([], "after '--'"),
    ],
)
def test_bad_run_options_create_no_run(storage_root: Path, args: list[str], message: str) -> None:
    done = emulator_run(storage_root, *args, *(["--", sys.executable, "-c", "pass"] if args else []))
    assert done.returncode == 2
    assert message in done.stderr
    assert RunRepository(storage_root).list_runs(owner=DEFAULT_ACCOUNT) == []


def test_bad_pricing_file_names_the_rule(storage_root: Path, tmp_path: Path) -> None:
    pricing = tmp_path / "pricing.json"
    pricing.write_text('{"pricingModel": "PAY_PER_EVENT"}')
    done = emulator_run(storage_root, "--pricing", str(pricing), "--", sys.executable, "-c", "pass")
    assert done.returncode == 2 and "actorChargeEvents" in done.stderr
    assert RunRepository(storage_root).list_runs(owner=DEFAULT_ACCOUNT) == []


def test_run_uses_a_given_server(storage_root: Path, live_server: Any) -> None:
    script = "import os; print(os.environ['APIFY_API_BASE_URL'])"
    done = emulator_run(storage_root, "--server", live_server.url, "--", sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == live_server.url
    run = only_run(storage_root)
    assert f"browse: {live_server.url}/view/runs/{run.id}" in done.stderr
    with urllib.request.urlopen(f"{live_server.url}/v2/actor-runs/{run.id}") as answer:
        assert json.loads(answer.read())["data"]["status"] == "SUCCEEDED"
