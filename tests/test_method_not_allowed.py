"""A 405 names the methods the route does allow (RFC 9110 15.5.6), in both dialects' envelopes."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v2/datasets/someId", {"GET", "PUT", "DELETE"}),
        ("/v2/datasets/someId/statistics", {"GET"}),
        ("/api/v1/org/local/datasets", {"GET"}),
    ],
)
def test_a_405_carries_the_allow_header(client: Any, path: str, allowed: set[str]) -> None:
    response = client.open(path, method="TRACE")
    assert response.status_code == 405
    assert response.is_json
    assert allowed <= {method.strip() for method in response.headers["Allow"].split(",")}
