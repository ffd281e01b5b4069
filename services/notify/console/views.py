"""The console's routes: thin pages over the notify API's own route functions and store, with its roles.

Every action calls what the JSON API calls (the route function itself, so the role checks, audit logs, metrics and
commits are the API's), and every store query is scoped to the signed-in organisation: an id from another
organisation is "not found", whether it came from a link or was typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from services.notify.api import alerts as alerts_api
from services.notify.api import channels as channels_api
from services.notify.api import deliveries as deliveries_api
from services.notify.api import exposure as exposure_api
from services.notify.api import feedback as feedback_api
from services.notify.api import subscriptions as subscriptions_api
from services.notify.api.deps import db_session, notify_settings
from services.notify.auth import Principal, authenticate, principal_of_key, principal_of_user, tenant_admin
from services.notify.console import chart, desk, links
from services.notify.console import session as sessions
from services.notify.console.bom import parse_bom
from services.notify.console.probe import TESTABLE_KINDS, send_probe
from services.notify.console.words import WORDS, language_of_request, translate
from services.notify.delivery import locale
from services.notify.settings import NotifySettings
from services.notify.store import alerts as alert_store
from services.notify.store import channels as channel_store
from services.notify.store import products as product_store
from services.notify.store import sign_in_links
from services.notify.store import subscriptions as subscription_store
from services.notify.store.deliveries import REPLAYABLE
from services.notify.store.errors import Conflict, NotFound, Rejected
from services.notify.store.models import FEEDBACK_REASONS, ApiKey, Channel, Organisation, User, utcnow
from services.notify.store.open_breaches import open_breaches
from services.notify.store.products import BomLineSpec
from shared.catalog import load_catalog
from shared.throttle import AuthThrottle, auth_throttle

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
# The console's pages load their own stylesheet and nothing else: no script, no frame, no foreign origin.
CONSOLE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
PAGES = Counter("mews_notify_console_pages_total", "Console pages served, by page and status", ["page", "status"])
SIGN_INS = Counter("mews_notify_console_sign_ins_total", "Console sign-ins, by outcome", ["outcome"])
ACTIONS = Counter(
    "mews_notify_console_actions_total", "Console form actions, by action and outcome", ["action", "outcome"]
)
INBOX_PAGE = 100

router = APIRouter(prefix="/console", include_in_schema=False)


class SignInRequired(Exception):  # noqa: N818 (a redirect, not a failure)
    """The page needs a signed-in visitor."""


class PageRefused(Exception):  # noqa: N818
    """A page or action answered with an error page: its status, a word key and a detail."""

    def __init__(self, status_code: int, word: str, detail: str = "") -> None:
        super().__init__(detail)
        self.status_code, self.word, self.detail = status_code, word, detail


@dataclass
class Visit:
    """One request to the console: its session, the signed-in principal if any, and the reader's language."""

    request: Request
    db: Session
    settings: NotifySettings
    session: sessions.ConsoleSession
    principal: Principal | None
    organisation: Organisation | None
    language: str
    cookie_changed: bool = False

    @property
    def key(self) -> str:
        return self.settings.link_signing_key.get_secret_value()

    @property
    def csrf(self) -> str:
        return sessions.csrf_token(self.key, self.session)

    def member(self) -> Principal:
        if self.principal is None:
            raise SignInRequired
        return self.principal

    def admin(self) -> Principal:
        try:
            return tenant_admin(self.member())
        except HTTPException:
            raise PageRefused(403, "admin_only") from None

    def government(self) -> Principal:
        try:
            return exposure_api.government_reader(self.member())
        except HTTPException:
            raise PageRefused(403, "government_only") from None

    def start_session(self, subject: str) -> None:
        self.session = sessions.new_session(subject, timedelta(seconds=self.settings.console_session_ttl_seconds))
        self.cookie_changed = True


def visit(
    request: Request, db: Session = Depends(db_session), settings: NotifySettings = Depends(notify_settings)
) -> Visit:
    """FastAPI dependency: the request's session (a fresh anonymous one when it has none valid) and principal."""
    key = settings.link_signing_key.get_secret_value()
    found = sessions.decode_session(key, request.cookies.get(sessions.COOKIE))
    language = language_of_request(
        request.cookies.get(sessions.LANGUAGE_COOKIE), request.headers.get("accept-language")
    )
    current = Visit(
        request,
        db,
        settings,
        found or sessions.new_session("", timedelta(hours=1)),
        None,
        None,
        language,
        cookie_changed=found is None,
    )
    if found is not None and found.signed_in:
        if found.user_id:
            user = db.get(User, found.user_id)
            principal = principal_of_user(db, user) if user is not None else None
        else:
            api_key = db.get(ApiKey, found.key_id)
            principal = principal_of_key(db, api_key) if api_key is not None else None
        if principal is None:  # the key was revoked, the user or organisation removed: the session ends with it
            current.start_session("")
        else:
            current.principal = principal
            current.organisation = db.get(Organisation, principal.organisation_id)
    return current


def _set_cookies(visit_: Visit, response: Response) -> Response:
    if visit_.cookie_changed:
        response.set_cookie(
            sessions.COOKIE,
            sessions.encode_session(visit_.key, visit_.session),
            max_age=visit_.settings.console_session_ttl_seconds,
            path="/console",
            httponly=True,
            secure=visit_.settings.is_hardened,
            samesite="lax",
        )
    response.headers["content-security-policy"] = CONSOLE_POLICY
    return response


def render(visit_: Visit, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page in the visitor's language, with the session cookie when it changed."""
    language = visit_.language

    def t(key: str, **fields: Any) -> str:
        text = translate(key, language)
        return text.format(**fields) if fields else text

    def share(fraction: float) -> str:  # locale.percent takes percent; shares and ratios are fractions
        return locale.percent(fraction * 100, language)

    def component(name: str) -> str:  # scoring's composite components; a new one shows by its own name
        key = f"component_{name}"
        return translate(key, language) if key in WORDS else name.replace("_", " ")

    page = template.removesuffix(".html")
    PAGES.labels(page, str(status_code)).inc()
    response = TEMPLATES.TemplateResponse(
        visit_.request,
        template,
        status_code=status_code,
        context={
            "t": t,
            "share": share,
            "component": component,
            "lang": language,
            "visit": visit_,
            "principal": visit_.principal,
            "organisation": visit_.organisation,
            "csrf": visit_.csrf,
            "page": page,
            "locale": locale,
            "here": _here(visit_.request),
            "notice": _notice(visit_.request.query_params.get("done", ""), language),
            "grafana_url": visit_.settings.grafana_url.rstrip("/"),
            **context,
        },
    )
    return _set_cookies(visit_, response)


def _notice(done: str, language: str) -> str:
    """The confirmation a redirect after an action asked for (`?done=ack`); nothing for an unknown word."""
    return translate(f"done_{done}", language) if f"done_{done}" in WORDS else ""


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _safe_next(target: str | None) -> str:
    """Only a console path: never another site (`//host`, `/\\host`) after sign-in or a language switch."""
    if target and target.startswith("/console") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return "/console"


def _redirect(visit_: Visit, target: str, done: str = "") -> Response:
    if done:
        target += ("&" if "?" in target else "?") + urlencode({"done": done})
    return _set_cookies(visit_, RedirectResponse(target, status_code=303))


async def checked_form(request: Request, v: Visit = Depends(visit)) -> Any:
    """FastAPI dependency: the posted form after its CSRF token was checked against the session.

    The only async part of an action: the routes themselves are plain functions, so FastAPI runs their database
    work in its thread pool, never on the event loop the notifier shares with the API.
    """
    form = await request.form()
    presented = form.get("csrf")  # a file posted under the name is no token
    if not sessions.csrf_valid(v.key, v.session, presented if isinstance(presented, str) else None):
        ACTIONS.labels(request.url.path.rsplit("/", 1)[-1][:32], "csrf_refused").inc()
        raise PageRefused(403, "csrf")
    return form


@contextlib.contextmanager
def _store_errors(action: str) -> Iterator[None]:
    """Turn the store's and the API's refusals into an error page; count the action's outcome."""
    try:
        yield
    except NotFound:
        ACTIONS.labels(action, "not_found").inc()
        raise PageRefused(404, "not_found") from None
    except (Rejected, Conflict) as exc:
        ACTIONS.labels(action, "rejected").inc()
        raise PageRefused(422, "invalid", str(exc)) from None
    except ValidationError as exc:
        ACTIONS.labels(action, "rejected").inc()
        raise PageRefused(
            422, "invalid", "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        ) from None
    except HTTPException as exc:
        ACTIONS.labels(action, "refused").inc()
        raise PageRefused(exc.status_code, "forbidden", str(exc.detail)) from None
    ACTIONS.labels(action, "ok").inc()


# --- session: sign-in, sign-out, language -------------------------------------------------------------------


@router.get("")
def home(v: Visit = Depends(visit)) -> Response:
    principal = v.member()
    return _redirect(v, "/console/crisis" if principal.may_see_exposure else "/console/alerts")


@router.get("/sign-in")
def sign_in_page(next_: str = Query(default="/console", alias="next"), v: Visit = Depends(visit)) -> Response:
    return render(v, "sign_in.html", next=_safe_next(next_))


@router.post("/sign-in")
def sign_in(v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    presented = str(form.get("api_key", "")).strip()
    target = _safe_next(str(form.get("next", "")))
    principal = authenticate(v.db, v.settings, presented) if presented else None
    if principal is None or principal.organisation_id is None:
        try:
            if principal is None:
                auth_throttle(v.request).refuse(v.request, presented or None)
        except HTTPException as exc:
            word = "throttled" if exc.status_code == 429 else "bad_key"
        else:
            word = "no_organisation"
        SIGN_INS.labels(word).inc()
        log.info("console sign-in refused", extra={"reason": word})
        return render(v, "sign_in.html", 401 if word != "throttled" else 429, next=target, error=word)
    v.db.commit()  # the key's last_used_at
    v.start_session(principal.key_id or "")
    SIGN_INS.labels("ok").inc()
    log.info("console sign-in", extra={"organisation_id": principal.organisation_id, "by": principal.actor})
    return _redirect(v, target)


# A shape check only: whether anyone has the address is never told.
_EMAIL_SHAPE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


def _link_throttle(request: Request) -> AuthThrottle:
    return request.app.state.console_link_throttle


@router.post("/sign-in/email")
def request_sign_in_link(v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    address = str(form.get("email", "")).strip()
    if not _EMAIL_SHAPE.fullmatch(address):
        SIGN_INS.labels("link_bad_address").inc()
        return render(v, "sign_in.html", 422, next="/console", error="bad_email")
    client = v.request.client.host if v.request.client is not None else "unknown"
    # Every request counts, known address or not, so the throttle's answer tells nothing about accounts.
    if _link_throttle(v.request).over_limit(("address", client), ("email", address.lower())) is not None:
        SIGN_INS.labels("link_throttled").inc()
        return render(v, "sign_in.html", 429, next="/console", error="throttled")
    issued = sign_in_links.issue_sign_in_links(
        v.db, address, timedelta(seconds=v.settings.console_link_ttl_seconds), utcnow()
    )
    mailed = [links.LinkFor(i.organisation.name, i.user.role, i.token) for i in issued]
    language = issued[0].user.language if issued else v.language
    v.db.commit()
    SIGN_INS.labels("link_mailed" if mailed else "link_unknown_address").inc()
    log.info(
        "console sign-in link asked for",
        extra={"links": len(mailed), "organisation_ids": [i.organisation.id for i in issued]},
    )
    # The same page whether or not the address is known; the mail goes after the answer, so timing says nothing.
    response = render(v, "sign_in.html", next="/console", link_sent=True)
    if mailed:
        response.background = BackgroundTask(links.mail_sign_in_links, v.settings, address, mailed, language)
    return response


def _link_refused(v: Visit) -> Response:
    SIGN_INS.labels("link_refused").inc()
    return render(v, "sign_in.html", 410, next="/console", error="link_invalid")


@router.get("/sign-in/link/{token}")
def sign_in_link_page(token: str, v: Visit = Depends(visit)) -> Response:
    # Opening the link only asks to confirm: mail scanners that follow links must not use it up.
    user = sign_in_links.find_usable_link(v.db, token, utcnow())
    if user is None:
        return _link_refused(v)
    organisation = v.db.get(Organisation, user.organisation_id)
    response = render(
        v,
        "sign_in_link.html",
        token=token,
        email=user.email,
        organisation_name=organisation.name if organisation is not None else "",
    )
    response.headers["referrer-policy"] = "no-referrer"
    return response


@router.post("/sign-in/link")
def sign_in_with_link(v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    user = sign_in_links.redeem_sign_in_link(v.db, str(form.get("token", "")), utcnow())
    principal = principal_of_user(v.db, user) if user is not None else None
    if user is None or principal is None:
        v.db.rollback()
        return _link_refused(v)
    v.db.commit()
    v.start_session(sessions.USER + user.id)
    SIGN_INS.labels("link_ok").inc()
    log.info(
        "console sign-in",
        extra={"organisation_id": principal.organisation_id, "by": principal.actor, "with": "email_link"},
    )
    return _redirect(v, "/console")


@router.post("/sign-out")
def sign_out(v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    if v.principal is not None:
        log.info("console sign-out", extra={"organisation_id": v.principal.organisation_id, "by": v.principal.actor})
    v.start_session("")
    return _redirect(v, "/console/sign-in")


@router.post("/language")
def switch_language(v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    language = str(form.get("lang", ""))
    response = _redirect(v, _safe_next(str(form.get("next", ""))))
    if language in locale.LANGUAGES:
        response.set_cookie(
            sessions.LANGUAGE_COOKIE,
            language,
            max_age=365 * 24 * 3600,
            path="/console",
            httponly=True,
            secure=v.settings.is_hardened,
            samesite="lax",
        )
    return response


@router.get("/static/console.css")
def stylesheet() -> Response:
    return FileResponse(
        HERE / "static" / "console.css", media_type="text/css", headers={"cache-control": "public, max-age=3600"}
    )


# --- company pages -------------------------------------------------------------------------------------------


def _filter(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


@router.get("/alerts")
def inbox(
    status: str | None = None,
    severity: str | None = None,
    material: str | None = None,
    limit: int = INBOX_PAGE,
    v: Visit = Depends(visit),
) -> Response:
    principal = v.member()
    material = material.strip() if material else None
    limit = max(1, min(limit, 1000))
    with _store_errors("inbox"):
        # The API's list, from its parts: the rows keep their breach, which gives the summary in the reader's
        # language (scoring writes it in English) without loading every breach a second time.
        rows = alert_store.list_alerts(
            v.db,
            principal.organisation_id or "",
            principal.clearance,
            status=_filter(status, ("firing", "resolved")),
            material=material or None,
            severity=_filter(severity, ("warning", "critical")),
            limit=limit,
        )
        muted = alerts_api._muted(v.db, principal, rows, v.settings)
    summaries = {r.id: locale.summary(r.breach, v.language) for r in rows if r.breach}
    shown = [alerts_api.AlertOut.of(r, muted.get(r.id)) for r in rows]
    more = None
    if len(shown) == limit and limit < 1000:
        query = {k: val for k, val in {"status": status, "severity": severity, "material": material}.items() if val}
        more = "/console/alerts?" + urlencode({**query, "limit": min(1000, limit * 2)})
    return render(
        v,
        "inbox.html",
        alerts=shown,
        more=more,
        summaries=summaries,
        filters={"status": status or "", "severity": severity or "", "material": material or ""},
        materials=[m.id for m in load_catalog().materials],
    )


@router.get("/alerts/{alert_id}")
def alert_page(alert_id: str, v: Visit = Depends(visit)) -> Response:
    principal = v.member()
    with _store_errors("alert"):
        detail = alerts_api.get_alert(alert_id, principal=principal, session=v.db, settings=v.settings)
    words = {k: translate(k, v.language) for k in WORDS}
    charts = chart.alert_charts(detail.breach, words, label_time=lambda t: locale.when(t, v.language))
    return render(v, "alert.html", alert=detail, breach=detail.breach, charts=charts, reasons=FEEDBACK_REASONS)


@router.post("/alerts/{alert_id}/ack")
def acknowledge(alert_id: str, v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    principal = v.member()
    with _store_errors("acknowledge"):
        alerts_api.acknowledge(alert_id, principal=principal, session=v.db)
    return _redirect(v, f"/console/alerts/{quote(alert_id)}", "ack")


@router.post("/alerts/{alert_id}/feedback")
def give_feedback(alert_id: str, v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    principal = v.member()
    with _store_errors("feedback"):
        body = feedback_api.FeedbackIn.model_validate(
            {
                "reason": str(form.get("reason", "")),
                "comment": str(form.get("comment", "")),
                "mute": form.get("mute") == "on",
            }
        )
        feedback_api.give_feedback(alert_id, body, principal=principal, session=v.db)
    return _redirect(v, f"/console/alerts/{quote(alert_id)}", "feedback")


def _subscriptions_page(v: Visit, status_code: int = 200, **context: Any) -> Response:
    organisation_id = v.member().organisation_id or ""
    return render(
        v,
        "subscriptions.html",
        status_code,
        subscriptions=subscription_store.list_subscriptions(v.db, organisation_id),
        channels=[
            channels_api.ChannelOut.model_validate(c) for c in channel_store.list_channels(v.db, organisation_id)
        ],
        products=product_store.list_products(v.db, organisation_id),
        materials=load_catalog().materials,
        testable=TESTABLE_KINDS,
        **context,
    )


@router.get("/subscriptions")
def subscriptions_page(v: Visit = Depends(visit)) -> Response:
    return _subscriptions_page(v)


@router.post("/subscriptions")
def subscribe(v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    principal = v.admin()
    target = str(form.get("target", ""))
    kind, _, value = target.partition(":")
    with _store_errors("subscribe"):
        body = subscriptions_api.SubscriptionIn.model_validate(
            {
                "material": value if kind == "material" else None,
                "product_id": value if kind == "product" else None,
                "min_severity": str(form.get("min_severity", "warning")),
                "channel_ids": [str(c) for c in form.getlist("channel_ids")],
            }
        )
        subscriptions_api.create_subscription(body, v.request, principal=principal, session=v.db)
    return _redirect(v, "/console/subscriptions", "subscribed")


@router.post("/channels")
def create_channel(v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    principal = v.admin()
    with _store_errors("create_channel"):
        body = channels_api.ChannelIn.model_validate(
            {
                "kind": str(form.get("kind", "")),
                "target": str(form.get("target", "")).strip(),
                "language": str(form.get("language", v.language)),
            }
        )
        created = channels_api.create_channel(body, v.request, principal=principal, session=v.db, settings=v.settings)
    # The secret is shown on this answer only: it is never stored where a later page could show it.
    return _subscriptions_page(v, 201, secret_for=created.id, secret=created.secret)


@router.post("/channels/{channel_id}/rotate-secret")
def rotate_secret(channel_id: str, v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    principal = v.admin()
    with _store_errors("rotate_secret"):
        rotated = channels_api.rotate_secret(channel_id, principal=principal, session=v.db)
    return _subscriptions_page(v, secret_for=rotated.id, secret=rotated.secret)


@router.post("/channels/{channel_id}/test")
async def send_channel_test(channel_id: str, v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    principal = v.admin()

    def channel_of_organisation() -> Channel:
        with _store_errors("test_send"):
            return channel_store.get_channel(v.db, principal.organisation_id or "", channel_id)

    # The send awaits the receiver; the database work around it runs in the thread pool.
    channel = await run_in_threadpool(channel_of_organisation)
    outcome = await send_probe(v.settings, channel, utcnow())
    ACTIONS.labels("test_send", outcome.outcome).inc()
    log.info(
        "channel test sent",
        extra={
            "organisation_id": channel.organisation_id,
            "channel_id": channel.id,
            "kind": channel.kind,
            "outcome": outcome.outcome,
            "status_code": outcome.status_code,
            "by": principal.actor,
        },
    )
    return await run_in_threadpool(lambda: _subscriptions_page(v, tested=channel.id, test_outcome=outcome))


@router.get("/products")
def products_page(v: Visit = Depends(visit)) -> Response:
    principal = v.member()
    return render(v, "products.html", products=product_store.list_products(v.db, principal.organisation_id or ""))


@router.post("/products/upload")
def upload_bom(file: UploadFile, v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    principal = v.admin()
    data = file.file.read(2_000_001)
    upload = parse_bom(file.filename or "", data)
    organisation_id = principal.organisation_id or ""
    if upload.errors:
        ACTIONS.labels("upload_bom", "rejected").inc()
        log.info(
            "bill of materials refused", extra={"organisation_id": organisation_id, "rows_refused": len(upload.errors)}
        )
        return render(
            v,
            "products.html",
            422,
            products=product_store.list_products(v.db, organisation_id),
            bom_errors=upload.errors,
        )
    with _store_errors("upload_bom"):
        # One transaction for the whole file: every product or none.
        for product in upload.products:
            product_store.create_product(
                v.db,
                organisation_id,
                name=product.name,
                description=product.description,
                bom=[BomLineSpec(**line.model_dump()) for line in product.bom],
            )
        v.db.commit()
    v.request.app.state.subscriptions_changed()
    log.info(
        "bill of materials imported",
        extra={
            "organisation_id": organisation_id,
            "by": principal.actor,
            "products": len(upload.products),
            "lines": sum(len(p.bom) for p in upload.products),
        },
    )
    return _redirect(v, "/console/products", "imported")


@router.get("/deliveries")
def deliveries_page(status: str | None = None, v: Visit = Depends(visit)) -> Response:
    principal = v.member()
    with _store_errors("deliveries"):
        rows = deliveries_api.list_deliveries(
            status=cast("deliveries_api.Status | None", _filter(status, get_args(deliveries_api.Status))),
            limit=200,
            principal=principal,
            session=v.db,
        )
    names = {
        c.id: channels_api.ChannelOut.model_validate(c).target
        for c in channel_store.list_channels(v.db, principal.organisation_id or "")
    }
    return render(
        v, "deliveries.html", deliveries=rows, channel_names=names, status=status or "", replayable=REPLAYABLE
    )


@router.post("/deliveries/{delivery_id}/replay")
def replay(delivery_id: str, v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    principal = v.admin()
    with _store_errors("replay"):
        deliveries_api.replay_delivery(delivery_id, principal=principal, session=v.db)
    return _redirect(v, "/console/deliveries", "replayed")


# --- government pages ----------------------------------------------------------------------------------------

_SEVERITY_RANK = {"critical": 2, "warning": 1}


def _ratio(value: float, threshold: float | None) -> float | None:
    return abs(value / threshold) if threshold else None


def _crisis_list(v: Visit, principal: Principal) -> list[exposure_api.CrisisOut]:
    # The route's own default window, passed as a value: called directly, its Query() default is not filled in.
    return exposure_api.crisis(exposure_api.CRISIS_WINDOW, principal=principal, session=v.db)


def _risk_rows(readings: desk.DeskReadings, open_per_material: dict[str, int]) -> list[dict[str, Any]]:
    """Scoring's ranking with each component's contribution and a sparkline per indicator from its history."""
    series = {h.material: desk.indicator_series(h.points) for h in readings.history.data or []}
    rows = []
    for row in readings.risk.data or []:
        lines = series.get(row.material, {})
        rows.append(
            {
                "row": row,
                "open": open_per_material.get(row.material, 0),
                "components": sorted(row.components.items(), key=lambda kv: (-kv[1], kv[0])),
                "sparklines": [
                    {
                        "indicator": name,
                        "points": chart.sparkline_of(points),
                        "latest": points[-1][1],
                        "count": len(points),
                    }
                    for name, points in sorted(lines.items(), key=lambda kv: (kv[0] != "risk_score", kv[0]))
                ],
            }
        )
    return rows


def _feeds(readings: desk.DeskReadings) -> list[dict[str, Any]]:
    """Ingest's sources, the ones failing first, then the least recently fetched."""
    feeds = [
        {
            "name": name,
            "health": health,
            "failing": health.consecutive_failures > 0,
            "last_success": datetime.fromtimestamp(health.last_success, UTC) if health.last_success else None,
            "last_attempt": datetime.fromtimestamp(health.last_attempt, UTC) if health.last_attempt else None,
        }
        for name, health in (readings.sources.data or {}).items()
    ]
    return sorted(feeds, key=lambda f: (not f["failing"], f["health"].last_success or 0.0, f["name"]))


@router.get("/ops")
async def ops_page(v: Visit = Depends(visit)) -> Response:
    principal = v.government()
    # The other services are read on the event loop with an async client while the database is read in the thread
    # pool: the page waits for the slower of the two, not for both in turn.
    readings = asyncio.create_task(desk.read_desk(v.settings))
    try:
        context = await run_in_threadpool(_ops_context, v, principal)
    finally:
        found = await readings
    return await run_in_threadpool(
        lambda: render(
            v,
            "ops.html",
            **context,
            readings=found,
            feeds=_feeds(found),
            risk_rows=_risk_rows(found, {m: len(e["breaches"]) for m, e in context["materials"].items()}),
        )
    )


def _ops_context(v: Visit, principal: Principal) -> dict[str, Any]:
    """What the ops desk shows from notify's own database: open breaches, their alerts and who is exposed."""
    breaches = [b for b in open_breaches(v.db) if principal.cleared_for(str(b.classification))]
    crises = {(c.material, c.rule): c for c in _crisis_list(v, principal)}
    materials: dict[str, dict[str, Any]] = {}
    for b in breaches:
        entry = materials.setdefault(
            b.material, {"material": b.material, "breaches": [], "worst": 0, "latest": b.observed_at}
        )
        entry["breaches"].append(
            {
                "breach": b,
                "ratio": _ratio(b.value, b.threshold),
                "sparkline": chart.sparkline(b.model_dump(mode="json")),
                "crisis": crises.get((b.material, b.rule)),
            }
        )
        entry["worst"] = max(entry["worst"], _SEVERITY_RANK.get(str(b.severity), 0))
        entry["latest"] = max(entry["latest"], b.observed_at)
    # The crisis list already found who is exposed to each material with a firing alert; only the others are
    # looked up here.
    exposed = {c.material: len(c.exposed) for c in crises.values()}
    for entry in materials.values():
        entry["exposed"] = exposed.get(entry["material"])
        if entry["exposed"] is None:
            entry["exposed"] = len(exposure_api.find_exposure(v.db, entry["material"]).organisations)
        entry["strength"] = max((x["ratio"] or 0 for x in entry["breaches"]), default=0)
    ranked = sorted(materials.values(), key=lambda e: (-e["worst"], -len(e["breaches"]), -e["strength"], e["material"]))
    return {
        "ranked": ranked,
        "crises": crises,
        "materials": materials,
        "breaches": sorted(breaches, key=lambda b: b.observed_at, reverse=True),
    }


def _crisis_page(v: Visit, principal: Principal, status_code: int = 200, **context: Any) -> Response:
    return render(
        v, "crisis.html", status_code, crises=_crisis_list(v, principal), materials=load_catalog().materials, **context
    )


@router.get("/crisis")
def crisis_page(v: Visit = Depends(visit)) -> Response:
    return _crisis_page(v, v.government())


@router.post("/crisis/stress-test")
def stress_test(v: Visit = Depends(visit), form: Any = Depends(checked_form)) -> Response:
    principal = v.government()
    asked = {"country": str(form.get("country", "")).strip().upper(), "material": str(form.get("material", ""))}
    try:
        with _store_errors("stress_test"):
            result = exposure_api.stress_test(exposure_api.StressTestIn(**asked), principal=principal, session=v.db)
    except PageRefused as refused:
        return _crisis_page(v, principal, 422, asked=asked, stress_error=refused.detail)
    return _crisis_page(v, principal, asked=asked, result=result)


def mount_console(app: FastAPI) -> None:
    """Serve the console at /console on the notify API app."""
    app.include_router(router)
    settings: NotifySettings = app.state.settings
    app.state.console_link_throttle = AuthThrottle(
        "notify-console-links", settings.console_link_requests_per_window, settings.console_link_window_seconds
    )

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, _: SignInRequired) -> Response:
        target = "/console/sign-in?" + urlencode({"next": _here(request)})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(PageRefused)
    async def refused(request: Request, exc: PageRefused) -> Response:
        def error_page() -> Response:
            session = request.app.state.sessions()
            try:
                v = visit(request, session, request.app.state.settings)
                return render(v, "error.html", exc.status_code, word=exc.word, detail=exc.detail)
            finally:
                session.close()

        return await run_in_threadpool(error_page)
