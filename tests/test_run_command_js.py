"""``storage-emulator run`` with an unmodified Apify SDK Actor for JS (``apify`` + ``crawlee`` from npm).

CheerioCrawler over RequestQueueV2 (locking), a named dataset, a pay-per-event charge, OUTPUT: under the
command, and under a hand-set environment against a live server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from local_site import SITE_PAGES, site  # noqa: F401 - the local-site fixture
from test_run_command import PRICING, RUN_TIMEOUT, assert_crawled, emulator_run, only_run

from storage_emulator.accounts import DEFAULT_ACCOUNT
from storage_emulator.cli_run import OPEN_MODE_TOKEN, create_run, run_environment
from storage_emulator.runs import RunRepository, normalize_pricing

JS_DIR = Path(__file__).resolve().parent / "js"
ACTOR = JS_DIR / "actor.mjs"
# JS's Actor.exit sends its final status message and exits 1 ms later without waiting for the answer, so
# the PUT may never arrive: the crawler's own terminal message (awaited) may be the last one the run keeps.
FINAL_MESSAGES = (
    f"Crawled {SITE_PAGES} pages",
    f"Finished! Total {SITE_PAGES} requests: {SITE_PAGES} succeeded, 0 failed.",
)


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("`node` is not on PATH: install Node.js 20+ to run the JS tests")
    for package in ("apify", "crawlee"):
        if not (JS_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail("tests/js/node_modules is missing: run `(cd tests/js && npm ci)` first")
    return found


def test_js_sdk_actor_under_run(storage_root: Path, site: str, tmp_path: Path) -> None:  # noqa: F811
    pricing = tmp_path / "pricing.json"
    pricing.write_text(json.dumps(PRICING))
    actor_input = json.dumps({"startUrl": f"{site}/page/0"})

    done = emulator_run(storage_root, "--input", actor_input, "--pricing", str(pricing), "--", node(), str(ACTOR))

    assert done.returncode == 0, done.stderr[-6000:]
    run = only_run(storage_root)
    assert (run.status, run.exit_code) == ("SUCCEEDED", 0)
    assert_crawled(storage_root, run, site, named_dataset="js-pages", final_messages=FINAL_MESSAGES)
    assert run.status_message_level == "INFO"  # JS sends the level with its final message


def test_js_sdk_actor_with_a_hand_set_environment(
    storage_root: Path,
    site: str,  # noqa: F811
    live_server: Any,
) -> None:
    record = (json.dumps({"startUrl": f"{site}/page/0"}).encode(), "application/json")
    run = create_run(storage_root, owner=DEFAULT_ACCOUNT, input_record=record, pricing_info=normalize_pricing(PRICING))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("APIFY_", "ACTOR_", "CRAWLEE_"))}
    essential = run_environment(run, api_url=live_server.url, token=OPEN_MODE_TOKEN)
    for key in ("APIFY_IS_AT_HOME", "APIFY_API_BASE_URL", "APIFY_TOKEN", "ACTOR_RUN_ID"):
        env[key] = essential[key]
    for key in ("DATASET", "KEY_VALUE_STORE", "REQUEST_QUEUE"):
        env[f"ACTOR_DEFAULT_{key}_ID"] = essential[f"ACTOR_DEFAULT_{key}_ID"]

    done = subprocess.run([node(), str(ACTOR)], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)

    assert done.returncode == 0, done.stderr[-6000:]
    assert_crawled(
        storage_root,
        RunRepository(storage_root).get_run(run.id),
        site,
        named_dataset="js-pages",
        final_messages=FINAL_MESSAGES,
    )
