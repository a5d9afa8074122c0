"""Reads see every committed write, whichever connection made it: a store may keep runs
in memory (SQLite does, see ``sqlite_run_cache``), but never hands back an old one.
Step outputs the engine copies from memos round-trip as the memo's values."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from wayline.engine.model import Outbox, Run, StepRecord, StepStatus
from wayline.engine.ports import Store
from wayline.errors import StoreError
from wayline.store.codec import dumps, loads, run_to_dict, strip_outputs
from wayline.store.sqlite import SqliteStore
from wayline.store.sqlite_run_body import BodyEncoder

from .conftest import Backend, make_full_run, make_outbox, make_run


def _advanced(run: Run, step: str, value: object) -> Run:
    """``run`` one step on, as the engine records it: the step's output IS its memo's."""
    memo = {"data": value}
    record = StepRecord(step, step, "StepRun", StepStatus.COMPLETED, 1, 1, 2, memo["data"])
    return replace(
        run,
        version=run.version + 1,
        memos={**run.memos, step: memo},
        stack=(*run.stack, step),
        steps=(*run.steps, record),
    )


def test_a_run_saved_through_another_connection_is_read_as_saved(durable: Backend) -> None:
    mine, other = durable.open(), durable.open()
    run = make_run()
    assert mine.runs.create_run(run)
    assert mine.runs.get_run(run.id) == run  # read once: a store may now hold it
    saved = _advanced(run, "s1", {"n": 1})
    assert other.runs.save_run(saved, expected_version=0)
    assert mine.runs.get_run(run.id) == saved
    (listed,) = mine.runs.list_runs(function_id=run.function_id)
    assert listed == saved
    # The stale copy cannot win a save either.
    assert not mine.runs.save_run(_advanced(run, "s2", 2), expected_version=0)
    assert mine.runs.get_run(run.id) == saved


def test_an_outbox_acknowledged_through_another_connection_is_read_as_acknowledged(
    durable: Backend,
) -> None:
    mine, other = durable.open(), durable.open()
    run = make_run(outbox=make_outbox())
    assert mine.runs.create_run(run)
    assert mine.runs.get_run(run.id) == run
    assert other.runs.ack_outbox(replace(run, outbox=Outbox()))
    got = mine.runs.get_run(run.id)
    assert got is not None and not got.outbox


def test_step_outputs_round_trip_as_their_memos(store: Store) -> None:
    run = make_run()
    assert store.runs.create_run(run)
    one = _advanced(run, "s1", {"deep": [1, "ü", None]})
    two = _advanced(one, "s2", None)  # a step that returned nothing
    assert store.runs.save_run(one, expected_version=0)
    assert store.runs.save_run(two, expected_version=1)
    got = store.runs.get_run(run.id)
    assert got == two
    assert got is not None
    assert [s.output for s in got.steps] == [{"deep": [1, "ü", None]}, None]


# -- SQLite only: how the rows look, and batches ---------------------------------------------


def test_sqlite_stores_a_step_output_once(tmp_path: Path) -> None:
    sqlite = SqliteStore(tmp_path / "w.db")
    run = make_run()
    sqlite.runs.create_run(run)
    sqlite.runs.save_run(_advanced(run, "s1", "an-output-stored-once"), expected_version=0)
    with sqlite._db.autocommit() as conn:
        (body,) = conn.execute("SELECT body FROM runs").fetchone()
        (memo,) = conn.execute("SELECT value FROM memos").fetchone()
    assert "an-output-stored-once" not in body
    assert "an-output-stored-once" in memo
    reopened = SqliteStore(tmp_path / "w.db")  # no cache: decoded from the rows
    got = reopened.runs.get_run(run.id)
    assert got is not None and got.steps[0].output == "an-output-stored-once"
    sqlite.close()
    reopened.close()


def test_sqlite_batch_commits_together_and_a_failed_part_undoes_only_itself(
    tmp_path: Path,
) -> None:
    sqlite, other = SqliteStore(tmp_path / "w.db"), SqliteStore(tmp_path / "w.db")
    first, second = make_run("01HRUN0000000000000000000A"), make_run("01HRUN0000000000000000000B")
    with sqlite.batch():
        sqlite.runs.create_run(first)
        with pytest.raises(StoreError), sqlite._db.transaction():  # fails after writing
            sqlite.runs.create_run(second)
            raise StoreError("boom")
        assert other.runs.get_run(first.id) is None  # not committed yet
    assert other.runs.get_run(first.id) == first
    assert other.runs.get_run(second.id) is None
    assert sqlite.runs.get_run(second.id) is None
    sqlite.close()
    other.close()


def test_sqlite_rolled_back_batch_leaves_no_cached_run(tmp_path: Path) -> None:
    """A save undone with its batch must not be served from memory afterwards, even
    when another connection later commits a different run under the same version."""
    sqlite, other = SqliteStore(tmp_path / "w.db"), SqliteStore(tmp_path / "w.db")
    run = make_run()
    sqlite.runs.create_run(run)
    assert sqlite.runs.get_run(run.id) == run
    with pytest.raises(RuntimeError), sqlite.batch():
        assert sqlite.runs.save_run(_advanced(run, "mine", 1), expected_version=0)
        raise RuntimeError("crash before the commit")
    theirs = replace(_advanced(run, "theirs", 2), outbox=Outbox())
    assert other.runs.save_run(theirs, expected_version=0)
    assert sqlite.runs.get_run(run.id) == theirs
    sqlite.close()
    other.close()


def test_sqlite_reads_and_acknowledges_an_outbox_stored_in_the_body(tmp_path: Path) -> None:
    """Rows written before the ``effects`` column (schema 2) hold the outbox in the body."""
    sqlite = SqliteStore(tmp_path / "w.db")
    run = make_run(outbox=make_outbox())
    body = run_to_dict(run)
    del body["memos"]
    with sqlite._db.autocommit() as conn:
        conn.execute(
            "INSERT INTO runs (id, function_id, version, status, created_at, body, outbox)"
            " VALUES (?, ?, ?, ?, ?, ?, 1)",
            (run.id, run.function_id, run.version, run.status.value, run.created_at, dumps(body)),
        )
    assert sqlite.runs.get_run(run.id) == run
    assert sqlite.runs.ack_outbox(replace(run, outbox=Outbox()))
    reopened = SqliteStore(tmp_path / "w.db")
    assert reopened.runs.get_run(run.id) == replace(run, outbox=Outbox())
    sqlite.close()
    reopened.close()


def test_sqlite_body_pieces_encode_what_run_to_dict_does() -> None:
    """The body spliced from cached pieces is ``run_to_dict``'s object, outputs stripped,
    however the run changes between saves (a step replaced, a memo added, new events,
    only the version and stack, other head fields)."""
    run = _advanced(_advanced(make_full_run(), "s8", [1, "ü"]), "s9", None)
    encoder = BodyEncoder()
    changed = replace(
        run,
        steps=(replace(run.steps[0], attempts=2), *run.steps[1:]),
        events=(*run.events, {"name": "c", "data": {}}),
    )
    grown = _advanced(_advanced(changed, "s10", {"k": 1}), "s11", 2)
    unmemoized = replace(grown, memos={k: v for k, v in grown.memos.items() if k != "s10"})
    versions = (
        run,
        run,
        changed,
        changed,
        _advanced(changed, "s10", {"k": 1}),  # steps added at the end: spliced on
        grown,
        unmemoized,  # the same records, one memo fewer: its output is no longer a reference
        grown,
        replace(grown, steps=grown.steps[:2]),  # fewer steps than last time
        grown,
        replace(grown, version=9, stack=(*grown.stack, "x")),  # the same head fields
        replace(grown, seq=grown.seq + 1, pending={}, cancel_reason="c"),  # a new head
        grown,
    )
    for version in versions:
        expected = run_to_dict(version)
        del expected["memos"]
        expected["outbox"] = None
        strip_outputs(expected, version.memos)
        assert loads(encoder.body(version)) == expected


def test_sqlite_caches_a_saved_run_only_if_its_memos_are_what_is_stored(tmp_path: Path) -> None:
    """A save whose memos do not extend the stored ones key by key and object by object
    (here: one stored memo missing, its value under another key) is not served from
    memory: the next read has what the file holds."""
    sqlite = SqliteStore(tmp_path / "w.db")
    value = {"data": 1}
    run = replace(make_run(), memos={"a": value}, stack=("a",))
    sqlite.runs.create_run(run)
    assert sqlite.runs.get_run(run.id) == run
    odd = replace(run, version=1, memos={"b": value}, stack=("b",))
    assert sqlite.runs.save_run(odd, expected_version=0)
    stored = sqlite.runs.get_run(run.id)
    assert stored is not None and dict(stored.memos) == {"a": value, "b": value}
    sqlite.close()
