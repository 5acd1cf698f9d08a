"""Assertions that pin each dialect's error envelope; shared by the HTTP tests."""

from __future__ import annotations

from typing import Any


def assert_apify_error(response: Any, status: int, error_type: str, *, mentions: str | None = None) -> None:
    """Pin the Apify envelope: JSON, exactly {"error": {"type", "message"[, "data"]}}."""
    assert response.status_code == status, response.data
    assert response.content_type == "application/json; charset=utf-8"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) <= {"type", "message", "data"}
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if mentions:
        assert mentions in body["error"]["message"]


def assert_org_error(response: Any, status: int, error_type: str) -> dict[str, Any]:
    """Pin the org envelope: {"code", "detail", "type", "errors"}."""
    assert response.status_code == status
    assert response.content_type == "application/json; charset=utf-8"
    body: dict[str, Any] = response.get_json()
    assert set(body) == {"code", "detail", "type", "errors"}
    assert body["code"] == status and body["type"] == error_type
    assert isinstance(body["detail"], str) and body["detail"]
    return body
