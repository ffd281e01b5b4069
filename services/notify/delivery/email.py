"""Email client: render the notification from templates (nl, en; text and HTML) and send it over SMTP."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notify.delivery import locale
from services.notify.delivery.locale import localise_alert
from services.notify.delivery.outcome import Outcome

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("nl", "en")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
)


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to hand mail over; the password never appears in a repr or a log."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 20.0


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(
    kind: str, payload: dict[str, Any], language: str, links: dict[str, str], zone: str | None = None
) -> RenderedEmail:
    """Subject, text and HTML of a notification (`alert`, `resolved`, `digest` or `admin_notice`), in `language`
    with dates in the time zone `zone` (UTC when None); each alert's `l` is what the templates show of it."""
    language = language if language in LANGUAGES else "en"
    name = "admin_notice" if kind == "admin_notice" else "alert"
    alerts = [{**a, "l": localise_alert(a, language, zone)} for a in payload.get("alerts", [])]
    context = {
        "kind": kind,
        "p": payload,
        "links": links,
        "alerts": alerts,
        "when": lambda value: locale.when(value, language, zone),
        "channel_kind": locale.channel_kind(payload.get("channel_kind", "webhook"), language),
    }
    subject = _env.get_template(f"{name}.{language}.subject.txt").render(context).strip()
    text = _env.get_template(f"{name}.{language}.txt").render(context)
    html = _env.get_template(f"{name}.{language}.html").render(context)
    return RenderedEmail(" ".join(subject.split()), text, html)


def build_message(
    config: SmtpConfig, recipients: list[str], rendered: RenderedEmail, message_id: str, now: datetime
) -> EmailMessage:
    """A multipart text+HTML message; its Message-ID is the notification's, so a resend is recognisable."""
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message_id}@mews>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


def send_message(config: SmtpConfig, msg: EmailMessage) -> None:
    """Hand one message to the SMTP server (STARTTLS and login when configured); raises on failure."""
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.user:
            smtp.login(config.user, config.password)
        smtp.send_message(msg)


async def deliver_email(config: SmtpConfig, msg: EmailMessage, executor: Executor | None = None) -> Outcome:
    """Send in a thread (of `executor`, so a hanging SMTP server cannot take every thread) so the event loop
    keeps going; never raises."""
    try:
        await asyncio.get_running_loop().run_in_executor(executor, send_message, config, msg)
    except smtplib.SMTPResponseException as exc:
        return Outcome("retry", exc.smtp_code, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:500])
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome("retry", None, f"{type(exc).__name__}: {exc}"[:500])
    return Outcome("delivered", 250)
