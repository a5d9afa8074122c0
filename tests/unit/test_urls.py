"""SSRF guard on app URLs: metadata endpoints always refused, private ones unless allowed."""

from __future__ import annotations

import re

import pytest

from wayline.engine.urls import check_app_url
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
