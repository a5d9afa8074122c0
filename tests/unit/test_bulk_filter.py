"""Bulk rerun requests: every refusal names the field, and "select all" is impossible."""

from __future__ import annotations

from typing import Any

import pytest

from wayline.engine.bulk import parse_filter, rerun_id
from wayline.engine.model import RunStatus
from wayline.errors import ValidationError

GOOD: dict[str, Any] = {
    "function_id": "app-fn",
    "status": ["Failed", "Cancelled"],
    "since": "2026-01-01T00:00:00Z",
    "until": "2026-01-02T00:00:00Z",
}


def test_a_complete_filter_parses() -> None:
    flt = parse_filter({**GOOD, "if": "event.data.plan == 'pro'"})
    assert flt.statuses == {RunStatus.FAILED, RunStatus.CANCELLED}
    assert flt.until - flt.since == 24 * 3600 * 1000
    assert flt.mode == "start" and flt.condition == "event.data.plan == 'pro'"
    assert parse_filter({**GOOD, "app_id": "app", "function_id": "fn"}).function_id == "app-fn"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"function_id": ""}, "function_id", "function_id is required"),
        ({"status": []}, "status", "status must be a non-empty list"),
        ({"status": "Failed"}, "status", "status must be a non-empty list"),
        ({"status": ["Running"]}, "status", "'Running' cannot be rerun"),
        ({"since": None}, "since", "since is required: a bulk rerun needs a time range"),
        ({"until": ""}, "until", "until is required"),
        ({"until": "2025-01-01T00:00:00Z"}, "since", "since must be before until"),
        ({"until": "yesterday"}, "until", "until 'yesterday' is not a valid ISO-8601"),
        ({"if": "event.data. =="}, "if", "if"),
        ({"from": "failed_step"}, "status", 'status must be ["Failed"]'),
        ({"from": "the-middle"}, "from", "from must be one of"),
    ],
)
def test_refusals_name_the_field(change: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("(", r"\(")) as e:
        parse_filter({**GOOD, **change})
    assert e.value.field == field


def test_rerun_ids_are_stable_per_job_and_run() -> None:
    assert rerun_id("job", "run1", at=5) == rerun_id("job", "run1", at=5)
    assert rerun_id("job", "run1", at=5) != rerun_id("job", "run2", at=5)
    assert rerun_id("job", "run1", at=5) != rerun_id("job2", "run1", at=5)
