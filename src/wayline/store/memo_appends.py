"""``MemoAppends`` for any ``RunStore``: each append is a conditional save of the run.

What a store without a cheaper way offers (the SQLite store: a save is one small
transaction there already). ``Store.appends`` is left None for such a store, so the
service keeps its own checkpoint transition; this class exists so that the contract
suite holds every store to the same rules (``tests/contract/test_memo_appends.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from wayline.engine.model import JSON, Run
from wayline.engine.ports import AppendedMemo, RunHead, RunStore
from wayline.engine.protocol import state_size
from wayline.errors import StoreError

_MAX_TRIES = 50


class AppendBySave:
    def __init__(self, runs: RunStore) -> None:
        self._runs = runs

    def run_head(self, run_id: str, *, consistent: bool = True) -> RunHead | None:
        run = self._runs.get_run(run_id)
        if run is None:
            return None
        return RunHead(run, state_size(run), len(run.steps))

    def append_memos(self, head: RunHead, memos: Sequence[AppendedMemo], *, now: int) -> list[JSON]:
        for _ in range(_MAX_TRIES):
            run = self._runs.get_run(head.run.id)
            if run is None:
                raise StoreError(f"run {head.run.id}: gone while appending memos")
            changed, kept = _appended(run, memos)
            if changed is run:
                return kept
            saved = replace(changed, version=run.version + 1)
            if self._runs.save_run(saved, expected_version=run.version):
                return kept
        raise StoreError(f"run {head.run.id}: gave up appending after {_MAX_TRIES} races")


def _appended(run: Run, memos: Sequence[AppendedMemo]) -> tuple[Run, list[JSON]]:
    kept: list[JSON] = []
    for memo in memos:
        if memo.step_id in run.memos:
            kept.append(run.memos[memo.step_id])
            continue
        run = replace(
            run,
            memos={**run.memos, memo.step_id: memo.memo},
            stack=(*run.stack, memo.step_id),
        ).with_step(memo.record)
        kept.append(memo.memo)
    return run, kept
