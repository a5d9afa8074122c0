"""An HTTP/1.0 response that says ``Transfer-Encoding: chunked`` is read to its end
(issue 12, item 8), as Inngest's Go executor reads it.

The official inngest-py suite serves its apps through an HTTP/1.0 proxy that copies the
app's headers but not its framing. Here the proxy goes further and claims chunked
framing on every SDK response while sending the body as it is, then closing. aiohttp
used to parse that body as chunks and fail the call.
"""

from __future__ import annotations

import socketserver
import threading

import httpx
import inngest

from wayline.devserver.lenient_http import without_chunked_if_http10

from .harness import COMPLETED, Compat

DROPPED = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class Http10ChunkClaimingProxy:
    """A raw-socket HTTP/1.0 proxy: forwards a request to the app and answers
    ``HTTP/1.0`` with the app's headers plus ``Transfer-Encoding: chunked``, the body
    unframed, then closes the connection."""

    def __init__(self, upstream_port: int) -> None:
        upstream = f"http://127.0.0.1:{upstream_port}"
        self.claimed = 0
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                method, target, _ = self.rfile.readline().decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (line := self.rfile.readline().decode("latin-1").strip()) != "":
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = self.rfile.read(int(headers.get("content-length") or 0))
                sent = {k: v for k, v in headers.items() if k not in DROPPED}  # keeps Host
                res = httpx.request(method, upstream + target, headers=sent, content=body)
                head = [f"HTTP/1.0 {res.status_code} {res.reason_phrase}"]
                head += [f"{k}: {v}" for k, v in res.headers.items() if k.lower() not in DROPPED]
                if method == "POST":  # SDK calls; discovery's PUT is left well-formed
                    head.append("Transfer-Encoding: chunked")
                    proxy.claimed += 1
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                self.wfile.write(res.content)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def test_http10_responses_claiming_chunked_framing_are_read_to_the_end(compat: Compat) -> None:
    client = compat.client()
    proxies: list[Http10ChunkClaimingProxy] = []

    @client.create_function(
        fn_id="behind-old-proxy", retries=0, trigger=inngest.TriggerEvent(event="compat/old")
    )
    def fn(ctx: inngest.ContextSync) -> dict[str, int]:
        one = ctx.step.run("one", lambda: 1)
        return {"sum": one + ctx.step.run("two", lambda: 2)}

    def front(port: int) -> Http10ChunkClaimingProxy:
        proxies.append(Http10ChunkClaimingProxy(port))
        return proxies[0]

    compat.serve("fastapi", client, [fn], front=front)
    run = compat.wait_run(compat.send("compat/old"), status=COMPLETED, timeout=30)
    assert run["output"] == {"sum": 3}
    assert proxies[0].claimed >= 3  # every SDK call came back through the quirk


def test_only_http10_heads_lose_their_chunked_framing() -> None:
    old = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nx-inngest-sdk: py"
    assert without_chunked_if_http10(old) == b"HTTP/1.0 200 OK\r\nx-inngest-sdk: py"
    new = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-inngest-sdk: py"
    assert without_chunked_if_http10(new) == new
