"""The subscription index: a breach finds its organisations directly and through bills of materials."""

from __future__ import annotations

from services.notify.matching import SubscriptionIndex, SubscriptionSpec, scan_subscriptions
from shared.events import Severity

SPECS = [
    SubscriptionSpec("s1", "org-a", Severity.WARNING, ("hook-a",), material="gallium"),
    SubscriptionSpec(
        "s2",
        "org-b",
        Severity.WARNING,
        ("mail-b",),
        product_name="Radar module",
        bom=(("GaN chip", "gallium"), ("Housing", "aluminium"), ("GaAs amplifier", "gallium")),
    ),
    SubscriptionSpec("s3", "org-c", Severity.CRITICAL, ("hook-c",), material="gallium"),
    SubscriptionSpec("s4", "org-d", Severity.WARNING, ("hook-d",), material="germanium"),
    SubscriptionSpec(
        "s5", "org-a", Severity.WARNING, ("mail-a", "hook-a"), product_name="Charger", bom=(("Power stage", "gallium"),)
    ),
]


def test_breach_finds_direct_and_bom_subscribers_with_why_and_where():
    index = SubscriptionIndex(SPECS)
    found = index.lookup("gallium", Severity.WARNING)
    assert sorted(found) == ["org-a", "org-b"]
    assert found["org-a"].via == ["material:gallium", "product:Charger>Power stage"]
    assert found["org-a"].channel_ids == ["hook-a", "mail-a"]
    assert found["org-b"].via == ["product:Radar module>GaN chip", "product:Radar module>GaAs amplifier"]


def test_minimum_severity_keeps_warnings_from_critical_only_subscribers():
    index = SubscriptionIndex(SPECS)
    assert sorted(index.lookup("gallium", Severity.CRITICAL)) == ["org-a", "org-b", "org-c"]
    assert "org-c" not in index.lookup("gallium", Severity.WARNING)


def test_material_nobody_subscribed_to_matches_nobody():
    assert SubscriptionIndex(SPECS).lookup("cobalt", Severity.CRITICAL) == {}


def test_scan_baseline_agrees_with_the_index():
    index = SubscriptionIndex(SPECS)
    for material in ("gallium", "aluminium", "germanium", "cobalt"):
        for severity in Severity:
            assert scan_subscriptions(SPECS, material, severity) == index.lookup(material, severity)
