"""Fault injection for the AWS tests, through botocore's own event hooks on real clients.

moto is the AWS here, so a fault is what AWS does to a request, injected where botocore
would see it, never a mock of a Wayline class:

* ``THROTTLE`` / ``SERVER_ERROR``: the request never reaches moto; the call fails with a 400
  ``ProvisionedThroughputExceededException`` (``ThrottlingException`` outside DynamoDB) or a
  500 ``InternalServerError`` (``before-call``, which short-circuits the whole call): a fault
  that outlasted botocore's retries, the only kind Wayline's own code ever sees. (A
  ``before-send`` answer would not do: botocore still runs moto's own ``before-send`` hook,
  so the request would be applied.)
* ``AMBIGUOUS``: moto applies the request, then the response is replaced by a 500
  (``needs-retry``): a write that succeeded but reported an error. Not retried by default
  (the client gave up on its last attempt); ``retried=True`` lets botocore send it again.
* ``CRASH_BEFORE`` / ``CRASH_AFTER``: the container dies just before the request is sent or
  just after it succeeded (``ContainerDied``, a ``BaseException`` nothing in Wayline
  catches, so nothing after it runs: no save, no delete, no failure report).

A retried ambiguous write is sent again at once (the ``needs-retry`` hook answers 0 s), so
tests spend no wall time in botocore's backoff; the delays Wayline itself sleeps are injected.

Named crash points of a dispatch (``CrashPoint``): two are the dispatcher's own seam
(``Dispatcher(checkpoint=...)``), two are botocore calls, one is the event source mapping::

    BEFORE_CALL   work item claimed, app not called yet        (dispatcher checkpoint)
    AFTER_ANSWER  the app answered, nothing saved              (dispatcher checkpoint)
    AFTER_SAVE    the run's conditional save succeeded         (after-call on the save)
    AFTER_ENQUEUE the next item is in SQS                      (after-call SendMessageBatch)
    BEFORE_DELETE the handler returned, SQS never got a delete (the driver)
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

from wayline.aws.runtime import Clients

__all__ = [
    "ContainerDied",
    "CrashPoint",
    "Fault",
    "Faults",
    "FaultyClients",
    "Kind",
    "is_run_save",
]


class ContainerDied(BaseException):
    """The Lambda container is gone: raised at a crash point, caught only by the driver."""


class Kind(enum.StrEnum):
    THROTTLE = "throttle"
    SERVER_ERROR = "server_error"
    AMBIGUOUS = "ambiguous"
    CRASH_BEFORE = "crash_before"
    CRASH_AFTER = "crash_after"


class CrashPoint(enum.StrEnum):
    BEFORE_CALL = "before_call"
    AFTER_ANSWER = "after_answer"
    AFTER_SAVE = "after_save"
    AFTER_ENQUEUE = "after_enqueue"
    BEFORE_DELETE = "before_delete"


Params = Mapping[str, Any]


@dataclass
class Fault:
    """``kind`` on the next ``times`` calls of ``service`` ``operation`` (any operation if
    None) whose API parameters satisfy ``when``, after letting ``skip`` of them through."""

    service: str
    operation: str | None
    kind: Kind
    times: int = 1
    when: Callable[[str, Params], bool] | None = None
    skip: int = 0
    retried: bool = False
    hits: int = field(default=0, init=False)
    seen: int = field(default=0, init=False)

    def matches(self, service: str, operation: str, params: Params) -> bool:
        if service != self.service or self.operation not in (None, operation):
            return False
        return self.when is None or self.when(operation, params)

    @property
    def spent(self) -> bool:
        return self.hits >= self.times


_ERRORS = {
    Kind.THROTTLE: (400, "ThrottlingException", "Rate exceeded"),
    Kind.SERVER_ERROR: (500, "InternalServerError", "Internal server error"),
    Kind.AMBIGUOUS: (500, "InternalServerError", "Internal server error"),
}


def _error(kind: Kind, service: str) -> tuple[int, str, str]:
    status, code, message = _ERRORS[kind]
    if kind is Kind.THROTTLE and service == "dynamodb":
        code = "ProvisionedThroughputExceededException"
    return status, code, message


def _parsed_error(status: int, code: str, message: str) -> dict[str, Any]:
    """What botocore's parser makes of an AWS error response."""
    return {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "fault-injected"},
    }


class Faults:
    """The faults armed for one test; ``attach(client)`` puts the hooks on a client."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.injected: list[tuple[str, str, Kind]] = []
        """(service, operation, kind) of every fault that fired, in order."""

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        service = client.meta.service_model.service_name
        events.register_first(
            "before-parameter-build", self._pick(service), unique_id=f"faults-p-{id(self)}"
        )
        events.register_first("before-call", self._refuse, unique_id=f"faults-c-{id(self)}")
        events.register_first("needs-retry", self._after_attempt, unique_id=f"faults-r-{id(self)}")
        events.register_first("after-call", self._after_call, unique_id=f"faults-a-{id(self)}")
        return client

    # -- hooks -------------------------------------------------------------------------

    def _pick(self, service: str) -> Callable[..., None]:
        def pick(params: Params, model: Any, context: dict[str, Any], **_: Any) -> None:
            fault = self._take(service, model.name, params)
            if fault is None:
                return
            if fault.kind is Kind.CRASH_BEFORE:
                raise ContainerDied(f"crash before {service} {model.name}")
            context["wayline_fault"] = fault

        return pick

    def _take(self, service: str, operation: str, params: Params) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.spent or not fault.matches(service, operation, params):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                fault.hits += 1
                self.injected.append((service, operation, fault.kind))
                return fault
        return None

    def _refuse(
        self, context: Mapping[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        fault: Fault | None = context.get("wayline_fault")
        if fault is None or fault.kind not in (Kind.THROTTLE, Kind.SERVER_ERROR):
            return None
        status, code, message = _error(fault.kind, fault.service)
        http = AWSResponse("https://fault.invalid/", status, HTTPHeaders(), None)
        return http, _parsed_error(status, code, message)

    def _after_attempt(
        self, response: Any, attempts: int, request_dict: Mapping[str, Any], **_: Any
    ) -> float | bool | None:
        context = request_dict.get("context", {})
        fault: Fault | None = context.get("wayline_fault")
        if fault is None or response is None:
            return None
        http, parsed = response
        if fault.kind is Kind.AMBIGUOUS and attempts == 1 and http.status_code < 300:
            status, code, message = _error(fault.kind, fault.service)
            http.status_code = status  # moto applied the request; the caller hears a 500
            parsed.clear()
            parsed.update(_parsed_error(status, code, message))
            return 0 if fault.retried else False
        return None

    def _after_call(self, http_response: Any, context: Mapping[str, Any], **_: Any) -> None:
        fault: Fault | None = context.get("wayline_fault")
        if fault is not None and fault.kind is Kind.CRASH_AFTER and http_response.status_code < 300:
            raise ContainerDied(f"crash after {fault.service} {fault.operation}")


@dataclass(frozen=True)
class FaultyClients(Clients):
    """The runtime's client factories, each client built with the fault hooks attached."""

    faults: Faults = field(default_factory=Faults)

    def dynamodb(self) -> Any:
        return self.faults.attach(Clients.dynamodb(self))

    def s3(self) -> Any:
        return self.faults.attach(Clients.s3(self))

    def sqs(self) -> Any:
        return self.faults.attach(Clients.sqs(self))

    def scheduler(self) -> Any:
        return self.faults.attach(Clients.scheduler(self))

    def events(self) -> Any:
        return self.faults.attach(Clients.events(self))


def is_run_save(operation: str, params: Params) -> bool:
    """A write of a run's state item (``RUN#<id>``/``RUN``): the engine's conditional save."""

    def run_key(key: Mapping[str, Any]) -> bool:
        return str(key.get("pk", {}).get("S", "")).startswith("RUN#") and key.get("sk") == {
            "S": "RUN"
        }

    if operation == "UpdateItem":
        return run_key(params.get("Key", {}))
    if operation == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            update = entry.get("Update") or {}
            if run_key(update.get("Key", {})):
                return True
    return False
