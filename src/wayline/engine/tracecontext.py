"""W3C trace context for a run: the same ids on the server's exported trace and in the
``traceparent`` header of every call to the app, so the app's spans (the SDK's OpenTelemetry
middleware) join the run's trace as children of its root span.

Both ids are derived from the run id (SHA-256), so every process, every Lambda container and
every retry computes the same ones without storing anything. The trace id is also a valid
AWS X-Ray trace id (``xray_trace_id``): its first 32 bits are the run's creation time in
epoch seconds (from the run's ULID), which X-Ray requires, so the segments every Lambda
invocation emits for a run and the app's own spans all land in one X-Ray trace.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from .ids import ulid_time_ms


def run_trace_ids(run_id: str) -> tuple[int, int]:
    """``(trace_id, root_span_id)`` of a run's trace: 128 and 64 bits, never zero."""
    digest = hashlib.sha256(f"wayline-run:{run_id}".encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    try:
        seconds = ulid_time_ms(run_id) // 1000
    except ValueError:
        pass  # not a ULID (tests' ids): the hash alone
    else:
        trace_id = (seconds & 0xFFFFFFFF) << 96 | trace_id & (1 << 96) - 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return trace_id, span_id


def xray_trace_id(run_id: str) -> str:
    """The run's trace id in X-Ray's spelling: ``1-<8 hex: epoch s>-<24 hex>``."""
    hex_id = f"{run_trace_ids(run_id)[0]:032x}"
    return f"1-{hex_id[:8]}-{hex_id[8:]}"


@lru_cache(maxsize=4096)
def traceparent(run_id: str) -> str:
    """The ``traceparent`` header for a call of this run: the run's root span, sampled.
    Kept per run id (a pure function of it): a run's calls all carry the same header, and
    deriving it (SHA-256, the ULID's time) was ~1 % of the dev server's time per call."""
    trace_id, span_id = run_trace_ids(run_id)
    return f"00-{trace_id:032x}-{span_id:016x}-01"
