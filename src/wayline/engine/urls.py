"""Which app URLs the server may call: the SSRF guard.

Registering an app makes the server POST to a URL of the registrant's choice. Cloud
metadata endpoints and link-local addresses are refused always (they hand out
credentials); loopback, private, shared and reserved addresses are refused unless private
targets are allowed (the dev server allows them: local apps live there).

A host is classified as the resolver will read it, not as it looks: ``0xA9FEA9FE``,
``2852039166``, ``0251.0376.0251.0376`` and ``169.254.43518`` all *are* 169.254.169.254
to ``getaddrinfo``, which parses numeric hosts with ``inet_aton``. ``parse_ipv4``
re-implements exactly those rules (a unit test holds it to ``socket.inet_aton``), IPv6
hosts are unwrapped to the IPv4 address they embed, and a host may only use the ASCII
host-name alphabet, so no Unicode digit or dot can be normalised into an address later.

This module sees the URL only. A name that *resolves* to a private address is the
caller's to refuse, since resolving is I/O: ``check_address`` classifies each resolved
address with the same rules, and the AWS dispatcher connects only to the address it
checked (``wayline.aws.pinning``).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from ..errors import ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI instance metadata
        "169.254.170.2",  # ECS task credentials
        "169.254.170.23",  # EKS pod identity
        "100.100.100.200",  # Alibaba Cloud metadata
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "fd00:ec2::23",  # EKS pod identity over IPv6
    )
)
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

MAX_URL_LENGTH = 2048
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_DIGITS = {
    8: frozenset("01234567"),
    10: frozenset("0123456789"),
    16: frozenset("0123456789abcdefABCDEF"),
}
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_IPV4_MAX = (0xFFFFFFFF, 0xFFFFFF, 0xFFFF, 0xFF)
"""The largest value the last part may take after 0, 1, 2 or 3 dotted parts."""


class Kind(enum.Enum):
    METADATA = "a cloud metadata endpoint"
    LINK_LOCAL = "a link-local address"
    PRIVATE = "a private or loopback address"
    PUBLIC = "a public address"


def check_app_url(url: str, *, field: str, allow_private: bool) -> str:
    """Return ``url`` if the server may call it, else raise ``ValidationError``."""
    parts = _split(url, field)
    host = (parts.hostname or "").rstrip(".")
    kind = classify_host(host)
    if kind is None:
        raise ValidationError(
            f"{field} host {host!r} is not a valid host name or IP address "
            "(ASCII letters, digits, '-', '_' and '.'; use punycode for other names)",
            field=field,
        )
    _refuse(kind, host, field=field, allow_private=allow_private)
    return url


def check_address(address: str, *, host: str, field: str, allow_private: bool) -> None:
    """Refuse a resolved ``address`` of ``host`` by the same rules as a literal one."""
    parsed = parse_address(address)
    kind = Kind.METADATA if parsed is None else classify_address(parsed)
    _refuse(kind, f"{host} -> {address}", field=field, allow_private=allow_private)


def classify_host(host: str) -> Kind | None:
    """The kind of a URL host (lowercase, no brackets); None if it is not a valid host."""
    if host in METADATA_NAMES:
        return Kind.METADATA
    address = parse_address(host)
    if address is not None:
        return classify_address(address)
    if ":" in host or not host.isascii() or _HOST_NAME.fullmatch(host) is None or len(host) > 253:
        return None
    if _NUMERIC_LABEL.fullmatch(host.rpartition(".")[2]):
        return None  # looks like an address but is none: as WHATWG URL parsing decides
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return Kind.PRIVATE
    return Kind.PUBLIC


def classify_address(address: Address) -> Kind:
    """Metadata, link-local, private (loopback, RFC 1918, shared, reserved...) or public;
    an IPv6 address embedding an IPv4 one is classified as the stricter of the two."""
    kinds = [_classify_one(a) for a in (address, *_embedded_ipv4(address))]
    return min(kinds, key=list(Kind).index)


def parse_address(host: str) -> Address | None:
    """An IP address as a resolver reads ``host``: IPv6, or IPv4 in any ``inet_aton`` form."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return None
    value = parse_ipv4(host)
    return None if value is None else ipaddress.IPv4Address(value)


def parse_ipv4(text: str) -> int | None:
    """``inet_aton``: one to four parts, each decimal, octal (leading ``0``) or hex (``0x``);
    the last part fills the remaining bytes (``127.1``, ``169.254.43518``, ``2130706433``).
    Returns the address as an integer, or None if ``inet_aton`` would refuse ``text``.

    Unlike glibc this stops at nothing: trailing whitespace (which ``inet_aton`` ignores
    together with whatever follows it) is refused, as is every other trailing character.
    """
    parts = text.split(".")
    if len(parts) > 4:
        return None
    values = [_ipv4_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    *leading, last = [v for v in values if v is not None]
    if any(v > 0xFF for v in leading) or last > _IPV4_MAX[len(leading)]:
        return None
    result = last
    for index, value in enumerate(leading):
        result |= value << (24 - 8 * index)
    return result


def _ipv4_part(part: str) -> int | None:
    """One part as C's ``strtoul(part, 0)`` reads it, if it reads the whole part."""
    if not part or not part.isascii() or not part[0].isdigit():
        return None
    if part[:2].lower() == "0x":
        digits, base = part[2:], 16
    elif part[0] == "0":
        digits, base = part, 8
    else:
        digits, base = part, 10
    if not digits or not _DIGITS[base].issuperset(digits):
        return None
    value = int(digits, base)
    return value if value <= 0xFFFFFFFF else None


def _classify_one(address: Address) -> Kind:
    if address in METADATA_ADDRESSES:
        return Kind.METADATA
    if address.is_link_local:
        return Kind.LINK_LOCAL
    if (
        address.is_private
        or address.is_loopback
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or (isinstance(address, ipaddress.IPv4Address) and address in SHARED_NETWORK)
    ):
        return Kind.PRIVATE
    return Kind.PUBLIC


def _embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 one reaches: mapped, compatible, NAT64, 6to4, Teredo."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 or any(address in net for net in NAT64_NETWORKS):
        found.append(low)  # ::a.b.c.d (IPv4-compatible) and 64:ff9b::a.b.c.d (NAT64)
    return found


def _split(url: str, field: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(
            f"{field} is {len(url)} characters; the limit is {MAX_URL_LENGTH}", field=field
        )
    if _UNSAFE_CHARS.search(url) is not None or not url.isascii():
        raise ValidationError(
            f"{field} must be an ASCII URL without spaces, control characters or backslashes "
            "(percent-encode them)",
            field=field,
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"{field} is not a valid URL: {exc}", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"{field} must be an absolute http(s) URL, got {_redacted(parts)!r}", field=field
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError(f"{field} must not carry credentials", field=field)
    if port is not None and not 1 <= port <= 65535:
        raise ValidationError(f"{field} port must be from 1 to 65535, got {port}", field=field)
    return parts


def _refuse(kind: Kind, host: str, *, field: str, allow_private: bool) -> None:
    if kind in (Kind.METADATA, Kind.LINK_LOCAL):
        raise ValidationError(f"{field} points at {kind.value} ({host})", field=field)
    if kind is Kind.PRIVATE and not allow_private:
        raise ValidationError(
            f"{field} points at {kind.value} ({host}); allow private targets explicitly to use it",
            field=field,
        )


def _redacted(parts: SplitResult) -> str:
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
