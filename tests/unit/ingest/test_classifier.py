"""The export-control news classifier: labelled news, dates, easing precedence, CLI errors, lexicon checks."""

from __future__ import annotations

import io
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.ingest.classify import LexiconError, classify_item, load_lexicon
from services.ingest.classify.cli import classify_lines, main
from services.ingest.classify.lexicon import LEXICON_DIR

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "news_labelled.jsonl"
ROWS: list[dict[str, Any]] = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line]

# Floors are the figures measured on 2026-11-23 (docs/classifier.md); a change may raise them, never lower.
FLOORS = {
    "all": {"precision": 1.000, "recall": 0.975, "measure": 0.968, "materials": 0.992},
    "holdout": {"precision": 1.000, "recall": 0.846, "measure": 0.833, "materials": 0.958},
}

# Labelled items the rules get wrong, kept as written so the figures stay honest. The 2026-11 held-out items
# once listed here are development data since the third freeze; the rules now read all of them.
KNOWN_MISSES: dict[str, str] = {}


def _classify(row: dict[str, Any]):  # noqa: ANN202 - the pydantic model, kept implicit for brevity
    return classify_item(row["text"], title=row.get("title", ""), published=date.fromisoformat(row["published"]))


def _params() -> list[Any]:
    return [
        pytest.param(row, id=row["id"], marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[row["id"]]))
        if row["id"] in KNOWN_MISSES
        else pytest.param(row, id=row["id"])
        for row in ROWS
    ]


def test_labelled_set_has_enough_items_in_each_language() -> None:
    languages = [row["lang"] for row in ROWS]
    assert len(ROWS) >= 75
    for language in ("en", "nl", "de"):
        assert languages.count(language) >= 20
    assert len({row["id"] for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", _params())
def test_labelled_item_gets_its_measure_and_relevance(row: dict[str, Any]) -> None:
    result = _classify(row)
    assert (result.measure, result.relevant) == (row["expected"]["measure"], row["expected"]["relevant"])


def _figures(rows: list[dict[str, Any]]) -> dict[str, float]:
    tp = fp = fn = measures = materials = 0
    for row in rows:
        expected, result = row["expected"], _classify(row)
        tp += result.relevant and expected["relevant"]
        fp += result.relevant and not expected["relevant"]
        fn += not result.relevant and expected["relevant"]
        measures += result.measure == expected["measure"]
        materials += list(result.materials) == sorted(expected["materials"])
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "measure": measures / len(rows),
        "materials": materials / len(rows),
    }


@pytest.mark.parametrize("split", ["all", "holdout"])
def test_quality_stays_at_or_above_the_measured_floors(split: str) -> None:
    rows = ROWS if split == "all" else [row for row in ROWS if row.get("split") == "holdout"]
    figures = _figures(rows)
    print(f"\n{split} (n={len(rows)}): " + ", ".join(f"{name} {value:.3f}" for name, value in figures.items()))
    for name, floor in FLOORS[split].items():
        assert figures[name] >= floor, f"{split} {name} fell to {figures[name]:.3f} (floor {floor:.3f})"


def test_effective_dates_in_the_labelled_set_are_found() -> None:
    labelled = [row for row in ROWS if "effective_date" in row["expected"]]
    assert len(labelled) >= 30
    for row in labelled:
        found = _classify(row).effective_date
        assert (found.isoformat() if found else None) == row["expected"]["effective_date"], row["id"]


@pytest.mark.parametrize(
    ("text", "published", "expected"),
    [
        ("China requires export licences for gallium from 1 August 2023.", None, date(2023, 8, 1)),
        ("Graphite export permits become mandatory effective December 1.", date(2023, 10, 20), date(2023, 12, 1)),
        ("The antimony export licence rule applies with effect from 15 September 2024.", None, date(2024, 9, 15)),
        ("The export ban on nickel ore takes effect on Jan. 1, 2020.", None, date(2020, 1, 1)),
        ("De exportvergunning voor gallium geldt met ingang van 1 augustus 2023.", None, date(2023, 8, 1)),
        ("Het exportverbod voor kobalt gaat in op 22 februari.", date(2025, 2, 20), date(2025, 2, 22)),
        ("Die Ausfuhrgenehmigung für Gallium gilt ab dem 1. August 2023.", None, date(2023, 8, 1)),
        ("Das Exportverbot für Nickelerz tritt am 1. Januar 2020 in Kraft.", None, date(2020, 1, 1)),
        ("La licence d'exportation du gallium s'applique à partir du 1er août 2023.", None, date(2023, 8, 1)),
        # Without a year: the year of publication, or the next one when the date would be long past.
        ("China's export licences for graphite are required from December 1.", date(2024, 11, 20), date(2024, 12, 1)),
        ("Congo's cobalt export quotas start from January 15.", date(2025, 12, 20), date(2026, 1, 15)),
        # Without a year or a publication date: the year written nearest in the text.
        ("In 2023 China said gallium export licences are needed from August 1.", None, date(2023, 8, 1)),
    ],
)
def test_effective_date_is_read_after_a_trigger_in_each_language(
    text: str, published: date | None, expected: date
) -> None:
    assert classify_item(text, published=published).effective_date == expected


@pytest.mark.parametrize(
    "text",
    [
        "China suspended its export ban on gallium until November 27, 2026.",
        "Das Exportverbot für Gallium ist bis zum 27. November 2026 ausgesetzt.",
        "China's export controls on gallium were announced on July 3, 2023.",
        "A gallium LED lamp goes on sale from March 1, 2024.",
    ],
)
def test_end_dates_announcement_dates_and_dates_without_a_measure_are_not_effective_dates(text: str) -> None:
    assert classify_item(text).effective_date is None


@pytest.mark.parametrize(
    ("title", "measure"),
    [
        ("China suspends the export ban on gallium to the US", "easing"),
        ("China lifts ban on germanium exports", "easing"),
        ("Suspension of the ban on antimony exports extended", "easing"),
        ("China eases export controls on graphite", "easing"),
        ("China will not lift the ban on gallium exports", "export_ban"),
        ("Congo suspends cobalt exports for four months", "export_ban"),
        ("Congo extends cobalt export ban", "export_ban"),
        ("China setzt das Exportverbot für Gallium aus", "easing"),
        ("Exportverbot für Germanium aufgehoben", "easing"),
        ("Kongo setzt die Ausfuhr von Kobalt aus", "export_ban"),
        ("Opschorting van het exportverbod op gallium", "easing"),
        ("Opschorting van de kobaltexport door Congo", "export_ban"),
        ("China versoepelt exportregels voor grafiet", "easing"),
    ],
)
def test_easing_beats_the_measure_it_eases_but_a_suspension_of_exports_is_a_ban(title: str, measure: str) -> None:
    result = classify_item("", title=title)
    assert result.measure == measure
    assert result.relevant


@pytest.mark.parametrize(
    ("title", "measure"),
    [
        ("Indonesia bans nickel ore exports", "export_ban"),
        ("China requires export licences for gallium", "export_licence"),
        ("Congo sets cobalt export quotas", "export_quota"),
        ("Russia imposes export duty on nickel", "export_tax"),
        ("EU adopts sanctions on Russian aluminium", "sanction"),
        ("China tightens export controls on antimony", "export_licence"),
        ("Exportheffing op nikkel in Indonesië", "export_tax"),
        ("Kontingent für Kobalt-Ausfuhren", "export_quota"),
        ("Ausfuhrzoll auf Nickel", "export_tax"),
        ("Neues Sanktionspaket trifft russisches Aluminium", "sanction"),
    ],
)
def test_each_measure_is_recognised(title: str, measure: str) -> None:
    assert classify_item("", title=title).measure == measure


def test_a_ban_found_more_often_than_a_quota_wins_and_ties_go_to_the_ban() -> None:
    assert classify_item("Cobalt export ban and a cobalt quota.").measure == "export_ban"
    assert classify_item("Cobalt quota. Cobalt quota system. Cobalt export ban.").measure == "export_quota"


def test_negated_measure_does_not_count() -> None:
    result = classify_item("Chile has no plans to restrict lithium exports, the minister said.")
    assert result.measure == "none"
    assert not result.relevant
    assert any(e.kind == "negated" for e in result.evidence)


def test_announcement_number_is_not_a_negation() -> None:
    result = classify_item("Announcement No. 23 sets export controls on gallium.")
    assert result.measure == "export_licence"


def test_relevance_needs_a_material_and_a_measure_or_supply_restriction() -> None:
    assert not classify_item("The Netherlands tightens export controls on lithography machines.").relevant
    assert not classify_item("Gallium prices rose 3% this week.").relevant
    assert classify_item("Gallium export controls tightened.").relevant
    assert classify_item("Rebels seize rare earth mines in Myanmar, disrupting supply.").relevant


def test_evidence_names_the_words_that_decided() -> None:
    result = classify_item("Exporters will need licences.", title="China beschränkt Export von Gallium und Germanium")
    matched = {(e.kind, e.value, e.match) for e in result.evidence}
    assert ("material", "gallium", "Gallium") in matched
    assert ("country", "CN", "China") in matched
    assert ("signal", "export_licence", "need licences") in matched
    assert any(e.kind == "relevance" and e.value == "true" for e in result.evidence)


def test_ambiguous_words_are_not_materials_or_countries() -> None:
    result = classify_item("Tariffs could lead to shortages, analysts told us. Graphite FC won 2-0.")
    assert result.materials == ()
    assert result.countries == ()
    dutch = classify_item("De koper van het pand is een belegger uit Duitsland.")
    assert dutch.materials == ()
    assert dutch.countries == ("DE",)


def test_german_and_dutch_compounds_name_materials() -> None:
    assert classify_item("Galliumexporte und Kobaltpreise").materials == ("cobalt", "gallium")
    assert classify_item("De kobaltexport en het grafietexportverbod").materials == ("cobalt", "natural-graphite")


def test_material_and_country_ids_are_sorted_and_unique() -> None:
    result = classify_item("Gallium from China, germanium from China, gallium to the US and to Japan.")
    assert result.materials == ("gallium", "germanium")
    assert result.countries == ("CN", "JP", "US")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("China will restrict exports of gallium and germanium, the ministry said on Monday.", "en"),
        ("China beperkt de export van gallium en germanium, meldt het ministerie.", "nl"),
        ("China beschränkt die Ausfuhr von Gallium und Germanium, teilte das Ministerium mit.", "de"),
        ("La Chine restreint les exportations de gallium et de germanium, selon le ministère.", "fr"),
        ("Gallium", "und"),
    ],
)
def test_language_is_told_by_stop_words(text: str, language: str) -> None:
    assert classify_item(text).language == language


def test_score_is_zero_when_irrelevant_and_higher_with_title_evidence() -> None:
    assert classify_item("Gallium prices rose.").score == 0.0
    body_only = classify_item("China bans gallium exports.").score
    with_title = classify_item("China bans gallium exports.", title="China bans gallium exports").score
    assert 0.0 < body_only < with_title <= 1.0


def test_cli_classifies_lines_and_reports_bad_lines_without_stopping() -> None:
    lines = [
        json.dumps({"id": "a", "title": "China bans gallium exports to US", "text": "Effective immediately."}),
        "not json at all",
        "",
        json.dumps({"title": "no text here"}),
        json.dumps(["a", "list"]),
        json.dumps({"text": 42}),
        json.dumps({"text": "Cobalt export quota from 16 October 2025.", "published": "2025-09-21T08:00:00Z"}),
        json.dumps({"text": "x", "published": "yesterday"}),
    ]
    out = [json.loads(line) for line in classify_lines(lines)]
    assert out[0]["id"] == "a"
    assert out[0]["materials"] == ["gallium"]
    assert out[0]["countries"] == ["CN", "US"]
    assert out[0]["measure"] == "export_ban"
    assert out[0]["relevant"] is True
    assert {"score", "effective_date", "language", "evidence"} <= set(out[0])
    assert out[1]["line"] == 2
    assert out[1]["error"].startswith("not valid JSON")
    assert out[2] == {"error": "missing required field 'text'", "line": 4}
    assert out[3]["line"] == 5
    assert "JSON object" in out[3]["error"]
    assert out[4] == {"error": "field 'text' must be a string", "line": 6}
    assert out[5]["effective_date"] == "2025-10-16"
    assert out[6]["line"] == 8
    assert "published" in out[6]["error"]
    assert len(out) == 7


def test_cli_main_reads_stdin_and_writes_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "Indonesia bans nickel ore exports."}\nbroken\n'))
    monkeypatch.setattr("sys.stdout", stdout)
    assert main() == 0
    first, second = (json.loads(line) for line in stdout.getvalue().splitlines())
    assert first["measure"] == "export_ban"
    assert second == {"error": second["error"], "line": 2}


def _lexicon_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "lexicon"
    shutil.copytree(LEXICON_DIR, folder)
    return folder


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s.replace("export_ban = [\n", 'export_ban = [\n    "ex*port",\n', 1),
            r"en.toml: terms.export_ban.*'\*'",
        ),
        (
            lambda s: s.replace("export_ban = [\n", 'export_ban = [\n    ".. ban",\n', 1),
            r"en.toml: terms.export_ban.*'\.\.'",
        ),
        (
            lambda s: s.replace("export_ban = [\n", 'export_ban = [\n    "embargo*",\n', 1),
            r"en.toml: terms.export_ban.*twice",
        ),
        (lambda s: s.replace("[terms]\n", '[terms]\nembargo = ["x"]\n', 1), r"en.toml: \[terms\] unknown kind"),
        (lambda s: s.replace('["may"], ', "", 1), r"en.toml: months must list the 12 months"),
        (lambda s: s.replace("gap_words = 4", "gap_words = 40", 1), r"en.toml: gap_words"),
        (lambda s: "colour = 1\n" + s, r"en.toml: unknown field\(s\) colour"),
    ],
)
def test_lexicon_loader_rejects_bad_files_naming_file_and_place(tmp_path: Path, edit: Any, message: str) -> None:
    folder = _lexicon_copy(tmp_path)
    path = folder / "en.toml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(LexiconError, match=message):
        load_lexicon(folder)


def test_analyst_can_extend_the_lexicon_without_code_changes(tmp_path: Path) -> None:
    folder = _lexicon_copy(tmp_path)
    path = folder / "en.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("export_ban = [\n", 'export_ban = [\n    "export* .. on ice",\n', 1),
        encoding="utf-8",
    )
    title = "Guinea puts bauxite exports on ice"
    assert classify_item("", title=title).measure == "none"
    assert classify_item("", title=title, lexicon=load_lexicon(folder)).measure == "export_ban"
