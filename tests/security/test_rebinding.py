"""DNS rebinding: a name is resolved once per connection and the connection goes to the address checked, or is
refused; it never reaches loopback through a second answer of the resolver (hole 2 of issue 11). TLS still
verifies the name of the URL while the socket goes to the pinned address."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpcore
import httpx
import pytest
from sqlalchemy import select

from services.notify.delivery.outbox import DeliveryLimits, DeliveryPolicy, OutboxWorker
from services.notify.delivery.retry import RetrySchedule
from services.notify.delivery.webhook import deliver_webhook
from services.notify.outbound import check_webhook_target
from services.notify.settings import NotifySettings
from services.notify.store import models
from services.notify.store.db import create_db_engine, migrate, session_factory, unit_of_work
from services.notify.worker import Notifier, smtp_from, webhook_client
from shared.outbound import OutboundPolicy, pinned_transport
from tests.integration.notify.world import add_org, add_webhook, new_secret
from tests.security.network import PUBLIC, Server, StubResolver, answer, serving

real_getaddrinfo = socket.getaddrinfo
real_connect_tcp = httpcore.AnyIOBackend.connect_tcp


@pytest.fixture
def rebinding(monkeypatch):
    """The process's own resolver answers `rebind.test` from a script, and connections to any address but
    127.0.0.1 are recorded and refused instead of leaving the machine."""
    resolver = StubResolver(rebind_test=[[PUBLIC], [PUBLIC], ["127.0.0.1"]])
    attempts: list[str] = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 (socket's own names)
        name = host.decode() if isinstance(host, bytes) else host  # anyio asks with bytes, the stdlib with str
        if name == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0))) for a in resolver.answer(name)]
        return real_getaddrinfo(host, port, family, type, proto, flags)

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ASYNC109
        attempts.append(host)
        if host not in ("127.0.0.1", "rebind.test", "localhost"):
            raise httpcore.ConnectError(f"{host} is beyond loopback: not reached from a test")
        return await real_connect_tcp(self, host, port, timeout, local_address, socket_options)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)
    resolver.attempts = attempts  # type: ignore[attr-defined]
    return resolver


def development(**overrides: object) -> NotifySettings:
    return NotifySettings(environment="development", allow_private_webhook_targets=False, **overrides)


async def test_a_name_answering_public_twice_then_loopback_never_gets_a_connection_to_loopback(rebinding):
    settings = development()
    with serving(Server(routes={"/hook": answer(204)})) as receiver:
        url = f"http://rebind.test:{receiver.port}/hook"
        assert check_webhook_target(url, require_https=False, allow_private=False).allowed  # public, at creation
        async with webhook_client(settings, DeliveryLimits()) as http:
            outcomes = [
                await deliver_webhook(
                    http,
                    url,
                    new_secret(),
                    f"msg_{n}",
                    {"alerts": []},
                    datetime.now(UTC),
                    Notifier(settings, None).check_target,
                )
                for n in range(2)
            ]
    assert receiver.requested("/hook") == 0
    # First send: one lookup (public), one connection, to that public address (refused by the staged network).
    assert outcomes[0].outcome == "retry"
    assert rebinding.attempts == [PUBLIC]
    # Second send: the name now answers loopback, which is refused before any connection.
    assert outcomes[1].outcome == "refused"
    assert "127.0.0.1 is loopback" in outcomes[1].error
    assert rebinding.calls == ["rebind.test"] * 3


async def test_a_webhook_refused_at_send_time_fails_at_once_without_retries(rebinding, tmp_path):
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    migrate(url)
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    settings = development(database_url=url)
    rebinding.answers["rebind.test"] = [["127.0.0.1"]]
    with serving(Server(routes={"/hook": answer(204)})) as receiver:
        with unit_of_work(sessions) as s:
            org = add_org(s, "Rebinding BV")
            hook = add_webhook(s, org, f"http://rebind.test:{receiver.port}/hook")
            s.add(
                models.Notification(
                    organisation_id=org.id,
                    channel_id=hook.id,
                    kind="alert",
                    group_key=f"immediate:{hook.id}",
                    payload={"alerts": []},
                )
            )
        policy = DeliveryPolicy(schedule=RetrySchedule(initial=0.01, max_interval=0.01, jitter=0, max_attempts=5))
        async with webhook_client(settings, DeliveryLimits()) as http:
            worker = OutboxWorker(
                sessions, http, smtp_from(settings), Notifier(settings, sessions).check_target, settings, policy
            )
            for _ in range(3):
                await worker.run_once()
    with unit_of_work(sessions) as s:
        [notification] = s.scalars(select(models.Notification)).all()
        attempts = s.scalars(select(models.DeliveryAttempt)).all()
        status = notification.status
    engine.dispose()
    assert receiver.requested("/hook") == 0
    assert status == "failed"
    assert [(a.outcome, a.error) for a in attempts] == [("refused", "target refused: address 127.0.0.1 is loopback")]
    assert rebinding.attempts == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for the name hooks.test only."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=hooks.test",
            "-addext",
            "subjectAltName=DNS:hooks.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_verifies_the_url_name_while_the_socket_goes_to_the_pinned_address(certificate):
    cert, key = certificate
    names: list[str | None] = []
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server_context.sni_callback = lambda sock, name, context: names.append(name)
    server = Server(routes={"/hook": answer(204)})
    with serving(server):
        # The same server, behind TLS, on a port of its own.
        tls = ThreadingHTTPServer(("127.0.0.1", 0), _tls_handler(server))
        tls.daemon_threads = True
        tls.socket = server_context.wrap_socket(tls.socket, server_side=True)
        threading.Thread(target=tls.serve_forever, daemon=True).start()
        port = tls.server_address[1]
        try:
            resolver = StubResolver(hooks_test=[["127.0.0.1"]], other_test=[["127.0.0.1"]])
            client_context = ssl.create_default_context(cafile=str(cert))
            policy = OutboundPolicy(allow_private=True, resolve=resolver)  # the loopback receiver: opted in
            async with httpx.AsyncClient(transport=pinned_transport(policy, verify=client_context)) as http:
                response = await http.get(f"https://hooks.test:{port}/hook")
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await http.get(f"https://other.test:{port}/hook")
        finally:
            tls.shutdown()
            tls.server_close()
    assert response.status_code == 204
    assert names[:2] == ["hooks.test", "other.test"]
    assert resolver.calls == ["hooks.test", "other.test"]


def _tls_handler(server: Server):
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            server.record("request", self.path)
            server.routes[self.path](self)

    return Handler
