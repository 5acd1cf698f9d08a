"""Fault injection, seen by the official Python and JS clients' retries, and the rule's validation."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from apify_client import ApifyClient
from apify_client.errors import ApifyApiError
from envelopes import assert_apify_error
from serve_process import ServeProcess

from storage_emulator.testing import EmulatorServer

JS_DIR = Path(__file__).resolve().parent / "js"
RETRY_SCRIPT = JS_DIR / "run_retries.js"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmulatorServer]:
    """Serve a fresh root that records every request to ``requests.jsonl``."""
    record = tmp_path / "requests.jsonl"
    with EmulatorServer(root=tmp_path / "root", config={"RECORD_FILE": str(record)}) as emulator:
        yield emulator


def add_faults(url: str, rules: Any) -> httpx.Response:
    """POST fault rules to the server."""
    return httpx.post(f"{url}/_emulator/faults", json=rules, timeout=10)


def listed_faults(url: str) -> list[dict[str, Any]]:
    """Return the rules as ``GET /_emulator/faults`` lists them."""
    response = httpx.get(f"{url}/_emulator/faults", timeout=10)
    assert response.status_code == 200
    rules: list[dict[str, Any]] = response.json()["data"]["rules"]
    return rules


def recorded(server: EmulatorServer, tmp_path: Path, method: str, route: str) -> list[int]:
    """Stop the server and return the statuses of the recorded requests to one route, in order.

    A request's line is written when the server has sent the whole answer, which may be just after the
    client has read it; once the server has stopped, every line is there.
    """
    server.stop()
    lines = (tmp_path / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    return [e["status"] for e in entries if e["method"] == method and e["route"] == route]


def python_client(url: str, max_retries: int) -> ApifyClient:
    """Return the official client with quick retries."""
    return ApifyClient(
        token="local", api_url=url, max_retries=max_retries, min_delay_between_retries=timedelta(milliseconds=10)
    )


GET_DATASET_503_TWICE = {"method": "GET", "path": "/v2/datasets/*", "status": 503, "times": 2}


def test_python_client_retries_through_two_503s(server: EmulatorServer, tmp_path: Path) -> None:
    """Two injected 503s, then the real answer: the client's third attempt succeeds."""
    dataset, _ = server.repo.get_or_create_dataset(name="flaky")
    assert add_faults(server.url, GET_DATASET_503_TWICE).status_code == 201

    got = python_client(server.url, max_retries=3).dataset(dataset.id).get()
    (rule,) = listed_faults(server.url)

    assert got is not None and got.id == dataset.id
    assert recorded(server, tmp_path, "GET", "/v2/datasets/<ref>") == [503, 503, 200]
    assert (rule["id"], rule["matched"], rule["injected"]) == (1, 2, 2)


def test_python_client_gives_up_after_max_retries(server: EmulatorServer, tmp_path: Path) -> None:
    """More 503s than retries: the client raises the 503 after 1 + max_retries attempts."""
    dataset, _ = server.repo.get_or_create_dataset(name="down")
    add_faults(server.url, {**GET_DATASET_503_TWICE, "times": 5})

    with pytest.raises(ApifyApiError) as raised:
        python_client(server.url, max_retries=2).dataset(dataset.id).get()
    (rule,) = listed_faults(server.url)

    assert raised.value.status_code == 503
    assert "Injected fault: rule 1" in str(raised.value)
    assert rule["injected"] == 3  # the first attempt and max_retries=2 retries
    assert recorded(server, tmp_path, "GET", "/v2/datasets/<ref>") == [503, 503, 503]


def run_js(url: str, dataset_id: str, max_retries: int) -> dict[str, Any]:
    """Run run_retries.js and return what it printed."""
    from test_js_client import node_command

    command = [*node_command()[:1], str(RETRY_SCRIPT), url, dataset_id, str(max_retries)]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    proc = subprocess.run(command, cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_js_client_retries_through_two_503s(server: EmulatorServer, tmp_path: Path) -> None:
    """The JS client (maxRetries 3) gets the dataset on its third attempt."""
    dataset, _ = server.repo.get_or_create_dataset(name="flaky-js")
    add_faults(server.url, GET_DATASET_503_TWICE)

    result = run_js(server.url, dataset.id, max_retries=3)

    assert result == {"ok": True, "id": dataset.id}
    assert recorded(server, tmp_path, "GET", "/v2/datasets/<ref>") == [503, 503, 200]


def test_js_client_gives_up_after_max_retries(server: EmulatorServer, tmp_path: Path) -> None:
    """The JS client (maxRetries 2) reports the 503 after three attempts."""
    dataset, _ = server.repo.get_or_create_dataset(name="down-js")
    add_faults(server.url, {**GET_DATASET_503_TWICE, "times": 5})

    result = run_js(server.url, dataset.id, max_retries=2)

    assert result["ok"] is False and result["statusCode"] == 503
    assert result["type"] == "service-unavailable"
    assert recorded(server, tmp_path, "GET", "/v2/datasets/<ref>") == [503, 503, 503]


def test_status_faults_answer_in_the_apify_envelope_with_retry_after(server: EmulatorServer) -> None:
    """A 429 rule answers the envelope and its Retry-After; the emulator's own routes are never faulted."""
    add_faults(server.url, [{"path": "*", "status": 429, "retry_after": 7, "times": 1}])

    limited = httpx.get(f"{server.url}/v2/datasets", timeout=10)
    health = httpx.get(f"{server.url}/health", timeout=10)
    after = httpx.get(f"{server.url}/v2/datasets", timeout=10)

    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json() == {
        "error": {"type": "rate-limit-exceeded", "message": "Injected fault: rule 1 (status 429 for * *)"}
    }
    assert health.status_code == 200 and after.status_code == 200


def test_a_dropped_connection_is_retried_by_the_python_client(server: EmulatorServer, tmp_path: Path) -> None:
    """``drop`` shuts the socket without an answer; the client retries on a new connection and succeeds."""
    dataset, _ = server.repo.get_or_create_dataset(name="dropped")
    add_faults(server.url, {"method": "GET", "path": f"/v2/datasets/{dataset.id}", "drop": True, "times": 2})
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)

    conn.request("GET", f"/v2/datasets/{dataset.id}")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.close()
    got = python_client(server.url, max_retries=2).dataset(dataset.id).get()
    (rule,) = listed_faults(server.url)

    assert got is not None and got.id == dataset.id
    assert rule["injected"] == 2
    assert recorded(server, tmp_path, "GET", "/v2/datasets/<ref>") == [0, 0, 200]  # 0: dropped


def test_a_delay_outlasts_a_short_client_timeout(server: EmulatorServer) -> None:
    """``delay_ms`` holds the request back; a client that waits less gives up."""
    add_faults(server.url, {"path": "/v2/datasets", "delay_ms": 1500, "times": 1})

    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}/v2/datasets", timeout=0.2)

    assert listed_faults(server.url)[0]["injected"] == 1


def test_seeded_probability_repeats_after_reset(server: EmulatorServer) -> None:
    """A seeded rule fires on the same requests in every run; reset clears the rules and their counts."""
    rule = {"path": "/v2/datasets", "status": 500, "probability": 0.5, "seed": 7}

    def run() -> list[int]:
        add_faults(server.url, rule)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            return [client.get("/v2/datasets").status_code for _ in range(16)]

    first = run()
    reset = httpx.post(f"{server.url}/_emulator/reset", timeout=10)
    cleared = listed_faults(server.url)
    second = run()

    assert reset.status_code == 200 and cleared == []
    assert first == second
    assert set(first) == {200, 500}


def test_delete_clears_the_rules(server: EmulatorServer) -> None:
    """``DELETE /_emulator/faults`` removes every rule."""
    add_faults(server.url, [{"path": "/a", "status": 502}, {"path": "/b", "drop": True}])

    deleted = httpx.delete(f"{server.url}/_emulator/faults", timeout=10)

    assert deleted.json() == {"data": {"cleared": 2}}
    assert listed_faults(server.url) == []


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"path": "/x", "status": 404}, "rules[0].status"),
        ({"path": "/x"}, "rules[0]"),
        ({"path": "/x", "status": 503, "drop": True}, "rules[0]"),
        ({"status": 503}, "rules[0].path"),
        ([{"path": "/x", "status": 503}, {"path": "/y", "status": 503, "probability": 2}], "rules[1].probability"),
        ({"path": "/x", "drop": "yes"}, "rules[0].drop"),
        ({"path": "/x", "status": 503, "tims": 2}, "rules[0].tims"),
        ({"path": "/x", "status": 500, "retry_after": 3}, "rules[0]"),
        ({"path": "/x", "delay_ms": 0}, "rules[0].delay_ms"),
        ([1], "rules[0]"),
    ],
)
def test_a_bad_rule_is_refused_naming_it(app: Any, body: Any, parameter: str) -> None:
    """Each bad rule answers 400 in the Apify envelope naming the rule's field; nothing is stored."""
    client = app.test_client()

    response = client.post("/_emulator/faults", json=body)

    assert_apify_error(response, 400, "invalid-input", mentions=f"'{parameter}'")
    assert client.get("/_emulator/faults").get_json() == {"data": {"rules": []}}


def test_a_body_that_is_not_json_is_refused(app: Any) -> None:
    """A body that is not JSON is a 400 saying so."""
    response = app.test_client().post("/_emulator/faults", data=b"{nope", content_type="application/json")

    assert_apify_error(response, 400, "invalid-input", mentions="not valid JSON")


def test_enforced_mode_needs_an_admin_for_faults(tmp_path: Path) -> None:
    """In enforced mode only an admin token may add faults."""
    accounts = [{"username": "alice", "token": "alice-token"}, {"username": "ops", "token": "ops", "admin": True}]
    with EmulatorServer(root=tmp_path / "root", accounts=accounts) as emulator:
        rule = {"path": "/x", "status": 503}
        plain = httpx.post(
            f"{emulator.url}/_emulator/faults", json=rule, headers={"Authorization": "Bearer alice-token"}
        )
        admin = httpx.post(f"{emulator.url}/_emulator/faults", json=rule, headers={"Authorization": "Bearer ops"})

    assert plain.status_code == 403 and plain.json()["error"]["type"] == "insufficient-permissions"
    assert admin.status_code == 201


def test_workers_share_the_faults_file_rules_and_counts(tmp_path: Path) -> None:
    """``serve --workers 2 --faults FILE``: a rule for two 503s fires twice in all, whichever worker answers."""
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"rules": [{"method": "GET", "path": "/v2/datasets", "status": 503, "times": 2}]}))
    server = ServeProcess(
        [
            "serve",
            "--port",
            "0",
            "--root",
            str(tmp_path / "root"),
            "--workers",
            "2",
            "--quiet",
            "--faults",
            str(faults),
        ],
        tmp_path / "serve.err",
    )
    try:
        url, _ = server.wait_for_url()
        statuses = []
        pids = set()
        for _ in range(8):
            with httpx.Client(base_url=url, timeout=10) as client:  # a new connection each time
                statuses.append(client.get("/v2/datasets").status_code)
                pids.add(client.get("/health").json()["data"]["pid"])
    finally:
        server.stop()

    assert statuses == [503, 503, 200, 200, 200, 200, 200, 200]
    assert len(pids) == 2


def test_serve_refuses_a_bad_faults_file(tmp_path: Path) -> None:
    """A faults file with a bad rule stops ``serve`` before it listens, naming the rule."""
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"path": "/x", "status": 418}]))
    from test_cli import run_cli

    result = run_cli("serve", "--port", "0", "--root", str(tmp_path / "root"), "--faults", str(faults))

    assert result.returncode == 2
    assert "rules[0].status" in result.stderr


def test_fault_rules_last_for_one_run_of_the_server(tmp_path: Path) -> None:
    """Rules added to one server are gone when the next server starts on the same root."""
    root = tmp_path / "root"
    with EmulatorServer(root=root) as first:
        first.add_faults({"path": "*", "status": 503})
        during = httpx.get(f"{first.url}/v2/datasets", timeout=10).status_code
    with EmulatorServer(root=root) as second:
        after = httpx.get(f"{second.url}/v2/datasets", timeout=10).status_code
        listed = listed_faults(second.url)

    assert (during, after, listed) == (503, 200, [])
