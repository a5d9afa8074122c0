"""``AppStore`` on DynamoDB: apps in one partition, functions in another.

``APPS``/``APP#<id>`` holds an app, its revision ``rev`` and a fingerprint of each of its
functions (``fns``: id -> SHA-256 of the function's canonical JSON), so that a re-sync
finds what changed from that one item, without reading any function. ``FNS``/``FN#<id>``
holds a function (``get_function`` is one GetItem, ``list_functions()`` one Query); the
``functions_by_app`` index serves ``list_functions(app_id)``. Apps and functions number
in the hundreds, so a partition each is plenty.

A sync writes the changed functions and the app in one transaction, the app conditional
on the ``rev`` it was planned against; a concurrent sync of the same app makes it fail,
and the failure hands back the winner's app item (``ALL_OLD``) to re-plan against, with
no extra read. Over 99 function changes (a transaction holds 100 writes), the earlier
batches commit first and only the last one carries the app: a crash in between leaves
functions that the next sync of the app finds and rewrites, as its fingerprints differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from wayline.engine.model import App, FunctionDef
from wayline.errors import StoreError

from . import keys
from .codec import app_from_dict, app_to_dict, function_from_dict, function_to_dict
from .dynamodb_schema import PK, SK
from .dynamodb_table import ConditionFailed, Item, Table, Write, n, number, s

_SYNC_RETRIES = 5
_TRANSACTION_WRITES = 100


class DynamoAppStore:
    def __init__(self, table: Table) -> None:
        self._t = table

    def put_app(self, app: App, functions: Sequence[FunctionDef]) -> bool:
        """Replace the app and its functions; True iff anything but ``synced_at`` changed."""
        for fn in functions:
            if fn.app_id != app.id:
                raise ValueError(f"function {fn.id!r} of app {fn.app_id!r} put under {app.id!r}")
        wanted = {fn.id: fn for fn in functions}
        old = self._t.get(keys.app(app.id))
        for _ in range(_SYNC_RETRIES):
            try:
                return self._sync(app, wanted, old)
            except ConditionFailed as lost:
                old = lost.old  # another sync of this app won: plan again against it
        raise StoreError(f"app {app.id!r}: concurrent syncs kept winning over this one")

    def get_app(self, app_id: str) -> App | None:
        item = self._t.get(keys.app(app_id))
        return None if item is None else app_from_dict(self._t.decode_body(item))

    def list_apps(self) -> list[App]:
        found = self._t.query("#pk = :pk", {":pk": s(keys.APPS_PARTITION)})
        return [app_from_dict(self._t.decode_body(item)) for item in found]

    def get_function(self, function_id: str) -> FunctionDef | None:
        item = self._t.get(keys.function(function_id))
        return None if item is None else function_from_dict(self._t.decode_body(item))

    def list_functions(self, app_id: str | None = None) -> list[FunctionDef]:
        if app_id is None:
            found = self._t.query("#pk = :pk", {":pk": s(keys.FUNCTIONS_PARTITION)})
        else:
            found = self._t.query(
                "#fn_app = :app",
                {":app": s(keys.functions_by_app(app_id))},
                index="functions_by_app",
            )
        return [function_from_dict(self._t.decode_body(item)) for item in found]

    def _sync(self, app: App, wanted: Mapping[str, FunctionDef], old: Item | None) -> bool:
        """One attempt at a sync planned against ``old``; ``ConditionFailed`` if it moved."""
        old_prints = {} if old is None else {k: v["S"] for k, v in old["fns"]["M"].items()}
        prints = {fn_id: _fingerprint(fn) for fn_id, fn in wanted.items()}
        changed = [fn for fn_id, fn in wanted.items() if old_prints.get(fn_id) != prints[fn_id]]
        removed = sorted(old_prints.keys() - wanted.keys())
        writes = [self._t.put(self._function_item(fn)) for fn in changed]
        writes += [self._t.delete(keys.function(fn_id)) for fn_id in removed]
        step = _TRANSACTION_WRITES - 1
        batches = [writes[i : i + step] for i in range(0, len(writes), step)] or [[]]
        for batch in batches[:-1]:
            self._t.write_all(batch)
        self._t.write_all([*batches[-1], self._app_write(app, prints, old)], old_on_fail=True)
        return bool(changed or removed) or _app_changed(self._t, app, old)

    def _app_write(self, app: App, prints: Mapping[str, str], old: Item | None) -> Write:
        key = keys.app(app.id)
        item: Item = {
            PK: s(key.pk),
            SK: s(key.sk),
            "rev": n(0 if old is None else number(old, "rev") + 1),
            "fns": {"M": {fn_id: s(p) for fn_id, p in prints.items()}},
            **self._t.encode_body(app_to_dict(app), kind="app", owner=app.id, what=f"app {app.id}"),
        }
        if old is None:
            return self._t.put(item, condition="attribute_not_exists(#pk)")
        return self._t.put(item, condition="#rev = :rev", values={":rev": old["rev"]})

    def _function_item(self, fn: FunctionDef) -> Item:
        key = keys.function(fn.id)
        return {
            PK: s(key.pk),
            SK: s(key.sk),
            "fn_app": s(keys.functions_by_app(fn.app_id)),
            "fn_id": s(fn.id),
            **self._t.encode_body(
                function_to_dict(fn), kind="function", owner=fn.id, what=f"function {fn.id}"
            ),
        }


def _fingerprint(fn: FunctionDef) -> str:
    # Sorted keys: the order of keys inside ``config`` is not a change.
    canonical = json.dumps(function_to_dict(fn), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _app_changed(table: Table, app: App, old: Mapping[str, Any] | None) -> bool:
    if old is None:
        return True
    # A re-sync always moves ``synced_at``; only the rest of the app counts as a change.
    return replace(app_from_dict(table.decode_body(old)), synced_at=app.synced_at) != app
