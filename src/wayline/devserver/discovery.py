"""Discovery of ``-u`` app URLs: PUT each URL until its SDK syncs with us.

In dev mode the official SDKs answer a PUT by calling ``POST /fn/register`` on the
server (out-of-band sync), so a 200 to the PUT means the app's functions are stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp

from .. import signing
from ..engine.ports import Clock
from ..engine.protocol import redact_url
from ..engine.urls import check_app_url
from ..errors import ValidationError
from .invoker import server_headers
from .reachability import Reachability, describe

log = logging.getLogger("wayline.discovery")

RETRY_INTERVAL_S = 1.0
RESYNC_INTERVAL_S = 30.0


async def sync_url(
    client: aiohttp.ClientSession,
    url: str,
    *,
    signing_key: str | None,
    clock: Clock,
    reachability: Reachability | None = None,
) -> bool:
    body = signing.canonical_json({"url": url})  # the SDK verifies the JCS form
    headers = server_headers(signing_key=signing_key, body=body, clock=clock)
    try:
        async with client.put(url, data=body, headers=headers, allow_redirects=False) as resp:
            status, text = resp.status, await resp.text(errors="replace")
    except (aiohttp.ClientError, TimeoutError) as exc:
        (reachability or Reachability(log)).failed(url, describe(exc))
        return False
    if reachability is not None:
        reachability.reached(url)
    if status != 200:
        log.warning("app at %s refused sync: HTTP %s %s", redact_url(url), status, text[:300])
        return False
    return True


def _allowed(url: str) -> bool:
    try:
        check_app_url(url, field="app URL", allow_private=True)
    except ValidationError as exc:
        log.error("not syncing %s: %s", redact_url(url), exc)
        return False
    return True


async def discover_forever(urls: Sequence[str], *, signing_key: str | None, clock: Clock) -> None:
    """Sync every URL, retrying unreachable ones each second and re-syncing every 30 s.

    A URL the SSRF rules refuse (cloud metadata, link-local, malformed) is never called.
    """
    urls = [url for url in urls if _allowed(url)]
    synced_at: dict[str, float] = {}
    reachability = Reachability(log)
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=10.0)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        while True:
            now = loop.time()
            for url in urls:
                if now - synced_at.get(url, -RESYNC_INTERVAL_S) < RESYNC_INTERVAL_S:
                    continue
                synced = await sync_url(
                    client, url, signing_key=signing_key, clock=clock, reachability=reachability
                )
                if synced:
                    if url not in synced_at:
                        log.info("synced app at %s", redact_url(url))
                    synced_at[url] = now
            await asyncio.sleep(RETRY_INTERVAL_S)
