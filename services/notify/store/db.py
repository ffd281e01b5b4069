"""Engine, sessions and migrations of the notifier database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

TRANSACTIONS = Counter("mews_notify_db_transactions_total", "Units of work, by how they ended", ["outcome"])
COMMIT_SECONDS = Histogram(
    "mews_notify_db_commit_seconds",
    "Time of one unit of work's commit (the WAL flush)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names (or omits)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling starts a transaction only at the first write, so a read before it
    # (an outbox claim reading a payload) sees data another writer changes before the write; `_on_sqlite_begin`
    # begins every transaction instead.
    dbapi_connection.isolation_level = None
    # Foreign keys are off by default in SQLite; WAL lets the API read while the outbox worker writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_sqlite_begin(connection: Any) -> None:
    # SQLite has one writer and no row locks: taking the write lock when the transaction begins makes each
    # transaction (dispatch in its thread, an outbox claim, an API change) see and write one consistent state,
    # waiting for the one before it (busy_timeout) instead of failing or working on what it read before.
    # A long transaction that rarely writes asks for DEFERRED (`read_mostly`): it reads a snapshot without
    # holding writers up, and fails (to be retried) should it write after another writer changed the data.
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a database URL; creates the directory of a SQLite file and turns its safety pragmas on."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 10})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (the API serialises them afterwards)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One use case, one transaction: commit if the block succeeds, roll back if it raises."""
    session = sessions()
    try:
        yield session
        started = perf_counter()
        session.commit()
        COMMIT_SECONDS.observe(perf_counter() - started)
        TRANSACTIONS.labels("commit").inc()
    except BaseException:
        session.rollback()
        TRANSACTIONS.labels("rollback").inc()
        raise
    finally:
        session.close()


def read_mostly(session: Session) -> Session:
    """Begin the session's transaction without taking SQLite's write lock (call it before the first query)."""
    session.connection(execution_options={"sqlite_begin": "DEFERRED"})
    return session


def alembic_config(url: str) -> Any:
    """The Alembic configuration for this database, built in code (no alembic.ini to find)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database schema up to a revision (the newest by default) with Alembic."""
    from alembic import command

    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def database_away(exc: BaseException) -> bool:
    """The error says the database cannot be reached (down, restarting, connection cut), not that a query is wrong."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
