"""SSRF guard on app URLs: metadata endpoints always refused, private ones unless allowed."""

from __future__ import annotations

import re
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.engine.protocol import redact_url
from wayline.engine.urls import check_address, check_app_url, parse_ipv4
from wayline.errors import ValidationError

ALWAYS_REFUSED = [
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://169.254.170.2/v2/credentials", "metadata"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://metadata.google.internal/computeMetadata", "metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("ftp://example.com/x", "http(s)"),
    ("file:///etc/passwd", "http(s)"),
    ("gopher://example.com/", "http(s)"),
    ("http://user:pw@example.com/api", "credentials"),
    ("http:///nohost", "http(s)"),
]
PRIVATE = [
    "http://127.0.0.1:3000/api/inngest",
    "http://localhost:3000/api/inngest",
    "http://[::1]:3000/",
    "http://10.0.0.5/",
    "http://172.16.1.1/",
    "http://192.168.1.10/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/",
]


@pytest.mark.parametrize(("url", "reason"), ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [True, False])
def test_always_refused(url: str, reason: str, allow_private: bool) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)) as info:
        check_app_url(url, field="url", allow_private=allow_private)
    assert info.value.field == "url"


@pytest.mark.parametrize("url", PRIVATE)
def test_private_targets_need_the_opt_in(url: str) -> None:
    assert check_app_url(url, field="url", allow_private=True) == url
    with pytest.raises(ValidationError, match="private or loopback"):
        check_app_url(url, field="url", allow_private=False)


@pytest.mark.parametrize("url", ["https://app.example.com/api/inngest", "http://93.184.216.34/"])
def test_public_targets_pass(url: str) -> None:
    assert check_app_url(url, field="url", allow_private=False) == url


# ---------------------------------------------------------------- numeric spellings (issue 12)

METADATA_SPELLINGS = [
    "0xA9FEA9FE",
    "0xa9fea9fe",
    "2852039166",
    "0251.0376.0251.0376",
    "169.254.43518",
    "169.16689662",
    "0xa9.0xfe.0xa9.0xfe",
    "0251.254.169.254",
    "169.254.169.254.",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[::169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::1]",
    "[fd00:ec2::254]",
    "100.100.100.200",
]
PRIVATE_SPELLINGS = [
    "127.1",
    "2130706433",
    "0x7f000001",
    "0x7f.1",
    "017700000001",
    "0x0a000001",
    "10.1",
    "0",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::]",
    "app.localhost",
    "[fec0::1]",
]


@pytest.mark.parametrize("host", METADATA_SPELLINGS)
@pytest.mark.parametrize("allow_private", [True, False])
def test_every_spelling_of_a_metadata_address_is_refused(host: str, allow_private: bool) -> None:
    with pytest.raises(ValidationError, match=r"metadata|link-local"):
        check_app_url(f"http://{host}/latest", field="url", allow_private=allow_private)


@pytest.mark.parametrize("host", PRIVATE_SPELLINGS)
def test_every_spelling_of_a_private_address_needs_the_opt_in(host: str) -> None:
    url = f"http://{host}:3000/api/inngest"
    assert check_app_url(url, field="url", allow_private=True) == url
    with pytest.raises(ValidationError, match="private or loopback"):
        check_app_url(url, field="url", allow_private=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1", "not a valid URL"),
        ("http://exa mple.com/", "without spaces"),
        ("http://exa\nmple.com/", "control characters"),
        ("http://example.com:99999/", "out of range"),
        ("http://example.com:0/", "port must be from 1 to 65535"),
        ("http://example.com:abc/", "not a valid URL"),
        ("http://\uff11\uff12\uff17.0.0.1/", "ASCII"),  # fullwidth digits
        ("http://127\u30020\u30020\u30021/", "ASCII"),  # ideographic full stops
        ("http://%31%32%37.0.0.1/", "not a valid host name"),
        ("http://1.2.3.4.5/", "not a valid host name"),
        ("http://08.1/", "not a valid host name"),
        ("http://0x/", "not a valid host name"),
        ("http://-bad.example.com/", "not a valid host name"),
        ("http://example.com\\@169.254.169.254/", "backslashes"),
        ("http://" + "a" * 2100 + ".com/", "the limit is 2048"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as info:
        check_app_url(url, field="url", allow_private=True)
    assert info.value.field == "url"


def test_a_refusal_never_echoes_credentials() -> None:
    with pytest.raises(ValidationError) as info:
        check_app_url("ftp://user:s3cret@example.com/", field="url", allow_private=True)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [("93.184.216.34", True), ("127.0.0.1", False), ("::1", False), ("10.0.0.8", False)],
)
def test_resolved_addresses_use_the_same_rules(address: str, allowed: bool) -> None:
    if allowed:
        check_address(address, host="app.example.com", field="url", allow_private=False)
    else:
        with pytest.raises(ValidationError, match=r"app\.example\.com -> "):
            check_address(address, host="app.example.com", field="url", allow_private=False)
    with pytest.raises(ValidationError, match="metadata"):
        check_address("169.254.169.254", host="x.example", field="url", allow_private=True)


@pytest.mark.parametrize(
    "url",
    ["http://user:s3cret@example.com/api?token=abc", "http://:s3cret@[::1]:80/x", "http://[::1"],
)
def test_redact_url_drops_user_info_and_query(url: str) -> None:
    redacted = redact_url(url)
    assert "s3cret" not in redacted and "token" not in redacted


# ---------------------------------------------------------------- inet_aton, property-tested

_ATON_TEXT = st.lists(
    st.one_of(
        st.integers(0, 2**32).map(str),
        st.integers(0, 2**32).map(lambda n: f"0x{n:x}"),
        st.integers(0, 2**32).map(lambda n: f"0X{n:X}"),
        st.integers(0, 2**32).map(lambda n: f"0{n:o}"),
        st.text(alphabet="0123456789abcdefxX", max_size=12),
    ),
    min_size=1,
    max_size=5,
).map(".".join)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_ATON_TEXT, st.text(alphabet="0123456789abcdefxX. +-", max_size=24)))
def test_parse_ipv4_reads_hosts_exactly_as_inet_aton(text: str) -> None:
    try:
        expected: int | None = int.from_bytes(socket.inet_aton(text), "big")
    except OSError:
        expected = None
    if expected is not None and any(c.isspace() for c in text):
        expected = None  # inet_aton ignores what follows whitespace; we refuse such hosts
    assert parse_ipv4(text) == expected
