"""A throwaway PostgreSQL server from Debian's binaries, for the benchmarks and the notify integration tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def as_postgres_user(argv: list[str]) -> list[str]:
    """A command run as the `postgres` user when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def new_cluster(bindir: Path, prefix: str) -> tuple[Path, Path, Path]:
    """A temporary folder with a fresh database cluster, the server's to write: (folder, data, sockets).

    Not under pytest's base temp: that is private to root, and the server runs as `postgres`.
    """
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    data, sockets = workdir / "data", workdir / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        shutil.chown(sockets, "postgres")
    try:
        subprocess.run(
            as_postgres_user(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return workdir, data, sockets


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server(settings: dict[str, str] | None = None) -> Iterator[str]:
    """The URL (database `postgres`) of a server on a free port of 127.0.0.1, removed on exit; `settings` are
    more server settings (`{"shared_preload_libraries": "pg_stat_statements"}`)."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql: run deploy/tools/install-system.sh as root")
    workdir, data, sockets = new_cluster(bindir, "mews-bench-pg-")
    port = _free_port()
    try:
        # Durable as PostgreSQL ships (fsync on) unless `settings` say otherwise: a benchmark measures what
        # production would pay.
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=200"
        options += "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
        subprocess.run(
            as_postgres_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(workdir / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            as_postgres_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """Create an empty database on the server; its URL."""
    import psycopg

    url = make_url(server_url)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)
