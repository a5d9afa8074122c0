"""``json.dumps`` is used for JCS only where it gives ``jcs``'s bytes exactly."""

from __future__ import annotations

import json
from typing import Any

import jcs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.engine.canonical import EncodedValues, canonical_json, is_plain
from wayline.engine.model import FunctionDef, Run, RunStatus, WorkItem, WorkKind
from wayline.engine.protocol import build_request, encode_request

# Any JSON value Python holds after parsing: floats of every kind (no NaN/inf: JSON has
# none), integers beyond 2**53, non-ASCII text and keys, astral characters, controls.
_text = st.text(st.characters(codec="utf-8"), max_size=12)
_json: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_text, inner, max_size=5),
    max_leaves=25,
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=150)
@given(_json)
def test_canonical_json_is_jcs(value: Any) -> None:
    assert canonical_json(value) == jcs.canonicalize(value)


@settings(max_examples=150)
@given(_json)
def test_the_fast_path_is_taken_only_where_json_dumps_is_jcs(value: Any) -> None:
    if is_plain(value):
        assert _dumps(value) == jcs.canonicalize(value)


@pytest.mark.parametrize(
    "value",
    [
        1.0,  # ES6: 1
        1e-07,  # ES6: 1e-7
        1e16,  # ES6: 10000000000000000
        -0.0,  # ES6: 0
        2**53 + 1,  # JCS prints the double: 9007199254740992
        {"\U0001f600": 1, "\uffff": 2},  # UTF-16 order differs from code point order
    ],
)
def test_values_where_json_dumps_differs_take_the_slow_path(value: Any) -> None:
    assert _dumps(value) != jcs.canonicalize(value)
    assert not is_plain(value)
    assert canonical_json(value) == jcs.canonicalize(value)


def test_plain_values_take_the_fast_path() -> None:
    assert is_plain({"é": ["ü\u2028\x00\x7f", 2**53, -(2**53), True, None], "k": {}})


def test_a_lone_surrogate_fails_both_ways() -> None:
    with pytest.raises(UnicodeEncodeError):
        jcs.canonicalize("\ud800")
    with pytest.raises(UnicodeEncodeError):
        canonical_json("\ud800")


def _run(memos: dict[str, Any], events: tuple[dict[str, Any], ...]) -> Run:
    return Run(
        id="01HRUN0000000000000000000A",
        function_id="app-fn",
        app_id="app",
        status=RunStatus.RUNNING,
        events=events,
        event_ids=("e1",),
        created_at=1,
        memos=memos,
        stack=tuple(memos),
    )


FN = FunctionDef(id="app-fn", app_id="app", name="fn", url="http://x/api", triggers=(), retries=2)
ITEM = WorkItem(id="i1", run_id="01HRUN0000000000000000000A", kind=WorkKind.CALL, at=0)


@settings(max_examples=60)
@given(
    st.dictionaries(_text, _json, max_size=6),
    st.lists(st.dictionaries(_text, _json, max_size=4), min_size=0, max_size=3),
)
def test_a_request_spliced_from_cached_parts_is_the_jcs_of_the_body(
    memos: dict[str, Any], events: list[dict[str, Any]]
) -> None:
    run = _run(memos, tuple(events))
    cache = EncodedValues()
    for _ in range(2):  # cold, then every part from the cache
        body = build_request(run, FN, ITEM, disable_immediate_execution=False)
        assert encode_request(body, run, cache) == jcs.canonicalize(body)


def test_a_memo_is_encoded_once_and_only_for_the_object_it_was_made_from() -> None:
    cache = EncodedValues()
    memo = {"data": 1.5}
    first = cache.encode(("r", "m"), memo)
    assert cache.encode(("r", "m"), memo) is first
    other = {"data": 2}
    assert cache.encode(("r", "m"), other) == b'{"data":2}'


def test_the_cache_holds_at_most_its_byte_budget() -> None:
    cache = EncodedValues(max_bytes=100)
    values = [{"data": "x" * 30} for _ in range(10)]
    for index, value in enumerate(values):
        cache.encode(index, value)
    assert cache._bytes <= 100
    assert len(cache._entries) == 2
