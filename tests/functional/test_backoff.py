"""A declared retry backoff, enforced by a real ``wayline dev`` on its virtual clock: a step
whose policy says "retry in an hour" is not retried until the clock has moved an hour, even
though the server's own retry interval is 0.2 s; other steps keep the function's policy."""

from __future__ import annotations

from datetime import datetime

import wayline
from compat.harness import COMPLETED, Compat, Tally

from .support import build_web_app, wait_for_step

tally = Tally()
HOUR_MS = 3_600_000


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_a_step_backoff_is_enforced_by_the_server(compat: Compat) -> None:
    client = wayline.Wayline(app_id="retry", is_dev=True, base_url=compat.server_url)

    def flaky(what: str) -> str:
        if tally.incr(what) == 1:
            raise RuntimeError(f"{what} is down")
        return what

    @client.function(
        id="pay",
        trigger=wayline.TriggerEvent(event="retry/pay"),
        backoff=wayline.Backoff(initial="2s", factor=1, max="2s"),
        step_backoff={"charge": wayline.Backoff(initial="1h", factor=2, max="4h")},
    )
    async def pay(ctx: wayline.Context) -> list[str]:
        quote = await ctx.step.run("quote", flaky, "quote")
        charge = await ctx.step.run("charge", flaky, "charge")
        return [quote, charge]

    web_app, ids = build_web_app("fastapi", client, [pay])
    compat.serve_app(web_app, app_id="retry", function_ids=ids, retry_interval=0.2)
    event_id = compat.send("retry/pay")
    wait_for_step(compat, event_id, "retry-pay", "quote")  # its first attempt failed
    compat.advance_clock(2_000)  # the function's policy: the quote retries 2 s later
    run = wait_for_step(compat, event_id, "retry-pay", "charge")
    steps = {s["name"]: s for s in run["steps"]}
    [failed] = [a for a in steps["charge"]["history"] if a["retry_at"]]
    assert _ms(failed["retry_at"]) - _ms(failed["ended_at"]) == HOUR_MS
    quote_try = steps["quote"]["history"][0]
    assert _ms(quote_try["retry_at"]) - _ms(quote_try["ended_at"]) == 2_000
    assert tally.count("charge") == 1

    compat.advance_clock(HOUR_MS)
    run = compat.wait_run(event_id, "retry-pay", status=COMPLETED)
    assert run["output"] == ["quote", "charge"]
    assert tally.count("charge") == 2
