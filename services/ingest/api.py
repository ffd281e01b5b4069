"""The push API: batches of prices, news, trade flows and lead times, through the same path as feeds.

Every item is answered on its own: `accepted` (published, or already published before) or `rejected` with
the reason and its index, so one bad item never costs its neighbours. Authentication is an API key with
the `ingest` scope, configured as its sha256 digest and compared in constant time; keys are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.ingest import metrics
from services.ingest.config import SourcesConfig
from services.ingest.observation import Candidate, Rejected
from services.ingest.poll import Ingestion, SourceHealth, normalise_candidate, open_ingestion, poll_forever
from services.ingest.publish import Item
from services.ingest.settings import IngestSettings
from shared.access import StaticKey, bearer_token, find_key
from shared.events import describe_validation_error
from shared.kafka import check_kafka
from shared.metrics import mount_observability

log = logging.getLogger(__name__)


class PriceItem(BaseModel):
    """A price: `{"material": "gallium", "price": 350, "currency": "USD", "unit": "kg", "observed_at": ...}`."""

    model_config = ConfigDict(extra="forbid")
    material: str = Field(max_length=200)
    price: float | str
    currency: str = Field(max_length=3)
    unit: str = Field(max_length=32)
    observed_at: str | float
    source: str | None = Field(default=None, max_length=200)
    series: str = Field(default="", max_length=200)
    url: str = Field(default="", max_length=2000)


class NewsItem(BaseModel):
    """A news item to classify: title and/or text, link, publication time."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", max_length=1000)
    text: str = Field(default="", max_length=20000)
    url: str = Field(default="", max_length=2000)
    published_at: str | float | None = None
    source: str | None = Field(default=None, max_length=200)
    language: str = Field(default="", max_length=8)


class TradeItem(BaseModel):
    """A trade flow: reporter and partner country, HS/CN code, period, quantity (kg) and value (EUR)."""

    model_config = ConfigDict(extra="forbid")
    reporter: str = Field(max_length=60)
    partner: str = Field(max_length=60)
    hs_code: str = Field(max_length=12)
    period: str = Field(max_length=7)
    flow: Literal["import", "export"] = "import"
    quantity_kg: float | str | None = None
    value_eur: float | str | None = None
    source: str | None = Field(default=None, max_length=200)


class LeadTimeItem(BaseModel):
    """A quoted lead time in days (or weeks) for a material from a supplier or origin country."""

    model_config = ConfigDict(extra="forbid")
    material: str = Field(max_length=200)
    lead_time_days: float | str | None = None
    lead_time_weeks: float | str | None = None
    quoted_at: str | float
    supplier: str = Field(default="", max_length=200)
    origin_country: str = Field(default="", max_length=60)
    source: str | None = Field(default=None, max_length=200)


ITEM_MODELS: dict[str, type[BaseModel]] = {"price": PriceItem, "news": NewsItem, "trade": TradeItem,
                                           "leadtime": LeadTimeItem}


class ItemResult(BaseModel):
    index: int
    status: Literal["accepted", "rejected"]
    reason: str = ""
    duplicate: bool = False


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    items: list[ItemResult]


def candidate_fields(kind: str, item: BaseModel) -> dict[str, Any]:
    """An API item's fields under the names normalisation reads."""
    data = item.model_dump(exclude={"source"}, exclude_none=True)
    if kind == "news":
        data["summary"] = data.pop("text", "")
        data["link"] = data.pop("url", "")
    return data


def authenticate(header: str | None, keys: tuple[StaticKey, ...]) -> StaticKey | None:
    """The configured key a Bearer header carries, or None."""
    return find_key(bearer_token(header), keys)


@dataclass
class Runtime:
    """What the running app holds: settings, keys, the ingestion path, source health."""

    settings: IngestSettings
    keys: tuple[StaticKey, ...]
    ingestion: Ingestion | None = None
    health: dict[str, SourceHealth] | None = None


def require(scope: str):
    """A dependency admitting only requests whose API key has `scope`."""

    def check(request: Request) -> StaticKey:
        runtime: Runtime = request.app.state.runtime
        key = authenticate(request.headers.get("authorization"), runtime.keys)
        if key is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid API key is required",
                                headers={"WWW-Authenticate": "Bearer"})
        if scope not in key.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"the API key lacks the {scope!r} scope")
        return key

    return check


async def read_batch(request: Request) -> list[Any]:
    """The `items` of a JSON body no larger than the configured maximum, or a 4xx saying why."""
    runtime: Runtime = request.app.state.runtime
    limit = runtime.settings.ingest_max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds {limit} bytes")
    try:
        doc = json.loads(bytes(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, 'body must be {"items": [...]}')
    if len(doc["items"]) > runtime.settings.ingest_max_batch:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"batch of {len(doc['items'])} items exceeds {runtime.settings.ingest_max_batch}")
    return doc["items"]


async def ingest_batch(kind: str, raw_items: list[Any], key: StaticKey, runtime: Runtime) -> BatchResult:
    """Validate, normalise and publish a batch; one result per item."""
    ingestion = runtime.ingestion
    if ingestion is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "ingest is starting")
    limits = ingestion.limits()
    model = ITEM_MODELS[kind]
    items: list[Item] = []
    for raw in raw_items:
        raw_bytes = json.dumps(raw, default=str).encode()
        source = f"api:{key.name}"
        try:
            parsed = model.model_validate(raw)
        except ValidationError as exc:
            items.append(Item(kind, source, Rejected("invalid_item", describe_validation_error(exc)), raw_bytes))
            continue
        source = getattr(parsed, "source", None) or source
        candidate = Candidate(kind, source, candidate_fields(kind, parsed), raw_bytes)
        items.append(Item(kind, source, normalise_candidate(candidate, ingestion, limits), raw_bytes))
    try:
        decisions = await ingestion.publisher.publish(items, dead_letter=False)
    except Exception as exc:  # Kafka did not take the batch: nothing was recorded as seen, the client retries
        log.exception("api publish failed", extra={"kind": kind, "items": len(items)})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"could not publish: {type(exc).__name__}") \
            from exc
    results = []
    for index, decision in enumerate(decisions):
        ok = decision.status in ("published", "duplicate", "skipped")
        results.append(ItemResult(index=index, status="accepted" if ok else "rejected",
                                  reason="" if decision.status == "published" else decision.reason,
                                  duplicate=decision.status == "duplicate"))
        metrics.API_ITEMS.labels(kind, decision.status).inc()
    accepted = sum(r.status == "accepted" for r in results)
    log.info("api batch", extra={"kind": kind, "key": key.name, "accepted": accepted,
                                 "rejected": len(results) - accepted})
    return BatchResult(accepted=accepted, rejected=len(results) - accepted, items=results)


Items = Annotated[list[Any], Depends(read_batch)]
Key = Annotated[StaticKey, Depends(require("ingest"))]


def create_app(settings: IngestSettings, sources: SourcesConfig | None = None) -> FastAPI:
    """The ingest API; with `sources`, it also runs the scheduled poller in the same process."""
    runtime = Runtime(settings=settings, keys=settings.api_keys())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_ingestion(settings) as ingestion:
            runtime.ingestion = ingestion
            runtime.health = {}
            stop = asyncio.Event()
            poller = asyncio.create_task(poll_forever(sources, ingestion, runtime.health, stop)) \
                if sources is not None else None
            try:
                yield
            finally:
                stop.set()
                if poller is not None:
                    await poller
                runtime.ingestion = None

    app = FastAPI(title="mews ingest", version="1", lifespan=lifespan,
                  description="Push prices, export-control news, trade flows and lead times into mews.")
    app.state.runtime = runtime
    mount_observability(app, "ingest", {"kafka": lambda: check_kafka(settings.kafka_bootstrap_servers)})

    @app.post("/v1/prices", status_code=202, response_model=BatchResult)
    async def post_prices(key: Key, items: Items) -> BatchResult:
        """Prices: material, price, currency, unit, observed_at; source optional."""
        return await ingest_batch("price", items, key, runtime)

    @app.post("/v1/news", status_code=202, response_model=BatchResult)
    async def post_news(key: Key, items: Items) -> BatchResult:
        """News items: title, text, url, published_at; classified like feed items."""
        return await ingest_batch("news", items, key, runtime)

    @app.post("/v1/trade", status_code=202, response_model=BatchResult)
    async def post_trade(key: Key, items: Items) -> BatchResult:
        """Trade flows: reporter, partner, hs_code, period, flow, quantity_kg, value_eur."""
        return await ingest_batch("trade", items, key, runtime)

    @app.post("/v1/leadtimes", status_code=202, response_model=BatchResult)
    async def post_leadtimes(key: Key, items: Items) -> BatchResult:
        """Lead times: material, lead_time_days (or _weeks), quoted_at, supplier, origin_country."""
        return await ingest_batch("leadtime", items, key, runtime)

    @app.get("/v1/sources")
    async def source_health(key: Key) -> dict[str, Any]:
        """Health of each scheduled source (when this process runs the poller)."""
        return {name: vars(h) for name, h in (runtime.health or {}).items()}

    return app
