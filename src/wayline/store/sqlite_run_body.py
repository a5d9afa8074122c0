"""A run's body text for the SQLite ``runs`` row, encoded piece by piece.

The body is rewritten by every save, and its step timeline and trigger events only grow
or stay as they were, so re-encoding them made each save cost more as the run went on.
The parts are encoded once and their text kept, keyed by run and step and checked by
identity (the engine carries unchanged step records, memos and events over from one run
version to the next as the same objects; an entry holds its objects, so their ids are
never reused): a save encodes the version, the stack, the steps that changed and the
rest of the head only if one of its fields is a new object (a checkpoint's is not).
The joined text of a run's timeline is kept too, so a save that adds steps at its end
(a checkpoint) splices the new steps onto it after an identity check made in C, instead
of a Python call per step of the run.

The text is the same JSON object ``run_to_dict`` gives (less the memos, stored apart,
and the outbox, in ``effects``), with step outputs that are their memo's value stored as
references (``strip_outputs``); only the key order differs, which decoding ignores.
Used under the database's lock, by one thread at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import fields
from operator import attrgetter, is_
from typing import Any

from wayline.engine.model import JSON, Run, StepRecord

from .codec import dumps, run_head_to_dict, step_to_dict, strip_step_outputs

Ids = tuple[str, ...]
Memos = tuple[JSON, ...]

_NOT_IN_HEAD = frozenset({"events", "memos", "steps", "outbox", "version", "stack"})
"""Encoded apart (the outbox is stored in ``effects``)."""
MAX_TIMELINES = 2048
"""Timelines kept (as many as the run cache holds runs)."""
MAX_ENTRIES = 20_000
"""About as many steps as the run cache holds runs of ten steps (``sqlite_run_cache``):
an entry holds its step record, and so its output."""


_HEAD_FIELDS = attrgetter(*(f.name for f in fields(Run) if f.name not in _NOT_IN_HEAD))
"""The run's fields the head text (``BodyEncoder._head``) is made of."""


class BodyEncoder:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max_entries = max_entries
        self._texts: dict[Hashable, tuple[object, JSON, str]] = {}
        self._timelines: dict[str, tuple[tuple[StepRecord, ...], Ids, Memos, str]] = {}
        """Run id -> its last encoded timeline: step records, their ids and memos, text."""
        self._heads: dict[str, tuple[tuple[object, ...], str]] = {}
        """Run id -> its last encoded head (``_head``): the fields it was made of, text."""

    def body(self, run: Run) -> str:
        events = self._text(("events", run.id), run.events, None, _events_text)
        return (
            f'{{"events":{events},"steps":[{self._steps(run)}],"version":{run.version},'
            f'"stack":{dumps(run.stack)},{self._head(run)[1:]}'
        )

    def _head(self, run: Run) -> str:
        """The text of the head less ``version`` and ``stack``: the last one encoded for
        the run when its fields are the same objects (checked in C), else encoded. A
        checkpoint changes the version, the stack and the timeline, so its save encodes
        no head at all."""
        parts = _HEAD_FIELDS(run)
        known = self._heads.get(run.id)
        if known is not None and all(map(is_, parts, known[0])):
            return known[1]
        head = run_head_to_dict(run)
        del head["version"], head["stack"]
        head["outbox"] = None  # stored in ``effects``
        text = dumps(head)
        self._heads.pop(run.id, None)
        self._heads[run.id] = (parts, text)
        if len(self._heads) > MAX_TIMELINES:
            del self._heads[next(iter(self._heads))]  # the oldest entry
        return text

    def _steps(self, run: Run) -> str:
        """The timeline's text: the text of the run's last saved timeline when that is a
        prefix of this one (same step records, same memos: checked in C, by identity),
        with the steps after it added; else step by step from ``_text``. A save that
        adds one step then encodes that step, not the run's length in Python calls."""
        known = self._timelines.get(run.id)
        memo = run.memos.get
        start, text = 0, ""
        ids: Ids = ()
        memos: Memos = ()
        if known is not None:
            steps, ids, memos, text = known
            start = len(steps)
            same = (
                start <= len(run.steps)
                and all(map(is_, run.steps, steps))
                and all(map(is_, map(memo, ids), memos))
            )
            if not same:
                start, ids, memos, text = 0, (), (), ""
        added = run.steps[start:]
        if added or not start:
            parts = [self._text(("step", run.id, s.id), s, memo(s.id), _step_text) for s in added]
            text = ",".join([text, *parts] if start else parts)
            ids += tuple(s.id for s in added)
            memos += tuple(memo(s.id) for s in added)
            self._timelines.pop(run.id, None)
            self._timelines[run.id] = (run.steps, ids, memos, text)
            if len(self._timelines) > MAX_TIMELINES:
                del self._timelines[next(iter(self._timelines))]  # the oldest entry
        return text

    def _text(
        self, key: Hashable, value: Any, memo: JSON, encode: Callable[[Any, JSON], str]
    ) -> str:
        entry = self._texts.get(key)
        if entry is not None and entry[0] is value and entry[1] is memo:
            return entry[2]
        text = encode(value, memo)
        self._texts.pop(key, None)
        self._texts[key] = (value, memo, text)
        if len(self._texts) > self._max_entries:
            del self._texts[next(iter(self._texts))]  # the oldest entry
        return text


def _events_text(events: tuple[dict[str, JSON], ...], _memo: JSON) -> str:
    return dumps([dict(e) for e in events])


def _step_text(step: StepRecord, memo: JSON) -> str:
    doc = step_to_dict(step)
    strip_step_outputs(doc, memo)
    return dumps(doc)
