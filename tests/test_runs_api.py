"""The run context over HTTP: the official Python client's run, user and default-storage calls, and the errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from storage_emulator.accounts import DEFAULT_ACCOUNT
from storage_emulator.cli_run import create_run
from storage_emulator.models import EMULATOR_DIR
from storage_emulator.runs import RunRecord, RunRepository, normalize_pricing

PPE = {
    "pricingModel": "PAY_PER_EVENT",
    "pricingPerEvent": {"actorChargeEvents": {"page": {"eventPriceUsd": 0.01}, "item": {"eventPriceUsd": 0.5}}},
}


def new_run(root: Path, pricing: dict[str, Any] | None = None, input_value: Any = None) -> RunRecord:
    record = None if input_value is None else (json.dumps(input_value).encode(), "application/json")
    return create_run(root, owner=DEFAULT_ACCOUNT, input_record=record, pricing_info=normalize_pricing(pricing))


def test_client_gets_updates_and_lists_runs(storage_root: Path, apify: Any) -> None:
    run = new_run(storage_root)
    got = apify.run(run.id).get()
    assert got.id == run.id and got.status == "RUNNING" and got.pricing_info is None
    assert (got.default_dataset_id, got.default_key_value_store_id, got.default_request_queue_id) == (
        run.default_dataset_id,
        run.default_key_value_store_id,
        run.default_request_queue_id,
    )
    updated = apify.run(run.id).update(status_message="Crawled 3 of 10 pages", is_status_message_terminal=True)
    assert updated.status_message == "Crawled 3 of 10 pages" and updated.is_status_message_terminal is True
    on_disk = json.loads((storage_root / EMULATOR_DIR / "runs" / f"{run.id}.json").read_text())
    assert on_disk["status_message"] == "Crawled 3 of 10 pages"

    second = new_run(storage_root)
    listed = apify.runs().list()
    assert [item.id for item in listed.items] == [run.id, second.id]
    assert [item.id for item in apify.runs().list(desc=True).items] == [second.id, run.id]
    RunRepository(storage_root).finish_run(second.id, status="SUCCEEDED", exit_code=0)
    assert [item.id for item in apify.runs().list(status="SUCCEEDED").items] == [second.id]
    assert apify.run(second.id).get().exit_code == 0


def test_charge_counts_events_once_per_idempotency_key(storage_root: Path, apify: Any) -> None:
    run = new_run(storage_root, PPE)
    assert apify.run(run.id).get().pricing_info.pricing_model == "PAY_PER_EVENT"  # the full shape parses
    client = apify.run(run.id)
    client.charge("page", count=2, idempotency_key="key-1")
    client.charge("page", count=2, idempotency_key="key-1")  # a retry: charged once
    client.charge("page")  # the client makes a fresh key
    client.charge("item", count=3)
    got = client.get()
    assert got.charged_event_counts == {"page": 3, "item": 3}
    assert got.usage_total_usd == pytest.approx(1.53)


@pytest.mark.parametrize(
    ("pricing", "body", "headers", "status", "error_type"),
    [
        (None, {"eventName": "page", "count": 1}, {}, 400, "cannot-charge-non-pay-per-event-actor"),
        ({"pricingModel": "FREE"}, {"eventName": "page"}, {}, 400, "cannot-charge-non-pay-per-event-actor"),
        (PPE, {"eventName": "apify-actor-start"}, {}, 400, "cannot-charge-apify-event"),
        (PPE, {"eventName": "nope"}, {}, 400, "invalid-input"),
        (PPE, {"count": 1}, {}, 400, "invalid-input"),
        (PPE, {"eventName": "page", "count": 0}, {}, 400, "invalid-input"),
        (PPE, {"eventName": "page", "count": "2"}, {}, 400, "invalid-input"),
        (PPE, {"eventName": "page"}, {"idempotency-key": "k" * 300}, 400, "invalid-idempotency-key"),
    ],
)
def test_bad_charges_are_4xx_and_charge_nothing(
    storage_root: Path,
    client: FlaskClient,
    pricing: Any,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    error_type: str,
) -> None:
    run = new_run(storage_root, pricing)
    answer = client.post(f"/v2/actor-runs/{run.id}/charge", json=body, headers=headers)
    assert answer.status_code == status
    assert answer.get_json()["error"]["type"] == error_type
    assert RunRepository(storage_root).get_run(run.id).charged_event_counts == {}


def test_key_reused_for_another_charge_is_refused(storage_root: Path, client: FlaskClient) -> None:
    run = new_run(storage_root, PPE)
    url = f"/v2/actor-runs/{run.id}/charge"
    assert client.post(url, json={"eventName": "page"}, headers={"idempotency-key": "k1"}).status_code == 201
    again = client.post(url, json={"eventName": "item"}, headers={"idempotency-key": "k1"})
    assert again.status_code == 400 and again.get_json()["error"]["type"] == "invalid-idempotency-key"
    assert RunRepository(storage_root).get_run(run.id).charged_event_counts == {"page": 1}


def test_python_client_refuses_charge_of_non_ppe_run(storage_root: Path, apify: Any) -> None:
    from apify_client.errors import ApifyApiError

    run = new_run(storage_root)
    with pytest.raises(ApifyApiError) as caught:
        apify.run(run.id).charge("page")
    assert caught.value.status_code in (400, 403, 404)  # what the client's own integration test accepts


def test_default_storage_shortcuts(storage_root: Path, apify: Any) -> None:
    run = new_run(storage_root, input_value={"start": 1})
    run_client = apify.run(run.id)
    run_client.dataset().push_items([{"n": 1}, {"n": 2}])
    assert [item["n"] for item in run_client.dataset().list_items().items] == [1, 2]
    assert apify.dataset(run.default_dataset_id).get().item_count == 2
    assert run_client.dataset().get().id == run.default_dataset_id

    store = run_client.key_value_store()
    assert store.get_record("INPUT")["value"] == {"start": 1}
    store.set_record("OUTPUT", {"done": True})
    assert apify.key_value_store(run.default_key_value_store_id).get_record("OUTPUT")["value"] == {"done": True}
    assert [key.key for key in store.list_keys().items] == ["INPUT", "OUTPUT"]

    queue = run_client.request_queue()
    queue.add_request({"url": "https://example.com/a", "uniqueKey": "a"})
    head = queue.list_and_lock_head(limit=5, lock_duration=timedelta_secs(60))
    assert [item.url for item in head.items] == ["https://example.com/a"]
    assert apify.request_queue(run.default_request_queue_id).get().total_request_count == 1


def timedelta_secs(seconds: int) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def test_user_limits_and_usage(storage_root: Path, apify: Any) -> None:
    me = apify.user().get()
    assert me.username == DEFAULT_ACCOUNT.username and me.proxy.password and me.proxy.groups == []
    limits = apify.user().limits()
    assert limits.limits.max_actor_memory_gbytes > 0
    usage = apify.user().monthly_usage()
    assert usage.total_usage_credits_usd_after_volume_discount == 0


@pytest.mark.parametrize("run_id", ["..", "..%2F..%2Fetc", "a" * 18, "%00abc", "x.json", "abc%2Fdef"])
def test_bad_run_ids_are_404_and_reach_no_file(storage_root: Path, client: FlaskClient, run_id: str) -> None:
    for method, suffix in (("get", ""), ("put", ""), ("post", "/charge"), ("get", "/dataset")):
        answer = getattr(client, method)(f"/v2/actor-runs/{run_id}{suffix}", json={"eventName": "x"})
        assert answer.status_code == 404, (method, suffix, answer.data)
        assert answer.get_json()["error"]["type"] == "record-not-found"
    assert not (storage_root.parent / "etc").exists()


def test_unknown_run_is_404_as_sdks_expect(client: FlaskClient) -> None:
    answer = client.get("/v2/actor-runs/abcdefghijklmnopq")
    assert answer.status_code == 404
    assert answer.get_json()["error"] == {"type": "record-not-found", "message": "Actor run was not found"}


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"statusMessage": 3}, "statusMessage"),
        ({"statusMessage": "x", "isStatusMessageTerminal": "yes"}, "isStatusMessageTerminal"),
        ({"statusMessage": "x" * 1001}, "statusMessage"),
        ({"generalAccess": "EVERYONE"}, "generalAccess"),
        ({"level": 1}, "level"),
    ],
)
def test_bad_updates_name_the_parameter(
    storage_root: Path, client: FlaskClient, body: dict[str, Any], parameter: str
) -> None:
    run = new_run(storage_root)
    answer = client.put(f"/v2/actor-runs/{run.id}", json=body)
    assert answer.status_code == 400
    assert parameter in answer.get_json()["error"]["message"]
    assert RunRepository(storage_root).get_run(run.id).status_message is None


def test_js_update_with_level_and_unknown_keys(storage_root: Path, client: FlaskClient) -> None:
    run = new_run(storage_root)
    answer = client.put(
        f"/v2/actor-runs/{run.id}",
        json={"statusMessage": "Failed", "level": "ERROR", "isStatusMessageTerminal": True, "somethingNew": 1},
    )
    assert answer.status_code == 200 and answer.get_json()["data"]["statusMessage"] == "Failed"
    assert RunRepository(storage_root).get_run(run.id).status_message_level == "ERROR"


def test_pricing_needs_known_model_and_priced_events() -> None:
    from storage_emulator.errors import InvalidParameter

    for bad in (
        {"pricingModel": "CHEAP"},
        {"pricingModel": "PAY_PER_EVENT"},
        {**PPE, "pricingPerEvent": {"actorChargeEvents": {"page": {"eventPriceUsd": -1}}}},
    ):
        with pytest.raises(InvalidParameter):
            normalize_pricing(bad)
    full = normalize_pricing(PPE)
    assert full is not None and {"apifyMarginPercentage", "createdAt", "startedAt"} <= set(full)
    assert full["pricingPerEvent"]["actorChargeEvents"]["page"]["eventTitle"] == "page"


def test_pages_list_and_show_runs(storage_root: Path, client: FlaskClient) -> None:
    run = new_run(storage_root, PPE)
    RunRepository(storage_root).charge(run.id, event_name="page", count=4, idempotency_key=None)
    RunRepository(storage_root).finish_run(run.id, status="FAILED", exit_code=3)
    index = client.get("/").get_data(as_text=True)
    assert f'href="/view/runs/{run.id}"' in index
    page = client.get(f"/view/runs/{run.id}").get_data(as_text=True)
    assert "FAILED" in page and "exit code 3" in page and "<td>page</td><td>4</td>" in page
    assert f"/view/datasets/{run.default_dataset_id}" in page
    assert client.get("/view/runs/nope").status_code == 404


def test_enforced_mode_only_the_owner_changes_or_charges_a_run(storage_root: Path, tmp_path: Path) -> None:
    from storage_emulator.accounts import AccountRegistry, default_accounts_path
    from storage_emulator.web import create_app

    path = default_accounts_path(storage_root)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {"accounts": [{"username": "olivia", "token": "tok-olivia"}, {"username": "oscar", "token": "tok-o"}]}
        )
    )
    olivia = AccountRegistry.load(storage_root).by_username("olivia")
    assert olivia is not None
    run = create_run(storage_root, owner=olivia, pricing_info=normalize_pricing(PPE))
    http = create_app({"ROOT": str(storage_root), "TESTING": True}).test_client()
    owner, other = {"Authorization": "Bearer tok-olivia"}, {"Authorization": "Bearer tok-o"}

    assert http.get(f"/v2/actor-runs/{run.id}").status_code == 200  # no token needed: the id is the secret
    assert http.put(f"/v2/actor-runs/{run.id}", json={"statusMessage": "x"}).status_code == 401
    assert http.put(f"/v2/actor-runs/{run.id}", json={"statusMessage": "x"}, headers=other).status_code == 403
    charge = f"/v2/actor-runs/{run.id}/charge"
    assert http.post(charge, json={"eventName": "page"}, headers=other).status_code == 403
    assert http.post(charge, json={"eventName": "page"}, headers=owner).status_code == 201
    assert RunRepository(storage_root).get_run(run.id).charged_event_counts == {"page": 1}
    assert [item["id"] for item in http.get("/v2/actor-runs", headers=owner).get_json()["data"]["items"]] == [run.id]
    assert http.get("/v2/actor-runs", headers=other).get_json()["data"]["items"] == []
    assert http.get("/v2/users/me").status_code == 401
    assert http.get("/v2/users/me", headers=other).get_json()["data"]["username"] == "oscar"
