"""schemathesis against each app in-process (ASGI): no 5xx, and every answer as the OpenAPI document says.

Each operation gets a bounded number of generated requests, valid ones and invalid ones (MEWS_FUZZ_EXAMPLES
each, default 15), so the suite stays short in CI; a longer local run is the same test with a bigger number.
schemathesis' own pytest plugin predates pytest 9, so the operations are parametrized here and each one is
driven through hypothesis directly.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from services.notify.api.app import create_app as create_notify_app
from services.notify.settings import NotifySettings
from shared.kafka import ensure_topics

from .apps import BOOTSTRAP, INGEST_KEY, READ_KEY, ingest_app, new_organisation, notify_app, scoring_app

# schemathesis also sends wrong keys (expecting 401): the throttle is tested on its own, not in the way here.
UNTHROTTLED = {"auth_failure_limit": 10**9}
# What is asserted is no 5xx and conformance (status, content type, headers, body schema, refused wrong keys).
# schemathesis' two guesses about intent are left out: that a schema-valid request must succeed (a subscription
# to both a material and a product is refused by a rule no schema says) and that a schema-invalid one must be
# refused (unknown query parameters are ignored, as HTTP APIs do; a push answers each item on its own, 202 with
# the invalid ones rejected and why). Their answers are still checked for shape.
INTENT_GUESSES = [positive_data_acceptance, negative_data_rejection]
EXAMPLES = int(os.environ.get("MEWS_FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def operations(app: FastAPI) -> list[str]:
    """`METHOD /path` of every documented operation."""
    return [f"{method.upper()} {path}" for path, item in app.openapi()["paths"].items() for method in item]


def fuzz(schema: schemathesis.BaseSchema, operation: str, headers: dict[str, str]) -> None:
    """Valid and invalid requests to one operation; any 5xx or non-conforming answer fails the test."""
    method, path = operation.split(" ", 1)
    endpoint = schema[path][method]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=endpoint.as_strategy(generation_mode=mode))
        @FUZZ
        def call(case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=INTENT_GUESSES)

        try:
            call()
        except Unsatisfiable:
            # e.g. a path of one string parameter: every request to it is valid, there is no invalid one.
            assert mode is GenerationMode.NEGATIVE


# The operation lists come from apps built without state: building one costs no broker or database.
@pytest.mark.parametrize("operation", operations(scoring_app()))
def test_scoring_api_conforms_and_never_fails(operation: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", scoring_app(**UNTHROTTLED))
    fuzz(schema, operation, {"Authorization": f"Bearer {READ_KEY}"})


@pytest.fixture(scope="module")
def notify_api(tmp_path_factory) -> tuple[schemathesis.BaseSchema, dict[str, str]]:
    app = notify_app(tmp_path_factory.mktemp("notify") / "notify.db", **UNTHROTTLED)
    with TestClient(app) as client:
        admin_key = new_organisation(client)["api_key"]
    return schemathesis.openapi.from_asgi("/openapi.json", app), {"Authorization": f"Bearer {admin_key}"}


@pytest.mark.parametrize("operation", operations(create_notify_app(NotifySettings(database_url="sqlite://"))))
def test_notify_api_conforms_and_never_fails(operation: str, notify_api) -> None:
    fuzz(notify_api[0], operation, notify_api[1])


GOVERNMENT_OPERATIONS = ["GET /v1/exposure", "POST /v1/stress-tests", "GET /v1/crisis"]


@pytest.fixture(scope="module")
def notify_api_for_government(tmp_path_factory) -> tuple[schemathesis.BaseSchema, dict[str, str]]:
    app = notify_app(tmp_path_factory.mktemp("notify-gov") / "notify.db", **UNTHROTTLED)
    with TestClient(app) as client:
        answer = client.post(
            "/v1/organisations",
            json={"name": "Ministry", "kind": "ministry", "clearance": "government"},
            headers={"Authorization": f"Bearer {BOOTSTRAP}"},
        )
        assert answer.status_code == 201, answer.text
    return schemathesis.openapi.from_asgi("/openapi.json", app), {"Authorization": f"Bearer {answer.json()['api_key']}"}


@pytest.mark.parametrize("operation", GOVERNMENT_OPERATIONS)
def test_the_government_views_conform_and_never_fail_past_the_clearance_check(
    operation: str, notify_api_for_government
) -> None:
    fuzz(notify_api_for_government[0], operation, notify_api_for_government[1])


@pytest.fixture(scope="module")
def ingest_api(kafka_bootstrap, tmp_path_factory):
    namespace = f"sec{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(kafka_bootstrap, namespace))
    yield schemathesis.openapi.from_asgi(
        "/openapi.json", ingest_app(kafka_bootstrap, namespace, tmp_path_factory.mktemp("ingest"), **UNTHROTTLED)
    )
    shutdown_lifespans()  # schemathesis keeps an app's lifespan running until asked: close its producer


@pytest.mark.integration
@pytest.mark.parametrize("operation", operations(ingest_app("127.0.0.1:1", "", "unused")))
def test_ingest_api_conforms_and_never_fails(operation: str, ingest_api) -> None:
    fuzz(ingest_api, operation, {"Authorization": f"Bearer {INGEST_KEY}"})
