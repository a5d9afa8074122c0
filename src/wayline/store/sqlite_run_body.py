"""A run's body text for the SQLite ``runs`` row, encoded piece by piece.

The body is rewritten by every save, and its step timeline and trigger events only grow
or stay as they were, so re-encoding them made each save cost more as the run went on.
The parts are encoded once and their text kept, keyed by run and step and checked by
identity (the engine carries unchanged step records, memos and events over from one run
version to the next as the same objects; an entry holds its objects, so their ids are
never reused): a save encodes the small head, the steps that changed and nothing else.

The text is the same JSON object ``run_to_dict`` gives (less the memos, stored apart,
and the outbox, in ``effects``), with step outputs that are their memo's value stored as
references (``strip_outputs``); only the key order differs, which decoding ignores.
Used under the database's lock, by one thread at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from wayline.engine.model import JSON, Run, StepRecord

from .codec import dumps, run_head_to_dict, step_to_dict, strip_step_outputs

MAX_ENTRIES = 20_000
"""About as many steps as the run cache holds runs of ten steps (``sqlite_run_cache``):
an entry holds its step record, and so its output."""


class BodyEncoder:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max_entries = max_entries
        self._texts: dict[Hashable, tuple[object, JSON, str]] = {}

    def body(self, run: Run) -> str:
        head = run_head_to_dict(run)
        head["outbox"] = None  # stored in ``effects``
        events = self._text(("events", run.id), run.events, None, _events_text)
        steps = ",".join(
            self._text(("step", run.id, step.id), step, run.memos.get(step.id), _step_text)
            for step in run.steps
        )
        return f'{{"events":{events},"steps":[{steps}],{dumps(head)[1:]}'

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
