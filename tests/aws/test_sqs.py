"""wayline.aws.sqs: batching, delays (<= 900 s), retries of failed entries, decoding."""

from __future__ import annotations

from typing import Any

import pytest

from wayline.aws.sqs import WorkSender, decode_item, encode_item
from wayline.engine.model import WorkItem, WorkKind
from wayline.errors import StoreError, ValidationError

from .conftest import Stack, VirtualClock


def item(n: int, kind: WorkKind = WorkKind.CALL) -> WorkItem:
    return WorkItem(id=f"run{n}:1", run_id=f"run{n}", kind=kind, at=1_000 + n, step_id="abc")


def visible(stack: Stack) -> list[WorkItem]:
    got = stack.sqs.receive_message(QueueUrl=stack.work_queue_url, MaxNumberOfMessages=10)
    return [decode_item(m["Body"]) for m in got.get("Messages", [])]


def test_items_round_trip_through_a_message_body() -> None:
    original = WorkItem(
        id="r:2", run_id="r", kind=WorkKind.SLEEP, at=5, step_id="s", attempt=2, ref="x"
    )
    assert decode_item(encode_item(original)) == original


@pytest.mark.parametrize("body", ["", "[]", '{"id": "x"}', '{"id":"x","run_id":"r","kind":"?"}'])
def test_a_body_that_is_not_a_work_item_is_a_validation_error(body: str) -> None:
    with pytest.raises(ValidationError):
        decode_item(body)


def test_send_batches_ten_per_call(stack: Stack) -> None:
    calls: list[int] = []
    stack.sqs.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: calls.append(len(params["Entries"])),
    )
    WorkSender(queue_url=stack.work_queue_url, client=stack.sqs).send([item(i) for i in range(25)])
    assert calls == [10, 10, 5]
    received: list[WorkItem] = []
    for _ in range(10):
        received += visible(stack)
    assert sorted(i.id for i in received) == sorted(item(i).id for i in range(25))


def test_delays_are_honoured_and_clamped_to_900_seconds(stack: Stack, clock: VirtualClock) -> None:
    sent: list[int] = []
    stack.sqs.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: sent.extend(e["DelaySeconds"] for e in params["Entries"]),
    )
    sender = WorkSender(queue_url=stack.work_queue_url, client=stack.sqs)
    sender.send_delayed([(item(1), 30), (item(2), 5_000), (item(3), -4)])
    assert sent == [30, 900, 0]
    assert [i.id for i in visible(stack)] == [item(3).id]
    clock.advance(31_000)
    assert [i.id for i in visible(stack)] == [item(1).id]
    clock.advance(900_000)
    assert [i.id for i in visible(stack)] == [item(2).id]


class FlakySqs:
    def __init__(self, failures: list[list[dict[str, Any]]]) -> None:
        self.failures = failures
        self.calls: list[list[str]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
        self.calls.append([e["Id"] for e in Entries])
        failed = self.failures.pop(0) if self.failures else []
        return {"Successful": [], "Failed": failed}


def test_failed_entries_are_retried_then_reported() -> None:
    flaky = FlakySqs([[{"Id": "1", "Code": "InternalError", "SenderFault": False}]])
    sleeps: list[float] = []
    sender = WorkSender(queue_url="q", client=flaky, sleep=sleeps.append, jitter=lambda: 1.0)  # type: ignore[arg-type]
    sender.send([item(0), item(1), item(2)])
    assert flaky.calls == [["0", "1", "2"], ["1"]]
    assert sleeps == [0.1]

    always = FlakySqs([[{"Id": "0", "Code": "InternalError", "SenderFault": False}]] * 10)
    with pytest.raises(StoreError, match="still failing"):
        WorkSender(queue_url="q", client=always, sleep=lambda _: None).send([item(0)])  # type: ignore[arg-type]
    assert len(always.calls) == 4

    rejected = FlakySqs([[{"Id": "0", "Code": "InvalidMessageContents", "SenderFault": True}]])
    with pytest.raises(StoreError, match="InvalidMessageContents"):
        WorkSender(queue_url="q", client=rejected).send([item(0)])  # type: ignore[arg-type]
    assert len(rejected.calls) == 1


def test_a_missing_queue_is_a_store_error(stack: Stack) -> None:
    url = stack.work_queue_url.rsplit("/", 1)[0] + "/nope"
    with pytest.raises(StoreError, match="SQS SendMessageBatch failed") as raised:
        WorkSender(queue_url=url, client=stack.sqs).send([item(0)])
    assert raised.value.__cause__ is not None
