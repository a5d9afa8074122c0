"""Inngest-compatible CEL expressions: validate, evaluate, match and interpolate.

Inngest evaluates ``if`` / ``match`` / cancellation expressions with cel-go under loose
semantics (see ``_cel_loose``). This module is the engine's only entry point to them. It is
pure: "now" is passed in as ``now_ms``, and nothing here does I/O.

Variables visible to an expression: ``event``, ``async`` (the candidate event of a
waitForEvent / cancel pause) and ``vars`` (always an empty map). A variable that is not
supplied is ``null``.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from wayline.engine._cel_loose import LOOSE_FUNCTIONS, LooseRunner, to_json
from wayline.errors import InvalidExpressionError, WaylineError

JSON = Any
"""A JSON value as decoded by the stdlib."""

__all__ = [
    "ExpressionEvalError",
    "evaluate",
    "evaluate_vars",
    "interpolate",
    "is_literal_false",
    "matches",
    "validate",
]

_CACHE_SIZE = 1024
_MESSAGE_LIMIT = 300
_INT64 = range(-(2**63), 2**63)


class ExpressionEvalError(WaylineError):
    """A compiled expression failed while evaluating (type mismatch, bad input, too deep)."""


def _make_environment() -> celpy.Environment:
    # celpy.Environment() raises the process-wide recursion limit to 2500 as a side effect.
    # An engine module must not change interpreter state behind its host's back, so restore
    # it; expressions too deep for the host's limit then fail cleanly with RecursionError.
    limit = sys.getrecursionlimit()
    try:
        return celpy.Environment(runner_class=LooseRunner)
    finally:
        sys.setrecursionlimit(limit)


_ENV = _make_environment()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(source: str) -> LooseRunner:
    # Build the runner directly: env.program() would also store it on the shared
    # Environment (``env.runnable``), a needless write when called from many threads.
    return LooseRunner(_ENV, _ENV.compile(source), LOOSE_FUNCTIONS)


def _program(source: str, field: str | None) -> LooseRunner:
    try:
        return _compile(source)
    except CELParseError as exc:
        where = f"line {exc.line}, column {exc.column}"
        raise InvalidExpressionError(_compile_message(field, source, where), field=field) from exc
    except RecursionError as exc:
        raise InvalidExpressionError(
            _compile_message(field, source, "nested too deeply"), field=field
        ) from exc


def _compile_message(field: str | None, source: str, detail: str) -> str:
    subject = f"{field}: expression" if field else "expression"
    return f"{subject} does not compile ({detail}): {_clip(source)!r}"


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."


def validate(source: str, *, field: str) -> None:
    """Raise ``InvalidExpressionError`` naming ``field`` unless ``source`` compiles."""
    _program(source, field)


def evaluate(
    source: str, *, event: JSON | None = None, async_: JSON | None = None, now_ms: int = 0
) -> JSON:
    """The JSON value of ``source``; ``ExpressionEvalError`` if evaluation fails."""
    runner = _program(source, None)
    try:
        context = {
            "event": json_to_cel(event),
            "async": json_to_cel(async_),
            "vars": celtypes.MapType(),
        }
        result = runner.evaluate_at(context, now_ms=now_ms)
        return to_json(result)
    except Exception as exc:  # CEL errors, but also RecursionError on hostile input
        raise ExpressionEvalError(_eval_message(exc)) from exc


def evaluate_vars(source: str, variables: Mapping[str, JSON], *, now_ms: int = 0) -> JSON:
    """Like ``evaluate``, over other variables (a webhook's ``body``, ``headers``, ``query``);
    names not given are ``null``."""
    runner = _program(source, None)
    try:
        context = {name: json_to_cel(value) for name, value in variables.items()}
        return to_json(runner.evaluate_at(context, now_ms=now_ms))
    except Exception as exc:  # CEL errors, but also RecursionError on hostile input
        raise ExpressionEvalError(_eval_message(exc)) from exc


def _eval_message(exc: Exception) -> str:
    detail = str(exc.args[0]) if isinstance(exc, CELEvalError) and exc.args else str(exc)
    # celpy appends a dump of the whole activation to "undeclared reference" errors.
    return _clip(f"expression failed: {detail.split(' (in activation', 1)[0]}")


def matches(
    source: str | None,
    *,
    event: JSON | None = None,
    async_: JSON | None = None,
    now_ms: int = 0,
) -> bool:
    """Whether ``source`` evaluates to exactly ``true``. No expression matches everything;
    an evaluation error is a non-match (compile errors still raise)."""
    if source is None or not source.strip():
        return True
    try:
        return evaluate(source, event=event, async_=async_, now_ms=now_ms) is True
    except ExpressionEvalError:
        return False


def is_literal_false(source: str) -> bool:
    """Whether ``source`` is constantly false: no reference to ``event``, ``async`` or the
    clock, and it evaluates to ``false``. Such a pause can never be satisfied."""
    if _free_identifiers(_tokenize(source)) & {"event", "async", "now", "now_plus", "now_minus"}:
        return False
    try:
        return evaluate(source) is False
    except (ExpressionEvalError, InvalidExpressionError):
        return False


# --- tokenizer ---------------------------------------------------------------------------
# Just enough lexing to know where CEL string literals, comments and identifiers are, so
# interpolation never rewrites text inside a string or part of a longer name.


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string | comment | space | ident | number | punct
    text: str


_STRING_START = re.compile(r"""(?:[rR][bB]?|[bB][rR]?)?(\"\"\"|'''|"|')""")
_SIMPLE_TOKENS = (
    ("comment", re.compile(r"//[^\n]*")),
    ("space", re.compile(r"\s+")),
    ("ident", re.compile(r"[A-Za-z_][A-Za-z0-9_]*")),
    ("number", re.compile(r"[0-9][A-Za-z0-9_]*")),  # swallows 0x1F, 1u, 1e5 whole
)


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        kind, end = _scan(source, pos)
        tokens.append(_Token(kind, source[pos:end]))
        pos = end
    return tokens


def _scan(source: str, pos: int) -> tuple[str, int]:
    if match := _STRING_START.match(source, pos):
        return "string", _string_end(source, match.end(), match.group(1))
    for kind, pattern in _SIMPLE_TOKENS:
        if match := pattern.match(source, pos):
            return kind, match.end()
    return "punct", pos + 1


def _string_end(source: str, pos: int, quote: str) -> int:
    # celpy's lexer honours backslash escapes in raw strings too; mirror it, since the
    # interpolated text is parsed by celpy. Unterminated: run to the end (compile rejects it).
    while pos < len(source):
        if source.startswith(quote, pos):
            return pos + len(quote)
        pos += 2 if source[pos] == "\\" else 1
    return len(source)


def _is_code(token: _Token) -> bool:
    return token.kind not in ("space", "comment")


def _next_code(tokens: list[_Token], index: int) -> int:
    index += 1
    while index < len(tokens) and not _is_code(tokens[index]):
        index += 1
    return index


def _prev_code(tokens: list[_Token], index: int) -> int:
    index -= 1
    while index >= 0 and not _is_code(tokens[index]):
        index -= 1
    return index


def _text_at(tokens: list[_Token], index: int) -> str:
    return tokens[index].text if 0 <= index < len(tokens) else ""


def _is_free_name(tokens: list[_Token], index: int, name: str, *, call: bool) -> bool:
    """``name`` as a variable (``call=False``) or a function (``call=True``), not a field
    selection such as ``x.name``."""
    token = tokens[index]
    return (
        token.kind == "ident"
        and token.text == name
        and _text_at(tokens, _prev_code(tokens, index)) != "."
        and (_text_at(tokens, _next_code(tokens, index)) == "(") == call
    )


def _free_identifiers(tokens: list[_Token]) -> set[str]:
    return {
        t.text
        for i, t in enumerate(tokens)
        if t.kind == "ident" and _text_at(tokens, _prev_code(tokens, i)) != "."
    }


# --- interpolation -----------------------------------------------------------------------

_MISSING = object()
_SIMPLE_STRING = re.compile(r"""(["'])([^"'\\\n]*)\1""")


def interpolate(source: str, *, event: JSON) -> str:
    """Replace each ``event.<path>`` with the literal value it has in ``event``.

    Inngest does this when it stores a waitForEvent / cancel pause, so the stored expression
    only references ``async``. Paths are ``.field``, ``["key"]`` and ``[0]`` selectors; a
    missing path becomes ``null``; whatever cannot be resolved statically (a computed index,
    a method call) is left in place and is evaluated against the inlined literal.
    """
    tokens = _tokenize(source)
    parts: list[str] = []
    index = 0
    try:
        while index < len(tokens):
            text, index = _rewrite_at(tokens, index, event)
            parts.append(text)
    except RecursionError as exc:
        raise ExpressionEvalError("event is nested too deeply to interpolate") from exc
    return "".join(parts)


def _rewrite_at(tokens: list[_Token], index: int, event: JSON) -> tuple[str, int]:
    """The replacement text for the construct starting at ``index``, and the next index."""
    if _is_free_name(tokens, index, "has", call=True):
        presence = _rewrite_has(tokens, index, event)
        if presence is not None:
            return presence
    if _is_free_name(tokens, index, "event", call=False):
        keys, end = _parse_path(tokens, index)
        return _render_reference(tokens, end, _lookup(event, keys)), end + 1
    return tokens[index].text, index + 1


def _rewrite_has(tokens: list[_Token], index: int, event: JSON) -> tuple[str, int] | None:
    # has(event.x) on an inlined literal would always be true: answer it here instead.
    start = _next_code(tokens, _next_code(tokens, index))
    if start >= len(tokens) or not _is_free_name(tokens, start, "event", call=False):
        return None
    keys, end = _parse_path(tokens, start)
    close = _next_code(tokens, end)
    if not keys or _text_at(tokens, close) != ")":
        return None
    return ("false" if _lookup(event, keys) is _MISSING else "true"), close + 1


def _parse_path(tokens: list[_Token], start: int) -> tuple[list[str | int], int]:
    """The selectors after ``event`` at ``start``, and the index of the last token used."""
    keys: list[str | int] = []
    end = start
    while (step := _selector(tokens, _next_code(tokens, end))) is not None:
        key, end = step
        keys.append(key)
    return keys, end


def _selector(tokens: list[_Token], at: int) -> tuple[str | int, int] | None:
    opener = _text_at(tokens, at)
    key_at = _next_code(tokens, at)
    after = _next_code(tokens, key_at)
    if opener == "." and key_at < len(tokens) and tokens[key_at].kind == "ident":
        # ``.name(`` is a method call on the value so far: stop before it.
        return None if _text_at(tokens, after) == "(" else (tokens[key_at].text, key_at)
    if opener == "[" and _text_at(tokens, after) == "]":
        key = _literal_key(tokens[key_at])
        return None if key is None else (key, after)
    return None


def _literal_key(token: _Token) -> str | int | None:
    if token.kind == "number" and token.text.isdigit():
        return int(token.text)
    if token.kind == "string" and (match := _SIMPLE_STRING.fullmatch(token.text)):
        return match.group(2)
    return None  # escapes, raw/bytes strings, expressions: left for CEL to evaluate


def _lookup(value: JSON, keys: list[str | int]) -> JSON:
    for key in keys:
        if not _has_child(value, key):
            return _MISSING
        value = value[key]
    return value


def _has_child(value: JSON, key: str | int) -> bool:
    if isinstance(value, Mapping):
        return isinstance(key, str) and key in value
    return isinstance(value, list) and isinstance(key, int) and key < len(value)


def _render_reference(tokens: list[_Token], end: int, value: JSON) -> str:
    literal = "null" if value is _MISSING else _literal(value)
    # The literal is an operand of what follows (``.size()``, ``[i]``): keep it atomic.
    following = _text_at(tokens, _next_code(tokens, end))
    return f"({literal})" if following in (".", "[") else literal


def _literal(value: JSON) -> str:
    """``value`` as CEL source that evaluates back to it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _int_literal(value)
    if isinstance(value, float):
        return _float_literal(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are all valid CEL
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{_literal(str(k))}: {_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise ExpressionEvalError(f"cannot interpolate a {type(value).__name__} value")


def _int_literal(value: int) -> str:
    if value in _INT64:
        return str(value)
    # Beyond int64 CEL has no int literal; the nearest double is the closest that compiles.
    try:
        return _float_literal(float(value))
    except OverflowError:
        return _float_literal(math.inf if value > 0 else -math.inf)


def _float_literal(value: float) -> str:
    if math.isnan(value):
        return 'double("NaN")'
    if math.isinf(value):
        return 'double("Infinity")' if value > 0 else 'double("-Infinity")'
    text = repr(value)
    return text if any(c in text for c in ".e") else text + ".0"
