"""Run a piece of Crawlee for Python code in a fresh process, as a user's crawler runs: a shared test helper.

Crawlee caches opened storages process-wide, so each step of an interop test gets its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any


def run_crawlee(prelude: str, root: Path, body: str, **args: Any) -> Any:
    """Run ``body`` as an async ``main()`` after ``prelude`` (which reads ROOT and ARGS); return its JSON result."""
    script = (
        prelude
        + "\n\nasync def main():\n"
        + textwrap.indent(textwrap.dedent(body).strip(), "    ")
        + "\n\n\nprint(json.dumps(asyncio.run(main())))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CRAWLEE_", "APIFY_"))}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(root), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
