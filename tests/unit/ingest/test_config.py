"""The sources file: validated on load, every error naming the source it is about."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ingest.config import SourcesError, parse_sources

BASE = Path("/srv/feeds")


def test_relative_paths_resolve_against_the_config_file_and_intervals_read_units():
    config = parse_sources(
        '[[source]]\nname = "a"\nkind = "csv_prices"\npath = "prices.csv"\ninterval = "15m"\n'
        'currency = "USD"\nunit = "kg"\n',
        BASE,
    )
    source = config.by_name("a")
    assert source.path == BASE / "prices.csv"
    assert source.interval == 900


@pytest.mark.parametrize(
    ("body", "named", "says"),
    [
        (
            'name = "lme"\nkind = "csv_prices"\nurl = "ftp://example.org/x.csv"\ncurrency = "USD"\nunit = "kg"',
            "'lme'",
            "ftp",
        ),
        ('name = "lme"\nkind = "csv_prices"\npath = "x.csv"\nunit = "kg"', "'lme'", "currency"),
        (
            'name = "lme"\nkind = "csv_prices"\npath = "x.csv"\nurl = "https://e.org"\ncurrency = "USD"\nunit = "kg"',
            "'lme'",
            "exactly one",
        ),
        ('name = "lme"\nkind = "xml_prices"\npath = "x.csv"', "'lme'", "kind"),
        ('kind = "feed"\npath = "x.xml"', "source #1", "name"),
        ('name = "n"\nkind = "feed"\npath = "x.xml"\ninterval = "soon"', "'n'", "interval"),
        (
            'name = "fx"\nkind = "json_prices"\npath = "x.json"\ncurrency = "USD"\nunit = "kg"\n'
            'convert = { currency = "EUR" }',
            "'fx'",
            "rate",
        ),
    ],
)
def test_invalid_source_is_refused_naming_the_source_and_the_problem(body, named, says):
    with pytest.raises(SourcesError) as err:
        parse_sources("[[source]]\n" + body + "\n", BASE)
    assert named in str(err.value)
    assert says in str(err.value)


def test_material_unknown_to_the_catalog_is_refused_at_load(catalog):
    text = '[[source]]\nname = "ps"\nkind = "pinksheet"\npath = "x.xlsx"\nseries = { NICKEL = "nickle" }\n'
    with pytest.raises(SourcesError, match="'ps'.*nickle"):
        parse_sources(text, BASE, catalog)


def test_a_name_declared_twice_is_refused():
    one = '[[source]]\nname = "a"\nkind = "feed"\npath = "x.xml"\n'
    with pytest.raises(SourcesError, match="twice"):
        parse_sources(one + one, BASE)


def test_a_typo_in_a_source_or_at_the_top_is_refused_with_its_name():
    with pytest.raises(SourcesError, match=r"'n'.*intervall"):
        parse_sources('[[source]]\nname = "n"\nkind = "feed"\npath = "x.xml"\nintervall = "1h"\n', BASE)
    with pytest.raises(SourcesError, match="sources"):
        parse_sources('[[sources]]\nname = "n"\nkind = "feed"\npath = "x.xml"\n', BASE)
    with pytest.raises(SourcesError, match="source"):
        parse_sources('title = "feeds"\n', BASE)


def test_intervals_use_the_one_duration_syntax_of_every_config_file():
    config = parse_sources('[[source]]\nname = "n"\nkind = "feed"\npath = "x.xml"\ninterval = "1w"\n', BASE)
    assert config.by_name("n").interval == 7 * 86400


def test_every_kind_ingest_takes_in_is_a_signal_kind_with_its_topic():
    from services.ingest.api import ITEM_MODELS
    from services.ingest.config import KIND_OF_SOURCE
    from shared.events import SIGNALS

    assert set(ITEM_MODELS) == set(SIGNALS)  # the push API takes every kind, and only those
    assert set(KIND_OF_SOURCE.values()) <= set(SIGNALS)
