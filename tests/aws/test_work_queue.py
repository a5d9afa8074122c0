"""wayline.aws.work_queue: the WorkQueue port on SQS (<= 15 min) and Scheduler (later)."""

from __future__ import annotations

from wayline.aws.scheduler import Schedules
from wayline.aws.sqs import WorkSender, decode_item
from wayline.aws.work_queue import AwsWorkQueue
from wayline.engine.model import WorkItem, WorkKind

from .conftest import Stack, VirtualClock

MIN = 60_000


def queue(stack: Stack, clock: VirtualClock) -> AwsWorkQueue:
    return AwsWorkQueue(
        sender=WorkSender(queue_url=stack.work_queue_url, client=stack.sqs),
        schedules=Schedules(
            group=stack.schedule_group, role_arn=stack.scheduler_role_arn, client=stack.scheduler
        ),
        queue_arn=stack.work_queue_arn,
        clock=clock,
    )


def test_enqueue_routes_by_delay_and_leaves_crons_to_cron_schedules(
    stack: Stack, clock: VirtualClock
) -> None:
    delays: list[int] = []
    stack.sqs.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: delays.extend(e["DelaySeconds"] for e in params["Entries"]),
    )
    now = clock.now_ms()
    items = [
        WorkItem(id="r1:1", run_id="r1", kind=WorkKind.CALL, at=now - 5),
        # Margins of most of a second: the clock is real time, and a loaded machine can
        # take a few ms between reading ``now`` here and in ``enqueue`` (601 s, not 600).
        WorkItem(id="r2:1", run_id="r2", kind=WorkKind.SLEEP, at=now + 10 * MIN + 900),
        WorkItem(id="r3:1", run_id="r3", kind=WorkKind.SLEEP, at=now + 15 * MIN),
        WorkItem(id="r4:1", run_id="r4", kind=WorkKind.SLEEP, at=now + 15 * MIN + 2000),
        WorkItem(
            id="cron:f:0 * * * *:1",
            run_id="",
            kind=WorkKind.CRON,
            at=now + 90 * MIN,
            function_id="f",
            cron="0 * * * *",
        ),
        WorkItem(
            id="cron:f:0 0 L * *:1",
            run_id="",
            kind=WorkKind.CRON,
            at=now + 90 * MIN,
            function_id="f",
            cron="0 0 L * *",
        ),
    ]
    queue(stack, clock).enqueue(items)
    assert delays == [0, 601, 900]
    schedules = stack.scheduler.list_schedules(GroupName=stack.schedule_group)["Schedules"]
    scheduled = {
        decode_item(
            stack.scheduler.get_schedule(Name=s["Name"], GroupName=stack.schedule_group)["Target"][
                "Input"
            ]
        ).id
        for s in schedules
    }
    # The 15-min-and-a-second sleep and the cron AWS cannot express go through Scheduler;
    # the expressible cron is owned by its cron() schedule.
    assert scheduled == {"r4:1", "cron:f:0 0 L * *:1"}


def test_enqueue_twice_makes_one_schedule(stack: Stack, clock: VirtualClock) -> None:
    q = queue(stack, clock)
    later = WorkItem(id="r:9", run_id="r", kind=WorkKind.SLEEP, at=clock.now_ms() + 3_600_000)
    q.enqueue([later])
    q.enqueue([later])
    assert len(stack.scheduler.list_schedules(GroupName=stack.schedule_group)["Schedules"]) == 1


def test_lambda_owns_claim_ack_and_defer(stack: Stack, clock: VirtualClock) -> None:
    q = queue(stack, clock)
    q.enqueue([WorkItem(id="r:1", run_id="r", kind=WorkKind.CALL, at=0)])
    assert q.claim(now=clock.now_ms(), lease_ms=1000, limit=10) == []
    assert q.next_due() is None
    q.ack("r:1")
    q.defer("r:1", until=0)
    got = stack.sqs.receive_message(QueueUrl=stack.work_queue_url)
    assert len(got["Messages"]) == 1  # ack/defer did not touch the message
