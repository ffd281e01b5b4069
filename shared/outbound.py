"""Where mews may connect: one policy for every outbound connection (feeds, each redirect hop, webhooks).

A host is resolved once, off the event loop; every address it resolves to must be a public unicast host
(one refused address refuses the host, so a receiver cannot steer us by ordering its records); then the
connection goes to an address that was checked, never to a second answer of the resolver (DNS rebinding).
TLS still verifies the host name: the pinned address replaces only the TCP destination, while SNI and the
certificate check use the name of the URL.

Private, loopback and link-local addresses are allowed only by an explicit setting for development and
tests (`MEWS_NOTIFY_ALLOW_PRIVATE_WEBHOOK_TARGETS`, `MEWS_INGEST_ALLOW_PRIVATE_SOURCES`); unspecified, multicast,
reserved and tunnelling / translation forms (6to4, Teredo, NAT64, IPv4-compatible) are refused always.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import anyio
import anyio.to_thread
import httpcore
import httpx
from prometheus_client import Counter

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

REFUSED = Counter(
    "mews_outbound_refused_total", "Outbound connections refused by the address policy, by kind of refusal", ["kind"]
)

_NOT_PUBLIC_V4 = tuple(ipaddress.ip_network(n) for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15"))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
# Addresses that carry or translate to an IPv4 address elsewhere: the IPv4 address they reach is not the one
# checked, so none of them is ever a receiver (RFC 3056, RFC 4380, RFC 6052, RFC 8215, RFC 4291 2.5.5.1).
_TUNNELS = tuple(
    (ipaddress.ip_network(n), name)
    for n, name in (
        ("2002::/16", "6to4"),
        ("2001::/32", "Teredo"),
        ("64:ff9b::/96", "NAT64"),
        ("64:ff9b:1::/48", "NAT64"),
        ("::ffff:0:0:0/96", "IPv4-translated"),
        ("::/96", "IPv4-compatible"),
    )
)
# Concurrent lookups are few; a hanging resolver must not take every worker thread of the process.
_RESOLVER_THREADS = anyio.CapacityLimiter(16)


@dataclass(frozen=True)
class Refusal:
    """Why an outbound target is refused: `kind` is a metric label, `detail` is for people."""

    kind: str  # loopback, link_local, private, not_unicast, reserved, tunnel, port, unresolvable, scheme
    detail: str

    def __str__(self) -> str:
        return self.detail


class TargetRefused(Exception):  # noqa: N818 (a verdict callers handle, not a programming error)
    """Raised instead of connecting: the target's address is not one mews may reach."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal


def address_refusal(address: str, *, allow_private: bool) -> Refusal | None:
    """Why mews may not connect to an address, or None when it may."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif not (ip.is_unspecified or ip.is_loopback):
            for network, name in _TUNNELS:
                if ip in network:
                    embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
                    if name == "6to4" and ip.sixtofour is not None:
                        embedded = ip.sixtofour
                    elif name == "Teredo" and ip.teredo is not None:
                        embedded = ip.teredo[1]  # the client, where the packets end up
                    return Refusal("tunnel", f"address {ip} is a tunnel or translation address ({name}, to {embedded})")
    if ip.is_multicast or ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK):
        return Refusal("not_unicast", f"address {ip} is not a unicast host")
    refusal = None
    if ip.is_loopback:
        refusal = Refusal("loopback", f"address {ip} is loopback")
    elif ip.is_link_local:
        refusal = Refusal("link_local", f"address {ip} is link-local")
    elif ip.is_reserved:
        return Refusal("reserved", f"address {ip} is reserved")
    elif ip.is_private or any(ip in net for net in _NOT_PUBLIC_V4 if ip.version == net.version):
        refusal = Refusal("private", f"address {ip} is private")
    elif not ip.is_global:
        return Refusal("reserved", f"address {ip} is not globally routable")
    return None if allow_private else refusal


def port_refusal(port: int | None) -> Refusal | None:
    """Port 0 is no service: connecting to it is refused by some stacks and means 'any' to others."""
    if port is not None and not 1 <= port <= 65535:
        return Refusal("port", f"port {port} is not a service port")
    return None


def addresses_refusal(addresses: Iterable[str], *, allow_private: bool) -> Refusal | None:
    """The first refusal among every address a host resolved to; one refused address refuses the host."""
    for address in addresses:
        refusal = address_refusal(address, allow_private=allow_private)
        if refusal is not None:
            return refusal
    return None


def literal_address(host: str) -> str | None:
    """The address a host names itself (an IP literal, with or without brackets), or None for a DNS name."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def lookup(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (A and AAAA), in the resolver's order; blocking."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_host(host: str, port: int) -> list[str]:
    """`lookup` in a worker thread: the event loop never waits on a resolver; a cancelled wait abandons it."""
    return await anyio.to_thread.run_sync(lookup, host, port, limiter=_RESOLVER_THREADS, abandon_on_cancel=True)


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses outbound connections may reach, and the resolver that names them."""

    allow_private: bool = False
    resolve: Resolver = resolve_host

    async def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for host:port; raises TargetRefused (and counts it)."""
        try:
            return await self._addresses(host, port)
        except TargetRefused as exc:
            REFUSED.labels(exc.refusal.kind).inc()
            raise

    async def _addresses(self, host: str, port: int) -> list[str]:
        refusal = port_refusal(port)
        if refusal is not None:
            raise TargetRefused(refusal)
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = list(await self.resolve(host, port))
            except (OSError, UnicodeError) as exc:
                raise TargetRefused(
                    Refusal("unresolvable", f"host {host} does not resolve: {type(exc).__name__}")
                ) from exc
        if not addresses:
            raise TargetRefused(Refusal("unresolvable", f"host {host} has no address"))
        refusal = addresses_refusal(addresses, allow_private=self.allow_private)
        if refusal is not None:
            raise TargetRefused(refusal)
        return addresses


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that checks a host's addresses when it connects and connects only to those.

    httpcore asks it for a TCP stream to the URL's host name and then starts TLS on that stream with the same
    name, so the certificate is still verified for the name while the socket goes to the checked address.
    """

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.policy.addresses(host, port)
        failure: Exception | None = None
        for address in addresses:  # each one checked; the next is tried only when one cannot be reached
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused(Refusal("scheme", "unix sockets are not an outbound target"))

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a PinnedBackend; it also refuses port 0 in the URL, which httpcore would take as the
    scheme's default port, so that a URL never means a service other than the one it names."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        refusal = port_refusal(request.url.port)
        if refusal is not None:
            REFUSED.labels(refusal.kind).inc()
            raise TargetRefused(refusal)
        return await super().handle_async_request(request)


def pinned_transport(
    policy: OutboundPolicy,
    *,
    limits: httpx.Limits = httpx.Limits(),
    verify: ssl.SSLContext | bool = True,
    inner: httpcore.AsyncNetworkBackend | None = None,
) -> PinnedTransport:
    """An httpx transport whose every connection obeys `policy`; environment proxies are not used.

    httpx 0.28 takes no network backend, so its connection pool is built again, as httpx builds it, with ours.
    """
    context = httpx.create_ssl_context(verify=verify, trust_env=False)
    transport = PinnedTransport(verify=context, limits=limits, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=PinnedBackend(policy, inner),
    )
    return transport
