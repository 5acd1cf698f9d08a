"""Items under real concurrency and real crashes: no item lost, duplicated or overwritten."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from storage_emulator import DatasetRepository

PER_WRITER = 1000

HTTP_WRITER = """
import sys
from apify_client import ApifyClient
url, dataset_id, writer = sys.argv[1], sys.argv[2], sys.argv[3]
client = ApifyClient(token="t", api_url=url, max_retries=0).dataset(dataset_id)
for seq in range(int(sys.argv[4])):
    client.push_items({"writer": writer, "seq": seq})
"""

REPOSITORY_WRITER = """
import sys
from storage_emulator import DatasetRepository
root, dataset_id, writer = sys.argv[1], sys.argv[2], sys.argv[3]
repo = DatasetRepository(root)
for seq in range(int(sys.argv[4])):
    repo.push_items(dataset_id, [{"writer": writer, "seq": seq}])
"""

READER = """
import json, sys, time
from apify_client import ApifyClient
url, dataset_id, deadline = sys.argv[1], sys.argv[2], time.time() + 60
client = ApifyClient(token="t", api_url=url, max_retries=0).dataset(dataset_id)
reads = 0
while time.time() < deadline:
    page = client.list_items()
    keys = [(item["writer"], item["seq"]) for item in page.items]
    assert len(keys) == len(set(keys)), "duplicate item in a read"
    assert len(page.items) == page.total, (len(page.items), page.total)
    reads += 1
    if page.total >= 4 * int(sys.argv[3]):
        break
print(reads)
"""


def test_four_writers_and_two_readers(live_server, repo: DatasetRepository, storage_root: Path) -> None:  # type: ignore[no-untyped-def]
    dataset, _ = repo.get_or_create_dataset(name="contended")
    writers = [
        subprocess.Popen([sys.executable, "-c", HTTP_WRITER, live_server.url, dataset.id, "http-a", str(PER_WRITER)]),
        subprocess.Popen([sys.executable, "-c", HTTP_WRITER, live_server.url, dataset.id, "http-b", str(PER_WRITER)]),
        subprocess.Popen(
            [sys.executable, "-c", REPOSITORY_WRITER, str(storage_root), dataset.id, "repo-a", str(PER_WRITER)]
        ),
        subprocess.Popen(
            [sys.executable, "-c", REPOSITORY_WRITER, str(storage_root), dataset.id, "repo-b", str(PER_WRITER)]
        ),
    ]
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, live_server.url, dataset.id, str(PER_WRITER)], stdout=subprocess.PIPE
        )
        for _ in range(2)
    ]

    assert [w.wait(timeout=240) for w in writers] == [0, 0, 0, 0]
    reads = [int(r.communicate(timeout=120)[0]) for r in readers]
    assert [r.returncode for r in readers] == [0, 0] and min(reads) > 0

    folder = storage_root / "datasets" / "contended"
    files = sorted(p.name for p in folder.glob("[0-9]*.json"))
    assert files == [f"{i:09d}.json" for i in range(1, 4 * PER_WRITER + 1)]
    items = [json.loads((folder / name).read_text()) for name in files]
    for writer in ("http-a", "http-b", "repo-a", "repo-b"):
        # Every item of every writer exactly once, in the order it pushed them.
        assert [item["seq"] for item in items if item["writer"] == writer] == list(range(PER_WRITER))
    assert json.loads((folder / "__metadata__.json").read_text())["item_count"] == 4 * PER_WRITER
    assert repo.get_dataset(dataset.id).item_count == 4 * PER_WRITER


BATCH_PUSHER = """
import sys
from storage_emulator import DatasetRepository
repo = DatasetRepository(sys.argv[1])
batch = 0
while True:
    repo.push_items(sys.argv[2], [{"batch": batch, "i": i, "pad": "x" * 200} for i in range(5000)])
    batch += 1
"""


def parses(content: bytes) -> bool:
    try:
        json.loads(content)
    except ValueError:
        return False
    return True


def test_sigkill_mid_push_then_push_again(storage_root: Path) -> None:
    repo = DatasetRepository(storage_root)
    dataset, _ = repo.get_or_create_dataset(name="crashy")
    folder = storage_root / "datasets" / "crashy"
    proc = subprocess.Popen([sys.executable, "-c", BATCH_PUSHER, str(storage_root), dataset.id])
    try:
        # Wait until a batch has landed and the next one is being written, then kill the writer mid-batch.
        deadline = time.time() + 60
        while time.time() < deadline:
            count = json.loads((folder / "__metadata__.json").read_text())["item_count"]
            if count >= 5000 and (folder / f"{count + 10:09d}.json").exists():
                break
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    committed = json.loads((folder / "__metadata__.json").read_text())["item_count"]
    on_disk_before = {p.name: p.read_bytes() for p in folder.glob("[0-9]*.json")}
    assert len(on_disk_before) > committed  # the kill landed mid-batch: orphan files past item_count

    after = repo.push_items(dataset.id, [{"after": "crash"}])

    files = sorted(p.name for p in folder.glob("[0-9]*.json"))
    assert files == [f"{i:09d}.json" for i in range(1, after.item_count + 1)]  # no gap
    for name, content in on_disk_before.items():  # no complete item written before the crash was overwritten
        if parses(content):
            assert (folder / name).read_bytes() == content
        else:  # the file the kill cut short was moved aside, not served
            assert (folder / f".{name}.corrupt").read_bytes() == content
    assert json.loads((folder / files[-1]).read_text()) == {"after": "crash"}
    assert after.item_count == json.loads((folder / "__metadata__.json").read_text())["item_count"]
    served = list(repo.read_items(dataset.id).items())
    assert len(served) == after.item_count  # nothing served twice, nothing missing
    keys = [(item.get("batch"), item.get("i")) for item in served[:-1]]
    assert len(keys) == len(set(keys))
