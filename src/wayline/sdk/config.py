"""Client settings: constructor arguments first, then the environment, read once.

Each setting reads ``WAYLINE_<NAME>`` and then ``INNGEST_<NAME>``, so an app written for
Inngest keeps working. Dev mode is never a silent default: it is on only when ``is_dev=True``
is passed or ``WAYLINE_DEV`` / ``INNGEST_DEV`` is set to ``1``/``true``/a URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from wayline.errors import ConfigError

DEV_SERVER_ORIGIN = "http://127.0.0.1:8288"
DEFAULT_SERVE_PATH = "/api/inngest"
_PREFIXES = ("WAYLINE_", "INNGEST_")
_SIGNING_KEY = re.compile(r"(?:signkey-\w+-)?(?:[0-9a-fA-F]{2})+")
_FALSY = {"", "0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """The resolved settings of a ``Wayline`` client."""

    app_id: str
    is_dev: bool
    signing_key: str | None
    signing_key_fallback: str | None
    event_key: str | None
    api_origin: str | None
    event_api_origin: str | None
    env: str | None
    app_version: str | None
    serve_origin: str | None
    serve_path: str | None

    @property
    def mode(self) -> str:
        """``dev`` or ``cloud``: the server kind this app expects (wire vocabulary)."""
        return "dev" if self.is_dev else "cloud"

    @property
    def signing_keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.signing_key, self.signing_key_fallback) if k)


def _text(value: object) -> bool:
    """A non-blank string (checked at runtime too: callers may not be type-checked)."""
    return isinstance(value, str) and bool(value.strip())


def _env(environ: Mapping[str, str], name: str) -> tuple[str | None, str]:
    """The first non-empty ``WAYLINE_<name>`` / ``INNGEST_<name>`` and where it came from."""
    for prefix in _PREFIXES:
        value = environ.get(prefix + name, "").strip()
        if value:
            return value, prefix + name
    return None, f"WAYLINE_{name}"


def _pick(arg: str | None, environ: Mapping[str, str], name: str) -> str | None:
    if arg is not None and arg.strip():
        return arg.strip()
    return _env(environ, name)[0]


def _url(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{where} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _signing_key(arg: str | None, environ: Mapping[str, str], name: str) -> str | None:
    where = f"the {name.lower()} argument"
    value = arg.strip() if arg and arg.strip() else None
    if value is None:
        value, where = _env(environ, name.upper())
    if value is not None and _SIGNING_KEY.fullmatch(value) is None:
        # Never echo the key: it may be a real secret pasted in the wrong place.
        raise ConfigError(
            f"{where} is not a signing key: expected 'signkey-<env>-<hex>' or hex digits"
        )
    return value


def _dev(is_dev: bool | None, environ: Mapping[str, str]) -> tuple[bool, str | None]:
    """Whether dev mode is on, and the dev server URL when ``*_DEV`` is one."""
    raw, where = _env(environ, "DEV")
    dev_url = raw if raw is not None and raw.startswith(("http://", "https://")) else None
    if is_dev is not None:
        return is_dev, dev_url if is_dev else None
    if raw is None or raw.lower() in _FALSY:
        return False, None
    return True, _url(dev_url, where) if dev_url else None


def resolve(
    *,
    app_id: str,
    is_dev: bool | None,
    signing_key: str | None,
    signing_key_fallback: str | None,
    event_key: str | None,
    base_url: str | None,
    api_base_url: str | None,
    event_api_base_url: str | None,
    env: str | None,
    app_version: str | None,
    serve_origin: str | None,
    serve_path: str | None,
    environ: Mapping[str, str],
) -> ClientConfig:
    """Resolve every setting: explicit argument, then ``WAYLINE_*``, then ``INNGEST_*``.

    In production there is no default server URL: sending events or syncing out of band
    without one is a ``ConfigError`` naming the variable to set, never a silent call to
    someone else's service.
    """
    if not _text(app_id):
        raise ConfigError("app_id must be a non-empty string")
    dev, dev_url = _dev(is_dev, environ)
    default = DEV_SERVER_ORIGIN if dev else None
    base = _pick(base_url, environ, "BASE_URL") or dev_url
    api = _pick(api_base_url, environ, "API_BASE_URL") if api_base_url is None else api_base_url
    events = (
        _pick(event_api_base_url, environ, "EVENT_API_BASE_URL")
        if event_api_base_url is None
        else event_api_base_url
    )
    if base_url is not None:  # an explicit base_url beats the more specific env variables
        api = api_base_url or base_url
        events = event_api_base_url or base_url
    return ClientConfig(
        app_id=app_id,
        is_dev=dev,
        signing_key=_signing_key(signing_key, environ, "SIGNING_KEY"),
        signing_key_fallback=_signing_key(signing_key_fallback, environ, "SIGNING_KEY_FALLBACK"),
        event_key=_pick(event_key, environ, "EVENT_KEY"),
        api_origin=_url(api or base or default, "the API base URL"),
        event_api_origin=_url(events or base or default, "the event API base URL"),
        env=_pick(env, environ, "ENV"),
        app_version=app_version,
        serve_origin=_pick(serve_origin, environ, "SERVE_ORIGIN"),
        serve_path=_pick(serve_path, environ, "SERVE_PATH"),
    )
