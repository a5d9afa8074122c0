"""The dashboard's send-event form refuses what the event API refuses, inline, never a 500."""

from __future__ import annotations

import pytest

from wayline.api.dashboard_data import parse_event_form


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ('{"x": NaN}', "non-finite"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"a": 1,}', "Line 1, column 9"),
        ("[1]", "must be a JSON object"),
    ],
    ids=["nan", "deep", "syntax", "not-an-object"],
)
def test_bad_data_is_an_inline_error(data: str, says: str) -> None:
    event, errors = parse_event_form("app/x", data)
    assert event is None and errors.data is not None and says in errors.data


def test_good_data_makes_an_event() -> None:
    event, errors = parse_event_form("app/x", '{"user_id": "u1"}')
    assert event is not None and event.data == {"user_id": "u1"} and errors.data is None
