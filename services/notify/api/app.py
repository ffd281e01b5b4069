"""The notifier's HTTP application: the /v1/ routers, error mapping, and /metrics /healthz /readyz."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import Counter
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.notify.api import (
    alerts,
    channels,
    deliveries,
    exposure,
    feedback,
    organisations,
    products,
    silences,
    subscriptions,
    unsubscribe,
)
from services.notify.console.views import mount_console
from services.notify.settings import NotifySettings
from services.notify.store.db import create_db_engine, database_away, session_factory
from services.notify.store.errors import Conflict, NotFound, Rejected
from shared.api import secure_api
from shared.metrics import mount_observability
from shared.problems import problem

log = logging.getLogger(__name__)
UNAVAILABLE = Counter(
    "mews_notify_api_unavailable_total", "Requests answered 503 because a dependency was away", ["dependency"]
)
DATABASE_RETRY_AFTER = "5"  # seconds; the notifier's own loops retry at most this far apart
ROUTERS = (
    organisations,
    channels,
    products,
    subscriptions,
    unsubscribe,
    alerts,
    feedback,
    silences,
    deliveries,
    exposure,
)


def _problem(status_code: int, detail: str) -> JSONResponse:
    return problem(status_code, detail)


def _route_statuses(route: APIRoute) -> set[int]:
    """What the store's errors add to a route: NotFound for an id in the path (or, on a write, in the body),
    Conflict and Rejected on writes; and 503 to every route, all of which read the database."""
    statuses = {404, 503} if route.dependant.path_params else {503}
    if (route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}:
        statuses |= {404, 409, 422}
    return statuses


def create_app(
    settings: NotifySettings,
    *,
    engine: Engine | None = None,
    on_subscriptions_changed: Callable[[], None] | None = None,
    readiness: Mapping[str, Callable[[], Awaitable[str | None]]] | None = None,
) -> FastAPI:
    """The API app on a database (an engine of its own unless one is shared with the worker).

    `on_subscriptions_changed` is called after any change to subscriptions, products or channels, so the
    alert pipeline can rebuild its subscription index at once instead of waiting for its next refresh.
    `readiness` replaces the database check of /readyz; the notifier's checks report the database and the
    broker, and say not ready while one of its loops waits a fault out.
    """
    owns_engine = engine is None
    engine = engine or create_db_engine(settings.database_url.get_secret_value())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:
            engine.dispose()

    app = FastAPI(
        title="mews notify",
        version="1",
        lifespan=lifespan,
        description="Alerts on critical raw material supply risks: subscriptions, products and their "
        "bills of materials, alerts, acknowledgements, silences, deliveries, exposure.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.subscriptions_changed = on_subscriptions_changed or (lambda: None)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _problem(status.HTTP_404_NOT_FOUND, str(exc))

    @app.exception_handler(Rejected)
    async def rejected(_: Request, exc: Rejected) -> JSONResponse:
        return _problem(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return _problem(status.HTTP_409_CONFLICT, str(exc))

    @app.exception_handler(IntegrityError)
    async def integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # The constraint's name helps an operator; the statement and its values stay out of the answer.
        log.warning("integrity error", extra={"error": type(exc.orig).__name__})
        return _problem(status.HTTP_409_CONFLICT, "the change conflicts with existing data")

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if not database_away(exc):
            log.error("database error", exc_info=exc, extra={"path": request.url.path})
            return _problem(status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error; it has been logged")
        # Nothing was changed: the request can be sent again as it is once the database is back.
        UNAVAILABLE.labels("database").inc()
        log.warning("database away; answered 503", extra={"path": request.url.path, "error": type(exc.orig).__name__})
        return problem(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the database is unavailable; nothing was changed, try again shortly",
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )

    for module in ROUTERS:
        app.include_router(module.router)
    mount_console(app)

    async def database_ready() -> str | None:
        def ping() -> None:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        await asyncio.to_thread(ping)
        return None

    mount_observability(
        app, "notify", dict(readiness) if readiness is not None else {"database": database_ready}, settings=settings
    )
    secure_api(app, "notify", settings, per_route=_route_statuses)
    return app
