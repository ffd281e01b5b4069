"""Supply topics, figures from text, eight languages, names in another sense, and the per-language evaluation."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.ingest.classify import LexiconError, classify_item, load_lexicon
from services.ingest.classify.cli import classify_lines
from services.ingest.classify.evaluate import (
    DEVELOPMENT,
    HELD_OUT,
    evaluate,
    held_out_files,
    main,
    markdown,
    read_rows,
    write_docs,
)
from services.ingest.classify.figures import cjk_number
from services.ingest.classify.lexicon import LEXICON_DIR

LANGUAGES = ("de", "en", "es", "fr", "id", "nl", "pt", "zh")
DEV_ROWS = read_rows(DEVELOPMENT)


def test_every_language_has_a_lexicon_and_the_labelled_sets_cover_them() -> None:
    assert sorted(load_lexicon().languages) == list(LANGUAGES)
    rows = DEV_ROWS + [row for path in held_out_files() for row in read_rows(path)]
    assert len(rows) >= 300
    for language in LANGUAGES:
        mine = [row for row in rows if row["lang"] == language]
        assert len(mine) >= 20, language
        assert any(not row["expected"]["relevant"] and row["expected"]["materials"] == [] for row in mine), language
    topics = {row["expected"].get("topic") for row in rows}
    assert topics >= {"export_control", "price", "leadtime", "production", "stockpile", "tariff", "trade_volume"}


@pytest.mark.parametrize(
    ("title", "topic"),
    [
        ("Lithium prices plunge to four-year low", "price"),
        ("Rare earth magnet lead times stretch to eighteen weeks", "leadtime"),
        ("Strike shuts Peru's Las Bambas copper mine", "production"),
        ("Japan to expand rare earth stockpile", "stockpile"),
        ("EU imposes anti-dumping duties on Chinese silicon metal", "tariff"),
        ("China's germanium exports slump 74% in July", "trade_volume"),
        ("China bans gallium exports to the US", "export_control"),
        ("Lieferzeiten für Graphit verlängern sich auf sechs Monate", "leadtime"),
        ("Koperprijs stijgt naar recordhoogte", "price"),
        ("Le Japon renforce ses stocks stratégiques de terres rares", "stockpile"),
        ("Codelco recorta su producción de cobre", "production"),
        ("Exportações de minério de ferro crescem 10%", "trade_volume"),
        ("Pemerintah siapkan cadangan strategis timah", "stockpile"),
        ("美国对中国石墨加征关税", "tariff"),
    ],
)
def test_every_kind_of_supply_signal_is_a_topic_and_makes_the_item_relevant(title: str, topic: str) -> None:
    result = classify_item("", title=title)
    assert result.topic == topic
    assert result.relevant
    assert (result.measure != "none") == (topic == "export_control")


def test_no_signal_or_no_material_is_topic_none_and_not_relevant() -> None:
    small_move = classify_item("Gallium prices rose 3% this week.")
    assert (small_move.topic, small_move.relevant, small_move.price_change_pct) == ("none", False, 3.0)
    no_material = classify_item("Prices of cables soar at the hardware store.", title="Cable prices soar")
    assert no_material.topic == "price"
    assert not no_material.relevant


def test_headline_leads_when_two_supply_signals_weigh_the_same() -> None:
    assert classify_item("", title="Copper price soars as Chile mine output falls").topic == "price"
    assert classify_item("", title="Chile mine output falls, copper price soars").topic == "production"


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Lead times for gallium have grown from six weeks to eighteen weeks.", 126),
        ("Tungsten lead times are now 20-24 weeks.", 168),
        ("De levertijd van kobalt is opgelopen tot drie maanden.", 90),
        ("Die Lieferzeiten für Wolfram betragen acht Wochen.", 56),
        ("Les délais de livraison du gallium atteignent six mois.", 180),
        ("Los plazos de entrega del cobre llegan a ocho semanas.", 56),
        ("Prazos de entrega de ímãs de terras raras chegam a dez semanas.", 70),
        ("Waktu tunggu pengiriman bijih nikel capai dua bulan.", 60),
        ("钨精矿交货期已达十八周。", 126),
        ("稀土永磁交货期延长至三个月。", 90),
    ],
)
def test_lead_time_is_read_in_days_in_each_language(text: str, days: int) -> None:
    result = classify_item(text)
    assert result.leadtime_days == days
    assert result.topic == "leadtime"


def test_a_duration_outside_a_lead_time_sentence_is_not_a_lead_time() -> None:
    result = classify_item("Congo suspended cobalt exports for four months. Lead times are rising.")
    assert result.leadtime_days is None


@pytest.mark.parametrize(
    ("text", "pct"),
    [
        ("Cobalt prices: +35 % in a week.", 35.0),
        ("Cobalt price up 35 per cent since February.", 35.0),
        ("Lithium prices fell by 12.5% in March.", -12.5),
        ("Gallium price doubles in six months.", 100.0),
        ("Der Preis für Gallium hat sich verdoppelt.", 100.0),
        ("Kobaltpreis: minus 20 Prozent.", -20.0),
        ("Le prix du cobalt a doublé en un mois.", 100.0),
        ("El precio del litio cayó un 80 % desde su máximo.", -80.0),
        ("O preço do nióbio caiu 8,5% no trimestre.", -8.5),
        ("Harga nikel anjlok 20 persen.", -20.0),
        ("钴价格上涨35%。", 35.0),
        ("锑价格翻倍。", 100.0),
    ],
)
def test_price_move_is_read_in_percent_with_its_sign(text: str, pct: float) -> None:
    assert classify_item(text).price_change_pct == pct


def test_a_percentage_far_from_any_price_word_is_not_a_price_move() -> None:
    result = classify_item("Glencore reported a 32% drop in core profit as lower prices for cobalt offset copper.")
    assert result.price_change_pct is None


def test_days_until_in_force_is_the_effective_date_minus_publication() -> None:
    announced = classify_item(
        "China will require export licences for gallium from August 1, 2023.", published=date(2023, 7, 3)
    )
    assert (announced.effective_date, announced.days_until_in_force) == (date(2023, 8, 1), 29)
    later_year = classify_item("O Brasil proibirá a exportação de nióbio a partir de 2027.", published=date(2025, 1, 1))
    assert (later_year.measure, later_year.effective_date) == ("export_ban", date(2027, 1, 1))
    assert later_year.days_until_in_force == 730
    assert classify_item("China bans gallium exports from 2027.").days_until_in_force is None  # no publication date


def test_a_bare_year_is_an_effective_date_only_for_a_measure() -> None:
    assert classify_item("Germanium exports rose 20% from 2022, customs data show.").effective_date is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("中国对镓、锗相关物项实施出口管制，自2023年8月1日起正式实施。", date(2023, 8, 1)),
        ("Chile fijará cuotas de exportación de litio a partir del 1 de agosto de 2023.", date(2023, 8, 1)),
        ("A proibição das exportações de níquel entra em vigor em 1º de janeiro de 2020.", date(2020, 1, 1)),
        ("Indonesia resmi larang ekspor bijih bauksit per 10 Juni 2023.", date(2023, 6, 10)),
    ],
)
def test_effective_dates_in_the_new_languages(text: str, expected: date) -> None:
    assert classify_item(text).effective_date == expected


@pytest.mark.parametrize(
    ("title", "measure"),
    [
        ("Congo lifts cobalt export ban, introduces quotas", "export_quota"),
        ("Congo to replace cobalt export ban with quotas", "export_quota"),
        ("Kongo ersetzt Exportstopp für Kobalt durch Quoten", "export_quota"),
        ("Congo vervangt exportverbod op kobalt door quota", "export_quota"),
        ("El Congo sustituye la prohibición de exportar cobalto por cuotas", "export_quota"),
        ("刚果（金）以出口配额取代钴出口禁令", "export_quota"),
        ("China lifts the export quota on tungsten", "easing"),
        ("China suspends the export ban on gallium; licences are still required", "easing"),
        ("China suspends rare earth export controls for a year", "easing"),
        ("La Chine suspend ses contrôles à l'exportation de terres rares", "easing"),
        ("China suspende los controles a la exportación de tierras raras", "easing"),
        ("商务部暂停实施对美镓锗锑出口禁令", "easing"),
        ("L'ARECOMS met fin à la suspension des exportations de cobalt", "easing"),
        ("Le Congo suspend les exportations de cobalt", "export_ban"),
        ("刚果（金）暂停钴出口四个月", "export_ban"),
    ],
)
def test_a_quota_replacing_a_ban_and_a_suspension_of_controls_get_their_measure(title: str, measure: str) -> None:
    assert classify_item("", title=title).measure == measure


@pytest.mark.parametrize(
    "title",
    [
        "Chevrolet Cobalt recall widens",
        "Platinum card holders get new perks",
        "Le bleu cobalt, couleur phare de la saison",
        "Medalla de oro para España en waterpolo",
        "Mar del Plata recibe el festival",
        "Plano de saúde cobre os custos da cirurgia",
        "Ouro Preto recebe festival de inverno",
        "Generasi emas Indonesia 2045",
        "Sultan Perak kunjungi Jakarta",
        "工商银行发布年报",
        "无锡打造石墨烯产业园",
        "黄金周首日铁路客流创新高",
        "Zilveren medaille voor Nederland",
        "Goldmedaille für Deutschland",
    ],
)
def test_a_name_in_another_sense_is_not_a_material(title: str) -> None:
    assert classify_item("", title=title).materials == ()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Indonesia melarang ekspor bijih nikel mulai 2020, kata menteri.", "id"),
        ("Chile anuncia cuotas de exportación de litio para este año.", "es"),
        ("O Brasil proíbe a exportação de nióbio bruto, diz o governo.", "pt"),
        ("中国对镓、锗相关物项实施出口管制", "zh"),
    ],
)
def test_language_is_the_iso_639_1_code_from_the_shipped_model(text: str, language: str) -> None:
    result = classify_item(text)
    assert result.language == language
    assert next(e for e in result.evidence if e.kind == "language").match.startswith("py3langid p=")


def test_cli_output_keeps_every_field_and_adds_topic_and_figures() -> None:
    line = json.dumps({"id": "x", "title": "Cobalt price soars 40%", "text": "", "published": "2025-03-01"})
    out = json.loads(next(classify_lines([line])))
    old = {"id", "materials", "countries", "measure", "effective_date", "language", "relevant", "score", "evidence"}
    assert old <= set(out)
    assert (out["topic"], out["price_change_pct"], out["leadtime_days"], out["days_until_in_force"]) == (
        "price",
        40.0,
        None,
        None,
    )


def test_chinese_numerals() -> None:
    assert [cjk_number(t) for t in ("三", "十", "十八", "二十", "两百", "八", "x")] == [3, 10, 18, 20, 200, 8, None]


def _lexicon_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "lexicon"
    shutil.copytree(LEXICON_DIR, folder)
    return folder


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s + '\n[figures.units]\nfortnight = ["fortnight"]\n', r"en.toml: figures: .*|en.toml: not valid"),
        (lambda s: s.replace("[figures.numbers]\n", "[figures.numbers]\nhalf = 0.5\n", 1), r"numbers.half"),
        (lambda s: s.replace("[materials]\n", '[materials]\nunobtainium = ["x"]\n', 1), r"unknown material"),
    ],
)
def test_lexicon_loader_rejects_bad_figures_and_unknown_material_ids(tmp_path: Path, edit: Any, message: str) -> None:
    folder = _lexicon_copy(tmp_path)
    path = folder / "en.toml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(LexiconError, match=message):
        classify_item("gallium", lexicon=load_lexicon(folder))


def test_a_language_is_added_by_a_lexicon_file(tmp_path: Path) -> None:
    folder = _lexicon_copy(tmp_path)
    (folder / "it.toml").write_text(
        'language = "it"\nmonths = [["gennaio"], ["febbraio"], ["marzo"], ["aprile"], ["maggio"], ["giugno"],'
        ' ["luglio"], ["agosto"], ["settembre"], ["ottobre"], ["novembre"], ["dicembre"]]\n'
        'stopwords = ["il", "della", "delle", "che", "per", "sono"]\n'
        '[terms]\nexport_ban = ["divieto di esporta*"]\n[materials]\ncobalt = ["cobalto"]\n',
        encoding="utf-8",
    )
    result = classify_item(
        "Il Congo ha deciso il divieto di esportazione del cobalto per quattro mesi, che sono molti.",
        lexicon=load_lexicon(folder),
    )
    assert (result.language, result.materials, result.measure) == ("it", ("cobalt",), "export_ban")


def test_evaluation_counts_precision_recall_and_materials_f1(tmp_path: Path) -> None:
    rows = [
        {
            "id": "a",
            "lang": "en",
            "published": "2024-01-01",
            "title": "",
            "text": "China has banned the export of gallium to the United States, the ministry said on Tuesday.",
            "expected": {
                "materials": ["gallium"],
                "measure": "export_ban",
                "topic": "export_control",
                "relevant": True,
            },
        },
        {
            "id": "b",
            "lang": "en",
            "published": "2024-01-01",
            "title": "",
            "text": "The company said that its new lamps use gallium and germanium and are sold from this week.",
            "expected": {"materials": ["gallium"], "measure": "none", "topic": "none", "relevant": True},
        },
    ]
    tallies = evaluate(rows)
    figures = tallies["en"].figures()
    assert figures["relevant_precision"] == 1.0
    assert figures["relevant_recall"] == 0.5
    assert figures["measure_accuracy"] == 1.0
    assert figures["materials_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1))  # germanium is one false positive
    assert tallies["all"].misses == ["b: relevant false; materials gallium, germanium (not gallium)"]
    text = markdown("t", tallies)
    docs = tmp_path / "page.md"
    docs.write_text("before\n<!-- evaluate:begin -->\nold\n<!-- evaluate:end -->\nafter\n", encoding="utf-8")
    write_docs(text, docs)
    assert docs.read_text(encoding="utf-8") == f"before\n<!-- evaluate:begin -->\n{text}<!-- evaluate:end -->\nafter\n"


def test_evaluation_counts_a_wrong_or_missing_figure_as_wrong() -> None:
    rows = [
        {
            "id": "a",
            "lang": "en",
            "published": "2024-01-01",
            "title": "",
            "text": "China will ban gallium exports from March 1, 2024, the ministry said.",
            "expected": {
                "materials": ["gallium"],
                "measure": "export_ban",
                "relevant": True,
                "effective_date": "2024-03-01",
            },
        },
        {
            "id": "b",
            "lang": "en",
            "published": "2024-01-01",
            "title": "",
            "text": "China will ban gallium exports, the ministry said.",
            "expected": {
                "materials": ["gallium"],
                "measure": "export_ban",
                "relevant": True,
                "effective_date": "2024-03-01",
            },
        },
    ]
    tally = evaluate(rows)["all"]
    assert (tally.figures_right, tally.figures_items) == (1, 2)
    assert tally.misses == ["b: effective_date None (not 2024-03-01)"]


def test_evaluate_command_reports_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    assert main([str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


# Measured on the development set when the lexicon was frozen (docs/classifier.md); raise, never lower.
DEV_FLOORS = {"relevant_accuracy": 0.97, "measure_accuracy": 0.95, "materials_f1": 0.97, "topic_accuracy": 0.97}


@pytest.mark.parametrize("language", LANGUAGES)
def test_development_figures_per_language_stay_at_or_above_their_floors(language: str) -> None:
    figures = evaluate(row for row in DEV_ROWS if row["lang"] == language)[language].figures()
    for name, floor in DEV_FLOORS.items():
        assert figures[name] >= floor, f"{language} {name} {figures[name]:.3f} < {floor}"


# The held-out set (tests/fixtures/news_heldout.jsonl) was written after the lexicon was frozen and run once; these are
# its figures from that run (docs/classifier.md). Its misses are kept: a fix goes with moving the item to the
# development set, so that these figures stay an estimate on unseen text.
HELD_OUT_FLOORS = {
    "de": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 0.909, "materials_f1": 0.928},
    "en": {"relevant_accuracy": 1.000, "measure_accuracy": 0.909, "topic_accuracy": 1.000, "materials_f1": 0.952},
    "es": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 0.952},
    "fr": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 0.965},
    "id": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 1.000},
    "nl": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 0.923},
    "pt": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 0.928},
    "zh": {"relevant_accuracy": 1.000, "measure_accuracy": 0.916, "topic_accuracy": 0.916, "materials_f1": 1.000},
}


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("Zilver voor Femke Bol", "Femke Bol pakte zilver op de Olympische Spelen in Parijs."),
        ("Silber für Deutschland", "Die deutschen Bahnradfahrerinnen holen im Teamsprint die Silbermedaille."),
        ("Atleta conquista o ouro", "A brasileira conquistou o ouro no skate street."),
        ("Seguro cobre danos da chuva", "A seguradora informou que a apólice cobre danos causados por enchentes."),
        ("Koper gezocht", "De curator zoekt een koper voor de failliete fabriek."),
        ("Graphite Bio shares slump", "Shares of Graphite Bio fell 40% after the biotech company paused a trial."),
        ("Zinc ferme ses portes", "Le célèbre bar à vins Zinc a fermé jeudi."),
    ],
)
def test_a_medal_money_a_verb_or_a_proper_noun_is_not_the_material(title: str, text: str) -> None:
    result = classify_item(text, title=title)
    assert result.materials == ()
    assert any(e.kind == "ignored" for e in result.evidence)


def test_a_capitalised_name_is_a_material_when_also_written_in_lower_case_or_in_a_title_case_headline() -> None:
    assert classify_item("Shares of Graphite One rose as graphite prices soared.").materials == ("natural-graphite",)
    assert classify_item("", title="China Bans Gallium Exports To US").materials == ("gallium",)
    assert "rare-earths" in classify_item("Lynas Rare Earths said output rose.").materials
    # German capitalises every noun, so a capital says nothing there.
    assert classify_item("Kupfer wird knapp, sagt der Verband.").materials == ("copper",)


# The second held-out set (news_heldout_2.jsonl), written after the second freeze (2e48051) and run once.
HELD_OUT_2_FLOORS = {
    "de": {"relevant_accuracy": 0.600, "measure_accuracy": 1.000, "topic_accuracy": 0.600, "materials_f1": 0.933},
    "en": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 0.800, "materials_f1": 0.909},
    "es": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 0.800, "materials_f1": 0.933},
    "fr": {"relevant_accuracy": 0.800, "measure_accuracy": 1.000, "topic_accuracy": 0.800, "materials_f1": 1.000},
    "id": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 0.800, "materials_f1": 0.833},
    "nl": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 0.800, "materials_f1": 1.000},
    "pt": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 0.800, "materials_f1": 1.000},
    "zh": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 0.800, "materials_f1": 1.000},
}


# The third held-out set (news_heldout_3.jsonl), written after the third freeze (f5bad9d) and run once:
# its figures from that run, floored to three decimals. It is development data now (the fourth freeze fixed its
# misses by kind); the floors keep its run.
HELD_OUT_3_FLOORS = {
    "de": {"relevant_accuracy": 0.941, "measure_accuracy": 1.000, "topic_accuracy": 0.882, "materials_f1": 0.976},
    "en": {"relevant_accuracy": 0.944, "measure_accuracy": 1.000, "topic_accuracy": 0.888, "materials_f1": 0.976},
    "es": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 0.976},
    "fr": {"relevant_accuracy": 0.937, "measure_accuracy": 0.937, "topic_accuracy": 0.875, "materials_f1": 1.000},
    "id": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 0.971},
    "nl": {"relevant_accuracy": 1.000, "measure_accuracy": 0.941, "topic_accuracy": 0.941, "materials_f1": 1.000},
    "pt": {"relevant_accuracy": 1.000, "measure_accuracy": 0.941, "topic_accuracy": 0.941, "materials_f1": 0.977},
    "zh": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 0.983},
}


# The fourth held-out set (news_heldout_4.jsonl), written after the fourth freeze (ffd5dee) by someone who never saw
# the rules, and run once: its figures from that run, floored to three decimals.
HELD_OUT_4_FLOORS = {
    "de": {"relevant_accuracy": 0.950, "measure_accuracy": 1.000, "topic_accuracy": 0.950, "materials_f1": 0.913},
    "en": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 0.950, "materials_f1": 0.972},
    "es": {"relevant_accuracy": 0.950, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 0.979},
    "fr": {"relevant_accuracy": 0.900, "measure_accuracy": 0.950, "topic_accuracy": 0.900, "materials_f1": 0.944},
    "id": {"relevant_accuracy": 0.950, "measure_accuracy": 0.950, "topic_accuracy": 0.800, "materials_f1": 0.969},
    "nl": {"relevant_accuracy": 0.900, "measure_accuracy": 0.950, "topic_accuracy": 0.850, "materials_f1": 0.950},
    "pt": {"relevant_accuracy": 0.900, "measure_accuracy": 0.950, "topic_accuracy": 0.900, "materials_f1": 0.979},
    "zh": {"relevant_accuracy": 0.950, "measure_accuracy": 1.000, "topic_accuracy": 0.950, "materials_f1": 0.976},
}


# The fifth held-out set (news_heldout_5.jsonl), written after the fifth freeze (508c763) by someone who never saw
# the rules, and run once: its figures from that run, floored to three decimals. Every target is met on it.
HELD_OUT_5_FLOORS = {
    "de": {"relevant_accuracy": 1.000, "measure_accuracy": 0.950, "topic_accuracy": 1.000, "materials_f1": 0.950},
    "en": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 1.000, "materials_f1": 0.954},
    "es": {"relevant_accuracy": 0.950, "measure_accuracy": 1.000, "topic_accuracy": 0.950, "materials_f1": 1.000},
    "fr": {"relevant_accuracy": 1.000, "measure_accuracy": 0.950, "topic_accuracy": 0.950, "materials_f1": 0.974},
    "id": {"relevant_accuracy": 1.000, "measure_accuracy": 1.000, "topic_accuracy": 0.950, "materials_f1": 0.971},
    "nl": {"relevant_accuracy": 0.950, "measure_accuracy": 0.950, "topic_accuracy": 0.950, "materials_f1": 1.000},
    "pt": {"relevant_accuracy": 0.950, "measure_accuracy": 0.950, "topic_accuracy": 0.950, "materials_f1": 0.982},
    "zh": {"relevant_accuracy": 0.950, "measure_accuracy": 1.000, "topic_accuracy": 0.950, "materials_f1": 0.962},
}

# Each held-out set and the floors of its one run.
HELD_OUT_RUNS = {
    "news_heldout.jsonl": HELD_OUT_FLOORS,
    "news_heldout_2.jsonl": HELD_OUT_2_FLOORS,
    "news_heldout_3.jsonl": HELD_OUT_3_FLOORS,
    "news_heldout_4.jsonl": HELD_OUT_4_FLOORS,
    "news_heldout_5.jsonl": HELD_OUT_5_FLOORS,
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("held_out", HELD_OUT_RUNS)
def test_each_held_out_sets_figures_per_language_stay_at_or_above_its_run(held_out: str, language: str) -> None:
    rows = [row for row in read_rows(HELD_OUT.with_name(held_out)) if row["lang"] == language]
    assert len(rows) >= 5, f"{held_out}: {len(rows)} {language} items"
    figures = evaluate(rows)[language].figures()
    for name, floor in HELD_OUT_RUNS[held_out][language].items():
        assert figures[name] >= floor, f"{held_out} {language} {name} {figures[name]:.3f} < {floor}"


@pytest.mark.parametrize(
    ("title", "materials"),
    [
        ("Zinnpreis steigt kräftig", ["tin"]),
        ("Bleierz aus Australien wird knapp", ["lead"]),
        ("De tinprijs schiet omhoog", ["tin"]),
        ("Grootste palladiumproducent schroeft productie terug", ["palladium"]),
        ("Der Zinnober leuchtet rot", []),
        ("Wij schilderen in warme tinten", []),
        ("Die Kinder bleiben zu Hause", []),
    ],
)
def test_a_material_name_with_a_compound_head_is_the_material_and_other_words_are_not(
    title: str, materials: list[str]
) -> None:
    assert list(classify_item("", title=title).materials) == materials


@pytest.mark.parametrize(
    ("title", "measure", "topic"),
    [
        ("Indonesia cuts nickel mining quotas for 2026", "none", "production"),
        ("印尼削减镍矿开采配额", "none", "production"),
        ("Philippines sets import quotas for refined copper", "none", "tariff"),
        ("Indonesia pangkas kuota produksi nikel", "none", "production"),
        ("China raises rare earth export quota", "export_quota", "export_control"),
    ],
)
def test_a_measure_word_inside_a_supply_signal_term_belongs_to_that_signal(
    title: str, measure: str, topic: str
) -> None:
    result = classify_item("", title=title)
    assert (result.measure, result.topic) == (measure, topic)


@pytest.mark.parametrize(
    ("title", "measure"),
    [
        ("Guinea orders halt to bauxite shipments", "export_ban"),
        ("Cobalt shipments from Congo suspended", "export_ban"),
        ("China to impose stricter checks on end users of graphite", "export_licence"),
        ("China verschärft Ausfuhrkontrollen und will die Ausfuhr von Graphit begrenzen", "export_licence"),
        ("China erleichtert Generallizenzen für Seltene Erden", "easing"),
        ("China introduces general licences for gallium exports", "easing"),
        ("Pékin soumet les exportations d'antimoine à autorisation", "export_licence"),
    ],
)
def test_word_families_of_bans_licences_restrictions_and_easings(title: str, measure: str) -> None:
    assert classify_item("", title=title).measure == measure


@pytest.mark.parametrize(
    "title",
    [
        "Birmanie : l'arrêt des mines de l'État Wa pèse sur l'étain",
        "缅甸佤邦停矿，锡供应收紧",
        "Nach dem Stopp des Bergbaus wird Zinn knapp",
        "Chile: terremoto detiene la producción en la mina de cobre",
        "Pemerintah hentikan penambangan timah ilegal di Bangka",
    ],
)
def test_mine_stoppages_are_production_in_every_language(title: str) -> None:
    result = classify_item("", title=title)
    assert (result.topic, result.relevant) == ("production", True)


@pytest.mark.parametrize(
    ("title", "materials"),
    [
        ("China exige licencias para exportar telurio, molibdeno e indio", ["indium", "molybdenum", "tellurium"]),
        ("China exige licenças para exportar índio e selênio", ["indium", "selenium"]),
        ("Tiongkok batasi ekspor molibdenum, telurium dan disprosium", ["dysprosium", "molybdenum", "tellurium"]),
        ("Indonesia larang ekspor timah hitam", ["lead"]),
        ("Le prix de l'or s'envole", ["gold"]),
        ("Los pueblos indígenas: el indio de la Amazonía pide tierras", []),
        ("Retraites : plus d'argent pour les retraités, promet le budget", []),
    ],
)
def test_element_names_of_every_language_and_their_other_senses(title: str, materials: list[str]) -> None:
    assert list(classify_item("", title=title).materials) == materials


@pytest.mark.parametrize(
    ("title", "topic"),
    [
        ("Tin jumps as Myanmar's Wa State halts mining", "price"),
        ("L'étain s'envole à Londres après l'arrêt des mines", "price"),
        ("El cobalto se dispara tras la veda en el Congo minero", "price"),
        ("Exports of copper plunge as Chile mine output falls", "trade_volume"),
        ("Ekspor nikel anjlok", "trade_volume"),
    ],
)
def test_a_material_that_starts_its_clause_and_moves_strongly_is_a_price_signal(title: str, topic: str) -> None:
    assert classify_item("", title=title).topic == topic


def test_a_strong_move_already_a_price_term_counts_once() -> None:
    result = classify_item("", title="Cobalt soars on Congo supply fears")
    assert [e.match for e in result.evidence if e.kind == "signal"] == ["soars"]


@pytest.mark.parametrize(
    ("title", "materials"),
    [
        ("Copper Mountain mayor re-elected", []),
        ("Flood hits Silver Springs homes", []),
        ("Copper Mountain Mining cuts copper output", ["copper"]),
        ("Copper mountain of scrap grows at the port as copper exports stall", ["copper"]),
    ],
)
def test_a_capitalised_material_before_a_place_word_is_a_place(title: str, materials: list[str]) -> None:
    assert list(classify_item("", title=title).materials) == materials


@pytest.mark.parametrize(
    ("title", "materials"),
    [
        ("铜锣湾商场租金下跌", []),
        ("挪威磷虾捕捞量创新高", []),
        ("硅谷科技股大涨", []),
        ("磷酸铁锂价格暴跌", ["lithium"]),
        ("洛阳钼业铜钴产量大增", ["cobalt", "copper", "molybdenum"]),
    ],
)
def test_chinese_words_that_contain_a_material_character_are_not_the_material(title: str, materials: list[str]) -> None:
    assert list(classify_item("", title=title).materials) == materials


@pytest.mark.parametrize(
    ("title", "published", "expected"),
    [
        ("商务部：12月1日起对部分石墨物项实施出口管制", date(2023, 10, 20), date(2023, 12, 1)),
        ("商务部：2024年9月15日开始对锑实施出口管制", date(2024, 8, 15), date(2024, 9, 15)),
        ("商务部：自8月1日起对镓实施出口管制", date(2023, 7, 3), date(2023, 8, 1)),
    ],
)
def test_a_chinese_date_with_from_after_it_is_the_effective_date(title: str, published: date, expected: date) -> None:
    assert classify_item("", title=title, published=published).effective_date == expected


def test_digits_right_after_a_chinese_character_are_a_number() -> None:
    assert classify_item("", title="锗产品交货周期延长至8周").leadtime_days == 56


@pytest.mark.parametrize(
    ("title", "pct"),
    [
        ("Minério de ferro sobe 11% na semana", 11.0),
        ("La plata se dispara un 70 % en el año", 70.0),
        ("Nickel falls 12% as Indonesian supply grows", -12.0),
        ("Copper exports from Chile rose 15% in May", None),
    ],
)
def test_a_material_that_starts_its_clause_before_a_move_stands_for_its_price(title: str, pct: float | None) -> None:
    assert classify_item("", title=title).price_change_pct == pct


@pytest.mark.parametrize(
    ("title", "measure"),
    [
        ("Rizki raih emas angkat besi; lifter asal Banten itu juara", "none"),
        ("Indonesia lifts the ban on bauxite exports", "easing"),
    ],
)
def test_a_ban_after_a_gap_is_the_word_ban_not_a_name_that_starts_with_it(title: str, measure: str) -> None:
    assert classify_item("", title=title).measure == measure
