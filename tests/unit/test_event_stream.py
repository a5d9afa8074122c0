"""The event API's incremental parser: same events however the body is chunked, and
every malformed or over-limit body refused with the event's index."""

from __future__ import annotations

import json

import pytest

from wayline.engine.event_stream import EventStream, parse_body
from wayline.errors import ValidationError

TRICKY = [
    {"name": "a", "data": {"s": 'quote " and \\ backslash ] } [ {', "n": [1, 2.5, -3e2]}},
    {"name": "b", "data": {"u": "caf\u00e9 \u2603 \U0001f600", "e": '\\\\\\"', "z": ""}},
    {"name": "c", "data": {"deep": [[[{"x": [{}]}]]], "t": True, "f": None}},
]


def feed_in(body: bytes, size: int) -> list[dict[str, object]]:
    stream = EventStream()
    for start in range(0, len(body), size):
        stream.feed(body[start : start + size])
    return [{"name": e.name, "data": dict(e.data)} for e in stream.finish()]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 1 << 20])
def test_events_are_the_same_whatever_the_chunking(size: int) -> None:
    body = b" \n[ " + b" ,\n".join(json.dumps(e).encode() for e in TRICKY) + b" ]\t"
    assert feed_in(body, size) == TRICKY
    assert feed_in(json.dumps(TRICKY[1], ensure_ascii=False).encode(), size) == [TRICKY[1]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty"),
        (b"[]", "no events"),
        (b'[{"name":"a"},]', "unexpected ']' between events"),
        (b'[{"name":"a"} {"name":"b"}]', "unexpected '{' between events"),
        (b'[{"name":"a"}', "ends inside the array"),
        (b'[{"name":"a"', "ends inside events[0]"),
        (b'{"name":"a"} x', "unexpected 'x' after the last event"),
        (b'[{"name":"a"}, {"name": }]', "events[1] is not valid JSON"),
        (b'[{"name":"a"}, {"name":"b","data":{"x":NaN}}]', "events[1].data.x: non-finite"),
        (b'[{"name":"a"}, {"name":"\\ud800"}]', "events[1].name: string holds a lone"),
        (b"[1]", "events[0] must be a JSON object"),
        (b"7", "events[0] must be a JSON object"),
        (b'"just a string"', "events[0] must be a JSON object"),
        (b'[{"name":"a"}, "s\\"]"]', "events[1] must be a JSON object"),
        (b'[{"name":"a","data":' + b"[" * 150 + b"]" * 150 + b"}]", "events[0].data"),
        (b"]", "unexpected ']'"),
    ],
)
def test_malformed_bodies_are_refused_naming_where(body: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_body(body)
    assert message in str(caught.value)


def test_limits_name_the_index_the_size_and_the_limit() -> None:
    with pytest.raises(ValidationError, match=r"events\[1\] is 23 bytes; the limit is 20 bytes"):
        parse_body_with(b'[{"name":"a"},{"name":"bbbbbbbbbbbb"}]', max_event_bytes=20)
    with pytest.raises(ValidationError, match="more than 2 events in one request"):
        parse_body_with(b'[{"name":"a"},{"name":"b"},{"name":"c"}]', max_events=2)
    with pytest.raises(ValidationError, match=r"more than 10 bytes \(read 11 so far\)"):
        EventStream(max_request_bytes=10).feed(b'{"name":"a"}'[:11])
    with pytest.raises(ValidationError, match="request body is 11 bytes; the limit is 10"):
        EventStream(max_request_bytes=10).check_declared_length(11)


def parse_body_with(body: bytes, **limits: int) -> None:
    stream = EventStream(**limits)
    stream.feed(body)
    stream.finish()


@pytest.mark.parametrize("size", [1, 2, 3])
def test_a_string_element_split_anywhere_is_still_one_element(size: int) -> None:
    body = b'[{"name":"a"}, "s\\"]{" ]'
    with pytest.raises(ValidationError, match=r"events\[1\] must be a JSON object"):
        feed_in(body, size)
