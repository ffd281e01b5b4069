"""The email that carries console sign-in links: one message to the address, a link per organisation the address
belongs to, sent through the configured SMTP server like every other email of mews."""

from __future__ import annotations

import html
import logging
import uuid
from dataclasses import dataclass

from prometheus_client import Counter

from services.notify.delivery.email import RenderedEmail, build_message, deliver_email
from services.notify.settings import NotifySettings
from services.notify.store.models import utcnow
from services.notify.worker import smtp_from

log = logging.getLogger(__name__)
LINK_MAILS = Counter("mews_notify_console_sign_in_mails_total", "Sign-in link emails, by outcome", ["outcome"])
LINK_PATH = "/console/sign-in/link/"

_TEXTS = {
    "en": {
        "subject": "mews: your sign-in link",
        "line": "Sign in to {organisation} ({role}): {url}",
        "role_admin": "administrator",
        "role_member": "member",
        "note": "Each link works once, within {minutes} minutes. If you did not ask for it, ignore this message: "
        "nobody can sign in without the link.",
    },
    "nl": {
        "subject": "mews: uw inloglink",
        "line": "Inloggen bij {organisation} ({role}): {url}",
        "role_admin": "beheerder",
        "role_member": "lid",
        "note": "Elke link werkt één keer, binnen {minutes} minuten. Hebt u er niet om gevraagd, negeer dit "
        "bericht dan: zonder de link kan niemand inloggen.",
    },
}


@dataclass(frozen=True)
class LinkFor:
    """What the email says of one link: the organisation, the role it signs in with, and the token."""

    organisation: str
    role: str
    token: str


def render_link_email(settings: NotifySettings, links: list[LinkFor], language: str) -> RenderedEmail:
    """Subject, text and HTML of the message, in `language`."""
    words = _TEXTS["nl" if language == "nl" else "en"]
    base = settings.public_base_url.rstrip("/") + LINK_PATH
    minutes = max(1, settings.console_link_ttl_seconds // 60)
    lines = [
        words["line"].format(
            organisation=link.organisation, role=words.get(f"role_{link.role}", link.role), url=base + link.token
        )
        for link in links
    ]
    note = words["note"].format(minutes=minutes)
    text = "\n\n".join([*lines, note]) + "\n"
    items = "".join(
        f'<li><a href="{html.escape(base + link.token)}">{html.escape(link.organisation)}</a> '
        f"({html.escape(words.get(f'role_{link.role}', link.role))})</li>"
        for link in links
    )
    return RenderedEmail(words["subject"], text, f"<ul>{items}</ul><p>{html.escape(note)}</p>")


async def mail_sign_in_links(settings: NotifySettings, address: str, links: list[LinkFor], language: str) -> None:
    """Send the links to the address (after the answer went out, so its timing tells nothing); never raises."""
    config = smtp_from(settings)
    message = build_message(
        config, [address], render_link_email(settings, links, language), f"sign-in-{uuid.uuid4().hex}", utcnow()
    )
    outcome = await deliver_email(config, message)
    LINK_MAILS.labels(outcome.outcome).inc()
    if outcome.outcome != "delivered":
        log.warning("sign-in link email not sent", extra={"links": len(links), "reason": outcome.error})
