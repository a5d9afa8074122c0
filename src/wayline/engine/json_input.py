"""JSON from clients, parsed once and checked whole: the one loader every endpoint uses.

Python's ``json`` accepts more than the JSON the rest of the system can hold: ``NaN``,
``Infinity`` and ``1e999`` (which later break canonical JSON and the REST API's own
responses), lone UTF-16 surrogates (which cannot be encoded back to UTF-8), and nesting
deep enough to exhaust the interpreter's stack. ``parse`` refuses all of them with a
``ValidationError`` naming the path of the offending value and the limit, so a bad
request is a 400 before anything is stored, never a 500 after.

Limits: nesting at most ``MAX_DEPTH`` levels; numbers finite doubles (integers beyond
the double range are refused too: canonical JSON writes every number as a double);
strings and keys valid Unicode scalar values.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from ..errors import ValidationError
from .model import JSON

MAX_DEPTH = 100
"""Deep enough for any real payload, far from the interpreter's recursion limit (the
server nests client data a few levels deeper when it builds an SDK call)."""

_SAFE_INT_BITS = 1000
"""Integers this narrow always fit a double; wider ones are converted to find out."""

_PLAIN = (bool, int, type(None))
_SURROGATE = re.compile("[\ud800-\udfff]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class NotJsonError(ValidationError):
    """The text is not JSON at all (as opposed to JSON holding a value we refuse)."""


def parse(body: bytes | str, *, field: str = "body") -> JSON:
    """Decode ``body`` and check every value in it; ``field`` names the root in errors."""
    value = decode(body, field=field)
    check(value, path=field)
    return value


def decode(body: bytes | str, *, field: str = "body") -> JSON:
    """Decode only; call ``check`` on the parts (per-item paths read better in errors)."""
    try:
        value: JSON = json.loads(body)
    except RecursionError:
        raise ValidationError(
            f"{field} is nested too deeply; the limit is {MAX_DEPTH} levels", field=field
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotJsonError(f"{field} is not valid JSON: {exc}", field=field) from None
    return value


def check(value: JSON, *, path: str) -> None:
    """Raise ``ValidationError`` for the first value JSON-in-practice cannot hold.

    Iterative, not recursive: a value nested past the limit is reported, not overflowed.
    A quick pass without paths clears the common, valid case; only a value with a
    problem pays for the second pass that names where it is.
    """
    if _clean(value):
        return
    stack: list[tuple[JSON, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, where)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError(
                    f"{where}: non-finite number ({item}); only finite numbers are JSON",
                    field=where,
                )
        elif isinstance(item, int) and not isinstance(item, bool):
            if not _fits_double(item):
                raise ValidationError(
                    f"{where}: number out of range; the limit is a 64-bit float (about 1.8e308)",
                    field=where,
                )
        elif isinstance(item, Mapping | list):
            if depth >= MAX_DEPTH:
                raise ValidationError(
                    f"{where} is nested too deeply; the limit is {MAX_DEPTH} levels", field=where
                )
            stack.extend(reversed(_children(item, where, depth + 1)))


def _clean(value: JSON) -> bool:
    """True if ``check`` would pass: the same rules, no paths built (the hot path)."""
    stack: list[tuple[JSON, int]] = [([value], -1)]  # the root is a child like any other
    while stack:
        item, depth = stack.pop()
        if depth >= MAX_DEPTH:
            return False
        children = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in children:
            if type(key) is str and not key.isascii() and _SURROGATE.search(key):
                return False
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is str:
                if not child.isascii() and _SURROGATE.search(child):
                    return False
            elif kind is float:
                if not math.isfinite(child):
                    return False
            elif kind is int and not _fits_double(child):
                return False
            elif kind not in _PLAIN:
                return False  # anything else (a Mapping subclass...) gets the careful pass
    return True


def _fits_double(number: int) -> bool:
    """Canonical JSON (and every JavaScript SDK) reads numbers as doubles."""
    if number.bit_length() <= _SAFE_INT_BITS:
        return True
    try:
        float(number)
    except OverflowError:
        return False
    return True


def _children(
    item: Mapping[str, JSON] | list[JSON], where: str, depth: int
) -> list[tuple[JSON, str, int]]:
    if isinstance(item, list):
        return [(child, f"{where}[{i}]", depth) for i, child in enumerate(item)]
    children: list[tuple[JSON, str, int]] = []
    for key, child in item.items():
        _check_text(key, f"{where} key {key!r}")
        children.append((child, _member(where, key), depth))
    return children


def _member(where: str, key: str) -> str:
    return f"{where}.{key}" if _IDENTIFIER.fullmatch(key) else f"{where}[{json.dumps(key)}]"


def _check_text(text: str, where: str) -> None:
    if not text.isascii() and _SURROGATE.search(text) is not None:
        raise ValidationError(
            f"{where}: string holds a lone UTF-16 surrogate; strings must be valid Unicode",
            field=where,
        )
