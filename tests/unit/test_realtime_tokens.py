"""Realtime subscription tokens: scoped, signed, expiring; errors never echo the token."""

from __future__ import annotations

import pytest

from wayline import realtime_tokens as tokens
from wayline.errors import ValidationError

SECRET = tokens.secret_for("signkey-test-00ff")
GRANT = tokens.Grant("upload:7", ("progress", "done"), expires_at=10_000)


def test_a_minted_token_verifies_to_its_grant_until_it_expires() -> None:
    token = tokens.mint(SECRET, GRANT)
    assert tokens.verify(SECRET, token, now_ms=9_999) == GRANT
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify(SECRET, token, now_ms=10_000)


def test_a_token_from_another_key_or_with_edited_claims_is_refused() -> None:
    token = tokens.mint(SECRET, GRANT)
    other = tokens.secret_for("signkey-test-11ee")
    with pytest.raises(tokens.TokenError, match="signature") as caught:
        tokens.verify(other, token, now_ms=0)
    assert token not in str(caught.value)
    widened = tokens.mint(other, tokens.Grant("upload:8", ("progress",), 10_000))
    forged = widened.split(".")[0] + "." + token.split(".")[1]
    with pytest.raises(tokens.TokenError):
        tokens.verify(SECRET, forged, now_ms=0)
    with pytest.raises(tokens.TokenError, match="malformed"):
        tokens.verify(SECRET, "no-dot", now_ms=0)


def test_the_signing_key_derives_the_secret_and_no_key_means_a_random_one() -> None:
    assert tokens.secret_for("signkey-test-00ff") == SECRET
    assert tokens.secret_for(None) != tokens.secret_for(None)


@pytest.mark.parametrize("name", ["", "has space", "x" * 257, "émoji"])
def test_bad_channel_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        tokens.check_name(name, "channel")
    assert caught.value.field == "channel"
