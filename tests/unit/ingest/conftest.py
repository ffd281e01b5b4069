"""Fixtures of the ingest unit tests: the real catalog, a fixed clock, the fixture files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.ingest.observation import Limits

INGEST_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ingest"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def catalog():
    from shared.catalog import load_catalog

    return load_catalog()


@pytest.fixture
def limits() -> Limits:
    return Limits(now=NOW)
