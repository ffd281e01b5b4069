"""The outbound policy: which addresses mews may connect to, and that it connects only to addresses it checked."""

from __future__ import annotations

import httpcore
import pytest

from shared.outbound import OutboundPolicy, PinnedBackend, TargetRefused, address_refusal


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link_local"),
        ("::ffff:169.254.169.254", "link_local"),
        ("fe80::1", "link_local"),
        ("0.0.0.0", "not_unicast"),
        ("0.1.2.3", "not_unicast"),
        ("::", "not_unicast"),
        ("224.0.0.1", "not_unicast"),
        ("ff02::1", "not_unicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("2002:a9fe:a9fe::", "tunnel"),  # 6to4 of 169.254.169.254
        ("2002:5db8:d822::1", "tunnel"),  # 6to4 of a public address: the IPv4 host reached is not the one checked
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "tunnel"),  # Teredo
        ("64:ff9b::a9fe:a9fe", "tunnel"),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::7f00:1", "tunnel"),  # local-use NAT64
        ("::a9fe:a9fe", "tunnel"),  # IPv4-compatible 169.254.169.254
        ("::ffff:0:7f00:1", "tunnel"),  # IPv4-translated 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused_with_their_kind(address: str, kind: str) -> None:
    refusal = address_refusal(address, allow_private=False)
    assert refusal is not None
    assert refusal.kind == kind


def test_a_tunnel_refusal_names_the_ipv4_address_it_leads_to() -> None:
    assert "169.254.169.254" in str(address_refusal("2002:a9fe:a9fe::", allow_private=False))
    assert "169.254.169.254" in str(address_refusal("64:ff9b::a9fe:a9fe", allow_private=False))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address, allow_private=False) is None


def test_the_private_setting_allows_loopback_and_private_but_never_unspecified_multicast_or_tunnels() -> None:
    for address in ("127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "fd00::1"):
        assert address_refusal(address, allow_private=True) is None
    for address in ("0.0.0.0", "ff02::1", "240.0.0.1", "2002:a9fe:a9fe::", "64:ff9b::7f00:1"):
        assert address_refusal(address, allow_private=True) is not None


class StubResolver:
    """Answers from a script, one answer per call, and counts the calls."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records where it was asked to connect; `unreachable` addresses fail to connect; nothing touches a network."""

    def __init__(self, unreachable: tuple[str, ...] = ()) -> None:
        self.connected: list[tuple[str, int]] = []
        self.unreachable = unreachable

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ASYNC109
        self.connected.append((host, port))
        if host in self.unreachable:
            raise httpcore.ConnectError(f"{host} unreachable")
        return httpcore.AsyncMockStream([])

    async def sleep(self, seconds: float) -> None:
        pass


async def test_a_name_is_resolved_once_and_the_connection_goes_to_the_checked_address() -> None:
    resolver = StubResolver(["93.184.215.14"], ["127.0.0.1"])
    inner = RecordingBackend()
    backend = PinnedBackend(OutboundPolicy(resolve=resolver), inner)
    await backend.connect_tcp("hooks.example.com", 443)
    assert resolver.calls == [("hooks.example.com", 443)]
    assert inner.connected == [("93.184.215.14", 443)]


async def test_a_name_with_any_refused_address_is_refused_before_connecting() -> None:
    inner = RecordingBackend()
    backend = PinnedBackend(OutboundPolicy(resolve=StubResolver(["93.184.215.14", "10.0.0.5"])), inner)
    with pytest.raises(TargetRefused) as refused:
        await backend.connect_tcp("hooks.example.com", 443)
    assert refused.value.refusal.kind == "private"
    assert inner.connected == []


async def test_the_next_checked_address_is_tried_when_one_cannot_be_reached() -> None:
    inner = RecordingBackend(unreachable=("2606:2800:21f:cb07:6820:80da:af6b:8b2c",))
    backend = PinnedBackend(
        OutboundPolicy(resolve=StubResolver(["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "93.184.215.14"])), inner
    )
    await backend.connect_tcp("hooks.example.com", 443)
    assert [host for host, _ in inner.connected] == ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "93.184.215.14"]


async def test_port_zero_and_literals_are_refused_without_asking_the_resolver() -> None:
    resolver = StubResolver(["93.184.215.14"])
    backend = PinnedBackend(OutboundPolicy(resolve=resolver), RecordingBackend())
    with pytest.raises(TargetRefused, match="port 0"):
        await backend.connect_tcp("93.184.216.34", 0)
    with pytest.raises(TargetRefused, match="6to4"):
        await backend.connect_tcp("2002:a9fe:a9fe::", 443)
    assert resolver.calls == []


async def test_an_unresolvable_name_is_refused() -> None:
    async def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(TargetRefused) as refused:
        await PinnedBackend(OutboundPolicy(resolve=nowhere), RecordingBackend()).connect_tcp("nowhere.invalid", 443)
    assert refused.value.refusal.kind == "unresolvable"


async def test_each_refusal_is_counted_by_its_kind() -> None:
    from prometheus_client import REGISTRY

    def counted() -> float:
        return REGISTRY.get_sample_value("mews_outbound_refused_total", {"kind": "link_local"}) or 0.0

    before = counted()
    backend = PinnedBackend(OutboundPolicy(resolve=StubResolver(["169.254.169.254"])), RecordingBackend())
    with pytest.raises(TargetRefused):
        await backend.connect_tcp("metadata.example", 80)
    assert counted() == before + 1


@pytest.mark.parametrize("host", ["0x7f000001", "2130706433", "127.1", "0177.0.0.1"])
async def test_numeric_spellings_of_loopback_are_refused_through_the_real_resolver(host: str) -> None:
    # The C library reads these as 127.0.0.1 without asking DNS; whatever they resolve to is checked.
    with pytest.raises(TargetRefused) as refused:
        await OutboundPolicy().addresses(host, 80)
    assert refused.value.refusal.kind in ("loopback", "unresolvable")
