"""The unsubscribe page a link in a notification opens, through the real app on a migrated database."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.notify.ack_links import unsubscribe_url
from services.notify.store.models import Channel
from tests.security.apps import new_organisation, notify_app


def test_the_unsubscribe_page_of_a_chat_card_speaks_of_a_channel_and_never_shows_its_url(tmp_path) -> None:
    app = notify_app(tmp_path / "notify.db")
    with TestClient(app) as client:
        acme = new_organisation(client, "Acme")
        with app.state.sessions() as session:
            channel = Channel(
                organisation_id=acme["organisation"]["id"],
                kind="teams",
                language="nl",
                target="https://example.webhook.office.com/workflows/secret-path",
            )
            session.add(channel)
            session.commit()
            link = unsubscribe_url(app.state.settings, channel.id, channel.organisation_id)
        page = client.get(link.replace(app.state.settings.public_base_url, ""))
        assert page.status_code == 200
        assert "Na uw bevestiging krijgt dit kanaal geen meldingen" in page.text
        assert "secret-path" not in page.text
        done = client.post(link.replace(app.state.settings.public_base_url, ""))
        assert "Dit kanaal krijgt geen meldingen van mews meer." in done.text
