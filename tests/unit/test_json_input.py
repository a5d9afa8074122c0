"""The one loader for client JSON: what it refuses, and the path it names."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.engine.json_input import MAX_DEPTH, NotJsonError, check, parse
from wayline.errors import ValidationError


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": {"b": [1, NaN]}}', "body.a.b[1]: non-finite number"),
        (b'{"a": Infinity}', "body.a: non-finite number"),
        (b"[-Infinity]", "body[0]: non-finite number"),
        (b'{"odd key": 1e999}', 'body["odd key"]: non-finite number'),
        (b'{"n": -1' + b"0" * 400 + b"}", "body.n: number out of range"),
        (b'{"s": "\\ud800"}', "body.s: string holds a lone UTF-16 surrogate"),
        (b'{"\\udfff": 1}', "body key"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"the limit is {MAX_DEPTH} levels"),
        (b"[" * 100_000 + b"]" * 100_000, f"the limit is {MAX_DEPTH} levels"),
        (b"NaN", "body: non-finite number"),
    ],
)
def test_refused_values_name_their_path(body: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=None) as info:
        parse(body)
    assert message in str(info.value)
    assert not isinstance(info.value, NotJsonError)


def test_text_that_is_not_json_is_its_own_error() -> None:
    with pytest.raises(NotJsonError, match="body is not valid JSON"):
        parse(b"{nope")


def test_the_limits_themselves_are_accepted() -> None:
    deepest = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse(deepest) is not None
    assert parse(b'{"big": 1e308, "n": 9007199254740993, "s": "\\ud83d\\ude00"}') == {
        "big": 1e308,
        "n": 9007199254740993,
        "s": "\U0001f600",
    }


_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers()
        | st.sampled_from(
            [2**1024, -(2**1024), 2**1024 - 1, 2**1024 - 2**970, 2**1024 - 2**970 - 1]
        ),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(alphabet=st.characters(codec=None), max_size=5),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
)


def _valid(value: object) -> bool:
    """The rules, stated naively (recursively), to hold the fast pass to them."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) < 2**1024 - 2**970  # larger ones round up to 2**1024: overflow
    if isinstance(value, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return all(_valid(v) for v in value)
    if isinstance(value, dict):
        return all(_valid(k) and _valid(v) for k, v in value.items())
    return True


@settings(max_examples=500, deadline=None)
@given(_VALUES)
def test_check_agrees_with_the_naive_rules(value: object) -> None:
    try:
        check(value, path="v")
    except ValidationError:
        assert not _valid(value)
    else:
        assert _valid(value)
        json.dumps(value, allow_nan=False).encode("utf-8")  # what the check protects
