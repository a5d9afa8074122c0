"""Inngest-compatible CEL: loose semantics, helper functions, matching and interpolation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.engine import expr
from wayline.engine.expr import (
    ExpressionEvalError,
    evaluate,
    interpolate,
    is_literal_false,
    matches,
    validate,
)
from wayline.errors import InvalidExpressionError

EVENT: dict[str, Any] = {
    "name": "app/user.created",
    "data": {
        "a": 1,
        "f": 1.5,
        "s": "Hello",
        "id": "u1",
        "none": None,
        "items": [1, 2, 3],
        "user": {"id": "u1", "tags": ["x", "y"]},
    },
}
NOW_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


# --- 1. missing keys and null ----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.data.missing == null", True),
        ("event.data.missing != null", False),
        ("event.data.missing.deeper == null", True),
        ("event.data.missing.deeper.still == null", True),
        ("event.data.none.x == null", True),
        ('event.data["missing"] == null', True),
        ('event.data["missing"]["x"] == null', True),
        ('event.data["a"] == 1', True),
        ("event.missing_top == null", True),
        ("has(event.data.missing)", False),
        ("has(event.data.a)", True),
        ("has(event.data.none)", True),  # present with a null value
        ("has(event.data.missing.deeper)", False),
        ("has(event.data.user.id)", True),
        ("event.data.user.tags[1]", "y"),
        ("event.data.missing", None),
    ],
)
def test_missing_fields_are_null(source: str, expected: Any) -> None:
    assert evaluate(source, event=EVENT) == expected


def test_has_on_a_non_map_is_false_not_an_error() -> None:
    assert evaluate("has(event.data.s.x)", event=EVENT) is False


# --- 2. mixed numbers and cross-type comparison ----------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 == 1.0", True),
        ("1.0 == 1", True),
        ("1 != 1.0", False),
        ("1 < 1.5", True),
        ("2 <= 2.0", True),
        ("2.5 > 2", True),
        ("3 >= 3.5", False),
        ("event.data.a > 0.5", True),
        ("event.data.f < 2", True),
        ('"1" == 1', False),
        ('"1" != 1', True),
        ("true == 1", False),
        ("null == false", False),
        ("null == null", True),
        ("null < 1", False),
        ("1 >= null", False),
        ("event.data.missing > 0", False),
        ("event.data.missing <= 0", False),
        ('{"a": 1} == 1', False),
        ("[1, 2] == [1.0, 2.0]", True),
        ('{"a": 1} == {"a": 1.0}', True),
        ('{"a": 1} == {"b": 1}', False),
        ('"a" < "b"', True),
        ('date("2024-01-01T00:00:00Z") < date("2024-01-02T00:00:00Z")', True),
    ],
)
def test_comparisons_are_loose(source: str, expected: bool) -> None:
    assert evaluate(source, event=EVENT) is expected


def test_ordering_unrelated_types_is_an_error() -> None:
    with pytest.raises(ExpressionEvalError, match="no matching overload"):
        evaluate('"a" < 1')


# --- 3. arithmetic and concatenation ---------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"a" + 1', "a1"),
        ('1 + "a"', "1a"),
        ('"v" + 1.5', "v1.5"),
        ('"v" + 2.0', "v2"),
        ('"id-" + event.data.a', "id-1"),
        ('"a" + "b"', "ab"),
        ("1 + 2", 3),
        ("1 + 1.5", 2.5),
        ("2 - 1.5", 0.5),
        ("2 * 1.5", 3.0),
        ("3 / 2.0", 1.5),
        ("3 / 2", 1),
        ("[1] + [2]", [1, 2]),
    ],
)
def test_arithmetic(source: str, expected: Any) -> None:
    result = evaluate(source, event=EVENT)
    assert result == expected
    assert type(result) is type(expected)


# --- 4. helper functions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("lowercase(event.data.s)", "hello"),
        ("uppercase(event.data.s)", "HELLO"),
        ('b64decode("aGVsbG8=")', "hello"),
        ('b64decode("aGVsbG8")', "hello"),  # padding optional
        ('b64decode("Pz8_")', "???"),  # URL-safe alphabet
        ('json_parse("{\\"a\\": [1, 2.5, null]}")', {"a": [1, 2.5, None]}),
        ('json_parse("[1]")[0] == 1', True),
        ('date("2024-01-01T00:00:00Z")', "2024-01-01T00:00:00Z"),
        ('date("2024-01-01T02:00:00+02:00") == date("2024-01-01T00:00:00Z")', True),
        ('date("2024-01-01")', "2024-01-01T00:00:00Z"),
        ("date(1700000000000)", "2023-11-14T22:13:20Z"),
        ("now()", "2023-11-14T22:13:20Z"),
        ('now_plus("5m")', "2023-11-14T22:18:20Z"),
        ('now_minus("1h")', "2023-11-14T21:13:20Z"),
        ('now_plus("1d")', "2023-11-15T22:13:20Z"),
        ('now_plus("30s") > now()', True),
        ('now_minus("1h30m") < now_minus("1h")', True),
        ('date("2023-11-14T22:00:00Z") < now()', True),
        ('date("2023-11-14T23:00:00Z") < now()', False),
        ("date(1700000000000) == now()", True),
    ],
)
def test_helper_functions(source: str, expected: Any) -> None:
    assert evaluate(source, event=EVENT, now_ms=NOW_MS) == expected


@pytest.mark.parametrize(
    "source",
    [
        "lowercase(1)",
        'b64decode("***")',
        'json_parse("{nope")',
        'date("yesterday")',
        'now_plus("5 parsecs")',
        'now_plus("")',
    ],
)
def test_helper_function_errors(source: str) -> None:
    with pytest.raises(ExpressionEvalError):
        evaluate(source, now_ms=NOW_MS)
    assert matches(source, now_ms=NOW_MS) is False
    assert matches(f"{source} || true", now_ms=NOW_MS) is True  # errors absorbed by ||


def test_now_follows_now_ms_on_a_cached_program() -> None:
    source = 'now() > date("2023-01-01T00:00:00Z")'
    assert matches(source, now_ms=NOW_MS) is True
    assert matches(source, now_ms=0) is False


# --- 5. standard macros and functions --------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.data.items.all(x, x > 0)", True),
        ("event.data.items.all(x, x > 1)", False),
        ("event.data.items.exists(x, x == 2)", True),
        ("event.data.items.exists(x, x == 2.0)", True),  # loose == inside macros too
        ("event.data.items.exists_one(x, x > 2)", True),
        ("event.data.items.map(x, x * 2)", [2, 4, 6]),
        ("event.data.items.filter(x, x > 1)", [2, 3]),
        ("[{}, {'a': 1}].exists(m, m.a == 1)", True),  # loose field access inside macros
        ("[{}].all(m, m.a == null)", True),
        ("size(event.data.items)", 3),
        ("event.data.items.size()", 3),
        ("size(event.data.s)", 5),
        ("2 in event.data.items", True),
        ("2.0 in event.data.items", True),
        ('"2" in event.data.items', False),
        ("null in [1, null]", True),
        ('"id" in event.data', True),
        ('"nope" in event.data', False),
        ('"id" in event.data', True),
        ('event.data.s.startsWith("He")', True),
        ('event.data.s.endsWith("lo")', True),
        ('event.data.s.contains("ell")', True),
        ('event.data.s.matches("^H.*o$")', True),
        ('event.name == "app/user.created" && event.data.a == 1', True),
        ("event.data.a == 2 || event.data.a == 1", True),
        ("event.data.a == 1 ? 'one' : 'other'", "one"),
        ("!(event.data.a == 1)", False),
    ],
)
def test_standard_cel_still_works(source: str, expected: Any) -> None:
    assert evaluate(source, event=EVENT) == expected


# --- 6. variables ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kwargs", "expected"),
    [
        ("async.data.x == null", {}, True),
        ("event == null", {}, True),
        ("async.data.x", {"async_": {"data": {"x": 7}}}, 7),
        (
            "event.data.id == async.data.id",
            {"event": EVENT, "async_": {"data": {"id": "u1"}}},
            True,
        ),
        ("vars", {}, {}),
        ("size(vars)", {}, 0),
        ("vars.anything == null", {}, True),
    ],
)
def test_variables(source: str, kwargs: dict[str, Any], expected: Any) -> None:
    assert evaluate(source, **kwargs) == expected


def test_undeclared_variable_is_an_eval_error_without_activation_dump() -> None:
    with pytest.raises(ExpressionEvalError) as info:
        evaluate("user.id == 1")
    assert "undeclared reference to 'user'" in str(info.value)
    assert len(str(info.value)) < 200


# --- results ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1", 1),
        ("1.5", 1.5),
        ('"s"', "s"),
        ("true", True),
        ("null", None),
        ('[1, "a", [null]]', [1, "a", [None]]),
        ('{"k": {"n": 1}}', {"k": {"n": 1}}),
        ("{1: 'a'}", {"1": "a"}),
        ("{true: 'b'}", {"true": "b"}),
        ('b"hi"', "aGk="),
        ('duration("90s")', "90s"),
    ],
)
def test_results_are_plain_json(source: str, expected: Any) -> None:
    result = evaluate(source)
    assert result == expected
    assert type(result) is type(expected)


# --- matches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (None, True),
        ("", True),
        ("   ", True),
        ("true", True),
        ("false", False),
        ("1", False),  # truthy is not enough: exactly true
        ('"true"', False),
        ("null", False),
        ("[true]", False),
        ('event.data.id == "u1"', True),
        ('event.data.id == "u2"', False),
        ("1 / 0 == 1", False),
        ("user.id == 1", False),
        ("event.data.s < 1", False),
        ("1 / 0 == 1 || true", True),
    ],
)
def test_matches(source: str | None, expected: bool) -> None:
    assert matches(source, event=EVENT) is expected


@pytest.mark.parametrize(
    "source",
    [
        "(" * 3000 + "1" + ")" * 3000,
        "!" * 3000 + "true",
        " && ".join(["true"] * 3000),
        "[" * 3000 + "]" * 3000 + " == []",
        "event" + ".a" * 3000 + " == null",
    ],
)
def test_deep_expressions_do_not_crash(source: str) -> None:
    assert matches(source, event=EVENT) is False
    with pytest.raises(ExpressionEvalError):
        evaluate(source, event=EVENT)


def test_deep_inputs_do_not_crash() -> None:
    deep = {"data": _deep(5000)}
    assert matches("event.data.a != null", event=deep) is False
    assert matches("async.data == null", async_=deep) is False
    with pytest.raises(ExpressionEvalError):
        evaluate("event.data.a", event=deep)


def test_moderately_nested_expressions_evaluate() -> None:
    nested = "(" * 60 + "event.data.a" + ")" * 60 + " == 1"
    assert matches(nested, event=EVENT) is True
    chain = " && ".join(["event.data.a == 1"] * 80)
    assert matches(chain, event=EVENT) is True
    assert evaluate("event.data.a", event={"data": _deep(40)}) is not None


# --- compile errors --------------------------------------------------------------------

INVALID = ["a.b(", "event.data ==", "", "1 +", '"unterminated', "a ? b", "x = 1", "{"]


@pytest.mark.parametrize("source", INVALID)
def test_validate_names_the_field(source: str) -> None:
    with pytest.raises(InvalidExpressionError) as info:
        validate(source, field="triggers[0].expression")
    assert info.value.field == "triggers[0].expression"
    assert str(info.value).startswith("triggers[0].expression: expression does not compile")


@pytest.mark.parametrize("source", [s for s in INVALID if s.strip()])
def test_compile_errors_raise_from_evaluate_and_matches(source: str) -> None:
    with pytest.raises(InvalidExpressionError):
        evaluate(source)
    with pytest.raises(InvalidExpressionError):
        matches(source, event=EVENT)


def test_compile_error_message_is_clipped() -> None:
    with pytest.raises(InvalidExpressionError) as info:
        validate("1 + " * 1000, field="if")
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    "source", ["event.data.a == 1", "has(event.data.x) && async.y > now()", "size(vars) == 0"]
)
def test_validate_accepts_valid_expressions(source: str) -> None:
    validate(source, field="if")


def test_compiled_programs_are_cached() -> None:
    assert expr._compile("event.data.cached == 1") is expr._compile("event.data.cached == 1")


# --- interpolation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "event", "expected"),
    [
        ("event.data.id == async.data.id", {"data": {"id": "u1"}}, '"u1" == async.data.id'),
        ("event.data.user.id == async.x", {"data": {"user": {"id": 7}}}, "7 == async.x"),
        ("event.data.missing == async.x", {"data": {}}, "null == async.x"),
        ("event.data.a.b.c == async.x", {"data": {"a": 1}}, "null == async.x"),
        ("event.data.n == async.n", {"data": {"n": -5}}, "-5 == async.n"),
        ("event.data.f == async.f", {"data": {"f": 2.0}}, "2.0 == async.f"),
        ("event.data.f == async.f", {"data": {"f": 1e20}}, "1e+20 == async.f"),
        ("event.data.b == async.b", {"data": {"b": False}}, "false == async.b"),
        ("event.data.z == async.z", {"data": {"z": None}}, "null == async.z"),
        (
            "event.data.q == async.q",
            {"data": {"q": 'say "hi"\\\n'}},
            '"say \\"hi\\"\\\\\\n" == async.q',
        ),
        ("event.data.u == async.u", {"data": {"u": "é😀"}}, '"é😀" == async.u'),
        ("event.data.l == async.l", {"data": {"l": [1, "a", None]}}, '[1, "a", null] == async.l'),
        (
            "event.data.m == async.m",
            {"data": {"m": {"k": {"n": [True]}}}},
            '{"k": {"n": [true]}} == async.m',
        ),
        ("event.data.m == async.m", {"data": {"m": {}}}, "{} == async.m"),
        ('event.data["id"] == async.id', {"data": {"id": "u1"}}, '"u1" == async.id'),
        ("event.data['id'] == async.id", {"data": {"id": "u1"}}, '"u1" == async.id'),
        ("event.data.items[1] == async.i", {"data": {"items": [5, 6]}}, "6 == async.i"),
        ("event.data.items[9] == async.i", {"data": {"items": [5, 6]}}, "null == async.i"),
        ("event . data . id == async.id", {"data": {"id": "u1"}}, '"u1" == async.id'),
        ("event.name == async.name", {"name": "a/b"}, '"a/b" == async.name'),
        ("event == async", {"x": 1}, '{"x": 1} == async'),
        # strings, comments and other identifiers are never touched
        ("'event.data.id' == async.x", {"data": {"id": 1}}, "'event.data.id' == async.x"),
        ('"event.data.id" == async.x', {"data": {"id": 1}}, '"event.data.id" == async.x'),
        ('"a \\" event.data.id" == async.x', {}, '"a \\" event.data.id" == async.x'),
        ("'''x\nevent.data.id''' == async.x", {}, "'''x\nevent.data.id''' == async.x"),
        ('"""event"""', {}, '"""event"""'),
        ("r'event.data' == async.x", {}, "r'event.data' == async.x"),
        ("b'event' == async.x", {}, "b'event' == async.x"),
        ("myevent.x == async.data.event", {}, "myevent.x == async.data.event"),
        ("events.x == event_id", {}, "events.x == event_id"),
        ("async.event.data == 1", {}, "async.event.data == 1"),
        ("1 == 1 // event.data.id", {"data": {"id": 1}}, "1 == 1 // event.data.id"),
        # method calls and computed indexes are evaluated against the inlined literal
        ('event.data.s.startsWith("a")', {"data": {"s": "ab"}}, '("ab").startsWith("a")'),
        ("event.data.l.size() > 1", {"data": {"l": [1]}}, "([1]).size() > 1"),
        ("event.data[async.k]", {"data": {"a": 1}}, '({"a": 1})[async.k]'),
        ('event.data["a\\"b"]', {"data": {'a"b': 1}}, '({"a\\"b": 1})["a\\"b"]'),
        # has() on a static path is answered at interpolation time
        ("has(event.data.id) && async.x", {"data": {"id": None}}, "true && async.x"),
        ("has(event.data.nope) || async.x", {"data": {}}, "false || async.x"),
    ],
)
def test_interpolate(source: str, event: Any, expected: str) -> None:
    assert interpolate(source, event=event) == expected


def test_interpolated_expression_matches_like_the_original() -> None:
    source = "event.data.id == async.data.id && event.data.missing == null && has(event.data.id)"
    stored = interpolate(source, event=EVENT)
    assert "event" not in stored
    candidate = {"data": {"id": "u1"}}
    assert matches(stored, async_=candidate) is True
    assert matches(source, event=EVENT, async_=candidate) is True
    assert matches(stored, async_={"data": {"id": "u2"}}) is False


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "quote \" and ' and \\ backslash",
        "line\nbreak\ttab\rcr",
        "\x00\x01\x1f\x7f",
        "unicode é ü 中文 😀 \u2028",
        "",
        0,
        -1,
        2**63 - 1,
        -(2**63),
        0.0,
        -0.5,
        1.0,
        1e-7,
        1.7976931348623157e308,
        True,
        None,
        [],
        {},
        [1, [2, [3, {"k": "v"}]]],
        {"a": {"b": None, "c": [True, False]}, 'quote"key': 1},
    ],
)
def test_interpolated_literals_round_trip(value: Any) -> None:
    literal = interpolate("event.v", event={"v": value})
    assert evaluate(literal) == value


def test_interpolate_special_floats_and_big_ints() -> None:
    assert interpolate("event.v", event={"v": float("inf")}) == 'double("Infinity")'
    assert interpolate("event.v", event={"v": float("-inf")}) == 'double("-Infinity")'
    assert evaluate(interpolate("event.v", event={"v": float("nan")})) != 0
    assert evaluate(interpolate("event.v", event={"v": 2**70})) == float(2**70)
    assert interpolate("event.v", event={"v": -(10**400)}) == 'double("-Infinity")'


def test_interpolate_deep_event_raises_cleanly() -> None:
    with pytest.raises(ExpressionEvalError):
        interpolate("event.data == async.data", event={"data": _deep(5000)})


_TEXT = st.text(st.characters(codec="utf-8"))  # no lone surrogates: not valid JSON text
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES)
def test_interpolated_literals_round_trip_property(value: Any) -> None:
    assert evaluate(interpolate("event.v", event={"v": value})) == value


# --- is_literal_false ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"a" == "b"', True),
        ("false", True),
        ("1 == 2 && null == async.x", False),  # references async: not constant
        ('"a" == "a"', False),
        ("null == null", False),
        ("1", False),
        ("event.data.x == 1", False),  # not interpolated: not constant either
        ('now() < date("2000-01-01T00:00:00Z")', False),  # depends on the clock
        ("1 / 0 == 1", False),
        ("a.b(", False),
        ('interpolated == "x"', False),
    ],
)
def test_is_literal_false(source: str, expected: bool) -> None:
    assert is_literal_false(source) is expected


def test_is_literal_false_after_interpolation() -> None:
    stored = interpolate('event.data.id == "u2"', event=EVENT)
    assert is_literal_false(stored) is True
