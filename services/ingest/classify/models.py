"""What the classifier says about a news item, and why."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Measure = Literal["export_ban", "export_licence", "export_quota", "export_tax", "sanction", "easing", "none"]
Topic = Literal["export_control", "price", "leadtime", "production", "stockpile", "tariff", "trade_volume", "none"]
Where = Literal["title", "text", ""]
EvidenceKind = Literal[
    "language",
    "material",
    "country",
    "target",
    "signal",
    "ignored",
    "negated",
    "date",
    "figure",
    "decision",
    "topic",
    "relevance",
]


class Evidence(BaseModel):
    """One reason behind a classification: the words matched and what they were taken to mean."""

    model_config = ConfigDict(frozen=True)

    kind: EvidenceKind
    value: str = Field(description="material id, country code, signal kind, ISO date or verdict")
    match: str = Field(description="the words in the item, as written, or the reasoning")
    where: Where = ""


class Classification(BaseModel):
    """A news item's materials, countries, trade measure, supply topic, figures and relevance, with the evidence."""

    model_config = ConfigDict(frozen=True)

    materials: tuple[str, ...] = ()
    countries: tuple[str, ...] = Field(default=(), description="every country named (imposing or affected)")
    imposed_by: tuple[str, ...] = Field(
        default=(), description="the countries named that impose the measure: all but its targets and destinations"
    )
    measure: Measure = "none"
    effective_date: date | None = None
    language: str = Field(default="und", description="ISO 639-1 code of a lexicon's language, or und")
    relevant: bool = False
    score: float = Field(default=0.0, ge=0.0, le=1.0)
    evidence: tuple[Evidence, ...] = ()
    topic: Topic = Field(default="none", description="export_control when a measure is found, else a supply signal")
    leadtime_days: int | None = Field(default=None, description="a lead time the item states, in days")
    price_change_pct: float | None = Field(default=None, description="a price move the item states, in percent")
    days_until_in_force: int | None = Field(default=None, description="effective date minus publication date")
