"""What the dashboard's templates print: times (absolute UTC + relative), durations, JSON,
status styling, and the waterfall's layout computed from a ``trace.Span`` tree.

Everything here is pure (``now`` is passed in), so the layout is unit-tested without a
browser and the templates stay free of arithmetic.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..engine.model import JSON
from ..trace import Span

MAX_INLINE_JSON = 64 * 1024
"""Bigger payloads are cut with a note (the API serves them whole)."""

BREAK_AT = 0.82
"""When a sleep or wait dominates the axis, everything before it gets this share of the width
and the gap is drawn compressed after a break, so a 3-day sleep does not flatten the rest."""

STATUS_ICONS = {
    "Queued": "○",
    "Running": "◐",
    "Sleeping": "☾",
    "Waiting": "◷",
    "Completed": "✓",
    "Failed": "✕",
    "Cancelled": "⊘",
    "Skipped": "↷",
}

KIND_ICONS = {
    "run": "⌁",
    "sleep": "☾",
    "wait": "◷",
    "invoke": "↗",
    "ai": "✦",
    "attempt": "↻",
    "call": "⚠",
}


def iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def absolute(ms: int | None) -> str:
    """``2026-11-29 05:30:01.123 UTC``: one format everywhere on the pages."""
    if ms is None:
        return "—"
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def clock(ms: int | None) -> str:
    """``05:47:37.990``: a time of day (UTC) where the date is obvious from context."""
    if ms is None:
        return "—"
    return absolute(ms)[11:23]


def duration(ms: int | None) -> str:
    """Short human duration: ``812 ms``, ``4.2 s``, ``3 m 12 s``, ``2 h 3 m``, ``1 d 2 h``."""
    if ms is None:
        return "—"
    ms = max(ms, 0)
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {sec} s" if sec else f"{minutes} m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} m" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def relative(ms: int | None, now: int) -> str:
    """``3 s ago`` / ``in 23 h 59 m`` / ``just now``."""
    if ms is None:
        return ""
    delta = ms - now
    if abs(delta) < 1000:
        return "just now"
    return f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"


def _plain(value: object) -> JSON:
    return dict(value) if isinstance(value, Mapping) else str(value)


def pretty_json(value: JSON) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=_plain)
    if len(text) > MAX_INLINE_JSON:
        return (
            text[:MAX_INLINE_JSON] + f"\n… cut at {MAX_INLINE_JSON // 1024} KiB of {len(text):,} B"
        )
    return text


def size(value: JSON) -> str:
    n = len(json.dumps(value, default=_plain).encode())
    return f"{n:,} B" if n < 10 * 1024 else f"{n / 1024:,.0f} KiB"


# ----------------------------------------------------------------------------- waterfall


@dataclass(frozen=True, slots=True)
class Row:
    """One waterfall row: a span and its bar as percentages of the track."""

    depth: int
    span: Span
    left: float
    width: float
    wake_left: float | None
    """Where the hollow sleep/wait bar starts (the span's start) ..."""
    wake_width: float | None
    """... and how wide it is (to its wake / timeout time)."""
    label: str
    """Text beside the bar: duration, or ``until …`` for a paused step."""
    solid: bool = True
    """False for a sleep or wait still paused: only its hollow bar (to the wake) is drawn."""
    label_at: str = "after"
    """Where the label goes: ``after`` the bar's end, ``before`` its start (the bar reaches
    the right edge), or ``inside`` its end (no room on either side)."""


@dataclass(frozen=True, slots=True)
class Tick:
    left: float
    label: str
    title: str


@dataclass(frozen=True, slots=True)
class Waterfall:
    rows: tuple[Row, ...]
    ticks: tuple[Tick, ...]
    now_left: float | None
    break_left: float | None
    break_label: str


class _Scale:
    """Time -> % of the track, linear, or piecewise with one compressed gap at the end."""

    def __init__(self, t0: int, t_main: int, t1: int) -> None:
        self.t0, self.t_main, self.t1 = t0, max(t_main, t0 + 1), max(t1, t0 + 1)
        gap = self.t1 - self.t_main
        self.broken = gap > 0 and gap > (self.t_main - t0)
        if not self.broken:
            self.t_main = self.t1

    def __call__(self, t: int) -> float:
        if not self.broken or t <= self.t_main:
            share = BREAK_AT if self.broken else 1.0
            return 100 * share * (min(t, self.t_main) - self.t0) / (self.t_main - self.t0)
        frac = (t - self.t_main) / (self.t1 - self.t_main)
        return 100 * (BREAK_AT + (1 - BREAK_AT) * frac)


def waterfall(root: Span, now: int) -> Waterfall:
    spans = root.walk()
    t0 = root.start_ms
    ends = [s.end_ms if s.end_ms is not None else now for _, s in spans]
    t_main = max([*ends, *(s.start_ms for _, s in spans)])
    wakes = [s.wake_ms for _, s in spans if s.wake_ms is not None]
    scale = _Scale(t0, t_main, max([t_main, *wakes]))
    rows = tuple(_row(depth, span, scale, now) for depth, span in spans)
    live = root.is_open
    return Waterfall(
        rows=rows,
        ticks=_ticks(t0, scale.t_main, scale),
        now_left=scale(now) if live else None,
        break_left=100 * BREAK_AT if scale.broken else None,
        break_label=duration(scale.t1 - scale.t_main) if scale.broken else "",
    )


def _row(depth: int, span: Span, scale: _Scale, now: int) -> Row:
    end = span.end_ms if span.end_ms is not None else now
    left = scale(span.start_ms)
    width = max(scale(end) - left, 0.4)
    wake_left = wake_width = None
    label = duration(end - span.start_ms) + ("…" if span.is_open else "")
    paused = span.kind in ("sleep", "wait", "invoke") and span.status in ("Sleeping", "Waiting")
    if span.wake_ms is not None and paused:
        wake_left = left
        wake_width = max(scale(span.wake_ms) - left, 0.4)
        verb = "until" if span.kind == "sleep" else "times out"
        label = f"{verb} {short_time(span.wake_ms)}"
    if span.retry_ms is not None:
        label += f" · retry at {short_time(span.retry_ms)}"
    right_end = max(left + width, (wake_left or 0) + (wake_width or 0))
    return Row(
        depth,
        span,
        left,
        min(width, 100 - left),
        wake_left,
        wake_width,
        label,
        solid=not paused,
        label_at="after" if right_end <= 85 else ("before" if left >= 18 else "inside"),
    )


def short_time(ms: int) -> str:
    """``02 Dec 05:25:51 UTC``: for labels on the waterfall."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%d %b %H:%M:%S UTC")


def _ticks(t0: int, t_main: int, scale: _Scale) -> tuple[Tick, ...]:
    span = max(t_main - t0, 1)
    raw = span / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = []
    t = 0
    while t <= span:
        ticks.append(Tick(scale(t0 + int(t)), f"+{duration(int(t))}", absolute(t0 + int(t))))
        t += step
    return tuple(ticks)
