"""What every mews HTTP API installs: security headers, problem-details errors, the authentication throttle."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi import FastAPI
from fastapi.routing import APIRoute

from shared.headers import SecurityHeaders
from shared.problems import document_problems, install_problem_handlers
from shared.settings import CommonSettings
from shared.throttle import AuthThrottle


def secure_api(
    app: FastAPI, service: str, settings: CommonSettings, per_route: Callable[[APIRoute], Iterable[int]] | None = None
) -> None:
    """Install the headers middleware, the problem handlers and documentation, and the throttle on `app`."""
    app.add_middleware(SecurityHeaders)
    install_problem_handlers(app)
    document_problems(app, per_route)
    app.state.auth_throttle = AuthThrottle(service, settings.auth_failure_limit, settings.auth_failure_window_seconds)
