"""Fixtures of the notify integration tests: the database on SQLite and on a real PostgreSQL.

PostgreSQL is started once per session from Debian's binaries (/usr/lib/postgresql/<version>/bin), as the
`postgres` user when the tests run as root (initdb refuses root), on a free port in a temporary directory.
Set MEWS_TEST_POSTGRES_URL to use a running server instead. Each test gets a database of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import free_port


def _postgres_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def _as_postgres_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL (without database) of a PostgreSQL server that lives for the whole test session."""
    existing = os.environ.get("MEWS_TEST_POSTGRES_URL")
    if existing:
        yield existing
        return
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql (make install-postgres)")
    # Not under pytest's base temp: that is private to root, and the server runs as `postgres`.
    workdir = Path(tempfile.mkdtemp(prefix="mews-pg-"))
    data, sockets = workdir / "data", workdir / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(_as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                      "--auth=trust", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True)
    # Durability switched off: these databases live for seconds and speed matters more.
    options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    subprocess.run(_as_postgres_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                                      "-l", str(workdir / "server.log"), "-w", "-t", "60", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _admin_execute(server_url: str, statement: str) -> None:
    import psycopg

    url = make_url(server_url)
    with psycopg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                         dbname=url.database or "postgres", autocommit=True) as conn:
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
def db_sessions(migrated_database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test's migrated database."""
    from services.notify.store.db import create_db_engine, session_factory

    engine = create_db_engine(migrated_database_url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()
