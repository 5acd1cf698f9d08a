"""The official JavaScript apify-client 2.x key-value store calls against a live server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent / "js" / "run_kv_client.js"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_js_client_key_value_store_calls(live_server: Any, storage_root: Path) -> None:
    """getOrCreate, records of three kinds (one brotli-compressed), keys pages, public URL, 404 → undefined."""
    if not (SCRIPT.parent / "node_modules" / "apify-client").is_dir():
        pytest.fail("tests/js/node_modules is missing: run `npm ci` in tests/js (scripts/test.sh does)")
    run = subprocess.run(
        ["node", str(SCRIPT), live_server.url], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["keys"] == ["INPUT", "bin", "large", "text"]
    assert not (storage_root / "key_value_stores" / "js-store").exists()  # deleted at the end, folder and all
