"""What an app tells the server about itself: sync bodies, in-band replies, introspection."""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from wayline.signing import hash_signing_key

from .config import ClientConfig
from .function import Function
from .protocol import CAPABILITIES, SDK_NAME, SDK_VERSION
from .webhooks import Webhook

INSPECTION_SCHEMA = "2024-05-24"


def function_configs(functions: Sequence[Function[Any, Any]], app_url: str) -> list[dict[str, Any]]:
    return [config for fn in functions for config in fn.configs(app_url)]


def serve_url(request_url: str, *, serve_origin: str | None, serve_path: str | None) -> str:
    """The URL the server should call: the request's own, with origin/path overrides.

    ``serve_origin`` matters behind proxies and in containers, where the URL a request
    arrives on is not the one the server can reach.
    """
    parts = urllib.parse.urlsplit(request_url)
    scheme, netloc, path = parts.scheme, parts.netloc, parts.path
    if serve_origin:
        if "://" in serve_origin:
            origin = urllib.parse.urlsplit(serve_origin)
            scheme, netloc = origin.scheme or scheme, origin.netloc or netloc
        else:
            scheme, netloc = "https", serve_origin
    if serve_path:
        path = serve_path
    return urllib.parse.urlunsplit((scheme, netloc, path, "", ""))


def strip_none(value: Any) -> Any:
    """Drop ``None`` recursively, as the official SDK does before syncing (Go needs it)."""
    if isinstance(value, Mapping):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value if v is not None]
    return value


def sync_body(
    config: ClientConfig,
    functions: Sequence[Function[Any, Any]],
    *,
    app_url: str,
    framework: str,
    webhooks: Sequence[Webhook] = (),
) -> dict[str, Any]:
    """The ``POST /fn/register`` body (out-of-band sync). Declared ``webhooks`` ride in an
    extra top-level key, which Inngest's registration parsing ignores (unknown keys)."""
    body: dict[str, Any] = strip_none(
        {
            "url": app_url,
            "deployType": "ping",
            "appName": config.app_id,
            "appVersion": config.app_version,
            "sdk": SDK_NAME,
            "v": "0.1",
            "framework": framework,
            "capabilities": dict(CAPABILITIES),
            "functions": function_configs(functions, app_url),
            "webhooks": [w.config() for w in webhooks] or None,
        }
    )
    return body


def in_band_body(
    config: ClientConfig,
    functions: Sequence[Function[Any, Any]],
    *,
    app_url: str,
    framework: str,
    inspection: dict[str, Any],
    webhooks: Sequence[Webhook] = (),
) -> dict[str, Any]:
    """The body of a signed in-band sync reply (the server reads the config from it)."""
    body: dict[str, Any] = strip_none(
        {
            "app_id": config.app_id,
            "appVersion": config.app_version,
            "env": config.env,
            "framework": framework,
            "functions": function_configs(functions, app_url),
            "inspection": inspection,
            "platform": None,
            "sdk_author": "wayline",
            "sdk_language": "py",
            "sdk_version": SDK_VERSION,
            "url": app_url,
            "webhooks": [w.config() for w in webhooks] or None,
        }
    )
    return body


def inspection(
    config: ClientConfig,
    functions: Sequence[Function[Any, Any]],
    *,
    authenticated: bool,
    framework: str,
    serve_origin: str | None,
    serve_path: str | None,
) -> dict[str, Any]:
    """``GET`` introspection: counts and booleans only, plus key hashes once authenticated."""
    body: dict[str, Any] = {
        "schema_version": INSPECTION_SCHEMA,
        "function_count": len(functions),
        "has_event_key": config.event_key is not None,
        "has_signing_key": config.signing_key is not None,
        "has_signing_key_fallback": config.signing_key_fallback is not None,
        "mode": config.mode,
    }
    if not authenticated:
        return body
    key, fallback, event_key = config.signing_key, config.signing_key_fallback, config.event_key
    return {
        **body,
        "api_origin": config.api_origin,
        "app_id": config.app_id,
        "authentication_succeeded": True,
        "capabilities": dict(CAPABILITIES),
        "env": config.env,
        "event_api_origin": config.event_api_origin,
        "event_key_hash": hashlib.sha256(event_key.encode()).hexdigest() if event_key else None,
        "framework": framework,
        "sdk_language": "py",
        "sdk_version": SDK_VERSION,
        "serve_origin": serve_origin,
        "serve_path": serve_path,
        "signing_key_fallback_hash": hash_signing_key(fallback) if fallback else None,
        "signing_key_hash": hash_signing_key(key) if key else None,
    }
