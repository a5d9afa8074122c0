"""The dispatcher drives a run on within one invocation (issue 10, item 4), and processes
the records of a batch concurrently (issue 11, "batch processing in dispatch").

A sequential step's next call is taken from the work queue instead of being sent, so the
run costs one SQS message and one dispatch invocation however many steps it has; and a
container that dies mid-drive loses nothing: the record that started the drive comes
back, finds its item done and re-sends the run's due call (``aws.dispatcher``).
The app is the official ``inngest`` SDK on loopback (``fault_app``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from handlers import dispatch as dispatch_handler

from wayline.calls.cycle import Reply
from wayline.engine.model import RunStatus

from .conftest import Stack, VirtualClock, template_resource
from .fault_app import Cluster, Executions, serving
from .faults import ContainerDied, Faults

FIVE = {f"s{i}": 1 for i in range(1, 6)}


@pytest.fixture
def cluster(stack: Stack, clock: VirtualClock) -> Iterator[tuple[Cluster, Executions]]:
    with serving(stack, clock, Faults()) as both:
        yield both


def settle_counting(driver: Cluster) -> int:
    """``Driver.settle``, counting the work-queue messages the dispatcher was handed."""
    dispatched = 0
    for _ in range(200):
        work = driver.fire_due_schedules()
        while (n := driver.poll("ingest")) > 0:
            work += n
        handled = driver.poll("dispatch")
        dispatched += handled
        if work + handled == 0:
            return dispatched
    raise AssertionError("still busy after 200 rounds")


def work_queue_depth(driver: Cluster) -> int:
    """Messages in the work queue, visible, in flight or delayed."""
    got = driver.stack.sqs.get_queue_attributes(
        QueueUrl=driver.stack.work_queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(n) for n in got.values())


def test_a_five_step_run_takes_one_message_and_one_invocation(
    cluster: tuple[Cluster, Executions],
) -> None:
    driver, executions = cluster
    driver.put_events("t/five")
    messages = settle_counting(driver)
    (run,) = driver.runs("five")
    assert run.status is RunStatus.COMPLETED and run.output == 15
    assert executions.of(run.id) == FIVE
    # six calls (one per step, then the one that returns), from one message in one invocation
    assert (messages, driver.invocations["dispatch"]) == (1, 1)
    assert work_queue_depth(driver) == 0  # no message was sent for the driven calls


def test_with_time_for_one_call_only_each_step_is_a_message(
    cluster: tuple[Cluster, Executions],
) -> None:
    """The drive is bounded by the invocation's remaining time: with room for one call, the
    next item goes to SQS as before, and the run still completes."""
    driver, executions = cluster
    per_call_ms = int(driver.runtimes["dispatch"].settings.call_timeout_s * 1000) + 10_000
    driver.remaining_ms["dispatch"] = per_call_ms + per_call_ms // 2
    driver.put_events("t/five")
    messages = settle_counting(driver)
    (run,) = driver.runs("five")
    assert run.status is RunStatus.COMPLETED and executions.of(run.id) == FIVE
    assert messages == driver.invocations["dispatch"] == 6


@pytest.mark.parametrize(
    ("point", "reruns"),
    [
        ("after_answer", {"s3": 2}),  # the third call's answer was lost: s3 runs again
        ("completed", {}),  # its result was saved and s4's call taken, never sent
        ("before_call", {}),  # s3's call was claimed, never made
    ],
)
def test_a_container_that_dies_mid_drive_loses_nothing(
    cluster: tuple[Cluster, Executions], point: str, reruns: dict[str, int]
) -> None:
    driver, executions = cluster
    dispatcher = driver.runtimes["dispatch"].dispatcher
    reached: Counter[str] = Counter()

    def die_at_the_third_call(name: str) -> None:
        reached[name] += 1
        if name == point and reached[name] == 3:
            dispatcher.checkpoint = lambda _name: None
            raise ContainerDied(name)

    dispatcher.checkpoint = die_at_the_third_call
    driver.put_events("t/five")
    driver.settle()
    (run,) = driver.runs("five")
    assert driver.crashes == 1 and run.status is RunStatus.RUNNING
    assert driver.receive(driver.stack.work_queue_url) == []  # the record is still held
    # It comes back within its hold (extended to two claim lifetimes while the run was
    # driven), finds its own item done, and re-sends the run's next call.
    driver.clock.advance(2 * dispatcher.claim_ttl_ms + 1_000)
    driver.settle()
    (run,) = driver.runs("five")
    assert run.status is RunStatus.COMPLETED and run.output == 15
    assert executions.of(run.id) == FIVE | reruns


class WaitForOther:
    """A transport whose first call waits (up to 10 s) until another call has answered:
    records processed one after another would make it wait in vain."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.first = threading.Lock()
        self.other_answered = threading.Event()
        self.waited_in_vain = False

    def send(self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float) -> Reply:
        if self.first.acquire(blocking=False):
            self.waited_in_vain = not self.other_answered.wait(10)
            return self.real.send(url, headers, body, timeout_s)  # type: ignore[no-any-return]
        reply: Reply = self.real.send(url, headers, body, timeout_s)
        self.other_answered.set()
        return reply

    def fetch(self, request: Any) -> Reply:
        return self.real.fetch(request)  # type: ignore[no-any-return]


def test_a_long_call_does_not_hold_the_rest_of_its_batch_hostage(
    cluster: tuple[Cluster, Executions],
) -> None:
    driver, _ = cluster
    dispatcher = driver.runtimes["dispatch"].dispatcher
    gate = WaitForOther(dispatcher.transport)
    dispatcher.transport = gate
    for order in (1, 2):
        driver.put_events("t/steps", {"order": order})
    while driver.poll("ingest"):
        pass
    batch = driver.receive(driver.stack.work_queue_url)
    assert len(batch) == 2  # both runs' first calls, in one batch
    driver.dispatch_with(driver.dispatch, batch)
    assert not gate.waited_in_vain  # the second record's calls ran during the first's
    runs = driver.runs("steps")
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 2
    assert driver.invocations["dispatch"] == 1


def test_the_batch_size_is_no_more_than_the_records_run_at_once() -> None:
    """A record beyond ``MAX_PARALLEL`` would wait for a thread while its hold (one call
    budget) runs out."""
    mapping = template_resource("WorkQueueMapping")["Properties"]
    assert mapping["BatchSize"] <= dispatch_handler.MAX_PARALLEL
