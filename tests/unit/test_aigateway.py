"""Provider requests built from ``step.ai.infer`` opts, as Inngest builds them."""

from __future__ import annotations

import json

import pytest

from wayline.engine import aigateway
from wayline.engine.model import JSON
from wayline.errors import ValidationError

BODY: dict[str, JSON] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def opts(fmt: str, url: str = "https://api.example.com/v1/chat", **extra: JSON) -> dict[str, JSON]:
    return {"url": url, "format": fmt, "auth_key": "sk-1", "body": BODY, "headers": {}, **extra}


@pytest.mark.parametrize(
    ("fmt", "header", "value"),
    [
        ("anthropic", "x-api-key", "sk-1"),
        ("openai-chat", "authorization", "Bearer sk-1"),
        ("bedrock", "authorization", "sk-1"),
    ],
)
def test_auth_goes_where_the_format_wants_it(fmt: str, header: str, value: str) -> None:
    request = aigateway.build_request(opts(fmt), allow_private=False)
    assert request.headers[header] == value
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == BODY


def test_gemini_takes_the_key_as_a_query_parameter() -> None:
    request = aigateway.build_request(
        opts("gemini", url="https://g.example.com/v1/x?alt=sse"), allow_private=False
    )
    assert request.url == "https://g.example.com/v1/x?alt=sse&key=sk-1"
    assert "authorization" not in request.headers


def test_the_ops_own_headers_win_and_the_key_is_not_in_the_repr() -> None:
    request = aigateway.build_request(
        opts("anthropic", headers={"X-Api-Key": "override", "anthropic-version": "1"}),
        allow_private=False,
    )
    assert request.headers["x-api-key"] == "override"
    assert "sk-1" not in repr(request) and "override" not in repr(request)


@pytest.mark.parametrize(
    ("url", "allow_private"),
    [
        ("http://169.254.169.254/latest/meta-data", True),  # metadata: always refused
        ("http://127.0.0.1:8080/v1", False),
        ("http://10.0.0.5/v1", False),
        ("file:///etc/passwd", True),
    ],
)
def test_provider_urls_pass_the_app_url_rules(url: str, allow_private: bool) -> None:
    with pytest.raises(ValidationError):
        aigateway.build_request(opts("openai-chat", url=url), allow_private=allow_private)


def test_private_provider_urls_are_allowed_where_private_apps_are() -> None:
    request = aigateway.build_request(
        opts("openai-chat", url="http://127.0.0.1:8080/v1"), allow_private=True
    )
    assert request.url == "http://127.0.0.1:8080/v1"


@pytest.mark.parametrize(
    "bad",
    [{"url": ""}, {"body": "not an object"}, {"headers": {"x": 1}}],
)
def test_invalid_opts_are_refused_naming_the_field(bad: dict[str, JSON]) -> None:
    with pytest.raises(ValidationError) as caught:
        aigateway.build_request({**opts("anthropic"), **bad}, allow_private=True)
    assert caught.value.field in bad
