"""News: normalised identities for de-duplication, classification into one event per material."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from services.ingest.api import NewsItem, candidate_fields
from services.ingest.classify import classify_item
from services.ingest.news import news_identities, normalise_link, normalise_news, normalise_title
from services.ingest.observation import Accepted, Candidate, Rejected, Skipped


@dataclass
class Verdict:
    materials: list[str]
    countries: list[str] = field(default_factory=list)
    measure: str = "export_licence"
    effective_date: date | None = None
    language: str = "en"
    relevant: bool = True
    score: float = 0.9
    evidence: list[str] = field(default_factory=list)


def classifier(materials):
    def classify(text, *, title="", catalog=None):
        return Verdict(
            materials=list(materials), countries=["CN"], effective_date=date(2023, 8, 1), evidence=["export licences"]
        )

    return classify


def item(**fields) -> Candidate:
    base = {
        "title": "China announces export controls on gallium and germanium",
        "link": "https://example.org/n/1",
        "summary": "licences from 1 August 2023",
        "published_at": datetime(2023, 7, 3, 1, tzinfo=UTC),
    }
    return Candidate("news", "feed-a", base | fields, b"{}")


def test_tracking_parameters_scheme_and_www_do_not_make_a_link_new():
    assert normalise_link("https://www.example.org/a/b/?utm_source=rss&id=3#top") == normalise_link(
        "http://example.org/a/b?id=3"
    )


def test_title_normalisation_ignores_case_accents_and_punctuation():
    assert normalise_title("Exportbeschränkung: GALLIUM!") == normalise_title("exportbeschrankung gallium")


def test_a_repost_under_another_link_shares_the_title_and_day_identity():
    original = news_identities("China curbs gallium exports", "https://a.example/1", date(2023, 7, 3))
    repost = news_identities("China Curbs Gallium Exports.", "https://b.example/x", date(2023, 7, 3))
    assert set(original) & set(repost)
    next_day = news_identities("China curbs gallium exports", "https://b.example/x", date(2023, 7, 4))
    assert not set(original) & set(next_day)


def test_one_event_per_material_with_the_classification(catalog, limits):
    outcome = normalise_news(item(), classifier(["gallium", "germanium"]), catalog, limits)
    assert isinstance(outcome, Accepted)
    assert [e.material for e in outcome.events] == ["gallium", "germanium"]
    event = outcome.events[0]
    assert event.materials == ["gallium", "germanium"]
    assert event.countries == ["CN"]
    assert event.measure == "export_licence"
    assert event.effective_date == date(2023, 8, 1)
    assert len({e.item_id for e in outcome.events}) == 1
    assert len({e.dedup_key() for e in outcome.events}) == 2


def test_item_naming_no_material_is_skipped_with_a_reason_not_rejected(catalog, limits):
    outcome = normalise_news(item(title="Annual report"), classifier([]), catalog, limits)
    assert isinstance(outcome, Skipped)
    assert outcome.code == "no_material"


def test_item_dated_far_in_the_future_is_rejected(catalog, limits):
    outcome = normalise_news(item(published_at="2999-01-01T00:00:00Z"), classifier(["gallium"]), catalog, limits)
    assert isinstance(outcome, Rejected)
    assert outcome.code == "future_time"


def test_javascript_link_is_rejected(catalog, limits):
    outcome = normalise_news(item(link="javascript:alert(1)"), classifier(["gallium"]), catalog, limits)
    assert isinstance(outcome, Rejected)
    assert outcome.code == "invalid_link"


def test_classifier_failure_rejects_the_item_instead_of_stopping_the_feed(catalog, limits):
    def broken(text, *, title="", catalog=None):
        raise RuntimeError("lexicon missing")

    outcome = normalise_news(item(), broken, catalog, limits)
    assert isinstance(outcome, Rejected)
    assert outcome.code == "classifier_error"


def test_undated_item_is_dated_when_first_seen(catalog, limits):
    outcome = normalise_news(item(published_at=None), classifier(["gallium"]), catalog, limits)
    assert isinstance(outcome, Accepted)
    assert outcome.events[0].published_at == limits.now


def test_the_classifiers_imposers_travel_on_the_event_and_a_given_list_wins(catalog, limits):
    demo = item(title="China bans exports of gallium, germanium and antimony to the United States", summary="")
    (event, *_) = normalise_news(demo, classify_item, catalog, limits).events
    assert (event.countries, event.imposed_by) == (["CN", "US"], ["CN"])
    pushed = item(title=demo.fields["title"], summary="", imposed_by=["US"])
    assert normalise_news(pushed, classify_item, catalog, limits).events[0].imposed_by == ["US"]
    none_named = item(title=demo.fields["title"], summary="", imposed_by=[])
    assert normalise_news(none_named, classify_item, catalog, limits).events[0].imposed_by == []


def test_a_classifier_that_does_not_say_leaves_imposed_by_unset(catalog, limits):
    outcome = normalise_news(item(), classifier(["gallium"]), catalog, limits)
    assert outcome.events[0].imposed_by is None


def test_a_pushed_imposer_the_catalog_does_not_know_is_rejected(catalog, limits):
    outcome = normalise_news(item(imposed_by=["CN", "XX"]), classifier(["gallium"]), catalog, limits)
    assert isinstance(outcome, Rejected)
    assert (outcome.code, outcome.detail) == ("invalid_news", "imposed_by: unknown country code(s) XX")


def test_the_push_api_takes_imposed_by_as_country_codes_or_refuses_the_item():
    given = NewsItem.model_validate({"title": "China bans gallium exports", "imposed_by": ["CN"]})
    assert candidate_fields("news", given)["imposed_by"] == ["CN"]
    assert "imposed_by" not in candidate_fields("news", NewsItem.model_validate({"title": "t"}))
    for bad in (["china"], ["cn"], "CN", [1]):
        with pytest.raises(ValidationError):
            NewsItem.model_validate({"title": "t", "imposed_by": bad})


def test_the_classifiers_topic_and_stated_figures_travel_on_the_event(catalog, limits):
    leadtime = item(title="Gallium lead times stretch to eighteen weeks as Chinese smelters cut output", summary="")
    (event,) = normalise_news(leadtime, classify_item, catalog, limits).events
    assert (event.topic, event.leadtime_days, event.price_change_pct, event.measure) == ("leadtime", 126, None, "none")
    assert event.relevant
    price = item(title="Germanium prices double in a month", summary="")
    (event,) = normalise_news(price, classify_item, catalog, limits).events
    assert (event.topic, event.leadtime_days, event.price_change_pct) == ("price", None, 100.0)


def test_days_until_in_force_is_the_effective_date_minus_the_publication_date(catalog, limits):
    # The fake classifier names an export licence effective 1 August 2023; the item is of 3 July 2023.
    outcome = normalise_news(item(), classifier(["gallium"]), catalog, limits)
    assert outcome.events[0].days_until_in_force == 29
    assert outcome.events[0].topic is None  # a classifier that does not say leaves the topic unsaid
    undated = normalise_news(item(published_at=None), classifier(["gallium"]), catalog, limits)
    assert undated.events[0].days_until_in_force is None  # no publication date to count from


@dataclass
class Signal(Verdict):
    measure: str = "none"
    topic: str = "leadtime"
    leadtime_days: float | None = None
    price_change_pct: float | None = None


def test_a_classifier_figure_no_item_could_mean_is_dropped_and_the_item_kept(catalog, limits):
    def classify(text, *, title="", catalog=None):
        return Signal(materials=["gallium"], leadtime_days=36500, price_change_pct=float("nan"))

    (event,) = normalise_news(item(), classify, catalog, limits).events
    assert (event.topic, event.leadtime_days, event.price_change_pct) == ("leadtime", None, None)


def test_a_pushed_topic_and_figures_win_over_the_classifiers(catalog, limits):
    def classify(text, *, title="", catalog=None):
        return Signal(materials=["gallium"], relevant=False, topic="none", leadtime_days=30)

    pushed = item(topic="production", leadtime_days=200, price_change_pct=-12.5)
    (event,) = normalise_news(pushed, classify, catalog, limits).events
    assert (event.topic, event.leadtime_days, event.price_change_pct) == ("production", 200, -12.5)
    assert event.relevant  # a supply signal on a catalog material is relevant, as the classifier defines it
    (event,) = normalise_news(item(), classify, catalog, limits).events
    assert (event.topic, event.leadtime_days, event.relevant) == ("none", 30, False)


def test_the_push_api_takes_a_topic_and_figures_or_refuses_the_item():
    given = NewsItem.model_validate(
        {"title": "t", "topic": "tariff", "leadtime_days": 84, "price_change_pct": 35, "days_until_in_force": -2}
    )
    fields = candidate_fields("news", given)
    assert (fields["topic"], fields["leadtime_days"], fields["price_change_pct"], fields["days_until_in_force"]) == (
        "tariff",
        84,
        35.0,
        -2,
    )
    assert "topic" not in candidate_fields("news", NewsItem.model_validate({"title": "t"}))
    for bad in (
        {"topic": "rumour"},
        {"leadtime_days": 0},
        {"leadtime_days": 3651},
        {"price_change_pct": "nan"},
        {"price_change_pct": float("inf")},
        {"price_change_pct": -101},
        {"price_change_pct": 10001},
        {"days_until_in_force": 3651},
        {"days_until_in_force": -3651},
    ):
        with pytest.raises(ValidationError):
            NewsItem.model_validate({"title": "t", **bad})
