"""Resolve-and-pin: on AWS the server connects only to app addresses it has checked.

``engine.urls.check_app_url`` judges a URL by its text; a host *name* can still resolve
to 169.254.169.254 or 10.0.0.1 (a DNS record the registrant controls, or one that changes
between the check and the connection: DNS rebinding). So every connection the AWS side
opens to an app goes through ``PinningBackend``: it resolves the name once, refuses the
connection if *any* resolved address is metadata, link-local or (unless allowed) private,
and then connects to exactly the addresses it checked. TLS still verifies the name (SNI
and certificate use the URL's host) and the ``Host`` header is unchanged, so only the
address is pinned. No proxies from the environment (a proxy would resolve names itself),
no redirects.

A refusal raises ``ValidationError`` (not an httpx error), so the caller can tell "this
URL is forbidden" from "this app is down" and say so.
"""

from __future__ import annotations

import socket
import ssl
import time
import typing
from collections.abc import Callable, Iterable, Sequence

import httpcore
import httpx

from wayline.engine.urls import check_address

__all__ = ["PinnedTransport", "PinningBackend", "Resolver", "pinned_client", "system_resolver"]

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``; injected by tests, ``system_resolver`` otherwise."""

LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0)
"""Keep-alive shorter than common app servers' idle timeouts (uvicorn closes after 5 s)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (what a plain connect would try)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinningBackend(httpcore.NetworkBackend):
    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._inner = httpcore.SyncBackend()

    def checked_addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, each one allowed; raises ``ValidationError`` if any
        is not (one bad record is enough: the resolver may hand it out next time)."""
        try:
            addresses = list(self._resolve(host, port))
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        for address in addresses:
            check_address(address, host=host, field="app URL", allow_private=self._allow_private)
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in self.checked_addresses(host, port):
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the next checked address, as create_connection would
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("apps are reached over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport (request mapping, error mapping) over a pinning pool."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: Resolver = system_resolver,
        limits: httpx.Limits = LIMITS,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(limits=limits, trust_env=False, verify=verify)
        # httpx builds its pool without a way to pass a network backend: rebuild it.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinningBackend(allow_private=allow_private, resolve=resolve),
        )


def pinned_client(
    *,
    allow_private: bool,
    timeout: httpx.Timeout | float,
    resolve: Resolver = system_resolver,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An httpx client that connects only to checked addresses and follows no redirects.
    ``verify`` is for tests with their own certificate authority."""
    return httpx.Client(
        transport=PinnedTransport(allow_private=allow_private, resolve=resolve, verify=verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
