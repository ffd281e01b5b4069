"""Problem details (RFC 9457): the answers of a small app, and the OpenAPI document that describes them."""

from __future__ import annotations

import jsonschema
from fastapi import Depends, FastAPI, HTTPException
from fastapi.testclient import TestClient

from shared.api import secure_api
from shared.problems import answers
from shared.settings import CommonSettings


@answers(401, 429)
def caller() -> str:
    return "someone"


def make_app() -> FastAPI:
    app = FastAPI(title="t", version="1")

    @app.get("/things/{n}")
    def thing(n: int, who: str = Depends(caller)) -> dict:
        if n == 404:
            raise HTTPException(404, "no such thing")
        if n == 503:
            raise HTTPException(503, {"error": "busy", "items": [1, 2]}, headers={"Retry-After": "3"})
        if n == 500:
            raise RuntimeError("secret internals")
        return {"n": n}

    secure_api(app, "test", CommonSettings(), per_route=lambda route: {404, 503})
    return app


def test_a_validation_error_has_the_documented_shape() -> None:
    client = TestClient(make_app())
    answer = client.get("/things/seven")
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["errors"][0]["loc"] == ["path", "n"]
    assert body["status"] == 422
    document = client.get("/openapi.json").json()
    schema = document["paths"]["/things/{n}"]["get"]["responses"]["422"]["content"]["application/problem+json"]
    assert schema["schema"] == {"$ref": "#/components/schemas/ValidationProblem"}
    resolver = {"$ref": "#/components/schemas/ValidationProblem", "components": document["components"]}
    jsonschema.validate(body, resolver)


def test_http_errors_and_crashes_are_problems_and_crashes_say_nothing() -> None:
    client = TestClient(make_app(), raise_server_exceptions=False)
    assert client.get("/things/404").json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no such thing",
    }
    busy = client.get("/things/503")
    assert busy.headers["retry-after"] == "3"
    assert busy.json()["detail"] == "busy"
    assert busy.json()["items"] == [1, 2]  # an extension member, beside the standard ones
    crash = client.get("/things/500")
    assert crash.status_code == 500
    assert crash.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in crash.text


def test_the_document_lists_every_status_an_operation_can_answer() -> None:
    document = TestClient(make_app()).get("/openapi.json").json()
    responses = document["paths"]["/things/{n}"]["get"]["responses"]
    assert set(responses) == {"200", "401", "404", "422", "429", "500", "503"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
