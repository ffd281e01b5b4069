"""Where webhooks may go: https outside development, and only to addresses the outbound policy allows.

The check runs when a channel is created (a clear 4xx for the user, with DNS) and again before each send on the
URL's form; the addresses are checked by the pinned transport (shared/outbound.py) when it connects, on the
one answer of the resolver it then connects to, because DNS can change between the two (rebinding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.outbound import addresses_refusal, literal_address, lookup, port_refusal

Resolver = Callable[[str, int], Sequence[str]]
MAX_URL_LENGTH = 2000


@dataclass(frozen=True)
class TargetVerdict:
    """The outcome of checking a webhook URL: allowed or not, why, and the addresses it resolved to."""

    allowed: bool
    reason: str
    host: str = ""
    port: int = 0
    addresses: tuple[str, ...] = field(default_factory=tuple)


def masked_url(url: str) -> str:
    """A URL that is its own secret (Teams, Slack), as the API and logs may show it: host and the last 4 characters."""
    if "/…" in url:
        return url  # masked already
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
    except ValueError:
        return "…"
    rest = url.rstrip("/")
    return (
        f"{parts.scheme}://{host}/…{rest[-4:]}"
        if len(rest) > len(f"{parts.scheme}://{host}") + 8
        else f"{parts.scheme}://{host}/…"
    )


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
    refusal = port_refusal(port)
    if refusal is not None:
        return TargetVerdict(False, refusal.detail)
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and API answers; the signing secret authenticates us instead.
        return TargetVerdict(False, "URL must not carry credentials")
    if parts.fragment:
        return TargetVerdict(False, "URL must not have a fragment")
    return TargetVerdict(True, "well-formed", host=parts.hostname, port=port or (443 if scheme == "https" else 80))


def check_send_target(url: str, *, require_https: bool, allow_private: bool) -> TargetVerdict:
    """Before a send: the URL's form, and its address when it names one; a host name is checked on connecting."""
    form = check_url_form(url, require_https=require_https)
    address = literal_address(form.host) if form.allowed else None
    if address is not None:
        refusal = addresses_refusal([address], allow_private=allow_private)
        if refusal is not None:
            return TargetVerdict(False, refusal.detail, host=form.host, port=form.port, addresses=(address,))
    return form


def check_webhook_target(
    url: str, *, require_https: bool, allow_private: bool, resolve: Resolver = lookup
) -> TargetVerdict:
    """Whether a webhook URL may be created: its form, then every address its host resolves to (blocking DNS)."""
    form = check_url_form(url, require_https=require_https)
    if not form.allowed:
        return form
    literal = literal_address(form.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = list(resolve(form.host, form.port))
        except (OSError, UnicodeError) as exc:
            return TargetVerdict(
                False, f"host {form.host} does not resolve: {type(exc).__name__}", host=form.host, port=form.port
            )
    if not addresses:
        return TargetVerdict(False, f"host {form.host} has no address", host=form.host, port=form.port)
    refusal = addresses_refusal(addresses, allow_private=allow_private)
    if refusal is not None:
        return TargetVerdict(False, refusal.detail, host=form.host, port=form.port, addresses=tuple(addresses))
    return TargetVerdict(True, "allowed", host=form.host, port=form.port, addresses=tuple(addresses))
