"""The push API: batches of prices, news, trade flows, lead times and stock reports, through the same path as feeds.

Every item is answered on its own: `accepted` (published, or already published before) or `rejected` with
the reason and its index, so one bad item never costs its neighbours. A batch Kafka does not acknowledge
within the request deadline is answered 503 with Retry-After, and what Kafka did not take is never published
later, so the client's retry publishes each item once. Authentication is an API key with
the `ingest` scope, configured as its sha256 digest and compared in constant time; keys are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json

from services.ingest import metrics
from services.ingest.config import SourcesConfig
from services.ingest.normalise import Ingestion, normalise_candidate
from services.ingest.observation import Accepted, Candidate, Limits, Rejected
from services.ingest.poll import SourceHealth, open_ingestion, poll_forever
from services.ingest.publish import Decision, Item, NotPublished
from services.ingest.settings import IngestSettings
from shared.api import secure_api
from shared.events import (
    Classification,
    CountryCode,
    DaysUntilInForce,
    LeadTimeDays,
    PriceChangePct,
    Topic,
    describe_validation_error,
)
from shared.metrics import mount_observability
from shared.problems import answers
from shared.service_keys import StaticKey, bearer_token, find_key
from shared.throttle import auth_throttle

log = logging.getLogger(__name__)
# Items per publish. Each publish costs its own record batches, seen-store query and thread hop: chunks of
# 1,000 cost 37 ms of CPU per 1,000 prices where chunks of 250 cost 44 and of 100 56 (bench/ingest_bench.py),
# for holding the event loop up to one chunk's normalisation (tens of ms) between chunks.
PUBLISH_CHUNK = 1000
_LEVELS = frozenset(c.value for c in Classification)


class PriceItem(BaseModel):
    """A price: `{"material": "gallium", "price": 350, "currency": "USD", "unit": "kg", "observed_at": ...}`."""

    model_config = ConfigDict(extra="forbid")
    material: str = Field(max_length=200)
    price: float | str
    currency: str = Field(max_length=3)
    unit: str = Field(max_length=32)
    observed_at: str | float
    source: str | None = Field(default=None, max_length=200)
    classification: Classification = Classification.PUBLIC  # at most the key's clearance
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
    classification: Classification = Classification.PUBLIC  # at most the key's clearance
    language: str = Field(default="", max_length=8)
    # The countries imposing the measure, when the client knows them; else the classifier's reading.
    imposed_by: list[CountryCode] | None = Field(default=None, max_length=50)
    # The supply signal and the figures the item states, when the client knows them; else the classifier's.
    topic: Topic | None = None
    leadtime_days: LeadTimeDays | None = None
    price_change_pct: PriceChangePct | None = None
    days_until_in_force: DaysUntilInForce | None = None


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
    classification: Classification = Classification.PUBLIC  # at most the key's clearance


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
    classification: Classification = Classification.PUBLIC  # at most the key's clearance


class StockItem(BaseModel):
    """Tonnes of a material held on a date by a holder; government-only unless `classification` says otherwise."""

    model_config = ConfigDict(extra="forbid")
    material: str = Field(max_length=200)
    tonnes: float | str
    reported_at: str | float
    holder: str = Field(default="", max_length=200)
    classification: Classification = Classification.GOVERNMENT  # at most the key's clearance
    source: str | None = Field(default=None, max_length=200)


ITEM_MODELS: dict[str, type[BaseModel]] = {
    "price": PriceItem,
    "news": NewsItem,
    "trade": TradeItem,
    "leadtime": LeadTimeItem,
    "stock": StockItem,
}


_Item = TypeVar("_Item", bound=BaseModel)


class PushBody(BaseModel, Generic[_Item]):
    """What a push posts: `{"items": [...]}`; other keys at the top are ignored."""

    items: list[_Item]


class ItemResult(BaseModel):
    index: int
    status: Literal["accepted", "rejected", "not_published"]
    reason: str = ""
    duplicate: bool = False


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    items: list[ItemResult]


# Per kind, the fields that default to None: the only ones a valid item can hold None in, which means absent.
_OPTIONAL = {
    kind: tuple(name for name, field in model.model_fields.items() if field.default is None and name != "source")
    for kind, model in ITEM_MODELS.items()
}


def candidate_fields(kind: str, item: BaseModel) -> dict[str, Any]:
    """An API item's fields under the names normalisation reads; a field left out (None) is not among them."""
    # The models are flat, so their attributes are the dump: a copy, at a tenth of model_dump's cost per item.
    data = dict(item.__dict__)
    for name in _OPTIONAL[kind]:
        if data[name] is None:
            del data[name]
    del data["classification"], data["source"]  # every model has both
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

    @answers(401, 403, 429)
    async def check(request: Request) -> StaticKey:  # async: a plain def would cost a thread hop per request
        runtime: Runtime = request.app.state.runtime
        presented = bearer_token(request.headers.get("authorization"))
        key = find_key(presented, runtime.keys)
        if key is None:
            auth_throttle(request).refuse(request, presented)
        if scope not in key.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"the API key lacks the {scope!r} scope")
        return key

    return check


@dataclass(frozen=True)
class Batch:
    """A request's items, each as its model or why it is not one, and when the request began (the deadline's start).

    `raw` holds the items as posted when some are invalid: their clearance is checked on what they claim.
    """

    items: list[BaseModel | Rejected]
    raw: list[Any] | None
    started: float


def read_batch(kind: str):
    """A dependency reading a push body of `kind` items no larger than the configured maximum, or a 4xx saying why."""
    # Parsed and validated in one pass: at two thirds of the cost of json.loads and validating the objects.
    whole = PushBody[ITEM_MODELS[kind]]  # type: ignore[valid-type]

    @answers(400, 413, 422)
    async def read(request: Request) -> Batch:
        started = asyncio.get_running_loop().time()
        settings = request.app.state.runtime.settings
        body = await read_body(request, settings.max_body_bytes)
        raw: list[Any] | None = None
        try:
            items: list[BaseModel | Rejected] = whole.model_validate_json(body).items
        except ValidationError:  # not a batch of valid items: read step by step, to name what is wrong
            raw = parse_items(body)
        count = len(items if raw is None else raw)
        if count > settings.max_batch:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"batch of {count} items exceeds {settings.max_batch}"
            )
        if raw is not None:
            items = validate_items(kind, raw)
        return Batch(items, raw, started)

    return read


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, or 413 as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds {limit} bytes")
    return bytes(body)


def parse_items(body: bytes) -> list[Any]:
    """The `items` of a JSON body `{"items": [...]}`, or a 4xx saying why there are none."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: bad JSON, or an integer of more digits than int() converts; RecursionError: nesting
        # deeper than the parser follows. Either is the client's body, never a 500.
        reason = (
            "nested too deeply"
            if isinstance(exc, RecursionError)
            else f"an integer has more than {sys.get_int_max_str_digits()} digits"
            if "integer string conversion" in str(exc)
            else str(exc)[:200]
        )
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not JSON mews can read: {reason}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, 'body must be {"items": [...]}')
    return doc["items"]


_ANSWERS = {
    "published": "accepted",
    "duplicate": "accepted",
    "skipped": "accepted",
    "rejected": "rejected",
    "failed": "not_published",
}


def _results(decisions: list[Decision]) -> list[dict[str, Any]]:
    """One ItemResult per decision, as plain dicts: a batch of 10,000 answers without 10,000 models."""
    return [
        {
            "index": index,
            "status": _ANSWERS[d.status],
            "reason": "" if d.status == "published" else d.reason,
            "duplicate": d.status == "duplicate",
        }
        for index, d in enumerate(decisions)
    ]


def validate_items(kind: str, raw_items: list[Any]) -> list[BaseModel | Rejected]:
    """Each posted item as its model, or why it is not one: item by item, so each gets the reason of its own.

    Only a body whose one-pass read failed comes here, so a pass over the whole list would fail again.
    """
    model = ITEM_MODELS[kind]
    validated: list[BaseModel | Rejected] = []
    for raw in raw_items:
        try:
            validated.append(model.model_validate(raw))
        except ValidationError as exc:
            validated.append(Rejected("invalid_item", describe_validation_error(exc)))
    return validated


def _item(kind: str, parsed: BaseModel | Rejected, key: StaticKey, ingestion: Ingestion, limits: Limits) -> Item:
    """One validated item, normalised (or rejected with the reason)."""
    source = f"api:{key.name}"
    if isinstance(parsed, Rejected):
        return Item(kind, source, parsed, b"")
    source = getattr(parsed, "source", None) or source
    # No copy of the original bytes: the API answers its caller with the reasons instead of dead-lettering.
    candidate = Candidate(kind, source, candidate_fields(kind, parsed), b"")
    outcome = normalise_candidate(candidate, ingestion, limits)
    level = parsed.classification  # type: ignore[attr-defined]
    if isinstance(outcome, Accepted) and [e for e in outcome.events if e.classification is not level]:
        outcome = replace(outcome, events=tuple(e.model_copy(update={"classification": level}) for e in outcome.events))
    return Item(kind, source, outcome, b"")


async def publish_in_chunks(
    kind: str, validated: list[BaseModel | Rejected], key: StaticKey, ingestion: Ingestion, deadline: float
) -> list[Decision]:
    """Normalise and publish a batch chunk by chunk: a chunk is prepared while the one before travels to Kafka.

    The chunks reach Kafka in order (the publisher hands batches over in call order), so the items of one
    request keep their order. Raises NotPublished with every item's decision if any chunk was not taken.
    """
    loop = asyncio.get_running_loop()
    limits = ingestion.limits()
    chunks: list[asyncio.Task[list[Decision]]] = []
    for start in range(0, len(validated), PUBLISH_CHUNK):
        items = [_item(kind, parsed, key, ingestion, limits) for parsed in validated[start : start + PUBLISH_CHUNK]]
        chunks.append(
            asyncio.create_task(
                ingestion.publisher.publish(items, dead_letter=False, within=max(0.0, deadline - loop.time()))
            )
        )
        # Let the chunk take its place in the queue to Kafka now; this also keeps a batch of 10,000 from
        # holding the loop, so other requests and probes go on.
        await asyncio.sleep(0)
    decisions: list[Decision] = []
    refused = False
    for outcome in await asyncio.gather(*chunks, return_exceptions=True):
        if isinstance(outcome, NotPublished):
            decisions.extend(outcome.decisions)
            refused = True
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            decisions.extend(outcome)
    if refused:
        raise NotPublished(decisions)
    return decisions


async def ingest_batch(kind: str, batch: Batch, key: StaticKey, runtime: Runtime) -> Response:
    """Validate, normalise and publish a batch within the request deadline; one result per item."""
    ingestion = runtime.ingestion
    retry_after = {"Retry-After": str(runtime.settings.retry_after_s)}
    if ingestion is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "ingest is starting", headers=retry_after)
    default_level = ITEM_MODELS[kind].model_fields["classification"].default.value
    above = {level for level in _LEVELS if not key.cleared_for(Classification(level))}  # checked per item
    # Valid items (the usual batch) are looked at one by one only if the levels they claim include one above.
    claimed = {item.classification for item in batch.items} if batch.raw is None else above  # type: ignore[union-attr]
    if not above.isdisjoint(claimed):
        levels = (
            (item.classification for item in batch.items)  # type: ignore[union-attr]
            if batch.raw is None
            else (raw.get("classification", default_level) if isinstance(raw, dict) else None for raw in batch.raw)
        )
        for index, level in enumerate(levels):
            if isinstance(level, str) and level in above:
                # Refused whole, before anything is published: the sender is told, not just this item.
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"item {index} is classified {level}, above the API key's clearance {key.clearance.value}",
                )
    deadline = batch.started + runtime.settings.request_deadline_s
    try:
        decisions = await publish_in_chunks(kind, batch.items, key, ingestion, deadline)
    except NotPublished as exc:
        # Kafka did not acknowledge in time: what it did not take is abandoned and not marked seen, so the
        # client's retry publishes it once; what it took comes back as a duplicate.
        for status_name, n in Counter(d.status for d in exc.decisions).items():
            metrics.API_ITEMS.labels(kind, status_name).inc(n)
        log.warning(
            "api batch not published in time",
            extra={"kind": kind, "key": key.name, "items": len(batch.items), "reason": str(exc)},
        )
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=retry_after,
            detail={"error": f"{exc}; send the batch again after Retry-After", "items": _results(exc.decisions)},
        ) from exc
    except Exception as exc:  # e.g. the seen-store failed: nothing unacknowledged is marked seen, the client retries
        log.exception("api publish failed", extra={"kind": kind, "items": len(batch.items)})
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"could not publish: {type(exc).__name__}", headers=retry_after
        ) from exc
    results = _results(decisions)
    statuses = Counter(d.status for d in decisions)
    for status_name, n in statuses.items():
        metrics.API_ITEMS.labels(kind, status_name).inc(n)
    accepted = sum(n for status_name, n in statuses.items() if _ANSWERS[status_name] == "accepted")
    log.info(
        "api batch", extra={"kind": kind, "key": key.name, "accepted": accepted, "rejected": len(results) - accepted}
    )
    # A BatchResult, written directly: validating and serialising it through the model again would cost
    # more than normalising the items. pydantic's serializer writes the dicts at under half json.dumps' cost.
    body = {"accepted": accepted, "rejected": len(results) - accepted, "items": results}
    return Response(to_json(body), status.HTTP_202_ACCEPTED, media_type="application/json")


async def check_producer(runtime: Runtime) -> str | None:
    """Readiness: whether the broker answers the producer the API publishes with.

    The producer's own metadata request names ingest's topics only; a fresh client per probe would fetch the
    metadata of every topic in the cluster.
    """
    if runtime.ingestion is None:
        return "ingest is starting"
    return await runtime.ingestion.publisher.producer.check()


def documented_body(kind: str) -> dict[str, Any]:
    """The OpenAPI request body of a push (read by `read_batch` itself, so FastAPI cannot describe it)."""
    items = {"type": "array", "items": ITEM_MODELS[kind].model_json_schema()}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "required": ["items"], "properties": {"items": items}}
                }
            },
        }
    }


Key = Annotated[StaticKey, Depends(require("ingest"))]


def create_app(settings: IngestSettings, sources: SourcesConfig | None = None) -> FastAPI:
    """The ingest API; with `sources`, it also runs the scheduled poller in the same process."""
    runtime = Runtime(settings=settings, keys=settings.static_keys())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_ingestion(settings) as ingestion:
            runtime.ingestion = ingestion
            runtime.health = {}
            # What start-up built (catalog, classifier tables, schemas) lives as long as the process: keep the
            # garbage collector's full passes from walking it, which would hold the loop for 100 ms and more.
            # A batch's items (about ten tracked objects each) live until it is answered: collecting every 700
            # allocations walked them again and again, a twentieth of a batch's CPU; every 10,000 is about once
            # per batch of 1,000.
            gc.freeze()
            gc.set_threshold(10_000, 20, 20)
            stop = asyncio.Event()
            poller = (
                asyncio.create_task(poll_forever(sources, ingestion, runtime.health, stop))
                if sources is not None
                else None
            )
            try:
                yield
            finally:
                stop.set()
                if poller is not None:
                    await poller
                runtime.ingestion = None

    app = FastAPI(
        title="mews ingest",
        version="1",
        lifespan=lifespan,
        description="Push prices, supply news, trade flows and lead times into mews.",
    )
    app.state.runtime = runtime
    mount_observability(app, "ingest", {"kafka": lambda: check_producer(runtime)}, settings=settings)
    # Every push may find ingest starting, or Kafka not acknowledging in time: 503 with Retry-After.
    secure_api(app, "ingest", settings, per_route=lambda route: {503} if "POST" in (route.methods or ()) else ())

    @app.post("/v1/prices", status_code=202, response_model=BatchResult, openapi_extra=documented_body("price"))
    async def post_prices(key: Key, items: Annotated[Batch, Depends(read_batch("price"))]) -> Response:
        """Prices: material, price, currency, unit, observed_at; source optional."""
        return await ingest_batch("price", items, key, runtime)

    @app.post("/v1/news", status_code=202, response_model=BatchResult, openapi_extra=documented_body("news"))
    async def post_news(key: Key, items: Annotated[Batch, Depends(read_batch("news"))]) -> Response:
        """News items: title, text, url, published_at, optionally topic and figures; classified like feed items."""
        return await ingest_batch("news", items, key, runtime)

    @app.post("/v1/trade", status_code=202, response_model=BatchResult, openapi_extra=documented_body("trade"))
    async def post_trade(key: Key, items: Annotated[Batch, Depends(read_batch("trade"))]) -> Response:
        """Trade flows: reporter, partner, hs_code, period, flow, quantity_kg, value_eur."""
        return await ingest_batch("trade", items, key, runtime)

    @app.post("/v1/leadtimes", status_code=202, response_model=BatchResult, openapi_extra=documented_body("leadtime"))
    async def post_leadtimes(key: Key, items: Annotated[Batch, Depends(read_batch("leadtime"))]) -> Response:
        """Lead times: material, lead_time_days (or _weeks), quoted_at, supplier, origin_country."""
        return await ingest_batch("leadtime", items, key, runtime)

    @app.post("/v1/stocks", status_code=202, response_model=BatchResult, openapi_extra=documented_body("stock"))
    async def post_stocks(key: Key, items: Annotated[Batch, Depends(read_batch("stock"))]) -> Response:
        """Stock reports (CRMA Art. 23): material, tonnes, reported_at, holder, classification (default government)."""
        return await ingest_batch("stock", items, key, runtime)

    @app.get("/v1/sources")
    async def source_health(key: Key) -> dict[str, Any]:
        """Health of each scheduled source (when this process runs the poller)."""
        return {name: vars(h) for name, h in (runtime.health or {}).items()}

    return app
