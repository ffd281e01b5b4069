"""Errors as RFC 9457 problem details (`application/problem+json`), the same in every mews API.

Every error answer carries `type`, `title`, `status` and `detail`; a validation error (422) adds `errors`,
one entry per problem with its location, message and type. The OpenAPI document lists, for each operation,
every status it can answer with this schema: the statuses its dependencies declare with `answers(...)`, the
ones the app adds per route, 422 where it takes parameters, and 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.openapi import utils as openapi_utils
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, for people (title, detail) and programs (type, status)."""

    type: str = Field(default="about:blank", description="A URI naming the kind of problem")
    title: str = Field(description="The HTTP status phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong with this request")


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query, path or header, then field names or indexes")
    msg: str
    type: str


class ValidationProblem(Problem):
    """A 422: the request's parameters or body do not match the operation's schema."""

    errors: list[ValidationIssue] = Field(description="Every problem found, not only the first")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any) -> JSONResponse:
    """An error answer in RFC 9457 form; `extensions` are extra members (e.g. per-item results)."""
    if status == 422 and "errors" not in extensions:  # one shape for every 422, as its schema says
        extensions["errors"] = [{"loc": ["body"], "msg": detail, "type": "value_error"}]
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, **extensions}
    return ProblemResponse(body, status_code=status, headers=headers)


async def _http_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    extensions: dict[str, Any] = {}
    detail = exc.detail
    if isinstance(detail, dict):  # e.g. a 503 with the results of the items already taken
        extensions = {k: v for k, v in detail.items() if k not in ("error", "type", "title", "status", "detail")}
        detail = str(detail.get("error", HTTPStatus(exc.status_code).phrase))
    return problem(exc.status_code, str(detail), headers=dict(exc.headers or {}), **extensions)


async def _validation_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The offending input is left out: it may be a secret pasted in the wrong field.
    issues = [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    where = ", ".join(".".join(str(p) for p in issue["loc"]) for issue in issues[:3])
    return problem(422, f"the request does not match the schema ({where})", errors=issues)


async def _internal_problem(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path, "method": request.method})
    return problem(500, "internal error; it has been logged")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer HTTP errors, validation errors and anything unhandled as problem details."""
    app.add_exception_handler(StarletteHTTPException, _http_problem)
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(Exception, _internal_problem)


def answers(*statuses: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the error statuses a FastAPI dependency can answer, for the OpenAPI document."""

    def mark(dependency: Callable[..., Any]) -> Callable[..., Any]:
        dependency.problem_statuses = frozenset(statuses)  # type: ignore[attr-defined]
        return dependency

    return mark


def _declared(dependant: Dependant) -> set[int]:
    found = set(getattr(dependant.call, "problem_statuses", ()))
    for sub in dependant.dependencies:
        found |= _declared(sub)
    return found


def route_statuses(route: APIRoute) -> set[int]:
    """The error statuses a route can answer: its dependencies', 422 when it takes input, and 500."""
    found = _declared(route.dependant) | {500}
    dependant = route.dependant
    if dependant.path_params or dependant.query_params or dependant.header_params or route.body_field:
        found.add(422)
    if route.body_field:
        found.add(400)  # a body that is not JSON at all
    return found


def api_routes(app: FastAPI) -> list[APIRoute]:
    """The app's operations as the OpenAPI document sees them, included routers resolved (FastAPI >= 0.13x
    nests them; older versions list them flat)."""
    if hasattr(routing, "iter_route_contexts"):
        found = (openapi_utils._get_api_route_for_openapi(c) for c in routing.iter_route_contexts(app.routes))
        return [r for r in found if r is not None]  # type: ignore[misc]
    return [r for r in app.routes if isinstance(r, APIRoute)]


def document_problems(app: FastAPI, per_route: Callable[[APIRoute], Iterable[int]] | None = None) -> None:
    """Make the app's OpenAPI document list every error status of every operation, as problem details."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = openapi_utils.get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, ValidationProblem):
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(model_schema.pop("$defs", {}))
            schemas[model.__name__] = model_schema
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for route in api_routes(app):
            if not route.include_in_schema:
                continue
            statuses = route_statuses(route) | set(per_route(route) if per_route else ())
            statuses |= {int(s) for s in route.responses if str(s).isdigit() and int(s) >= 400}
            for method in route.methods or ():
                operation = document["paths"][route.path_format][method.lower()]
                responses = operation.setdefault("responses", {})
                for status in sorted(statuses):
                    name = "ValidationProblem" if status == 422 else "Problem"
                    described = responses.get(str(status), {}).get("description") or HTTPStatus(status).phrase
                    responses[str(status)] = {
                        "description": described,
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                    }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
