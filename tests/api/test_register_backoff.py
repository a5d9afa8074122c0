"""``POST /fn/register`` with a declared retry backoff: accepted and kept, or a 400 naming
the field and its limit, with nothing stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .test_register_api import payload


def _with(**config: Any) -> dict[str, Any]:
    body = payload()
    body["functions"][0].update(config)
    return body


def test_a_declared_backoff_registers_and_is_kept(client: httpx.Client) -> None:
    backoff = {"initial": "1s", "factor": 2, "max": "5m", "jitter": "1s"}
    resp = client.post("/fn/register", json=_with(backoff=backoff))
    assert resp.status_code == 200, resp.text
    assert client.get("/v1/apps/shop/functions").status_code == 200


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"backoff": {"initial": "1s", "factor": 50}}, "backoff.factor"),
        ({"backoff": {"initial": "0s"}}, "backoff.initial"),
        ({"stepBackoff": {"charge": {"initial": "1s", "max": "9d"}}}, "stepBackoff.charge.max"),
    ],
)
def test_a_bad_backoff_is_a_400_naming_the_field(
    client: httpx.Client, config: dict[str, Any], field: str
) -> None:
    resp = client.post("/fn/register", json=_with(**config))
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["error"]
    assert client.get("/v1/apps/shop/functions").status_code == 404
