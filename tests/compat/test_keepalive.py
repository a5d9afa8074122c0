"""Connections the app closed while idle do not fail calls (issue 12, item 5).

The app sits behind a proxy that behaves like an app server with a short idle timeout
whose close races the next request: a connection that has carried a request and then
sat idle for ``IDLE_CLOSE_S`` is closed, without an answer, when the next request
arrives on it. Before the fix the dev server reused such a connection (it kept them
for 15 s), the call failed with ``ServerDisconnectedError`` and a ``retries=0`` run
failed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import threading
import time

import inngest

from .harness import COMPLETED, Compat, Recorder

IDLE_CLOSE_S = 0.3


class IdleClosingProxy:
    """A TCP proxy on loopback that drops a reused connection after an idle gap."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self.dropped = 0
        self._loop = asyncio.new_event_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port: int = int(sock.getsockname()[1])
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, sock=sock))
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self._upstream)
        last = time.monotonic()
        used = False

        async def pump_back() -> None:
            nonlocal last
            while data := await up_r.read(65536):
                client_w.write(data)
                await client_w.drain()
                last = time.monotonic()
            client_w.close()

        back = asyncio.create_task(pump_back())
        try:
            while data := await client_r.read(65536):
                if used and time.monotonic() - last >= IDLE_CLOSE_S:
                    self.dropped += 1
                    break  # the app "closed it at its idle timeout": no answer
                used = True
                up_w.write(data)
                await up_w.drain()
                last = time.monotonic()
        finally:
            back.cancel()
            for writer in (client_w, up_w):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    def stop(self) -> None:
        self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def test_a_run_with_no_retries_survives_idle_gaps(compat: Compat) -> None:
    client, done = compat.client(), Recorder()
    proxies: list[IdleClosingProxy] = []

    @client.create_function(
        fn_id="gappy",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/gappy"),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        for n in range(3):
            ctx.step.run(f"step-{n}", done.append, n)
            ctx.step.sleep(f"gap-{n}", datetime.timedelta(seconds=1))
        return "ok"

    def front(port: int) -> IdleClosingProxy:
        proxies.append(IdleClosingProxy(port))
        return proxies[0]

    compat.serve("fastapi", client, [fn], front=front)
    run = compat.wait_run(compat.send("compat/gappy"), status=COMPLETED, timeout=30)
    assert run["output"] == "ok"
    assert done.items == [0, 1, 2]
    assert proxies[0].dropped >= 1  # the scenario happened: stale connections were reused
