"""Deterministic reproductions of issue 14's AWS defects 4-7, each through a fault moto is made
to produce (``faults.py``): a failed enqueue after the save, a sweep that stops at a throttled
read or a failing page, a failed record left for the 90-minute visibility timeout, a step
body run twice by two containers, and failures that leave no trace."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import handlers._shared
import pytest

from wayline.aws import processing
from wayline.aws.backoff import visibility_backoff_s
from wayline.aws.sqs import decode_item
from wayline.engine.model import RunStatus

from .conftest import Stack, VirtualClock
from .driver import FakeLambdaContext
from .fault_app import Cluster, Executions, serving
from .faults import ContainerDied, Fault, Faults, Kind, is_run_save


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def cluster(
    stack: Stack, clock: VirtualClock, faults: Faults
) -> Iterator[tuple[Cluster, Executions]]:
    with serving(stack, clock, faults) as both:
        yield both


def visible_again_within(seconds: float, cluster: Cluster) -> int:
    """Advance the clock by ``seconds`` and settle; the messages handled."""
    cluster.clock.advance(int(seconds * 1000))
    return cluster.settle()


# ------------------------------------------------------------------ defect 4: enqueue


def test_a_failed_enqueue_after_the_save_is_retried_inside_the_invocation(
    cluster: tuple[Cluster, Executions], faults: Faults
) -> None:
    """The first call's result is saved; sending the next item is throttled past botocore's
    own retries once. The dispatcher retries it with a short backoff, so the run goes on in
    the same invocation: no failed record, no redelivery, no waiting for the sweep.
    (The invocation has time for one call only, so the dispatcher sends the next item
    rather than driving the run on.)"""
    driver, executions = cluster
    per_call_ms = int(driver.runtimes["dispatch"].settings.call_timeout_s * 1000) + 10_000
    driver.remaining_ms["dispatch"] = per_call_ms + per_call_ms // 2
    faults.add(Fault("sqs", "SendMessageBatch", Kind.THROTTLE, skip=1))  # 1st is at ingest
    driver.put_events("t/steps")
    driver.settle()
    (run,) = driver.runs("steps")
    assert faults.injected == [("sqs", "SendMessageBatch", Kind.THROTTLE)]
    assert run.status is RunStatus.COMPLETED and run.output == 3
    assert driver.failed_records == []
    assert executions.of(run.id) == {"a": 1, "b": 1, "c": 1}
    assert 0 < sum(driver.slept) < 2  # the backoff was short (and slept on no real clock)


# ------------------------------------------------------------------ defect 4: sweep


def lose_first_items(driver: Cluster, n: int) -> list[str]:
    """Start ``n`` runs whose first work item is lost (deleted from the queue unhandled);
    the run ids, oldest first."""
    for i in range(n):
        driver.put_events("t/steps", {"i": i})
    while driver.poll("ingest"):
        pass
    while messages := driver.receive(driver.stack.work_queue_url):
        for m in messages:
            url = driver.stack.work_queue_url
            driver.stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return sorted(r.id for r in driver.runs("steps"))


def resent_run_ids(driver: Cluster) -> list[str]:
    ids = []
    while messages := driver.receive(driver.stack.work_queue_url):
        for m in messages:
            ids.append(decode_item(m["Body"]).run_id)
            url = driver.stack.work_queue_url
            driver.stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return sorted(ids)


def sweep(driver: Cluster) -> str:
    done: str = driver.timers({"kind": "sweep"}, FakeLambdaContext())["done"]
    return done


def test_the_sweep_pages_through_every_live_run_and_retries_a_throttled_read(
    cluster: tuple[Cluster, Executions], faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver, _ = cluster
    monkeypatch.setattr(processing, "SWEEP_PAGE", 3)
    run_ids = lose_first_items(driver, 7)
    driver.clock.advance(16 * 60_000)
    faults.add(
        Fault(
            "dynamodb",
            "Query",
            Kind.THROTTLE,
            skip=4,  # a read inside the second page
            when=lambda _op, params: params.get("IndexName") == "live_runs",
        )
    )
    assert sweep(driver) == "sweep"
    assert faults.injected == [("dynamodb", "Query", Kind.THROTTLE)]
    assert resent_run_ids(driver) == run_ids  # all 7, over 3 pages


def test_a_failing_sweep_page_does_not_abort_the_rest(
    cluster: tuple[Cluster, Executions], faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver, _ = cluster
    monkeypatch.setattr(processing, "SWEEP_PAGE", 3)
    run_ids = lose_first_items(driver, 7)
    driver.clock.advance(16 * 60_000)
    first_page = set(run_ids[:3])
    faults.add(
        Fault(
            "sqs",
            "SendMessageBatch",
            Kind.SERVER_ERROR,
            times=1_000,  # outlasts every retry
            when=lambda _op, params: any(
                decode_item(e["MessageBody"]).run_id in first_page for e in params["Entries"]
            ),
        )
    )
    assert sweep(driver) == "sweep_incomplete"
    assert resent_run_ids(driver) == run_ids[3:]  # pages 2 and 3 went on
    faults.clear()
    assert sweep(driver) == "sweep"  # the next sweep repairs the first page
    assert resent_run_ids(driver) == run_ids


# ------------------------------------------------------------------ defect 5: visibility


def throttle_the_save_of_the_first_answer(driver: Cluster, faults: Faults) -> None:
    """Once the app has answered the first call, the run's next save is throttled past
    every botocore retry."""
    dispatcher = driver.runtimes["dispatch"].dispatcher

    def arm(point: str) -> None:
        if point == "after_answer":
            dispatcher.checkpoint = lambda _point: None
            faults.add(Fault("dynamodb", None, Kind.THROTTLE, when=is_run_save))

    dispatcher.checkpoint = arm


def test_a_failed_record_comes_back_after_seconds_not_the_visibility_timeout(
    cluster: tuple[Cluster, Executions], faults: Faults
) -> None:
    """The save of the first call's result is throttled past every retry: the record fails,
    and SQS shows it again after a backoff of seconds (ChangeMessageVisibility)."""
    driver, _ = cluster
    throttle_the_save_of_the_first_answer(driver, faults)
    driver.put_events("t/steps")
    driver.settle()
    (run,) = driver.runs("steps")
    assert len(driver.failed_records) == 1 and run.status is RunStatus.RUNNING
    assert driver.receive(driver.stack.work_queue_url) == []  # invisible for now ...
    visible_again_within(visibility_backoff_s(1, jitter=lambda: 1.0) + 0.1, driver)
    (run,) = driver.runs("steps")  # ... and back within 3 s, not 90 minutes
    assert run.status is RunStatus.COMPLETED and run.output == 3


def test_a_record_whose_container_died_comes_back_within_its_budget(
    cluster: tuple[Cluster, Executions],
) -> None:
    """The app answered, then the container died before saving: nothing reports the record
    failed. It comes back when its hold lapses (call timeout + 60 s), not after 90 minutes."""
    driver, executions = cluster
    dispatcher = driver.runtimes["dispatch"].dispatcher

    def die_once(point: str) -> None:
        if point == "after_answer":
            dispatcher.checkpoint = lambda _point: None
            raise ContainerDied(point)

    dispatcher.checkpoint = die_once
    driver.put_events("t/steps")
    driver.settle()
    (run,) = driver.runs("steps")
    assert driver.crashes == 1 and run.status is RunStatus.RUNNING
    hold_s = int(driver.runtimes["dispatch"].settings.call_timeout_s) + 60
    # (the virtual clock runs with the real one: 10 s of slack for a loaded machine)
    visible_again_within(hold_s - 10, driver)
    assert driver.runs("steps")[0].status is RunStatus.RUNNING  # not early
    visible_again_within(11, driver)
    (run,) = driver.runs("steps")
    assert run.status is RunStatus.COMPLETED
    assert executions.of(run.id) == {"a": 2, "b": 1, "c": 1}  # a's answer was never saved


@pytest.mark.parametrize(("receives", "low", "high"), [(1, 2, 3), (2, 4, 6), (5, 32, 48)])
def test_the_backoff_grows_with_the_receive_count(receives: int, low: int, high: int) -> None:
    assert visibility_backoff_s(receives, jitter=lambda: 0.0) == low
    assert visibility_backoff_s(receives, jitter=lambda: 1.0) == high


def test_the_backoff_is_capped_at_15_minutes() -> None:
    assert visibility_backoff_s(40, jitter=lambda: 1.0) == 900


# ------------------------------------------------------------------ defect 6: claim


def test_two_containers_racing_on_a_duplicate_delivery_run_the_step_once(
    cluster: tuple[Cluster, Executions],
) -> None:
    """Container A has the first call's message and is about to call the app when SQS
    delivers the same message again, to container B. B must not call the app."""
    driver, executions = cluster
    driver.put_events("t/steps")
    while driver.poll("ingest"):
        pass
    url = driver.stack.work_queue_url
    (first,) = driver.receive(url)
    # The same message, delivered again (its visibility lapsed): a second receipt of it.
    driver.stack.sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    (duplicate,) = driver.receive(url)
    assert duplicate["MessageId"] == first["MessageId"]

    dispatcher = driver.runtimes["dispatch"].dispatcher

    def b_runs_now(point: str) -> None:
        if point == "before_call":
            dispatcher.checkpoint = lambda _point: None
            driver.dispatch_with(driver.dispatch_b, [duplicate])

    dispatcher.checkpoint = b_runs_now
    driver.dispatch_with(driver.dispatch, [first])
    (run,) = driver.runs("steps")
    # A drove the run to its end in one invocation; B called nothing
    assert executions.of(run.id) == {"a": 1, "b": 1, "c": 1}
    assert driver.failed_records == [duplicate["MessageId"]]  # B handed its copy back
    visible_again_within(60, driver)
    (run,) = driver.runs("steps")
    assert run.status is RunStatus.COMPLETED
    assert executions.of(run.id) == {"a": 1, "b": 1, "c": 1}


# ------------------------------------------------------------------ defect 7: visibility


class Lines(logging.Handler):
    """The Powertools logger's lines, formatted as CloudWatch gets them (JSON)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(handlers._shared.logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    lines = Lines()
    target = logging.getLogger(handlers._shared.logger.name)
    target.addHandler(lines)
    try:
        yield lines
    finally:
        target.removeHandler(lines)


def test_a_failed_record_logs_one_error_line_and_counts_a_failed_record(
    cluster: tuple[Cluster, Executions],
    faults: Faults,
    log_lines: Lines,
    capsys: pytest.CaptureFixture[str],
) -> None:
    driver, _ = cluster
    throttle_the_save_of_the_first_answer(driver, faults)
    driver.put_events("t/steps")
    driver.settle()
    (run,) = driver.runs("steps")
    errors = [line for line in log_lines.lines if line["level"] == "ERROR"]
    assert len(errors) == 1, errors
    (error,) = errors
    assert error["run_id"] == run.id and error["function_id"] == "faults-steps"
    assert error["item_id"].startswith(f"{run.id}:") and error["handler"] == "dispatch"
    assert error["exception_name"] == "StoreError"
    assert "ProvisionedThroughputExceededException" in error["message"]
    assert "Traceback" in error["exception"]
    emf = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and "FailedRecords" in line
    ]
    assert len(emf) == 1
    (directive,) = emf[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Wayline"
    assert directive["Metrics"] == [{"Name": "FailedRecords", "Unit": "Count"}]
    assert directive["Dimensions"] == [["service", "handler"]]
    assert (emf[0]["service"], emf[0]["handler"]) == ("wayline", "dispatch")
    assert emf[0]["FailedRecords"] in ([1.0], 1.0)


def test_a_failed_ingest_record_is_logged_and_counted_too(
    cluster: tuple[Cluster, Executions],
    faults: Faults,
    log_lines: Lines,
    capsys: pytest.CaptureFixture[str],
) -> None:
    driver, _ = cluster
    faults.add(Fault("dynamodb", None, Kind.SERVER_ERROR))  # ingest's first read
    driver.put_events("t/steps")
    driver.poll("ingest")
    (error,) = [line for line in log_lines.lines if line["level"] == "ERROR"]
    assert error["handler"] == "ingest" and error["event_name"] == "t/steps"
    assert error["exception_name"] == "StoreError" and "Traceback" in error["exception"]
    emf = [line for line in capsys.readouterr().out.splitlines() if "FailedRecords" in line]
    assert len(emf) == 1 and json.loads(emf[0])["handler"] == "ingest"
    assert driver.failed_records  # and it comes back in seconds
    visible_again_within(3.1, driver)
    assert [r.status for r in driver.runs("steps")] == [RunStatus.COMPLETED]


def test_a_record_that_fails_before_its_function_is_known_still_names_it(
    cluster: tuple[Cluster, Executions], faults: Faults, log_lines: Lines
) -> None:
    """A call item carries no function id; the failure log reads it from the run."""
    driver, _ = cluster
    driver.put_events("t/steps")
    while driver.poll("ingest"):
        pass
    faults.add(
        Fault(
            "dynamodb",
            "Query",
            Kind.SERVER_ERROR,
            when=lambda _op, p: (
                str(p["ExpressionAttributeValues"][":pk"]["S"]).startswith("RUN#")
                if ":pk" in p.get("ExpressionAttributeValues", {})
                else False
            ),
        )
    )
    driver.poll("dispatch")
    (error,) = [line for line in log_lines.lines if line["level"] == "ERROR"]
    (run,) = driver.runs("steps")
    assert (error["run_id"], error["function_id"]) == (run.id, "faults-steps")
    assert "InternalServerError" in error["message"]
