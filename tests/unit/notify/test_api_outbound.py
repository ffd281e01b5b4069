"""Webhook targets: https outside development; private, loopback and link-local refused unless allowed."""

from __future__ import annotations

import pytest

from services.notify.outbound import address_refusal, check_url_form, check_webhook_target


@pytest.mark.parametrize(("address", "refusal"), [
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.9", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private"),
    ("fd00::1", "private"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("0.0.0.0", "not a unicast host"),
    ("224.0.0.1", "not a unicast host"),
])
def test_non_public_addresses_are_refused_with_their_reason(address: str, refusal: str) -> None:
    reason = address_refusal(address, allow_private=False)
    assert reason is not None
    assert refusal in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address, allow_private=False) is None


def test_the_private_setting_allows_loopback_but_never_unspecified_or_multicast() -> None:
    assert address_refusal("127.0.0.1", allow_private=True) is None
    assert address_refusal("10.0.0.1", allow_private=True) is None
    assert address_refusal("0.0.0.0", allow_private=True) is not None
    assert address_refusal("ff02::1", allow_private=True) is not None


@pytest.mark.parametrize(("url", "require_https", "fragment"), [
    ("http://hooks.example.com/x", True, "https"),
    ("ftp://hooks.example.com/x", False, "https"),
    ("https://user:pw@hooks.example.com/x", True, "credentials"),
    ("https:///x", True, "no host"),
    ("https://hooks.example.com:99999/x", True, "not a URL"),
    ("https://hooks.example.com/x#frag", True, "fragment"),
])
def test_malformed_or_insecure_urls_are_refused(url: str, require_https: bool, fragment: str) -> None:
    verdict = check_url_form(url, require_https=require_https)
    assert not verdict.allowed
    assert fragment in verdict.reason


def test_a_host_resolving_to_any_private_address_is_refused() -> None:
    def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.5"]

    verdict = check_webhook_target("https://hooks.example.com/x", require_https=True, allow_private=False,
                                   resolve=rebinding)
    assert not verdict.allowed
    assert "10.0.0.5" in verdict.reason


def test_a_host_resolving_to_public_addresses_is_allowed_with_its_addresses() -> None:
    verdict = check_webhook_target("https://hooks.example.com/x", require_https=True, allow_private=False,
                                   resolve=lambda host, port: ["93.184.215.14"])
    assert verdict.allowed
    assert (verdict.host, verdict.port, verdict.addresses) == ("hooks.example.com", 443, ("93.184.215.14",))


def test_an_unresolvable_host_is_refused() -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    verdict = check_webhook_target("https://nowhere.invalid/x", require_https=True, allow_private=False,
                                   resolve=nowhere)
    assert not verdict.allowed
    assert "does not resolve" in verdict.reason


def test_ip_literal_urls_are_checked_without_dns() -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("must not resolve an IP literal")

    assert not check_webhook_target("http://127.0.0.1:8080/h", require_https=False, allow_private=False,
                                    resolve=no_dns).allowed
    assert check_webhook_target("http://127.0.0.1:8080/h", require_https=False, allow_private=True,
                                resolve=no_dns).allowed
    assert not check_webhook_target("https://[::1]/h", require_https=True, allow_private=False,
                                    resolve=no_dns).allowed
