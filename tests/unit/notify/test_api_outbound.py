"""Webhook targets: https outside development, a service port; every resolved address checked by the outbound
policy (its address rules are tested in tests/unit/shared/test_outbound.py)."""

from __future__ import annotations

import pytest

from services.notify.outbound import check_send_target, check_url_form, check_webhook_target


@pytest.mark.parametrize(
    ("url", "require_https", "fragment"),
    [
        ("http://hooks.example.com/x", True, "https"),
        ("ftp://hooks.example.com/x", False, "https"),
        ("https://user:pw@hooks.example.com/x", True, "credentials"),
        ("https:///x", True, "no host"),
        ("https://hooks.example.com:99999/x", True, "not a URL"),
        ("https://hooks.example.com/x#frag", True, "fragment"),
        ("https://93.184.216.34:0/x", True, "port 0"),
    ],
)
def test_malformed_or_insecure_urls_are_refused(url: str, require_https: bool, fragment: str) -> None:
    verdict = check_url_form(url, require_https=require_https)
    assert not verdict.allowed
    assert fragment in verdict.reason


def test_a_host_resolving_to_any_private_address_is_refused() -> None:
    def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.5"]

    verdict = check_webhook_target(
        "https://hooks.example.com/x", require_https=True, allow_private=False, resolve=rebinding
    )
    assert not verdict.allowed
    assert "10.0.0.5" in verdict.reason


def test_a_host_resolving_to_public_addresses_is_allowed_with_its_addresses() -> None:
    verdict = check_webhook_target(
        "https://hooks.example.com/x",
        require_https=True,
        allow_private=False,
        resolve=lambda host, port: ["93.184.215.14"],
    )
    assert verdict.allowed
    assert (verdict.host, verdict.port, verdict.addresses) == ("hooks.example.com", 443, ("93.184.215.14",))


def test_an_unresolvable_host_is_refused() -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    verdict = check_webhook_target(
        "https://nowhere.invalid/x", require_https=True, allow_private=False, resolve=nowhere
    )
    assert not verdict.allowed
    assert "does not resolve" in verdict.reason


def test_ip_literal_urls_are_checked_without_dns() -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("must not resolve an IP literal")

    assert not check_webhook_target(
        "http://127.0.0.1:8080/h", require_https=False, allow_private=False, resolve=no_dns
    ).allowed
    assert check_webhook_target(
        "http://127.0.0.1:8080/h", require_https=False, allow_private=True, resolve=no_dns
    ).allowed
    assert not check_webhook_target("https://[::1]/h", require_https=True, allow_private=False, resolve=no_dns).allowed


@pytest.mark.parametrize(
    "url",
    [
        "https://[2002:a9fe:a9fe::]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://93.184.216.34:0/",
    ],
)
def test_tunnelled_mapped_and_port_zero_targets_are_refused_at_creation(url: str) -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("must not resolve an IP literal")

    assert not check_webhook_target(url, require_https=True, allow_private=False, resolve=no_dns).allowed


def test_the_send_time_check_asks_no_resolver_and_refuses_literal_private_addresses() -> None:
    assert check_send_target("https://hooks.example.com/x", require_https=True, allow_private=False).allowed
    refused = check_send_target("https://169.254.169.254/x", require_https=True, allow_private=False)
    assert not refused.allowed
    assert "link-local" in refused.reason
