"""Webhooks through the ports: their definitions and receiving a request.

The definitions are one versioned value in the ``Counters`` port (key ``webhooks``, at most
``MAX_WEBHOOKS``), updated by compare-and-set: no new table on either store, and one read
per request received. Secrets live only there. A retried delivery (same ``event_id``) is
recognised by a 24 h claim ``webhook-seen:<hook>:<hash of the id>``, taken before the
event is stored and given back if storing fails, so a retry is never lost to a crash.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import NotFoundError, StoreError, ValidationError
from . import webhooks
from .events import validate_event
from .model import JSON
from .webhooks import Rejection, Webhook

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger("wayline.engine")

KEY = "webhooks"
MAX_WEBHOOKS = 100
DEDUPE_TTL_MS = 24 * 3600 * 1000
_FOREVER_MS = 100 * 365 * 24 * 3600 * 1000
_MAX_CAS_ATTEMPTS = 20


def declared_webhooks(body: JSON, *, app_id: str, now: int) -> list[Webhook]:
    """The webhooks a sync payload (``POST /fn/register`` body or in-band reply) declares
    under its top-level ``webhooks`` key: an extra key, which Inngest's own registration
    parsing ignores, so the same payload stays valid there; official SDKs never send it."""
    raw = body.get("webhooks") if isinstance(body, Mapping) else None
    return webhooks.parse_declared(raw, app_id=app_id, now=now)


class WebhookRegistry:
    def __init__(self, service: Service) -> None:
        self._service = service

    def _all(self) -> tuple[dict[str, JSON], int]:
        found = self._service.store.counters.get(KEY, now=self._service.now())
        if found is None or not isinstance(found.value, dict):
            return {}, 0
        return dict(found.value), found.version

    def _write(self, hooks: dict[str, JSON], version: int) -> bool:
        return self._service.store.counters.put(
            KEY, hooks, expected_version=version, now=self._service.now(), ttl_ms=_FOREVER_MS
        )

    def create(self, body: Mapping[str, JSON]) -> Webhook:
        hook = webhooks.parse_definition(
            body, webhook_id=self._service.new_id(), now=self._service.now()
        )
        for _ in range(_MAX_CAS_ATTEMPTS):
            hooks, version = self._all()
            if len(hooks) >= MAX_WEBHOOKS:
                raise ValidationError(
                    f"there are {len(hooks)} webhooks; the limit is {MAX_WEBHOOKS}", field="id"
                )
            if self._write({**hooks, hook.id: webhooks.to_stored(hook)}, version):
                log.info("webhook created", extra={"webhook_id": hook.id})
                return hook
        raise StoreError(f"{KEY}: gave up after {_MAX_CAS_ATTEMPTS} conflicting writes")

    def sync_declared(self, app_id: str, declared: list[Webhook]) -> bool:
        """Make ``app_id``'s declared webhooks exactly ``declared`` (``parse_declared``): the
        app's others are removed, webhooks made through the API are kept. A webhook that
        stays keeps its ``created_at``. True if anything changed (one read when nothing did).
        """
        for _ in range(_MAX_CAS_ATTEMPTS):
            hooks, version = self._all()
            kept = {
                k: v
                for k, v in hooks.items()
                if not (isinstance(v, dict) and v.get("app_id") == app_id)
            }
            for hook in declared:
                old = hooks.get(hook.id)
                if isinstance(old, dict) and old.get("app_id") == app_id:
                    hook = replace(hook, created_at=int(old.get("created_at", hook.created_at)))
                kept[hook.id] = webhooks.to_stored(hook)
            if kept == hooks:
                return False
            if len(kept) > MAX_WEBHOOKS:
                raise ValidationError(
                    f"the app's webhooks would make {len(kept)}; the limit is {MAX_WEBHOOKS}",
                    field="webhooks",
                )
            if self._write(kept, version):
                log.info(
                    "webhooks declared at sync", extra={"app_id": app_id, "count": len(declared)}
                )
                return True
        raise StoreError(f"{KEY}: gave up after {_MAX_CAS_ATTEMPTS} conflicting writes")

    def all(self) -> list[Webhook]:
        hooks, _ = self._all()
        return [webhooks.from_stored(h) for h in hooks.values() if isinstance(h, dict)]

    def get(self, hook_id: str) -> Webhook:
        hooks, _ = self._all()
        stored = hooks.get(hook_id)
        if not isinstance(stored, dict):
            raise NotFoundError(f"webhook {hook_id!r} not found")
        return webhooks.from_stored(stored)

    def delete(self, hook_id: str) -> None:
        for _ in range(_MAX_CAS_ATTEMPTS):
            hooks, version = self._all()
            if hook_id not in hooks:
                raise NotFoundError(f"webhook {hook_id!r} not found")
            if self._write({k: v for k, v in hooks.items() if k != hook_id}, version):
                log.info("webhook deleted", extra={"webhook_id": hook_id})
                return
        raise StoreError(f"{KEY}: gave up after {_MAX_CAS_ATTEMPTS} conflicting writes")

    def receive(
        self, hook: Webhook, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> dict[str, JSON]:
        """Turn one request to ``hook`` into an event and route it: ``{"ids": [...]}``, or
        ``{"ids": [], "duplicate": true}`` for a delivery already received. Raises
        ``Rejection`` for a refused request (nothing is stored then)."""
        now = self._service.now()
        incoming = webhooks.transform(hook, body, headers, query, now_ms=now)
        raw: dict[str, JSON] = {"name": incoming.name, "data": dict(incoming.data)}
        if incoming.id is not None:
            raw["id"] = incoming.id
        try:
            event = validate_event(raw)
        except ValidationError as exc:
            raise Rejection(400, f"the event this request makes is invalid: {exc}") from None
        counters = self._service.store.counters
        seen = _seen_key(hook.id, incoming.id) if incoming.id is not None else None
        if seen and not counters.put(seen, {}, expected_version=0, now=now, ttl_ms=DEDUPE_TTL_MS):
            log.info("webhook delivery deduplicated", extra={"webhook_id": hook.id})
            return {"ids": [], "duplicate": True}
        try:
            ids = self._service.send_events([event])
        except Exception:
            if seen:
                counters.delete(seen, expected_version=1)  # let the provider's retry in
            raise
        log.info("webhook received", extra={"webhook_id": hook.id, "event_id": ids[0]})
        return {"ids": list(ids), "duplicate": False}


def _seen_key(hook_id: str, event_id: str) -> str:
    return f"webhook-seen:{hook_id}:{hashlib.sha256(event_id.encode()).hexdigest()[:40]}"
