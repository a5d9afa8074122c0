"""Client settings: arguments, then ``WAYLINE_*``, then ``INNGEST_*``; dev mode only on request."""

from __future__ import annotations

import pytest

import wayline
from wayline.errors import ConfigError

KEY = "signkey-prod-" + "12" * 32
OTHER = "signkey-prod-" + "34" * 32


def config(environ: dict[str, str], **args: object) -> wayline.Wayline:
    return wayline.Wayline(app_id="shop", environ=environ, **args)  # type: ignore[arg-type]


def test_production_is_the_default_with_no_server_url() -> None:
    client = config({})
    assert not client.is_dev and client.config.mode == "cloud"
    assert client.config.api_origin is None and client.config.event_api_origin is None


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "http://10.0.0.5:8288/"])
def test_dev_mode_from_the_environment(value: str) -> None:
    for name in ("WAYLINE_DEV", "INNGEST_DEV"):
        assert config({name: value}).is_dev


@pytest.mark.parametrize("value", ["0", "false", "", "off"])
def test_falsy_dev_values_mean_production(value: str) -> None:
    assert not config({"WAYLINE_DEV": value}).is_dev


def test_the_is_dev_argument_beats_the_environment() -> None:
    assert not config({"INNGEST_DEV": "1"}, is_dev=False).is_dev
    assert config({}, is_dev=True).is_dev


def test_dev_defaults_to_the_local_dev_server_or_the_dev_url() -> None:
    assert config({}, is_dev=True).config.api_origin == "http://127.0.0.1:8288"
    local = config({"INNGEST_DEV": "http://10.0.0.5:9999/"}).config
    assert local.api_origin == local.event_api_origin == "http://10.0.0.5:9999"


def test_wayline_variables_beat_inngest_ones_and_arguments_beat_both() -> None:
    environ = {
        "WAYLINE_SIGNING_KEY": KEY,
        "INNGEST_SIGNING_KEY": OTHER,
        "INNGEST_EVENT_KEY": "from-inngest",
        "INNGEST_BASE_URL": "http://inngest-base",
        "WAYLINE_API_BASE_URL": "http://wayline-api",
        "INNGEST_ENV": "preview",
    }
    settings = config(environ).config
    assert settings.signing_key == KEY
    assert settings.event_key == "from-inngest"
    assert settings.api_origin == "http://wayline-api"
    assert settings.event_api_origin == "http://inngest-base"
    assert settings.env == "preview"
    explicit = config(environ, signing_key=OTHER, base_url="http://arg", event_key="arg").config
    assert explicit.signing_key == OTHER
    assert explicit.api_origin == explicit.event_api_origin == "http://arg"
    assert explicit.event_key == "arg"
    split = config({}, base_url="http://b", api_base_url="http://a").config
    assert (split.api_origin, split.event_api_origin) == ("http://a", "http://b")


@pytest.mark.parametrize(
    ("environ", "args", "message"),
    [
        ({}, {"base_url": "ftp://x"}, "http"),
        ({"WAYLINE_DEV": "ftp://x"}, {}, None),  # not a URL: a truthy flag, default server
        ({}, {"app_id": " "}, "app_id"),
        ({"WAYLINE_SIGNING_KEY_FALLBACK": "nope"}, {}, "WAYLINE_SIGNING_KEY_FALLBACK"),
        ({}, {"signing_key": "signkey-prod-zz"}, "signing_key argument"),
    ],
)
def test_bad_settings(
    environ: dict[str, str], args: dict[str, object], message: str | None
) -> None:
    settings: dict[str, object] = {"app_id": "shop", **args}
    if message is None:
        assert wayline.Wayline(environ=environ, **settings).is_dev  # type: ignore[arg-type]
        return
    with pytest.raises(ConfigError, match=message):
        wayline.Wayline(environ=environ, **settings)  # type: ignore[arg-type]
