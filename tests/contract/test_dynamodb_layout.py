"""DynamoDB-only: the run layout in which nothing grows with the run (layout 2), its write
protocol without transactions, the crash between its two writes, and runs stored in the
previous layout (see ``wayline.store.dynamodb_runs``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from botocore.exceptions import EndpointConnectionError

from wayline.engine.events import internal_event
from wayline.engine.lifecycle import finish_events
from wayline.engine.model import Outbox, Run, RunStatus, StepRecord, StepStatus, WorkItem, WorkKind
from wayline.engine.ports import AppendedMemo
from wayline.store import keys
from wayline.store.codec import dumps, loads, run_to_dict
from wayline.store.dynamodb_table import key_item

from . import test_dynamodb
from .conftest import make_item, make_run
from .test_dynamodb import TABLE, Aws

aws = test_dynamodb.aws  # the fixture: moto, the table, and every call recorded

OUTPUT_PAD = "x" * 200


def _step(run: Run, i: int) -> Run:
    """``run`` after its step ``i`` completed, as the engine saves it."""
    step_id = f"step-{i:03d}"
    memo = {"data": {"i": i, "pad": OUTPUT_PAD}}
    record = StepRecord(
        step_id, f"step {i}", "StepRun", StepStatus.COMPLETED, 1, i, i + 1, memo["data"]
    )
    return replace(
        run,
        version=run.version + 1,
        status=RunStatus.RUNNING,
        memos={**run.memos, step_id: memo},
        stack=(*run.stack, step_id),
        steps=(*run.steps, record),
    )


def _run_item_bytes(aws: Aws, run_id: str) -> int:
    item = aws.raw(keys.run(run_id))
    return sum(len(name) + len(dumps(value)) for name, value in item.items())


def test_the_run_item_does_not_grow_with_the_run(aws: Aws) -> None:
    runs = aws.store().runs
    run = make_run()
    runs.create_run(run)
    sizes = {}
    for i in range(50):
        saved = _step(run, i)
        assert runs.save_run(saved, expected_version=run.version)
        run = saved
        sizes[i + 1] = _run_item_bytes(aws, run.id)
    assert sizes[50] <= sizes[10] + 16  # a digit or two, not 40 steps of timeline
    got = aws.store().runs.get_run(run.id)  # another process: everything from the items
    assert got == run
    assert [s.id for s in got.steps] == list(got.stack) == list(got.memos)


def test_a_record_that_changes_after_its_memo_goes_back_into_the_run_item(aws: Aws) -> None:
    runs = aws.store().runs
    run = make_run()
    runs.create_run(run)
    one = _step(run, 0)
    assert runs.save_run(one, expected_version=0)
    renamed = replace(one.steps[0], name="renamed")
    two = replace(_step(one, 1), steps=(renamed, _step(one, 1).steps[1]))
    assert runs.save_run(two, expected_version=1)
    assert "renamed" in aws.raw(keys.run(run.id))["body"]["S"]
    assert aws.store().runs.get_run(run.id) == two


def test_a_loser_of_the_race_leaves_no_memo_behind(aws: Aws) -> None:
    """Without a transaction a memo could be written by a save that then loses; here the
    memo item is only written after the run item's update committed, so it never is."""
    runs = aws.store().runs
    run = make_run()
    runs.create_run(run)
    a = replace(run, version=1, memos={"b": {"data": "A"}})
    b = replace(run, version=1, memos={"b": {"data": "B"}}, status=RunStatus.FAILED)
    assert runs.save_run(a, expected_version=0)
    assert not aws.store().runs.save_run(b, expected_version=0)
    assert aws.raw(keys.memo(run.id, "b"))["body"]["S"] == dumps({"data": "A"})
    assert aws.store().runs.get_run(run.id) == a


class _BatchWritesFail:
    """A client on which every BatchWriteItem fails: a crash right after the commit."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name == "batch_write_item":  # the process died before writing the memo items
            raise EndpointConnectionError(endpoint_url="https://dynamodb")
        return getattr(self._client, name)


def test_a_crash_between_the_commit_and_the_memo_item_loses_nothing(aws: Aws) -> None:
    run = make_run()
    aws.store().runs.create_run(run)
    crashing = aws.store(client=_BatchWritesFail(aws.client)).runs
    one = _step(run, 0)
    assert crashing.save_run(one, expected_version=0)  # committed: the run item has it
    assert "Item" not in aws.client.get_item(
        TableName=TABLE, Key=key_item(keys.memo(run.id, "step-000"))
    )
    later = aws.store().runs  # a worker that never saw this run
    assert later.get_run(run.id) == one
    two = _step(one, 1)
    aws.calls.clear()
    assert later.save_run(two, expected_version=1)
    # First the memo the crash left in the run item only, then the commit, then the new one.
    assert aws.ops() == ["BatchWriteItem", "UpdateItem", "BatchWriteItem"]
    assert aws.raw(keys.memo(run.id, "step-000"))["v"] == {"N": "1"}
    assert aws.store().runs.get_run(run.id) == two


def _store_in_layout_1(aws: Aws, run: Run) -> None:
    """``run`` as the previous layout stored it: the timeline and stack in the run item,
    memo items written with it (no record in them)."""
    doc = run_to_dict(run)
    memos = doc.pop("memos")
    head = {
        **key_item(keys.run(run.id)),
        "ver": {"N": str(run.version)},
        "memos": {"N": str(len(memos))},
        "run_id": {"S": run.id},
        "body": {"S": dumps(doc)},
    }
    aws.client.put_item(TableName=TABLE, Item=head)
    for index, (step_id, memo) in enumerate(memos.items()):
        item = {
            **key_item(keys.memo(run.id, step_id)),
            "v": {"N": str(run.version)},
            "i": {"N": str(index)},
            "body": {"S": dumps(memo)},
        }
        aws.client.put_item(TableName=TABLE, Item=item)


def test_a_run_stored_in_the_previous_layout_is_read_and_saved(aws: Aws) -> None:
    old = _step(_step(make_run(), 0), 1)
    _store_in_layout_1(aws, old)
    runs = aws.store().runs
    assert runs.get_run(old.id) == old
    new = _step(old, 2)
    assert runs.save_run(new, expected_version=old.version)
    assert aws.store().runs.get_run(old.id) == new
    steps = loads(aws.raw(keys.run(old.id))["body"]["S"])["steps"]
    assert [s["id"] for s in steps] == ["step-000", "step-001"]  # the new one moved out


def test_an_acknowledgement_is_a_marker_not_a_rewrite_of_the_run(aws: Aws) -> None:
    runs = aws.store().runs
    run = make_run()
    runs.create_run(run)
    saved = replace(_step(run, 0), outbox=Outbox(enqueue=(make_item("1", run_id=run.id),)))
    assert runs.save_run(saved, expected_version=0)
    before = aws.raw(keys.run(run.id))
    aws.calls.clear()
    assert runs.ack_outbox(replace(saved, outbox=Outbox()))
    assert aws.ops() == ["PutItem", "GetItem"]
    assert aws.raw(keys.run(run.id)) == before
    assert len(dumps(aws.raw(keys.run_ack(run.id)))) < 100
    assert aws.store().runs.get_run(run.id) == replace(saved, outbox=Outbox())
    # The next save's outbox is not acknowledged by the marker of the one before.
    nxt = replace(_step(saved, 1), outbox=Outbox(enqueue=(make_item("2", run_id=run.id),)))
    assert runs.save_run(nxt, expected_version=1)
    assert aws.store().runs.get_run(run.id) == nxt
    assert not runs.ack_outbox(replace(saved, outbox=Outbox()))  # the run moved on


def test_a_finished_run_is_acknowledged_on_its_item_and_leaves_the_live_index(
    aws: Aws,
) -> None:
    runs = aws.store().runs
    run = make_run()
    runs.create_run(run)
    done = replace(
        run,
        version=1,
        status=RunStatus.COMPLETED,
        outbox=Outbox(enqueue=(make_item("1", run_id=run.id),)),
    )
    assert runs.save_run(done, expected_version=0)
    assert [r.id for r in runs.list_live_runs()] == [run.id]
    aws.calls.clear()
    assert runs.ack_outbox(replace(done, outbox=Outbox()))
    assert aws.ops() == ["UpdateItem"]
    assert "run_live" not in aws.raw(keys.run(run.id))
    assert runs.list_live_runs() == []
    assert aws.store().runs.get_run(run.id) == replace(done, outbox=Outbox())


# -- memos appended by checkpoints (``dynamodb_memo_appends``) -------------------------


def _appended(i: int) -> AppendedMemo:
    step_id = f"step-{i:03d}"
    memo = {"data": {"i": i, "pad": OUTPUT_PAD}}
    record = StepRecord(
        step_id, f"step {i}", "StepRun", StepStatus.COMPLETED, 1, i, i + 1, memo["data"]
    )
    return AppendedMemo(step_id, memo, record)


def _live(run: Run) -> Run:
    call = WorkItem(id="call-1", run_id=run.id, kind=WorkKind.CALL, at=1)
    return replace(run, status=RunStatus.RUNNING, pending={call.id: call})


def test_a_checkpointed_step_is_one_read_and_one_conditional_put(aws: Aws) -> None:
    """The run's first appended memo also marks its run item (once)."""
    store = aws.store()
    run = _live(make_run())
    store.runs.create_run(run)
    for i, expected in enumerate([["GetItem", "UpdateItem", "PutItem"], ["GetItem", "PutItem"]]):
        aws.calls.clear()
        head = store.appends.run_head(run.id, consistent=False)
        assert head is not None
        store.appends.append_memos(head, [_appended(i)], now=1_000 + i)
        assert aws.ops() == expected
        get, *_, put = (params for _, params in aws.calls)
        assert get["ConsistentRead"] is False
        assert put["ConditionExpression"] == "attribute_not_exists(#pk)"
        assert put["Item"]["sk"] == {"S": keys.memo(run.id, f"step-{i:03d}").sk}


def test_a_cached_run_never_appended_to_is_checked_in_one_read(aws: Aws) -> None:
    """A run whose SDK does not checkpoint (no mark on its item) keeps the 1-unit check of
    a run this process holds, even with a call pending."""
    runs = aws.store().runs
    run = _live(make_run())
    runs.create_run(run)
    aws.calls.clear()
    assert runs.get_run(run.id) == run
    (query,) = [params for op, params in aws.calls]
    assert query["ExpressionAttributeValues"][":run"] == {"S": keys.RUN_SK}


def test_saves_after_appends_do_not_grow_the_run_item(aws: Aws) -> None:
    """An appended record keeps its position (``[records, clock]``) when a later save
    renumbers the timeline, so no save copies it back into the run item."""
    store = aws.store()
    run = _live(make_run())
    store.runs.create_run(run)
    sizes = []
    for i in range(0, 40, 2):
        head = store.appends.run_head(run.id)
        assert head is not None
        store.appends.append_memos(head, [_appended(i)], now=1_000 + i)
        loaded = store.runs.get_run(run.id)
        assert loaded is not None
        saved = _step(loaded, i + 1)
        assert store.runs.save_run(saved, expected_version=loaded.version)
        sizes.append(_run_item_bytes(aws, run.id))
    assert sizes[-1] <= sizes[2] + 16
    got = aws.store().runs.get_run(run.id)
    assert got is not None
    assert [s.id for s in got.steps] == list(got.stack) == [f"step-{i:03d}" for i in range(40)]


def test_a_process_that_cached_the_run_still_loads_appended_memos(aws: Aws) -> None:
    """No version moves on an append: a run with a discovery call pending is read whole,
    never answered from what the process saw last."""
    dispatcher, api = aws.store(), aws.store()
    run = _live(make_run())
    dispatcher.runs.create_run(run)
    assert dispatcher.runs.get_run(run.id) == run  # cached at version 0
    head = api.appends.run_head(run.id)
    assert head is not None
    api.appends.append_memos(head, [_appended(0)], now=1_000)

    loaded = dispatcher.runs.get_run(run.id)

    assert loaded is not None and list(loaded.memos) == ["step-000"]
    assert loaded.version == 0


def test_a_finished_runs_lifecycle_events_are_stored_as_references(aws: Aws) -> None:
    """``inngest/function.finished`` in the finishing save's outbox is rebuilt from the run
    (``dynamodb_lifecycle_refs``): the run item stays small, and reads give it back whole."""
    runs = aws.store().runs
    run = make_run(events=({"name": "shop/order.created", "data": {"pad": "x" * 300}},))
    runs.create_run(run)
    done = replace(run, version=1, status=RunStatus.COMPLETED, output={"total": 3})
    published = tuple(
        internal_event(raw).identify(
            f"01HEVT00000000000000000F{i}X", received_at=7 + i, keep_internal=True
        )
        for i, raw in enumerate(finish_events(done))
    )
    done = replace(done, outbox=Outbox(publish=published))
    assert runs.save_run(done, expected_version=0)
    assert "function.finished" not in aws.raw(keys.run(run.id))["body"]["S"]
    assert aws.store().runs.get_run(run.id) == done

    edited = replace(published[0], data={**published[0].data, "result": "not the run's"})
    other = replace(done, version=2, outbox=Outbox(publish=(edited,)))
    assert runs.save_run(other, expected_version=1)
    assert "not the run's" in aws.raw(keys.run(run.id))["body"]["S"]  # stored whole
    assert aws.store().runs.get_run(run.id) == other
