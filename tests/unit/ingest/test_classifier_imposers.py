"""Which countries named by a news item impose its measure, and which are its target or destination."""

from __future__ import annotations

import pytest

from services.ingest.classify import classify_item

DEMO = "China bans exports of gallium, germanium and antimony to the United States"


@pytest.mark.parametrize(
    ("title", "imposers", "targets"),
    [
        (DEMO, ["CN"], ["US"]),
        ("US tightens curbs on AI chip exports to China", ["US"], ["CN"]),
        ("China suspends ban on gallium shipments to the US", ["CN"], ["US"]),
        ("EU adopts sanctions against Russia over nickel", [], ["RU"]),
        ("China restricts graphite exports targeting the United States", ["CN"], ["US"]),
        ("Japan requires licences for exports of fluorine chemicals destined for South Korea", ["JP"], ["KR"]),
    ],
)
def test_english_targets_are_not_imposers(title: str, imposers: list[str], targets: list[str]) -> None:
    result = classify_item("", title=title)
    assert list(result.imposed_by) == imposers
    assert sorted(set(result.countries) - set(result.imposed_by)) == targets


@pytest.mark.parametrize(
    ("language", "title"),
    [
        ("nl", "China verbiedt de export van gallium en germanium naar de VS, meldt het ministerie."),
        ("de", "China verhängt ein Exportverbot für Gallium und Germanium in die USA, teilte das Ministerium mit."),
        ("fr", "La Chine interdit les exportations de gallium et de germanium vers les États-Unis, dit le ministère."),
        ("fr", "La Chine interdit les exportations de gallium à destination des États-Unis, selon le ministère."),
        ("es", "China prohíbe las exportaciones de galio y germanio a Estados Unidos, según el ministerio."),
        ("es", "China prohíbe las exportaciones de galio y germanio hacia Estados Unidos, según el ministerio."),
        ("pt", "A China proíbe a exportação de gálio e germânio para os EUA, segundo o ministério."),
        ("id", "China melarang ekspor galium dan germanium ke Amerika Serikat, kata kementerian."),
        ("zh", "中国商务部宣布禁止对美国出口镓、锗相关两用物项"),
        ("zh", "中国商务部宣布原则上不予许可镓、锗向美国出口"),
    ],
)
def test_the_destination_is_not_an_imposer_in_every_language(language: str, title: str) -> None:
    result = classify_item("", title=title)
    assert result.language == language
    assert (result.countries, result.imposed_by) == (("CN", "US"), ("CN",))
    (target,) = [e for e in result.evidence if e.kind == "target"]
    assert target.value == "US"


@pytest.mark.parametrize(
    ("title", "imposers"),
    [
        ("China bans gallium exports to the US, Japan and the Netherlands", ("CN",)),
        ("China verbiedt de export van gallium naar de VS en Japan, meldt het ministerie.", ("CN",)),
        ("中国禁止对美国和日本出口镓", ("CN",)),
        # A sentence between them ends the list.
        ("China bans gallium exports to the US. Japan curbs germanium exports", ("CN", "JP")),
        ("Japan and the US curb gallium exports to China", ("JP", "US")),
    ],
)
def test_countries_listed_after_a_target_are_targets_too(title: str, imposers: tuple[str, ...]) -> None:
    assert classify_item("", title=title).imposed_by == imposers


def test_a_country_named_as_target_stays_a_target_when_named_again() -> None:
    text = "The United States had restricted chip exports. Beijing said the ban applies to the United States only."
    result = classify_item(text, title=DEMO)
    assert result.imposed_by == ("CN",)


@pytest.mark.parametrize(
    "title",
    [
        "According to China's commerce ministry, gallium exporters need licences",
        "In response to US chip curbs, China requires licences for gallium exports",
        "WTO rules against Indonesia's nickel ore export ban",
    ],
)
def test_phrases_that_end_in_a_target_word_but_say_otherwise_leave_the_imposer(title: str) -> None:
    result = classify_item("", title=title)
    assert result.imposed_by == result.countries
    assert not [e for e in result.evidence if e.kind == "target"]


def test_chinese_subjected_to_sanctions_is_no_target() -> None:
    result = classify_item("", title="俄罗斯镍企受到美国制裁")
    assert "US" in result.imposed_by


def test_an_item_without_countries_has_no_imposers() -> None:
    result = classify_item("", title="Gallium export ban announced")
    assert (result.countries, result.imposed_by) == ((), ())


def test_evaluation_counts_imposers_only_where_the_label_gives_them() -> None:
    from services.ingest.classify.evaluate import evaluate

    base = {"lang": "en", "published": "2024-12-03", "text": ""}
    expected = {"materials": ["gallium", "germanium", "antimony"], "measure": "export_ban", "relevant": True}
    rows = [
        base | {"id": "a", "title": DEMO, "expected": expected | {"imposed_by": ["CN"]}},
        base | {"id": "b", "title": DEMO, "expected": expected | {"imposed_by": ["US"]}},
        base | {"id": "c", "title": DEMO, "expected": expected},
    ]
    tally = evaluate(rows)["all"]
    assert (tally.imposers_right, tally.imposers_items) == (1, 2)
    assert tally.misses == ["b: imposed_by CN (not US)"]


@pytest.mark.parametrize(
    ("title", "imposers", "targets"),
    [
        # MOFCOM's own numbered announcements name no country: the announcement is China's (Dec 2024, No. 46).
        ("商务部公告2024年第46号：关于加强相关两用物项对美国出口管制的公告", ["CN"], ["US"]),
        ("海关总署：对美国出口镓、锗相关物项须申请许可", ["CN"], ["US"]),
        ("MOFCOM announces export licences for gallium and germanium", ["CN"], []),
        # The US Department of Commerce, in Chinese, is still the US's.
        ("美国商务部宣布对华半导体出口管制新规", ["US"], []),
    ],
)
def test_china_s_ministry_and_customs_speak_for_china(title: str, imposers: list[str], targets: list[str]) -> None:
    result = classify_item("", title=title)
    assert list(result.imposed_by) == imposers
    assert sorted(set(result.countries) - set(result.imposed_by)) == targets
