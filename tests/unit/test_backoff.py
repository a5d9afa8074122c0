"""Declared retry backoff: the delay sequence, its cap and jitter, validation naming the
field, and the machine using it (per function and per step) instead of Inngest's table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wayline.engine import lifecycle, machine
from wayline.engine.backoff import NO_POLICY, Backoff, parse_policy
from wayline.engine.ids import hash_step_id
from wayline.engine.machine import Env
from wayline.engine.model import JSON, FunctionDef, Run, Trigger, WorkItem
from wayline.engine.protocol import CallResponse, Op
from wayline.errors import ValidationError

T0 = 1_800_000_000_000
CONFIG: dict[str, JSON] = {
    "backoff": {"initial": "2s", "factor": 3, "max": "1m", "jitter": "10s"},
    "stepBackoff": {"charge": {"initial": "30s", "factor": 1, "max": "30s"}},
}
FN = FunctionDef(
    id="app-fn",
    app_id="app",
    name="fn",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="e"),),
    retries=5,
    config=CONFIG,
)


def test_the_delay_grows_by_factor_up_to_max_plus_scaled_jitter() -> None:
    backoff = Backoff(initial_ms=2_000, factor=3, max_ms=60_000, jitter_ms=10_000)
    delays = [backoff.delay_ms(n, jitter_fraction=0) for n in range(6)]
    assert delays == [2_000, 6_000, 18_000, 54_000, 60_000, 60_000]
    assert backoff.delay_ms(0, jitter_fraction=0.5) == 7_000
    with pytest.raises(ValueError, match="jitter_fraction"):
        backoff.delay_ms(0, jitter_fraction=1.0)


def test_parse_reads_function_and_step_policies() -> None:
    policy = parse_policy(CONFIG, where="function 'f'")
    assert policy.function == Backoff(2_000, 3.0, 60_000, 10_000)
    assert policy.for_step("charge") == Backoff(30_000, 1.0, 30_000, 0)
    assert policy.for_step("other") == policy.function
    assert parse_policy({}, where="f") is NO_POLICY
    assert parse_policy({"backoff": {"initial": "1s"}}, where="f").function == Backoff(
        1_000, 2.0, 86_400_000, 0
    )


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"backoff": "1s"}, "f.backoff"),
        ({"backoff": {"factor": 2}}, "f.backoff.initial"),
        ({"backoff": {"initial": "500ms"}}, "f.backoff.initial"),
        ({"backoff": {"initial": "1s", "factor": 0.5}}, "f.backoff.factor"),
        ({"backoff": {"initial": "1s", "factor": "2"}}, "f.backoff.factor"),
        ({"backoff": {"initial": "1s", "factor": 11}}, "f.backoff.factor"),
        ({"backoff": {"initial": "10s", "max": "5s"}}, "f.backoff.max"),
        ({"backoff": {"initial": "1s", "max": "2d"}}, "f.backoff.max"),
        ({"backoff": {"initial": "1s", "jitter": "2h"}}, "f.backoff.jitter"),
        ({"backoff": {"initial": "1s", "jiter": "1s"}}, "f.backoff.jiter"),
        ({"stepBackoff": []}, "f.stepBackoff"),
        ({"stepBackoff": {"a": {"initial": "nope"}}}, "f.stepBackoff.a.initial"),
    ],
)
def test_a_bad_policy_names_its_field(config: dict[str, JSON], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_policy(config, where="f")
    assert info.value.field == field
    assert field in str(info.value)


def _start() -> Run:
    return lifecycle.start_run(
        run_id="r", fn=FN, events=[{"name": "e"}], event_ids=["e1"], now=T0
    ).run


def _only(run: Run) -> WorkItem:
    [item] = run.pending.values()
    return item


def _call(run: Run, resp: CallResponse, *, jitter_ms: int = 0, interval: int | None = None) -> Run:
    env = Env(now=T0, fn=FN, jitter_ms=jitter_ms, retry_interval_ms=interval)
    return machine.apply_call(run, _only(run), resp, env, started_at=T0).run


def test_a_function_error_retries_on_the_declared_backoff_not_the_table() -> None:
    run = _start()
    run = _call(run, CallResponse(status=500, body={"message": "x"}))
    assert _only(run).at == T0 + 2_000  # the table would say 15 s
    run = _call(run, CallResponse(status=500, body={"message": "x"}), jitter_ms=15_000)
    assert _only(run).at == T0 + 6_000 + 5_000  # half of the 30 s draw range: half the jitter


def test_a_step_error_uses_its_steps_policy_even_over_the_dev_interval() -> None:
    error = {"name": "E", "message": "card declined"}
    charge = Op(op="StepError", id=hash_step_id("charge"), name="charge", error=error)
    other = Op(op="StepError", id=hash_step_id("other"), name="other", error=error)
    run = _call(_start(), CallResponse(status=206, ops=(charge,)), interval=500)
    assert _only(run).at == T0 + 30_000
    run = _call(_start(), CallResponse(status=206, ops=(other,)))
    assert _only(run).at == T0 + 2_000


def test_without_a_policy_the_table_and_the_dev_interval_stay() -> None:
    plain = replace(FN, config={})
    run = lifecycle.start_run(
        run_id="r", fn=plain, events=[{"name": "e"}], event_ids=["e"], now=T0
    ).run
    env = Env(now=T0, fn=plain, jitter_ms=0, retry_interval_ms=None)
    run = machine.apply_call(
        run, _only(run), CallResponse(status=500, body={}), env, started_at=T0
    ).run
    assert _only(run).at == T0 + 15_000
