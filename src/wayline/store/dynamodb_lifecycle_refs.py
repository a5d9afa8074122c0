"""The lifecycle events a finished run's outbox publishes, stored as references.

When a run finishes, its save carries ``inngest/function.finished`` (and ``.failed`` /
``.cancelled``) in its outbox until they are published: each holds the run's trigger
event twice (``event`` and ``events``) and its result, ~500 bytes that made the finished
run item cross 1 KB, so its save and its acknowledgement cost a write unit more each.
These events are a pure function of the run (``lifecycle.finish_events``) plus the id
and receipt time they were given, so the run item keeps only those: ``{"lifecycle":
<index in finish_events>, "internal_id", "received_at"}``. A reference is only written
when rebuilding the event from the saved run gives exactly the event (anything else is
stored whole), and it is rebuilt on every read of the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wayline.engine.events import internal_event
from wayline.engine.lifecycle import finish_events
from wayline.engine.model import Run
from wayline.errors import ValidationError

from .codec import event_to_dict

_REF = "lifecycle"


def refer(doc: dict[str, Any], run: Run) -> None:
    """Replace, in the run item's document ``doc`` of ``run``, each published event that
    ``finish_events(run)`` rebuilds exactly by its reference."""
    publish = (doc.get("outbox") or {}).get("publish") or []
    if not publish or not run.status.is_terminal:
        return
    raws = finish_events(run)
    refs = []
    for event in publish:
        refs.append(event)
        for index in range(len(raws)):
            if _rebuilt(raws, index, event["internal_id"], event["received_at"]) == event:
                refs[-1] = {
                    _REF: index,
                    "internal_id": event["internal_id"],
                    "received_at": event["received_at"],
                }
                break
    doc["outbox"] = {**doc["outbox"], "publish": refs}


def restore(doc: dict[str, Any], run_of: Callable[[dict[str, Any]], Run]) -> None:
    """Put back, in a run document read from its item, the events ``refer`` replaced;
    ``run_of`` decodes a run document (its outbox left out)."""
    outbox = doc.get("outbox") or {}
    publish = outbox.get("publish") or []
    if not any(_REF in event for event in publish):
        return
    raws = finish_events(run_of({**doc, "outbox": {}}))
    doc["outbox"] = {
        **outbox,
        "publish": [
            _rebuilt(raws, e[_REF], e["internal_id"], e["received_at"]) if _REF in e else e
            for e in publish
        ],
    }


def _rebuilt(raws: Any, index: int, internal_id: str, received_at: int) -> dict[str, Any] | None:
    try:
        event = internal_event(raws[index]).identify(
            internal_id, received_at=received_at, keep_internal=True
        )
    except (ValidationError, IndexError):
        return None
    return event_to_dict(event)
