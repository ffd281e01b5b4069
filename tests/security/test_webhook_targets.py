"""Webhook targets the outbound policy refuses are a 422 when a channel is created or changed (hole 3 of
issue 11: the 6to4 form of the metadata address and port 0 were accepted)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.notify.api.app import create_app
from services.notify.settings import NotifySettings
from services.notify.store.channels import target_refusal
from services.notify.store.db import migrate

BOOTSTRAP = "bootstrap-token-for-security-tests-0123456789"
REFUSED = [
    "https://[2002:a9fe:a9fe::]/hook",  # 6to4 of 169.254.169.254
    "https://93.184.216.34:0/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "https://[::a9fe:a9fe]/hook",  # IPv4-compatible
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00::1]/hook",
    "https://127.0.0.1:8443/hook",
    "https://0.0.0.0/hook",
]


@pytest.fixture
def admin(tmp_path):
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    migrate(url)
    app = create_app(
        NotifySettings(database_url=url, bootstrap_admin_token=BOOTSTRAP, allow_private_webhook_targets=False)
    )
    with TestClient(app) as client:
        created = client.post(
            "/v1/organisations",
            json={"name": "Target BV", "kind": "company"},
            headers={"Authorization": f"Bearer {BOOTSTRAP}"},
        )
        assert created.status_code == 201, created.text
        client.headers["Authorization"] = f"Bearer {created.json()['api_key']}"
        yield client


@pytest.mark.parametrize("target", REFUSED)
def test_a_refused_webhook_target_is_a_422_at_creation(admin, target: str) -> None:
    answer = admin.post("/v1/channels", json={"kind": "webhook", "target": target})
    assert answer.status_code == 422, (target, answer.status_code, answer.text)


def test_a_public_target_is_accepted_and_cannot_be_changed_to_a_refused_one(admin) -> None:
    created = admin.post("/v1/channels", json={"kind": "webhook", "target": "https://93.184.216.34/hook"})
    assert created.status_code == 201, created.text
    channel = created.json()["id"]
    for target in ("https://[2002:a9fe:a9fe::]/hook", "https://93.184.216.34:0/hook"):
        changed = admin.patch(f"/v1/channels/{channel}", json={"target": target})
        assert changed.status_code == 422, (target, changed.text)
    assert admin.get(f"/v1/channels/{channel}").json()["target"] == "https://93.184.216.34/hook"


TEAMS_URL = (
    "https://93.184.216.34/workflows/1f2e/triggers/manual/paths/invoke?api-version=1&sig=S3cr3tSignaturePart0123456789"
)
SLACK_URL = "https://93.184.216.34/services/T0000/B0000/XXXXsecretXXXXtoken99"


@pytest.mark.parametrize("kind", ["teams", "slack"])
@pytest.mark.parametrize("target", REFUSED)
def test_a_refused_teams_or_slack_target_is_a_422_at_creation(admin, kind: str, target: str) -> None:
    answer = admin.post("/v1/channels", json={"kind": kind, "target": target})
    assert answer.status_code == 422, (kind, target, answer.status_code, answer.text)


@pytest.mark.parametrize("kind", ["teams", "slack"])
def test_a_teams_or_slack_channel_takes_no_secret_and_needs_https_outside_development(admin, kind: str) -> None:
    assert (
        admin.post(
            "/v1/channels", json={"kind": kind, "target": "https://93.184.216.34/hook", "secret": "whsec_" + "A" * 40}
        ).status_code
        == 422
    )
    # The app under test runs in development; outside it the settings ask for https, which the check enforces.
    assert target_refusal(kind, "http://93.184.216.34/hook", require_https=True, allow_private=False) == (
        "scheme must be https outside development"
    )


@pytest.mark.parametrize(("kind", "url"), [("teams", TEAMS_URL), ("slack", SLACK_URL)])
def test_a_teams_or_slack_url_is_its_secret_never_shown_again_nor_logged(admin, kind: str, url: str, caplog) -> None:
    secret_part = url.split("/", 3)[3][:-4]
    with caplog.at_level("DEBUG"):
        created = admin.post("/v1/channels", json={"kind": kind, "target": url})
        assert created.status_code == 201, created.text
        channel = created.json()["id"]
        answers = [
            created,
            admin.get("/v1/channels"),
            admin.get(f"/v1/channels/{channel}"),
            admin.patch(f"/v1/channels/{channel}", json={"language": "nl"}),
        ]
    assert created.json()["secret"] is None
    assert created.json()["target"] == f"https://93.184.216.34/…{url[-4:]}"
    assert [a.status_code for a in answers] == [201, 200, 200, 200]
    for answer in answers:
        assert secret_part not in answer.text
    assert caplog.records
    assert all(secret_part not in repr(vars(record)) for record in caplog.records)
    assert admin.post(f"/v1/channels/{channel}/rotate-secret").status_code == 422
