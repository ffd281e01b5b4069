"""Prometheus plumbing every service shares: the /metrics route and health endpoints.

Metric names follow `mews_<service>_<thing>_<unit>`; labels are drawn from a small fixed set
(material, source, channel, outcome, severity, status, topic) so dashboards can join across services.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Gauge, generate_latest

ReadinessCheck = Callable[[], Awaitable[str | None]]

BUILD_INFO = Gauge("mews_build_info", "Constant 1, labelled with the service name and version",
                   ["service", "version"])
# One gauge for every consuming service, so one dashboard panel and one alert rule cover them all.
CONSUMER_LAG = Gauge("mews_consumer_lag_messages", "Messages on a topic not yet processed by the service",
                     ["service", "topic"])


def mount_observability(app: FastAPI, service: str, checks: dict[str, ReadinessCheck] | None = None,
                        registry: CollectorRegistry = REGISTRY) -> None:
    """Add /metrics, /healthz (the process answers) and /readyz (its dependencies answer) to an app."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        BUILD_INFO.labels(service, version("mews")).set(1)
    except PackageNotFoundError:
        BUILD_INFO.labels(service, "dev").set(1)
    checks = checks or {}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

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
