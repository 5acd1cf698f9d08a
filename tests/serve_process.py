"""A ``storage-emulator serve`` subprocess for tests: start it, read the URL it prints, stop it by a signal."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT_ENV = "STORAGE_EMULATOR_ROOT"


def cli_env() -> dict[str, str]:
    """Return our environment without STORAGE_EMULATOR_ROOT."""
    return {key: value for key, value in os.environ.items() if key != ROOT_ENV}


class ServeProcess:
    """A ``storage-emulator serve`` subprocess whose stdout lines are read on a thread."""

    def __init__(self, args: list[str], stderr_path: Path) -> None:
        self.stderr_file = open(stderr_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "storage_emulator", *args],
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
            text=True,
            encoding="utf-8",
            env=cli_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for_url(self, timeout: float = 20) -> tuple[str, list[str]]:
        """Return the URL the server prints, and the lines printed up to it."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(line)
            match = re.search(r" at (http://127\.0\.0\.1:(\d+))\s*$", line)
            if match and int(match.group(2)) != 0:
                return match.group(1), seen
        raise AssertionError(f"no URL printed within {timeout}s; stdout so far: {seen!r}")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send the server a signal (SIGTERM unless told) and return its exit status."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=10)
        finally:
            self.stderr_file.close()
            if self.process.stdout is not None:
                self.process.stdout.close()

    def stderr_text(self) -> str:
        """Return what the server wrote to stderr (complete once it has stopped)."""
        if not self.stderr_file.closed:
            self.stderr_file.flush()
        return Path(self.stderr_file.name).read_text(encoding="utf-8", errors="replace")
