"""Where webhooks may go: https outside development, and never to private, loopback or link-local addresses.

The check runs twice: when a channel is created (a clear 4xx for the user) and again at send time on the
addresses actually resolved then, because DNS can change between the two (rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
MAX_URL_LENGTH = 2000
# Carrier-grade NAT and a few ranges the stdlib does not call private but no public receiver lives in.
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15"))


@dataclass(frozen=True)
class TargetVerdict:
    """The outcome of checking a webhook URL: allowed or not, why, and the addresses it resolved to."""

    allowed: bool
    reason: str
    host: str = ""
    port: int = 0
    addresses: tuple[str, ...] = field(default_factory=tuple)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why an address may not receive webhooks, or None when it may."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return f"address {ip} is not a unicast host"
    refusal = None
    if ip.is_loopback:
        refusal = f"address {ip} is loopback"
    elif ip.is_link_local:
        refusal = f"address {ip} is link-local"
    elif ip.is_private or any(ip in net for net in _NOT_PUBLIC if ip.version == net.version):
        refusal = f"address {ip} is private"
    elif ip.is_reserved:
        return f"address {ip} is reserved"
    return None if allow_private else refusal


def check_url_form(url: str, *, require_https: bool) -> TargetVerdict:
    """Syntax alone: scheme, host, no credentials in the URL; does not touch DNS."""
    if len(url) > MAX_URL_LENGTH:
        return TargetVerdict(False, f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return TargetVerdict(False, f"not a URL: {exc}")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return TargetVerdict(False, "scheme must be https")
    if scheme == "http" and require_https:
        return TargetVerdict(False, "scheme must be https outside development")
    if not parts.hostname:
        return TargetVerdict(False, "URL has no host")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and API answers; the signing secret authenticates us instead.
        return TargetVerdict(False, "URL must not carry credentials")
    if parts.fragment:
        return TargetVerdict(False, "URL must not have a fragment")
    return TargetVerdict(True, "well-formed", host=parts.hostname, port=port or (443 if scheme == "https" else 80))


def names_an_address(url: str) -> bool:
    """Whether the URL's host is an IP address literal, so checking it needs no DNS lookup."""
    try:
        host = urlsplit(url).hostname
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


def check_webhook_target(url: str, *, require_https: bool, allow_private: bool,
                         resolve: Resolver = resolve_host) -> TargetVerdict:
    """Whether a webhook URL may be called now: its form, then every address its host resolves to."""
    form = check_url_form(url, require_https=require_https)
    if not form.allowed:
        return form
    try:
        addresses = [str(ipaddress.ip_address(form.host.strip("[]")))]
    except ValueError:
        try:
            addresses = list(resolve(form.host, form.port))
        except (OSError, UnicodeError) as exc:
            return TargetVerdict(False, f"host {form.host} does not resolve: {type(exc).__name__}",
                                 host=form.host, port=form.port)
    if not addresses:
        return TargetVerdict(False, f"host {form.host} has no address", host=form.host, port=form.port)
    # One refused address refuses the host: a receiver could otherwise steer us by ordering its records.
    for address in addresses:
        refusal = address_refusal(address, allow_private=allow_private)
        if refusal:
            return TargetVerdict(False, refusal, host=form.host, port=form.port, addresses=tuple(addresses))
    return TargetVerdict(True, "allowed", host=form.host, port=form.port, addresses=tuple(addresses))
