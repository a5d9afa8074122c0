"""cel-python bent to the loose semantics Inngest gets from cel-go (via inngest/expr).

Inngest users write expressions such as ``event.data.plan == "pro"`` against events whose
shape varies, and expect a missing field to compare as ``null`` rather than abort the match,
``1 == 1.0`` to hold, and ``"id-" + 1`` to concatenate. Standard CEL (and celpy) errors on all
three. The changes here are the smallest set that gives that behaviour:

* ``LooseEvaluator`` overrides field selection (missing map key or ``null.f`` -> null) and the
  ``has()`` macro (so it still reports presence, which the first change would otherwise hide).
* ``LOOSE_FUNCTIONS`` replaces the relational and arithmetic operators and ``_[_]`` through the
  ``functions`` hook celpy offers for exactly this, and adds Inngest's helper functions.
* ``LooseRunner`` binds ``now()`` and friends per evaluation, so a cached program stays pure.
"""

from __future__ import annotations

import base64
import json
import math
import operator
from collections import ChainMap
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import (
    Activation,
    CELEvalError,
    Context,
    Evaluator,
    NameContainer,
    Result,
    operator_in,
)

from ..errors import InvalidDurationError
from .durations import parse_duration

Value = Any
"""A celpy runtime value; celpy's own union is too wide to be useful to callers."""

CelFunction = Callable[..., Value]


def _is_plain_map(value: Value) -> bool:
    # MessageType subclasses MapType but has protobuf field rules; leave those alone.
    return isinstance(value, celtypes.MapType) and not isinstance(value, celtypes.MessageType)


def _field_selection(tree: lark.Tree[Any]) -> tuple[lark.Tree[Any], str] | None:
    """The ``(e, "f")`` of a ``has(e.f)`` argument, found through the single-child chain
    (expr -> conditionalor -> ... -> member) that the grammar wraps around it."""
    node = tree
    while node.data != "member_dot":
        if len(node.children) != 1 or not isinstance(node.children[0], lark.Tree):
            return None
        node = node.children[0]
    member_tree, name_token = node.children
    return cast(lark.Tree[Any], member_tree), str(name_token)


class LooseEvaluator(Evaluator):
    """celpy's tree-walking evaluator with Inngest's null-propagating field selection."""

    def sub_evaluator(self, ast: lark.Tree[Any]) -> Evaluator:
        # Macro bodies (all/exists/map/filter) get their own evaluator; keep them loose too.
        return LooseEvaluator(ast, activation=self.activation)

    def member_dot(self, tree: lark.Tree[Any]) -> Result:
        # Reimplemented rather than wrapped: calling super() would evaluate ``e`` a second
        # time (exponential in the length of ``a.b.c.d``), and the error it returns for a
        # missing key is indistinguishable from an error raised inside ``e``.
        member_tree, name_token = tree.children
        member = self.visit(cast(lark.Tree[Any], member_tree))
        name = str(name_token)
        if member is None:
            return None
        if _is_plain_map(member):
            # Not member.get(name, None): celpy's MapType.get raises KeyError when missing.
            return member[name] if name in member else None  # noqa: SIM401
        return self._strict_member_dot(member, name, tree)

    def _strict_member_dot(self, member: Value, name: str, tree: lark.Tree[Any]) -> Result:
        """celpy's behaviour for everything that is not a plain map or null."""
        if isinstance(member, CELEvalError):
            return member
        if isinstance(member, NameContainer):
            if name in member:
                return cast(Result, member[name].value)
            return CELEvalError(f"no {name!r} in bindings", KeyError, None, tree=tree)
        if isinstance(member, celtypes.MessageType):
            return cast(Result, member.get(name))
        err = f"{type(member).__name__} does not support field selection"
        return CELEvalError(err, TypeError, None, tree=tree)

    def macro_has_eval(self, exprlist: lark.Tree[Any]) -> celtypes.BoolType:
        # celpy's has() is "evaluates without error"; with missing keys now null that would
        # always be true, so test key presence explicitly, as the CEL spec defines for maps.
        target = _field_selection(exprlist)
        if target is None:
            return super().macro_has_eval(exprlist)
        member_tree, name = target
        member = self.visit(member_tree)
        if _is_plain_map(member):
            return celtypes.BoolType(name in member)
        if member is None or isinstance(member, CELEvalError):
            return celtypes.BoolType(False)
        return super().macro_has_eval(exprlist)


# Rules whose evaluator method returns its only child's value unchanged. The grammar wraps
# every operand in all of them, so ``(x)`` costs ~10 tree levels and ~35 Python frames:
# 25 nested parentheses would exhaust the default recursion limit. ``member`` is kept
# because ``member_object`` inspects it.
_PASS_THROUGH = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary"}
)


def _skip_pass_through(node: lark.Tree[Any]) -> lark.Tree[Any]:
    while node.data in _PASS_THROUGH and len(node.children) == 1:
        child = node.children[0]
        if not isinstance(child, lark.Tree):
            break
        node = child
    return node


def flatten(ast: lark.Tree[Any]) -> lark.Tree[Any]:
    """``ast`` without pass-through nodes: same value, a third of the evaluation depth.
    Iterative, so a deep parse tree cannot overflow the stack here."""
    root = _skip_pass_through(ast)
    stack = [root]
    while stack:
        node = stack.pop()
        for i, child in enumerate(node.children):
            if isinstance(child, lark.Tree):
                node.children[i] = _skip_pass_through(child)
                stack.append(node.children[i])
    return root


class LooseRunner(celpy.InterpretedRunner):
    """Runs a compiled program with ``LooseEvaluator`` and a per-call clock."""

    def __init__(
        self, environment: celpy.Environment, ast: lark.Tree[Any], functions: dict[str, Any]
    ) -> None:
        super().__init__(environment, flatten(ast), functions)

    def evaluate(self, context: Context) -> Value:
        return self.evaluate_at(context, now_ms=0)

    def evaluate_at(self, context: Context, *, now_ms: int) -> Value:
        functions = ChainMap(clock_functions(now_ms), cast(dict[str, CelFunction], self.functions))
        activation = Activation(
            package=self.environment.package,
            annotations=self.environment.annotations,
            functions=functions,
        )
        return LooseEvaluator(ast=self.ast, activation=activation).evaluate(context)


# --- operators -------------------------------------------------------------------------


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not _is_bool(value)


def _plain_number(value: Value) -> int | float:
    # celpy's IntType/DoubleType refuse to meet each other; Python's int/float compare exactly.
    return float(value) if isinstance(value, float) else int(value)


def _is_bool(value: Value) -> bool:
    return isinstance(value, bool | celtypes.BoolType)


def _loose_equal(left: Value, right: Value) -> bool:
    """cel-go's heterogeneous equality: numbers by value, other type mismatches unequal."""
    if left is None or right is None:
        return left is right
    if _is_number(left) and _is_number(right):
        return _plain_number(left) == _plain_number(right)
    if _is_bool(left) != _is_bool(right):
        return False  # celpy would say true == 1
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_loose_equal, left, right))
    if _is_plain_map(left) and _is_plain_map(right):
        same_keys = len(left) == len(right) and all(k in right for k in left)
        return same_keys and all(_loose_equal(v, right[k]) for k, v in left.items())
    try:
        return bool(left == right)
    except TypeError:
        return False


def _first_error(*values: Value) -> CELEvalError | None:
    return next((v for v in values if isinstance(v, CELEvalError)), None)


def _equality(negate: bool) -> CelFunction:
    def compare(left: Value, right: Value) -> Value:
        error = _first_error(left, right)
        if error is not None:
            return error
        return celtypes.BoolType(_loose_equal(left, right) != negate)

    return compare


def _ordering(op: Callable[[Any, Any], bool]) -> CelFunction:
    def compare(left: Value, right: Value) -> Value:
        error = _first_error(left, right)
        if error is not None:
            return error
        if left is None or right is None:
            return celtypes.BoolType(False)
        if _is_number(left) and _is_number(right):
            return celtypes.BoolType(op(_plain_number(left), _plain_number(right)))
        # Anything else keeps CEL's rules; a TypeError becomes "no such overload".
        return celtypes.BoolType(op(left, right))

    return compare


def _number_text(value: Value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # as Go's %v does: 2.0 -> "2"
    return repr(_plain_number(value))


def _arithmetic(op: Callable[[Any, Any], Any], *, concat: bool = False) -> CelFunction:
    def apply(left: Value, right: Value) -> Value:
        error = _first_error(left, right)
        if error is not None:
            return error
        if concat and isinstance(left, str) and _is_number(right):
            return celtypes.StringType(left + _number_text(right))
        if concat and _is_number(left) and isinstance(right, str):
            return celtypes.StringType(_number_text(left) + right)
        both = _is_number(left) and _is_number(right)
        if both and (isinstance(left, float) or isinstance(right, float)):
            return op(celtypes.DoubleType(left), celtypes.DoubleType(right))
        return op(left, right)

    return apply


def _contains(item: Value, container: Value) -> Value:
    # celpy's ``in`` uses strict ==, so ``1.0 in [1]`` would be an error; use the loose one.
    error = _first_error(item, container)
    if error is not None:
        return error
    if isinstance(container, list) or _is_plain_map(container):
        return celtypes.BoolType(any(_loose_equal(item, member) for member in container))
    return operator_in(item, container)


def _index(container: Value, key: Value) -> Value:
    error = _first_error(container, key)
    if error is not None:
        return error
    if container is None:
        return None
    if _is_plain_map(container):
        valid = celtypes.MapType.valid_key_type(key)
        return container[key] if valid and key in container else None
    return operator.getitem(container, key)


# --- Inngest helper functions ----------------------------------------------------------
# Each raises only TypeError/ValueError: celpy turns those into CEL errors ("no such
# overload"), which ``||`` / ``&&`` can absorb like any other error.


def _text(value: Value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _lowercase(value: Value) -> Value:
    return celtypes.StringType(_text(value).lower())


def _uppercase(value: Value) -> Value:
    return celtypes.StringType(_text(value).upper())


def _b64decode(value: Value) -> Value:
    text = _text(value).strip()
    padded = text + "=" * (-len(text) % 4)
    altchars = b"-_" if ("-" in text or "_" in text) else None  # URL-safe alphabet too
    raw = base64.b64decode(padded, altchars=altchars, validate=True)
    return celtypes.StringType(raw.decode("utf-8"))


def _json_parse(value: Value) -> Value:
    return json_to_cel(json.loads(_text(value)))


def _timestamp_from_ms(ms: float) -> celtypes.TimestampType:
    if not math.isfinite(ms):
        raise ValueError("timestamp out of range")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    try:
        return celtypes.TimestampType(epoch + timedelta(milliseconds=ms))
    except OverflowError as exc:
        raise ValueError("timestamp out of range") from exc


def _date(value: Value) -> Value:
    if isinstance(value, celtypes.TimestampType):
        return value
    if _is_number(value):
        return _timestamp_from_ms(_plain_number(value))
    parsed = datetime.fromisoformat(_text(value).strip())
    return celtypes.TimestampType(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _duration_ms(value: Value) -> float:
    """Milliseconds in an Inngest time string (``"1h30m"``, ``"2 days"``) or a CEL duration."""
    if isinstance(value, timedelta):
        return value / timedelta(milliseconds=1)
    try:
        return parse_duration(_text(value).strip(), field="duration")
    except InvalidDurationError as exc:
        raise ValueError(str(exc)) from exc


def clock_functions(now_ms: int) -> dict[str, CelFunction]:
    """``now()``, ``now_plus(d)`` and ``now_minus(d)`` against a caller-supplied instant."""
    return {
        "now": lambda: _timestamp_from_ms(now_ms),
        "now_plus": lambda d: _timestamp_from_ms(now_ms + _duration_ms(d)),
        "now_minus": lambda d: _timestamp_from_ms(now_ms - _duration_ms(d)),
    }


LOOSE_FUNCTIONS: dict[str, CelFunction] = {
    "_==_": _equality(negate=False),
    "_!=_": _equality(negate=True),
    "_<_": _ordering(operator.lt),
    "_<=_": _ordering(operator.le),
    "_>_": _ordering(operator.gt),
    "_>=_": _ordering(operator.ge),
    "_+_": _arithmetic(operator.add, concat=True),
    "_-_": _arithmetic(operator.sub),
    "_*_": _arithmetic(operator.mul),
    "_/_": _arithmetic(operator.truediv),
    "_in_": _contains,
    "_[_]": _index,
    "lowercase": _lowercase,
    "uppercase": _uppercase,
    "b64decode": _b64decode,
    "json_parse": _json_parse,
    "date": _date,
}


# --- results back to JSON --------------------------------------------------------------


def to_json(value: Value) -> Any:
    """A celpy result as the plain JSON value the rest of Wayline handles."""
    if value is None or isinstance(value, bool | celtypes.BoolType):
        return None if value is None else bool(value)
    if isinstance(value, int | float):
        return _plain_number(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {_key_text(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")  # JSON has no bytes; stay lossless
    return str(value)  # durations, types: CEL's own text form


def _key_text(key: Value) -> str:
    plain = to_json(key)
    return plain if isinstance(plain, str) else json.dumps(plain)
