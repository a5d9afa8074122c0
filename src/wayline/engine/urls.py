"""Which app URLs the server may call: a first line of defence against SSRF.

Registering an app makes the server POST to a URL of the registrant's choice. Cloud
metadata endpoints are refused always (they hand out credentials); loopback, private,
link-local and reserved addresses are refused unless private targets are allowed (the
dev server allows them: local apps live there). This check sees literal addresses and a
few well-known names only; resolving names and pinning the address is the caller's job
where it matters (on AWS), since that is I/O.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..errors import ValidationError

METADATA_HOSTS = frozenset(
    {
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "metadata.google.internal",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def check_app_url(url: str, *, field: str, allow_private: bool) -> str:
    """Return ``url`` if the server may call it, else raise ``ValidationError``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationError(f"{field} must be an absolute http(s) URL, got {url!r}", field=field)
    if parts.username or parts.password:
        raise ValidationError(f"{field} must not carry credentials", field=field)
    address = _address(host)
    if host in METADATA_HOSTS or (address is not None and str(address) in METADATA_HOSTS):
        raise ValidationError(f"{field} points at a cloud metadata endpoint ({host})", field=field)
    if address is not None and address.is_link_local:
        raise ValidationError(f"{field} points at a link-local address ({host})", field=field)
    if not allow_private and (host in LOCAL_NAMES or _is_private(address)):
        raise ValidationError(
            f"{field} points at a private or loopback address ({host}); "
            "allow private targets explicitly to use it",
            field=field,
        )
    return url


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    if address is None:
        return False
    return (
        address.is_private
        or address.is_loopback
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or address in ipaddress.ip_network("100.64.0.0/10")
    )
