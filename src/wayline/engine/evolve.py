"""A cheaper copy-with-changes of the engine's frozen records than ``dataclasses.replace``.

A checkpoint copies its ~30-field ``Run`` twice (the decision's change, then the save's
new version and outbox), and ``replace`` made that a visible share of the server's CPU
per step: it reads every field through a Python loop with per-field checks, builds a
keyword dict and calls the generated ``__init__``, which sets each field again. Here a
copier generated once per class (as ``dataclasses`` generates ``__init__``) sets each
field straight from the original, then the changed fields are set over it: about a
third of the time. Equal to ``replace`` only for records whose ``__init__`` does nothing
more than set the fields: no ``__post_init__``, no ``InitVar`` or ``init=False`` field;
``evolve`` refuses other classes (``tests/unit/test_evolve.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_SET = object.__setattr__  # what a frozen dataclass's own ``__init__`` uses
_Copier = tuple[Callable[[Any], Any], frozenset[str]]
_COPIERS: dict[type, _Copier] = {}


def evolve(record: T, **changes: Any) -> T:
    """``dataclasses.replace(record, **changes)`` for a plain frozen dataclass record."""
    copier = _COPIERS.get(type(record)) or _copier(type(record))
    new = copier[0](record)
    for name, value in changes.items():
        if name not in copier[1]:
            raise TypeError(f"{type(record).__name__} has no field {name!r}")
        _SET(new, name, value)
    return new  # type: ignore[no-any-return]


def _copier(cls: type) -> _Copier:
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        raise TypeError(f"evolve copies plain dataclasses only, not {cls.__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    if any(not f.init for f in dataclasses.fields(cls)) or not names:
        raise TypeError(f"evolve copies plain dataclasses only, not {cls.__name__}")
    # The names are the class's own field names (identifiers), never outside input.
    lines = [f"    _SET(new, {name!r}, record.{name})\n" for name in names]
    source = f"def copy(record):\n    new = _NEW(_CLS)\n{''.join(lines)}    return new\n"
    scope: dict[str, Any] = {"_SET": _SET, "_NEW": object.__new__, "_CLS": cls}
    exec(source, scope)  # noqa: S102 - as dataclasses builds __init__
    copier: _Copier = (scope["copy"], frozenset(names))
    _COPIERS[cls] = copier
    return copier
