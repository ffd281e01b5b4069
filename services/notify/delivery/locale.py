"""Notifications in the reader's language: numbers, dates, severities, sources and the summary itself.

Two languages (nl, en) with fixed rules, so a small table does what Babel would: decimal and grouping marks, the
Dutch space before `%`, month names, and a time zone from the channel (zoneinfo). The summary is rendered from the
breach's machine fields (material, rule, indicator, value, threshold, direction, status), never translated from
the English summary that scoring writes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.catalog import CatalogError, load_catalog

LANGUAGES = ("nl", "en")

MONTHS = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
}
SEVERITIES = {
    "en": {"critical": "critical", "warning": "warning", "info": "information"},
    "nl": {"critical": "kritiek", "warning": "waarschuwing", "info": "informatie"},
}
STATUSES = {"en": {"firing": "firing", "resolved": "resolved"}, "nl": {"firing": "actief", "resolved": "opgelost"}}

# indicator -> (English label, Dutch label, unit); the units are scoring's (services/scoring/config.py INDICATORS)
INDICATORS: dict[str, tuple[str, str, str]] = {
    "price": ("price", "prijs", "number"),
    "price_change_1d_pct": ("1-day price change", "prijsverandering over 1 dag", "pct"),
    "price_change_7d_pct": ("7-day price change", "prijsverandering over 7 dagen", "pct"),
    "price_change_30d_pct": ("30-day price change", "prijsverandering over 30 dagen", "pct"),
    "price_volatility": ("annualised price volatility", "jaarlijkse prijsvolatiliteit", "fraction"),
    "price_volatility_ewma": ("annualised EWMA price volatility", "jaarlijkse EWMA-prijsvolatiliteit", "fraction"),
    "price_volatility_ratio": ("short/long volatility ratio", "verhouding korte/lange volatiliteit", "ratio"),
    "price_jump_z": ("price jump z-score", "z-score van de prijssprong", "z"),
    "leadtime_days": ("quoted lead time", "opgegeven levertijd", "days"),
    "leadtime_baseline_days": ("lead-time baseline", "basislijn van de levertijd", "days"),
    "leadtime_ratio": ("lead time against its baseline", "levertijd ten opzichte van de basislijn", "ratio"),
    "leadtime_trend_days_per_30d": ("lead-time trend", "trend van de levertijd", "days_per_30d"),
    "concentration_hhi": ("import concentration (HHI)", "importconcentratie (HHI)", "index"),
    "governance_hhi": (
        "governance-weighted import concentration",
        "naar bestuurskwaliteit gewogen importconcentratie",
        "index",
    ),
    "top_origin_share": ("share of the largest origin", "aandeel van het grootste herkomstland", "fraction"),
    "non_eu_share": ("share of imports from outside the EU", "aandeel import van buiten de EU", "fraction"),
    "import_reliance": ("import reliance", "importafhankelijkheid", "fraction"),
    "export_controls_active": ("export controls in force", "geldende exportbeperkingen", "count"),
    "export_control_severity": (
        "severity of export controls in force",
        "zwaarte van geldende exportbeperkingen",
        "number",
    ),
    "risk_score": ("risk score", "risicoscore", "score"),
    "stock_tonnes": ("stocks held", "aangehouden voorraad", "tonnes"),
    "stock_cover_days": ("stock cover", "voorraaddekking", "days"),
    "news_signals_30d": (
        "supply-signal news items in 30 days",
        "nieuwsberichten over aanvoersignalen in 30 dagen",
        "count",
    ),
    "news_leadtime_days": ("lead time stated in news", "in het nieuws genoemde levertijd", "days"),
    "news_price_change_pct": ("price move stated in news", "in het nieuws genoemde prijsverandering", "pct"),
}

# rule -> language -> (title, description); the English descriptions are scoring's (services/scoring/scoring.toml,
# kept equal by tests/unit/notify/test_locale.py). A rule not listed (a material's own) shows its name.
RULES: dict[str, dict[str, tuple[str, str]]] = {
    "price-change-1d": {
        "en": ("1-day price change", "A price jump within a day: the earliest market signal of a supply shock."),
        "nl": (
            "prijsverandering over 1 dag",
            "Een prijssprong binnen een dag: het vroegste marktsignaal van een aanbodschok.",
        ),
    },
    "price-change-30d": {
        "en": ("30-day price change", "A sustained price rise over a month (month-on-month for monthly series)."),
        "nl": (
            "prijsverandering over 30 dagen",
            "Een aanhoudende prijsstijging over een maand (maand op maand bij maandreeksen).",
        ),
    },
    "price-volatility": {
        "en": ("price volatility", "Annualised realised volatility high for a week: an unsettled market."),
        "nl": ("prijsvolatiliteit", "Een week lang hoge gerealiseerde jaarvolatiliteit: een onrustige markt."),
    },
    "price-jump": {
        "en": ("price jump", "A single return far outside the recent distribution of returns."),
        "nl": ("prijssprong", "Eén rendement ver buiten de recente spreiding van rendementen."),
    },
    "leadtime-ratio": {
        "en": ("lead time", "Quoted lead times well above their one-year median for a week."),
        "nl": ("levertijd", "Opgegeven levertijden een week lang ruim boven hun mediaan over een jaar."),
    },
    "import-concentration": {
        "en": (
            "import concentration",
            "Imports concentrated on few origins (HHI above 2,500 is 'highly concentrated').",
        ),
        "nl": (
            "importconcentratie",
            "Import geconcentreerd op weinig herkomstlanden (een HHI boven 2.500 is 'sterk geconcentreerd').",
        ),
    },
    "crma-single-country": {
        "en": (
            "CRMA single-country benchmark",
            "One third country supplies more than 65 % of extra-EU imports: above the CRMA 2030 benchmark for "
            "strategic raw materials (applied to every material as a screen).",
        ),
        "nl": (
            "CRMA-benchmark voor één land",
            "Eén derde land levert meer dan 65 % van de import van buiten de EU: boven de CRMA-benchmark voor "
            "2030 voor strategische grondstoffen (als toets op elke grondstof toegepast).",
        ),
    },
    "strategic-dependency-hhi": {
        "en": (
            "strategic dependency",
            "Extra-EU imports concentrated above the EU strategic-dependency screen (HHI 0.4).",
        ),
        "nl": (
            "strategische afhankelijkheid",
            "Import van buiten de EU geconcentreerd boven de EU-toets voor strategische afhankelijkheid (HHI 0,4).",
        ),
    },
    "stock-cover": {
        "en": (
            "stock cover",
            "Stocks held cover fewer days of net imports (or configured consumption) than the stockpile target.",
        ),
        "nl": (
            "voorraaddekking",
            "De aangehouden voorraad dekt minder dagen netto-import (of ingesteld verbruik) dan het voorraaddoel.",
        ),
    },
    "export-control-in-force": {
        "en": (
            "export control in force",
            "An export control in force: tax or licence regime warns, a ban or sanction is critical.",
        ),
        "nl": (
            "geldende exportbeperking",
            "Een geldende exportbeperking: een exportheffing of vergunningsplicht waarschuwt, een verbod of "
            "sanctie is kritiek.",
        ),
    },
    "news-signal-burst": {
        "en": (
            "burst of supply-signal news",
            "Several news items within 30 days on price shocks, lead times, production cuts, stockpiling, "
            "tariffs or export volumes of the material.",
        ),
        "nl": (
            "golf van nieuws over aanvoersignalen",
            "Meerdere nieuwsberichten binnen 30 dagen over prijsschokken, levertijden, productiebeperkingen, "
            "voorraadvorming, invoerheffingen of exportvolumes van de grondstof.",
        ),
    },
    "risk-score": {
        "en": ("risk score", "The composite risk score high."),
        "nl": ("risicoscore", "De samengestelde risicoscore is hoog."),
    },
}

TEXTS = {
    "en": {
        "above": "above",
        "below": "below",
        "firing": "{material}: {indicator} {value} is {direction} the {severity} threshold of {threshold}",
        "resolved": "{material}: {indicator} {value} is back {back} the clear threshold of {threshold}; resolved",
        "no_threshold": "{material}: {indicator} {value} ({status})",
        "open_since": "Open since {when}.",
        "push_api": "push API ({name})",
        "push_api_anonymous": "push API",
        "days": "{n} days",
        "sd": "{n} sd",
        "per_30d": "{n} days per 30 days",
        "tonnes": "{n} t",
    },
    "nl": {
        "above": "boven",
        "below": "onder",
        "firing": "{material}: {indicator} {value} ligt {direction} de drempel voor {severity} van {threshold}",
        "resolved": "{material}: {indicator} {value} ligt weer {back} de herstelgrens van {threshold}; opgelost",
        "no_threshold": "{material}: {indicator} {value} ({status})",
        "open_since": "Open sinds {when}.",
        "push_api": "push-API (sleutel {name})",
        "push_api_anonymous": "push-API",
        "days": "{n} dagen",
        "sd": "{n} sd",
        "per_30d": "{n} dagen per 30 dagen",
        "tonnes": "{n} t",
    },
}


def language_of(language: str | None) -> str:
    return language if language in LANGUAGES else "en"


def zone_of(name: str | None) -> ZoneInfo | None:
    """The channel's time zone, or None for UTC (and for a name this machine does not know)."""
    if not name or name == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def number(value: Any, language: str = "en", decimals: int | None = None, signed: bool = False) -> str:
    """A number with the language's marks: NL `1.234,5`, EN `1,234.5`; `decimals` by magnitude unless given."""
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value) or math.isinf(value):
        return "?"
    trim = decimals is None  # by magnitude: 0.710 reads 0.71
    if decimals is None:
        size = abs(value)
        decimals = 0 if isinstance(value, int) else (1 if size >= 10 else 2 if size >= 1 else 3)
    text = f"{value:+,.{decimals}f}" if signed else f"{value:,.{decimals}f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    if language_of(language) == "nl":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def percent(value: Any, language: str = "en", signed: bool = False) -> str:
    """A percentage (given in percent): NL `49,4 %`, EN `49.4%`."""
    text = number(value, language, 1, signed)
    return f"{text} %" if language_of(language) == "nl" else f"{text}%"


def indicator_value(indicator: str | None, value: Any, language: str = "en") -> str:
    """An indicator's value as a reader expects it, in the unit scoring gives it."""
    words = TEXTS[language_of(language)]
    unit = INDICATORS.get((indicator or "").split(".", 1)[0], ("", "", "number"))[2]
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "?"
    if unit == "pct":
        return percent(value, language, signed=True)
    if unit == "fraction":
        return percent(value * 100, language)
    if unit == "ratio":
        return f"{number(value, language, 2)}×"
    if unit == "days":
        return words["days"].format(n=number(value, language, 0))
    if unit == "days_per_30d":
        return words["per_30d"].format(n=number(value, language, 1, signed=True))
    if unit == "z":
        return words["sd"].format(n=number(value, language, 1, signed=True))
    if unit == "tonnes":
        return words["tonnes"].format(n=number(value, language, 1))
    if unit in ("index", "score", "count"):
        return number(value, language, 0)
    return number(value, language)


def indicator_label(indicator: str | None, language: str = "en") -> str:
    base, _, detail = (indicator or "").partition(".")
    entry = INDICATORS.get(base)
    label = (entry[1] if language_of(language) == "nl" else entry[0]) if entry else base.replace("_", " ")
    return f"{label} ({detail})" if detail else label


def when(value: Any, language: str = "en", zone: str | None = None) -> str:
    """A moment in the reader's time zone: `2 maart 2026 09:30 CET`, `2 March 2026 09:30 UTC`."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    tz = zone_of(zone)
    moment = moment.astimezone(tz or UTC)
    month = MONTHS[language_of(language)][moment.month - 1]
    return f"{moment.day} {month} {moment.year} {moment:%H:%M} {moment.tzname() if tz else 'UTC'}"


def rule_title(rule: str | None, language: str = "en") -> str:
    """A rule's short name in `language` (`30-day price change`); a rule not in RULES shows its name."""
    entry = RULES.get(rule or "", {}).get(language_of(language))
    return entry[0] if entry else (rule or "")


def rule_description(rule: str | None, language: str = "en") -> str:
    """What a rule watches, one sentence in `language`; empty for a rule not in RULES."""
    entry = RULES.get(rule or "", {}).get(language_of(language))
    return entry[1] if entry else ""


CHANNEL_KINDS = {
    "en": {"email": "email", "webhook": "webhook", "teams": "Microsoft Teams", "slack": "Slack"},
    "nl": {"email": "e-mail", "webhook": "webhook", "teams": "Microsoft Teams", "slack": "Slack"},
}


def channel_kind(value: str, language: str = "en") -> str:
    """A kind of channel in words (`e-mail`, `Microsoft Teams`)."""
    return CHANNEL_KINDS[language_of(language)].get(value, value)


def severity(value: str, language: str = "en") -> str:
    return SEVERITIES[language_of(language)].get(value, value)


def status(value: str, language: str = "en") -> str:
    return STATUSES[language_of(language)].get(value, value)


def source(value: str | None, language: str = "en", names: dict[str, str] | None = None) -> str:
    """A readable source: the push API with its key's name, a feed by its configured name (from `names`)."""
    words = TEXTS[language_of(language)]
    value = value or ""
    if value.startswith("api:"):
        name = value[4:]
        return words["push_api"].format(name=name) if name else words["push_api_anonymous"]
    return (names or {}).get(value, value)


@lru_cache(maxsize=1)
def _catalog() -> Any:
    try:
        return load_catalog()
    except CatalogError:
        return None


def material_name(material: str, language: str = "en") -> str:
    catalog = _catalog()
    try:
        return catalog.material(material).display_name(language_of(language)) if catalog else material
    except KeyError:
        return material


def _direction(alert: dict[str, Any]) -> str:
    """`above` or `below`: given, or read from the thresholds (a critical below the warning is a floor)."""
    if alert.get("direction") in ("above", "below"):
        return str(alert["direction"])
    warning, critical = alert.get("warning_threshold"), alert.get("critical_threshold")
    if isinstance(warning, int | float) and isinstance(critical, int | float) and critical < warning:
        return "below"
    return "above"


def summary(alert: dict[str, Any], language: str = "en", zone: str | None = None) -> str:
    """The alert's one line in `language`, from its machine fields; a catch-up says since when it is open."""
    language = language_of(language)
    words = TEXTS[language]
    indicator = alert.get("indicator") or alert.get("rule") or ""
    fields = {
        "material": material_name(alert.get("material", ""), language),
        "indicator": indicator_label(indicator, language),
        "value": indicator_value(indicator, alert.get("value"), language),
        "threshold": indicator_value(indicator, alert.get("threshold"), language),
        "severity": severity(alert.get("severity", ""), language),
        "status": status(alert.get("status", ""), language),
    }
    direction = _direction(alert)
    if alert.get("threshold") is None:
        line = words["no_threshold"].format(**fields)
    elif alert.get("status") == "resolved":
        line = words["resolved"].format(back=words["below" if direction == "above" else "above"], **fields)
    else:
        line = words["firing"].format(direction=words[direction], **fields)
    line = line[:1].upper() + line[1:]  # names are lower case in running text; this one opens a sentence
    if alert.get("open_since"):
        return f"{words['open_since'].format(when=when(alert['open_since'], language, zone))} {line}"
    return line


EVIDENCE_KINDS = {
    "en": {},
    "nl": {
        "price": "prijs",
        "news": "nieuws",
        "trade": "handel",
        "leadtime": "levertijd",
        "stock": "voorraad",
        "control": "exportbeperking",
    },
}
VIA = {
    "en": {"material": "material {0}", "product": "product {0}", "group": "material group {0}"},
    "nl": {"material": "grondstof {0}", "product": "product {0}", "group": "grondstoffengroep {0}"},
}


PARAMETERS = {
    "nl": {
        "trade_flows": "handelsstromen",
        "supply_and_demand": "vraag en aanbod",
        "concentration_of_supply": "concentratie van het aanbod",
        "production_capacity": "productiecapaciteit",
        "price_volatility": "prijsvolatiliteit",
        "bottlenecks": "knelpunten",
        "trade_barriers": "handelsbelemmeringen",
    }
}


def parameter(value: str | None, language: str = "en") -> str:
    """A CRMA Art. 20(1) monitoring parameter in words."""
    value = value or ""
    return PARAMETERS.get(language_of(language), {}).get(value, value.replace("_", " "))


def via(reason: str, language: str = "en") -> str:
    """Why a subscriber receives an alert (`material:gallium`, `product:Radar>GaN chip`), in words."""
    kind, _, what = reason.partition(":")
    template = VIA[language_of(language)].get(kind)
    if kind == "material":
        what = material_name(what, language)
    return template.format(what.replace(">", " > ")) if template and what else reason


def localise_alert(
    alert: dict[str, Any], language: str = "en", zone: str | None = None, source_names: dict[str, str] | None = None
) -> dict[str, Any]:
    """What a template shows of one alert payload, every part in `language` and dates in `zone`."""
    language = language_of(language)
    indicator = alert.get("indicator") or ""
    return {
        "summary": summary(alert, language, zone),
        "material": material_name(alert.get("material", ""), language),
        "severity": severity(alert.get("severity", ""), language),
        "status": status(alert.get("status", ""), language),
        "rule": rule_title(alert.get("rule"), language),
        "rule_description": rule_description(alert.get("rule"), language),
        "indicator": indicator_label(indicator, language),
        "parameter": parameter(alert.get("parameter"), language),
        "value": indicator_value(indicator, alert.get("value"), language),
        "threshold": (
            indicator_value(indicator, alert["threshold"], language) if alert.get("threshold") is not None else None
        ),
        "starts_at": when(alert.get("starts_at"), language, zone),
        "ends_at": when(alert.get("ends_at"), language, zone),
        "acknowledged_at": when(alert.get("acknowledged_at"), language, zone),
        "via": [via(v, language) for v in alert.get("via", [])],
        "evidence": [
            {
                "kind": EVIDENCE_KINDS[language].get(e.get("kind", ""), e.get("kind", "")),
                "source": source(e.get("source"), language, source_names),
                "time": when(e.get("time"), language, zone),
                "value": number(e["value"], language) if isinstance(e.get("value"), int | float) else None,
                "url": e.get("url"),
            }
            for e in alert.get("evidence", [])
        ],
    }
