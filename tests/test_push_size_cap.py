"""The cap on the raw push body: refused with 413 before reading (Content-Length) or once past it (chunked)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from storage_emulator import DatasetRepository
from storage_emulator.push_body import MAX_PAYLOAD_BYTES, MAX_RAW_BODY_BYTES

# A socket timeout only turns "the server waits for a body that never comes" into a failure.
PATIENCE = 30


def tree(root: Path) -> dict[str, bytes]:
    """Every file under the storage root with its bytes."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture
def dataset_id(repo: DatasetRepository) -> str:
    dataset, _created = repo.get_or_create_dataset("capped")
    repo.push_items(dataset.id, [{"kept": 1}])
    return dataset.id


def test_the_raw_cap_admits_every_body_within_the_decoded_limit() -> None:
    assert MAX_PAYLOAD_BYTES < MAX_RAW_BODY_BYTES < MAX_PAYLOAD_BYTES * 1.01


def test_a_content_length_over_the_cap_is_refused_before_the_body_is_sent(
    live_server: Any, dataset_id: str, storage_root: Path
) -> None:
    before = tree(storage_root)
    length = 10 * 2**30
    connection = http.client.HTTPConnection(live_server.url.removeprefix("http://"), timeout=PATIENCE)
    connection.putrequest("POST", f"/v2/datasets/{dataset_id}/items")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(length))
    connection.endheaders()  # the headers only: not one byte of the body follows
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 413
    assert body["error"]["type"] == "request-too-large"
    assert str(MAX_RAW_BODY_BYTES) in body["error"]["message"]
    assert str(length) in body["error"]["message"]
    assert body["error"]["data"] == {"limit": MAX_RAW_BODY_BYTES, "length": length}
    assert tree(storage_root) == before


def test_a_chunked_body_over_the_cap_is_cut_off(live_server: Any, dataset_id: str, storage_root: Path) -> None:
    before = tree(storage_root)
    host, port = live_server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=PATIENCE)
    sock.sendall(
        f"POST /v2/datasets/{dataset_id}/items HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b'{"filler": "' + b"x" * 65_000 + b'"},'
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    total = 2 * 2**30  # far more than the server should ever read
    sent = 0
    stopped = threading.Event()

    def send() -> None:
        nonlocal sent
        try:
            while sent < total and not stopped.is_set():
                sock.sendall(framed)
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed: what the test wants

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = b""
    while b"\r\n\r\n" not in received or not _complete(received):
        data = sock.recv(65536)
        if not data:
            break
        received += data
    stopped.set()
    sender.join(PATIENCE)
    sock.close()
    head, _, payload = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    error = json.loads(payload)["error"]
    assert error["type"] == "request-too-large"
    assert str(MAX_RAW_BODY_BYTES) in error["message"]
    assert error["data"] == {"limit": MAX_RAW_BODY_BYTES}  # the length is unknown: the rest was never read
    assert sent < total
    assert tree(storage_root) == before


def _complete(received: bytes) -> bool:
    """Tell whether a whole response with a Content-Length has arrived."""
    head, _, payload = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(payload) >= int(value)
    return False


def test_werkzeugs_own_413_is_in_the_apify_envelope(client: Any, dataset_id: str) -> None:
    # Dataset updates read their JSON through Flask, which enforces the same cap itself.
    response = client.put(
        f"/v2/datasets/{dataset_id}",
        data=b" " * (MAX_RAW_BODY_BYTES + 1),
        content_type="application/json",
    )
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["type"] == "request-too-large"
    assert error["data"] == {"limit": MAX_RAW_BODY_BYTES, "length": MAX_RAW_BODY_BYTES + 1}
