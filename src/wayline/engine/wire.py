"""The SDK wire vocabulary in one place: opcode names and header names.

Opcodes are ``StrEnum`` members, so they compare equal to the bare strings the SDKs
send and can be written into JSON as they are; an opcode Wayline does not know stays a
plain string on ``protocol.Op`` (and fails the run, naming it). Header names are lower
case, as ``protocol.parse_response`` and the ASGI servers hand them over.
"""

from __future__ import annotations

from enum import StrEnum


class Opcode(StrEnum):
    """Generator opcodes of the Inngest SDK protocol (research note §1.7)."""

    STEP_RUN = "StepRun"
    STEP = "Step"
    """Old SDKs' name of ``StepRun``."""
    STEP_ERROR = "StepError"
    STEP_FAILED = "StepFailed"
    STEP_PLANNED = "StepPlanned"
    SLEEP = "Sleep"
    WAIT_FOR_EVENT = "WaitForEvent"
    WAIT_FOR_SIGNAL = "WaitForSignal"
    INVOKE_FUNCTION = "InvokeFunction"
    AI_GATEWAY = "AIGateway"
    GATEWAY = "Gateway"
    """``step.fetch`` made by the server (JS v4)."""
    RUN_COMPLETE = "RunComplete"
    """The function returned: ``data`` is its output (JS v4 ends a checkpointed call so)."""


STEP_RESULTS = frozenset({Opcode.STEP_RUN, Opcode.STEP})
"""Opcodes carrying a ``step.run`` result in ``data``: the only ones a checkpoint saves."""


# Request headers the server sends to the SDK.
CONTENT_TYPE = "content-type"
USER_AGENT = "user-agent"
SERVER_KIND = "x-inngest-server-kind"
"""Also on every API response: ``dev`` or ``cloud``."""
EXPECTED_SERVER_KIND = "x-inngest-expected-server-kind"
"""Sent by an SDK registering: the kind of server it expects."""
SYNC_KIND = "x-inngest-sync-kind"
"""``in_band``: the sync PUT asks the SDK to answer with its functions."""
SIGNATURE = "x-inngest-signature"
REQ_VERSION = "x-inngest-req-version"
RUN_ID = "x-run-id"
REQUEST_ID = "x-request-id"
"""Echoed by JS v4 as ``request_id`` in its checkpoints."""
TRACEPARENT = "traceparent"

# Response headers the SDK sends back.
SDK = "x-inngest-sdk"
NO_RETRY = "x-inngest-no-retry"
RETRY_AFTER = "retry-after"

# API requests from the SDK.
AUTHORIZATION = "authorization"
