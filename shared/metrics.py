"""Prometheus plumbing every service shares: the /metrics route and health endpoints.

Metric names follow `mews_<service>_<thing>_<unit>`; labels are drawn from a small fixed set
(material, source, channel, outcome, severity, status, topic) so dashboards can join across services.
"""

from __future__ import annotations

import functools
import hmac
from bisect import bisect_left
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.metrics import MetricWrapperBase

from shared.service_keys import bearer_token
from shared.settings import CommonSettings

ReadinessCheck = Callable[[], Awaitable[str | None]]

BUILD_INFO = Gauge("mews_build_info", "Constant 1, labelled with the service name and version", ["service", "version"])
# One gauge for every consuming service, so one dashboard panel and one alert rule cover them all.
CONSUMER_LAG = Gauge(
    "mews_consumer_lag_messages", "Messages on a topic not yet processed by the service", ["service", "topic"]
)


_Metric = TypeVar("_Metric", bound=MetricWrapperBase)


@functools.cache  # label values repeat (materials, rules, topics): each child is looked up once
def child(metric: _Metric, *labels: str) -> _Metric:
    """`metric.labels(*labels)`, found once: a stream worker sets children per input or per fetch."""
    return metric.labels(*labels)


def observe_counted(histogram: Histogram, counted: Iterable[tuple[float, int]]) -> None:
    """`histogram.observe(a)` `n` times for every (a, n), with one increment per bucket touched.

    A stream worker observes a latency per input; at thousands of inputs a second the observe calls were a cost of
    their own, and a batch's inputs share a few CloudEvents times, so a few amounts. Uses prometheus_client's bucket
    counters as `Histogram.observe` does (each bucket counts the amounts up to its bound that no lower bound took);
    tests/unit/shared pins that the result is the same.
    """
    counts: Counter[int] = Counter()
    bounds = histogram._upper_bounds
    total = 0.0
    for amount, times in counted:
        total += amount * times
        if amount == amount:  # a NaN falls in no bucket, as with observe
            counts[bisect_left(bounds, amount)] += times
    if counts:
        histogram._sum.inc(total)
        for index, count in counts.items():
            histogram._buckets[index].inc(count)


def serve_metrics_port(settings: CommonSettings, registry: CollectorRegistry = REGISTRY) -> Callable[[], None]:
    """With MEWS_METRICS_PORT, serve /metrics on that port (a thread of its own) instead of the API's.

    Returns what stops it (nothing to stop without the setting); the launchers let it end with the process.
    """
    if settings.metrics_port is None:
        return lambda: None
    server, _ = start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    return server.shutdown


def mount_observability(
    app: FastAPI,
    service: str,
    checks: dict[str, ReadinessCheck] | None = None,
    registry: CollectorRegistry = REGISTRY,
    settings: CommonSettings | None = None,
) -> None:
    """Add /metrics, /healthz (the process answers) and /readyz (its dependencies answer) to an app.

    /metrics requires `Authorization: Bearer <MEWS_METRICS_TOKEN>` when that is set, and is left off the app
    when MEWS_METRICS_PORT moves it to a port of its own (`serve_metrics_port`).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        BUILD_INFO.labels(service, version("mews")).set(1)
    except PackageNotFoundError:
        BUILD_INFO.labels(service, "dev").set(1)
    checks = checks or {}

    token = settings.metrics_token.get_secret_value().encode() if settings and settings.metrics_token else None

    def metrics(request: Request) -> Response:
        if token is not None:
            presented = bearer_token(request.headers.get("authorization"))
            if presented is None or not hmac.compare_digest(presented.encode(), token):
                request.app.state.auth_throttle.refuse(request, presented, "the metrics token is required")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    if settings is None or settings.metrics_port is None:
        app.get("/metrics", include_in_schema=False)(metrics)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict:
        failures = {}
        for name, check in checks.items():
            try:
                problem = await check()
            except Exception as exc:  # a readiness probe reports every failure, whatever its kind
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                failures[name] = problem
        if failures:
            response.status_code = 503
            return {"status": "unavailable", "service": service, "failures": failures}
        return {"status": "ready", "service": service, "checks": sorted(checks)}
