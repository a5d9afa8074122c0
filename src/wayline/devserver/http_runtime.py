"""The HTTP parser and event loop Wayline's local servers run on.

``wayline dev``, the app it serves with ``--app`` and ``wayline dashboard`` run on uvicorn
with its C parser (httptools) and the libuv event loop (uvloop), uvicorn's production setup:
on the peer bench's W2 the h11 parser and asyncio's pure-Python selector loop were about a
fifth of the dev server's CPU (bench/RESULTS.md, "HTTP stack"). Both are optional at run time:
without them (uvloop has no Windows or PyPy build) the servers use h11 and asyncio, and
``WAYLINE_HTTP=h11`` / ``WAYLINE_LOOP=asyncio`` choose those on purpose (to rule the fast
stack out while debugging).

uvicorn's own ``loop=`` setting only applies to ``uvicorn.Server.run``; ``wayline dev``
awaits ``serve()`` of two servers in one loop it creates itself, so the loop is chosen here,
where the CLI creates it (:meth:`HttpRuntime.run`).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from .claim import StartupError

HTTP_ENV = "WAYLINE_HTTP"
LOOP_ENV = "WAYLINE_LOOP"

HttpParser = Literal["httptools", "h11"]
LoopKind = Literal["uvloop", "asyncio"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class HttpRuntime:
    http: HttpParser
    loop: LoopKind

    def loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        """What creates the event loop (``None``: asyncio's default)."""
        if self.loop == "asyncio":
            return None
        import uvloop  # only imported when chosen: no build for Windows or PyPy

        return uvloop.new_event_loop

    def run(self, main: Coroutine[Any, Any, _T]) -> _T:
        """``asyncio.run(main)`` on this runtime's loop (Ctrl-C handling unchanged)."""
        with asyncio.Runner(loop_factory=self.loop_factory()) as runner:
            return runner.run(main)


def uvicorn_http(parser: HttpParser) -> type[asyncio.Protocol] | str:
    """uvicorn's ``http=`` for ``parser``: httptools writing one segment per response
    (``coalesce.py``), or h11 as uvicorn has it."""
    if parser == "h11":
        return parser
    from .coalesce import CoalescingHttpToolsProtocol  # imports httptools

    return CoalescingHttpToolsProtocol


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _choose(env: Mapping[str, str], name: str, fast: str, fallback: str) -> str:
    """``fast`` when it is installed and ``name`` is unset or ``auto``; what ``name`` says
    otherwise, or StartupError naming the variable and its values."""
    wanted = env.get(name, "").strip().lower() or "auto"
    if wanted == "auto":
        return fast if _installed(fast) else fallback
    if wanted == fallback:
        return fallback
    if wanted != fast:
        raise StartupError(f"{name} must be auto, {fast} or {fallback}, got {wanted!r}")
    if not _installed(fast):
        raise StartupError(f"{name}={fast} but {fast} is not installed (pip install {fast})")
    return fast


def runtime_from_env(env: Mapping[str, str]) -> HttpRuntime:
    """The runtime ``WAYLINE_HTTP`` and ``WAYLINE_LOOP`` ask for (default: the fast one
    where installed)."""
    http = cast(HttpParser, _choose(env, HTTP_ENV, "httptools", "h11"))
    loop = cast(LoopKind, _choose(env, LOOP_ENV, "uvloop", "asyncio"))
    return HttpRuntime(http=http, loop=loop)
