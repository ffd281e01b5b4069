"""Fixtures of the notify integration tests: the database on SQLite and on a real PostgreSQL.

PostgreSQL is started once per session from Debian's binaries (/usr/lib/postgresql/<version>/bin), as the
`postgres` user when the tests run as root (initdb refuses root), on a free port in a temporary directory.
Set MEWS_TEST_POSTGRES_URL to use a running server instead. Each test gets a database of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bench.harness.postgres import as_postgres_user, new_cluster, postgres_bin
from bench.harness.postgres import postgres_server as throwaway_postgres
from tests.conftest import free_port
from tests.eventually import eventually_blocking
from tests.integration.notify.chat import ChatReceiver, serve_chat_receiver


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL (without database) of a PostgreSQL server that lives for the whole test session."""
    existing = os.environ.get("MEWS_TEST_POSTGRES_URL")
    if existing:
        yield existing
        return
    if postgres_bin() is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql (make install-postgres)")
    # Durability switched off: these databases live for seconds and speed matters more.
    with throwaway_postgres({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}) as url:
        yield url


class StoppablePostgres:
    """A PostgreSQL server of one test, which the test may stop and start again (on the same port and data)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.workdir, self.data, sockets = new_cluster(bindir, "mews-pg-stoppable-")
        self.port = free_port()
        # A commit must be in the WAL before it is acknowledged: with synchronous_commit off an immediate stop
        # loses the last commits, which the notifier (rightly) counts as done. fsync stays off: the machine
        # does not crash, the page cache survives the server.
        self.options = f"-p {self.port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *argv: str, check: bool = True) -> None:
        subprocess.run(
            as_postgres_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), *argv]),
            check=check,
            capture_output=True,
        )

    def start(self) -> None:
        self._ctl("-o", self.options, "-l", str(self.workdir / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop at once, as a crash or a failover would: every client connection is cut."""
        self._ctl("-m", "immediate", "-w", "stop")

    def migrated_database(self, name: str) -> str:
        """The URL of a new database on this server, with notify's schema."""
        from services.notify.store.db import migrate

        _admin_execute(self.url, f'CREATE DATABASE "{name}"')
        url = self.url.rsplit("/", 1)[0] + f"/{name}"
        migrate(url)
        return url

    def remove(self) -> None:
        self._ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def stoppable_postgres() -> Iterator[StoppablePostgres]:
    """A PostgreSQL server of this test alone, started; the test may stop and start it."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql (make install-postgres)")
    server = StoppablePostgres(bindir)
    server.start()
    try:
        yield server
    finally:
        server.remove()


def _admin_execute(server_url: str, statement: str) -> None:
    import psycopg

    url = make_url(server_url)
    with psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
    ) as conn:
        conn.execute(statement)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test alone, on SQLite and again on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'notify.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"mews_{uuid.uuid4().hex[:12]}"
    _admin_execute(server, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrated_database_url(database_url: str) -> str:
    """The test's database with the schema migrated to the newest revision."""
    from services.notify.store.db import migrate

    migrate(database_url)
    return database_url


@pytest.fixture
def settings(kafka_bootstrap: str, kafka_topics: str, migrated_database_url: str, smtp_inbox):
    """A notifier's settings on this test's broker namespace, database and SMTP server."""
    from tests.integration.notify.world import notifier_settings

    return notifier_settings(kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox)


@pytest.fixture
def db_sessions(migrated_database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test's migrated database."""
    from services.notify.store.db import create_db_engine, session_factory

    engine = create_db_engine(migrated_database_url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


# --- Delivery receivers: a real SMTP server and real HTTP receivers on 127.0.0.1 (alert pipeline tests) ---

import threading  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from email import message_from_bytes, policy  # noqa: E402
from email.message import EmailMessage  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402


@dataclass
class SmtpInbox:
    """Messages an aiosmtpd server on 127.0.0.1 received, parsed."""

    host: str
    port: int
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


class _InboxHandler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.inbox.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp_inbox() -> Iterator[SmtpInbox]:
    """A real SMTP server (aiosmtpd) on a free port of 127.0.0.1 for this test."""
    from aiosmtpd.controller import Controller

    inbox = SmtpInbox("127.0.0.1", free_port())
    controller = Controller(_InboxHandler(inbox), hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class HttpReceiver:
    """A real HTTP server on 127.0.0.1 that records every POST and answers from a per-path script."""

    port: int
    requests: list[Received] = field(default_factory=list)
    scripts: dict[str, deque[int]] = field(default_factory=dict)
    delay_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *statuses: int) -> None:
        """Answer the next POSTs to `path` with these statuses, then 200."""
        self.scripts[path] = deque(statuses)

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def delivered(self, path: str) -> list[Received]:
        return [r for r in self.to(path) if 200 <= r.status < 300]


def _handler_for(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if receiver.delay_seconds:
                time.sleep(receiver.delay_seconds)
            with receiver.lock:
                script = receiver.scripts.get(self.path)
                status = script.popleft() if script else 200
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status)
                )
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("location", "http://127.0.0.1:9/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A real HTTP receiver for webhooks on a free port of 127.0.0.1 for this test."""
    receiver = HttpReceiver(free_port())
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _handler_for(receiver))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# The API over real HTTP: uvicorn on a free port, in a thread, on the test's database.

BOOTSTRAP_TOKEN = "bootstrap-token-for-tests-only-0123456789"
LINK_KEY = "link-signing-key-for-tests-only-0123456789"


@pytest.fixture
def api_settings(migrated_database_url: str):
    """Settings of an API on the test's database; webhooks may target 127.0.0.1 (the receivers)."""
    from services.notify.settings import NotifySettings

    return NotifySettings(
        database_url=migrated_database_url,
        bootstrap_admin_token=BOOTSTRAP_TOKEN,
        link_signing_key=LINK_KEY,
        allow_private_webhook_targets=True,
        public_base_url="http://127.0.0.1",
        environment="development",
    )


@pytest.fixture
def api_url(api_settings) -> Iterator[str]:
    """The base URL of the notify API served by uvicorn on a free port for this test."""
    import threading

    import uvicorn

    from services.notify.api.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(api_settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "the notify API stopped while starting"
        return server.started

    eventually_blocking(started, within=20, what="the notify API started", every=0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Tenant:
    """An organisation created through the API, with an HTTP client holding its first admin key."""

    def __init__(self, base_url: str, created: dict) -> None:
        import httpx

        self.id: str = created["organisation"]["id"]
        self.key: str = created["api_key"]
        self.organisation = created["organisation"]
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=10)

    def client_with_key(self, key: str):
        import httpx

        return httpx.Client(base_url=str(self.http.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=10)


@pytest.fixture
def make_tenant(api_url: str) -> Iterator:
    """Create organisations through the API with the bootstrap token; returns `make(name, kind, clearance)`."""
    import httpx

    bootstrap = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"}, timeout=10)
    made: list[Tenant] = []

    def make(name: str, kind: str = "company", clearance: str = "public", **extra) -> Tenant:
        answer = bootstrap.post("/v1/organisations", json={"name": name, "kind": kind, "clearance": clearance, **extra})
        assert answer.status_code == 201, answer.text
        tenant = Tenant(api_url, answer.json())
        made.append(tenant)
        return tenant

    yield make
    for tenant in made:
        tenant.http.close()
    bootstrap.close()


@pytest.fixture
def chat_receiver() -> Iterator[ChatReceiver]:
    """A loopback Teams and Slack endpoint (paths under /teams answer as Teams, others as Slack)."""
    yield from serve_chat_receiver()
