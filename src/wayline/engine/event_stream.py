"""The event API's body, parsed as it arrives: one event at a time, never the whole body.

Inngest's event API reads a request as a stream and checks each event against its
3 MiB limit; a request may carry up to 5 000 events, so one ``json.loads`` of a
16 MiB body would build every event's parse tree at once and hold the body beside it.
``EventStream`` is fed the body in chunks (``feed``) and splits the top-level array
with a small scanner that only tracks strings and brackets; each complete element is
decoded and validated on its own (``json_input``'s rules: finite numbers, valid
Unicode, nesting), so its bytes are dropped as soon as it is an ``EventInput``.

Every limit is checked before the caller stores anything: the caller stores only what
``finish`` returns, and ``finish`` returns only when the whole request is valid. Sizes
are those of the bytes the client sent (an event's own text, the whole body).
"""

from __future__ import annotations

import re

from ..errors import ValidationError
from . import json_input
from .events import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    EventInput,
    validate_event,
)

_WHITESPACE = b" \t\r\n"
_IN_STRING = re.compile(rb'["\\]')
_TOKEN = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+[\[\]{}"]')
"""The next bracket, or the quote of a string the buffer does not hold whole: text and
whole strings are skipped in one regex call (possessive, so it never backtracks), so
strings cost no Python loop iterations however long or many they are."""
_SCALAR_END = re.compile(rb"[\s,\]]")

# Where the scanner is between elements.
_START = 0  # before the first byte that is not whitespace
_BEFORE_ITEM = 1  # after "[" or ",": an element (or "]" right after "[") comes next
_AFTER_ITEM = 2  # after an element: "," or "]"
_IN_ITEM = 3  # inside an element
_DONE = 4  # after the closing "]" (or a lone event): only whitespace may follow


class EventStream:
    """Incremental parser of one event API request body (one event object or an array)."""

    def __init__(
        self,
        *,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_events: int = MAX_EVENTS_PER_REQUEST,
    ) -> None:
        self._max_request = max_request_bytes
        self._max_event = max_event_bytes
        self._max_events = max_events
        self._buf = bytearray()
        self._pos = 0  # scan position in _buf
        self._state = _START
        self._array = False
        self._depth = 0
        self._in_string = False
        self._scalar = False
        self._received = 0
        self._events: list[EventInput] = []

    def check_declared_length(self, length: int | None) -> None:
        """Refuse a body whose ``Content-Length`` is over the cap before reading any of it."""
        if length is not None and length > self._max_request:
            raise _too_large(length, self._max_request)

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the body; raises ``ValidationError`` at the first problem."""
        self._received += len(chunk)
        if self._received > self._max_request:
            raise ValidationError(
                f"request body is more than {self._max_request} bytes (read "
                f"{self._received} so far); the limit is {self._max_request} bytes",
                field="body",
            )
        self._buf += chunk
        self._scan()

    def finish(self) -> list[EventInput]:
        """The request's events, once the body has ended and all of it is valid."""
        if self._state == _IN_ITEM and self._scalar and self._depth == 0 and not self._array:
            self._complete(len(self._buf))  # a lone scalar body ends with the body
        if self._state == _START:
            raise json_input.NotJsonError("request body is empty: send an event", field="body")
        if self._state != _DONE:
            inside = f"events[{len(self._events)}]" if self._state == _IN_ITEM else "the array"
            raise json_input.NotJsonError(
                f"request body is not valid JSON: it ends inside {inside}", field="body"
            )
        if not self._events:
            raise ValidationError(
                "no events: send one event object or a non-empty array", field="body"
            )
        return self._events

    # ------------------------------------------------------------ scanning

    def _scan(self) -> None:
        buf = self._buf
        while self._pos < len(buf):
            if self._state == _IN_ITEM:
                if not self._scan_item():
                    break
                continue
            byte = buf[self._pos]
            if byte in _WHITESPACE:
                self._pos += 1
                continue
            self._between_items(byte)
        self._compact()

    def _between_items(self, byte: int) -> None:
        char = chr(byte)
        state = self._state
        if state == _START and char == "[":
            self._array, self._state = True, _BEFORE_ITEM
        elif state == _BEFORE_ITEM and char == "]" and not self._events:
            self._state = _DONE  # "[]": finish() says there are no events
        elif state == _AFTER_ITEM and char in ",]":
            self._state = _BEFORE_ITEM if char == "," else _DONE
        elif state in (_START, _BEFORE_ITEM) and char not in ",:]}":
            self._begin_item(char)
            return
        else:
            where = "after the last event" if state == _DONE else "between events"
            offset = self._received - len(self._buf) + self._pos
            raise json_input.NotJsonError(
                f"request body is not valid JSON: unexpected {char!r} {where} (byte {offset})",
                field="body",
            )
        self._pos += 1

    def _begin_item(self, char: str) -> None:
        if len(self._events) >= self._max_events:
            raise ValidationError(
                f"more than {self._max_events} events in one request; "
                f"the limit is {self._max_events}",
                field="body",
            )
        del self._buf[: self._pos]
        self._pos = 0
        self._state = _IN_ITEM
        self._depth = 0
        self._in_string = char == '"'  # a lone string ends at its closing quote
        self._pos = 1 if self._in_string else 0
        self._scalar = char not in '[{"'

    def _scan_item(self) -> bool:
        """Advance through the current element; False when the buffer ran out first."""
        buf = self._buf
        if self._scalar:
            found = _SCALAR_END.search(buf, self._pos)
            if found is None:
                self._pos = len(buf)
                return False
            self._complete(found.start())
            return True
        while True:
            if self._in_string:
                found = _IN_STRING.search(buf, self._pos)
            else:
                found = _TOKEN.match(buf, self._pos)
            if found is None:
                self._pos = len(buf)
                return False
            index = found.end() - 1 if not self._in_string else found.start()
            char = buf[index]
            if self._in_string:
                if char == 0x5C:  # backslash: the next byte is escaped, wherever it arrives
                    if index + 1 >= len(buf):
                        self._pos = index  # rescan the backslash with the next chunk
                        return False
                    self._pos = index + 2
                    continue
                self._in_string = False
            elif char == 0x22:
                self._in_string = True  # a string the buffer does not hold whole yet
            elif char in b"[{":
                self._depth += 1
            else:
                self._depth -= 1
            self._pos = index + 1
            if self._depth == 0 and not self._in_string:
                self._complete(self._pos)
                return True

    def _complete(self, end: int) -> None:
        raw = bytes(self._buf[:end])
        del self._buf[:end]
        self._pos = 0
        index = len(self._events)
        where = f"events[{index}]"
        if len(raw) > self._max_event:
            raise ValidationError(
                f"{where} is {len(raw)} bytes; the limit is {self._max_event} bytes per event",
                field=where,
            )
        value = json_input.decode(raw, field=where)
        self._events.append(validate_event(value, index=index, size=len(raw)))
        self._state = _AFTER_ITEM if self._array else _DONE

    def _compact(self) -> None:
        """Between elements nothing before ``_pos`` is needed again."""
        if self._state != _IN_ITEM and self._pos:
            del self._buf[: self._pos]
            self._pos = 0


def _too_large(size: int, limit: int) -> ValidationError:
    return ValidationError(
        f"request body is {size} bytes; the limit is {limit} bytes", field="body"
    )


def parse_body(body: bytes) -> list[EventInput]:
    """A whole body at once (callers that already hold it): same checks as the stream."""
    stream = EventStream()
    stream.check_declared_length(len(body))
    stream.feed(body)
    return stream.finish()
