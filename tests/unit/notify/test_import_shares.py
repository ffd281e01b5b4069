"""The trade figures behind stress tests: main origins and the share of EU supply a partner's stop takes away."""

from __future__ import annotations

import pytest

from services.notify.store.exposure import ImportShares, shipped_import_shares, supply_affected

TABLE = ImportShares(
    "test",
    "2024",
    {
        "gallium": {
            "basis": "value",
            "unit": "EUR",
            "extra_eu_total": 80.0,
            "intra_eu_total": 20.0,
            "hs_codes": ["81129289"],
            "partners": {"CN": 0.7, "CA": 0.26, "US": 0.04},
        }
    },
)


def test_main_origins_are_the_partners_with_at_least_five_percent() -> None:
    assert TABLE.main_origins("gallium") == {"CN": 0.7, "CA": 0.26}
    assert TABLE.main_origins("antimony") == {}


def test_the_share_affected_is_of_extra_eu_imports_and_of_all_imports() -> None:
    affected = supply_affected(TABLE, "gallium", "CN")
    assert affected.extra_eu_share == 0.7
    assert affected.total_import_share == pytest.approx(0.56)  # 0.7 x 80 of 100
    assert supply_affected(TABLE, "gallium", "NO").extra_eu_share == 0.0
    assert supply_affected(TABLE, "antimony", "CN").extra_eu_share is None


def test_the_shipped_table_cites_its_source_and_sums_to_one_per_material() -> None:
    shipped = shipped_import_shares()
    assert "Comext" in shipped.source
    assert shipped.period == "2024"
    for material in ("gallium", "germanium", "natural-graphite"):
        assert sum(shipped.partners(material).values()) == pytest.approx(1.0)
