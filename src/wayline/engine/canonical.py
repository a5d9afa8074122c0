"""RFC 8785 (JCS) bytes, fast where ``json.dumps`` provably gives the same bytes.

A call request is signed, and SDKs verify the signature over the JCS form of the body, so
the server must send JCS bytes. The ``jcs`` package is a pure-Python encoder (measured on
a 1 KB memo: 6x the C-accelerated ``json.dumps``, 3x ``json.dumps`` plus ``is_plain``'s
walk); the two agree byte for byte on a value made
only of strings, booleans, None, integers of magnitude at most 2**53, lists and dicts
whose keys hold no character at or above U+D800:

- strings: both escape with the same C function (``"``, ``\\``, the controls, nothing
  else; non-ASCII kept as UTF-8); a lone surrogate fails the UTF-8 encoding in both;
- integers: JCS prints the double's shortest form, which is the integer's digits up to
  2**53 (above, ``1e+16``-style and rounding differ), so larger ones take the slow path;
- floats: ES6 and Python format them differently (``1.0``/``1``, ``1e-07``/``1e-7``,
  ``1e+16``/``10000000000000000``, ``-0.0``/``0``): any float takes the slow path;
- keys: JCS sorts by UTF-16 code units, Python by code points; the orders are the same
  when no key holds a character at or above U+D800.

``tests/unit/test_canonical.py`` checks the equivalence with hypothesis against ``jcs``.
``EncodedValues`` caches the bytes of write-once values (memos, a run's events).
"""

from __future__ import annotations

import json
from collections.abc import Hashable

from .. import signing

_MAX_EXACT_INT = 2**53
_SURROGATES = "\ud800"


def canonical_json(value: object) -> bytes:
    """The JCS bytes of ``value`` (``signing.canonical_json``, faster when it is safe)."""
    if is_plain(value):
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    return signing.canonical_json(value)


def is_plain(value: object) -> bool:
    """Whether ``json.dumps`` and JCS give the same bytes for ``value`` (module docstring)."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)  # exact types: a subclass may encode differently
        if kind is str or kind is bool or item is None:
            continue
        if isinstance(item, int) and kind is int:
            if -_MAX_EXACT_INT <= item <= _MAX_EXACT_INT:
                continue
            return False
        if isinstance(item, list | tuple) and (kind is list or kind is tuple):
            pending.extend(item)
        elif isinstance(item, dict) and kind is dict:
            for key in item:
                if type(key) is not str or not (key.isascii() or max(key) < _SURROGATES):
                    return False
            pending.extend(item.values())
        else:
            return False
    return True


def encode_key(key: str) -> bytes:
    """A string as a JCS object key or string value."""
    return json.dumps(key, ensure_ascii=False).encode()


def utf16_order(key: str) -> bytes:
    """JCS's sort key for object member names."""
    return key.encode("utf-16-be", "surrogatepass")


class EncodedValues:
    """JCS bytes of values that never change once written (a memo, a run's events),
    keyed by their owner and checked by identity: an entry is used only for the very
    object it was made from (the entry holds it, so its id cannot be reused). A process
    that keeps its runs in memory (``wayline dev``) hands the same memo objects to every
    call, so each memo is encoded once; elsewhere an entry just misses.

    Bounded by the bytes it holds, oldest entries first. No lock (the engine does no
    threading): each step is one dict operation, atomic in CPython, so threads sharing
    it can at worst encode a value twice or misjudge the byte count for a moment."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: dict[Hashable, tuple[object, bytes]] = {}

    def encode(self, key: Hashable, value: object) -> bytes:
        entry = self._entries.get(key)
        if entry is not None and entry[0] is value:
            return entry[1]
        encoded = canonical_json(value)
        replaced = self._entries.pop(key, None)
        self._entries[key] = (value, encoded)
        self._bytes += len(encoded) - (len(replaced[1]) if replaced else 0)
        while self._bytes > self._max_bytes:
            try:
                dropped = self._entries.pop(next(iter(self._entries)))
            except (StopIteration, RuntimeError, KeyError):  # emptied or changed meanwhile
                break
            self._bytes -= len(dropped[1])
        return encoded
