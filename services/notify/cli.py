"""`mews notify`: migrate the database, create organisations, and run the notifier."""

from __future__ import annotations

import click


@click.group()
def notify() -> None:
    """Alerts to subscribers by email and signed webhooks."""


@notify.command("migrate")
@click.option("--database-url", default=None, help="Defaults to MEWS_NOTIFY_DATABASE_URL (SQLite under var/notify).")
def migrate_command(database_url: str | None) -> None:
    """Bring the database schema to the newest revision."""
    from services.notify.settings import NotifySettings
    from services.notify.store.db import create_db_engine, current_revision, migrate

    url = database_url or NotifySettings().database_url.get_secret_value()
    migrate(url)
    engine = create_db_engine(url)
    try:
        click.echo(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@notify.command("bootstrap-org")
@click.option("--name", required=True, help="The organisation's name.")
@click.option("--kind", type=click.Choice(["company", "ministry", "agency"]), required=True)
@click.option(
    "--clearance", type=click.Choice(["public", "restricted", "government"]), default="public", show_default=True
)
@click.option("--platform-admin", is_flag=True, help="Its admin keys may create other organisations.")
@click.option("--admin-email", default=None, help="Also create an admin user with this address.")
@click.option("--admin-name", default="")
@click.option("--language", type=click.Choice(["nl", "en"]), default="en", show_default=True)
@click.option("--database-url", default=None, help="Defaults to MEWS_NOTIFY_DATABASE_URL.")
def bootstrap_org(
    name: str,
    kind: str,
    clearance: str,
    platform_admin: bool,
    admin_email: str | None,
    admin_name: str,
    language: str,
    database_url: str | None,
) -> None:
    """Create an organisation and its first admin key; the key is printed once, on stdout."""
    from services.notify.settings import NotifySettings
    from services.notify.store import keys, organisations
    from services.notify.store.db import create_db_engine, migrate, session_factory, unit_of_work

    url = database_url or NotifySettings().database_url.get_secret_value()
    migrate(url)
    engine = create_db_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            org = organisations.create_organisation(
                session, name=name, kind=kind, clearance=clearance, platform_admin=platform_admin
            )
            user = None
            if admin_email:
                user = organisations.create_user(
                    session, org.id, email=admin_email, name=admin_name, role="admin", language=language
                )
            _, plaintext = keys.issue_api_key(
                session, org.id, name="first admin key", role="admin", user_id=user.id if user else None
            )
            org_id = org.id
    finally:
        engine.dispose()
    click.echo(
        f"organisation {org_id} created ({kind}, {clearance}{', platform admin' if platform_admin else ''})", err=True
    )
    click.echo("admin API key (shown once, store it now):", err=True)
    click.echo(plaintext)


@notify.command("run")
@click.option("--no-api", is_flag=True, help="Run only the breaches consumer and the outbox worker.")
def run_command(no_api: bool) -> None:
    """API, breaches consumer and outbox worker in one process (port MEWS_NOTIFY_PORT, default 8003)."""
    import asyncio

    from services.notify.settings import NotifySettings

    asyncio.run(_run(NotifySettings(), serve_api=not no_api))


async def _run(settings, serve_api: bool = True) -> None:
    """Migrate, make sure the topics exist, then serve the API and run the notifier until one of them stops."""
    import asyncio
    import contextlib
    import gc

    import uvicorn

    from services.notify.store.db import create_db_engine, migrate, session_factory
    from services.notify.worker import Notifier
    from shared.kafka import ensure_topics
    from shared.logging import configure_logging
    from shared.metrics import serve_metrics_port

    configure_logging(settings.log_level, settings.log_json)
    migrate(settings.database_url.get_secret_value())
    await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_namespace)
    engine = create_db_engine(settings.database_url.get_secret_value())
    notifier = Notifier(settings, session_factory(engine))
    tasks = [asyncio.create_task(notifier.run(), name="notifier")]
    server = None
    if serve_api:
        from services.notify.api.app import create_app

        app = create_app(
            settings,
            engine=engine,
            on_subscriptions_changed=notifier.invalidate_index,
            readiness=notifier.readiness_checks(),
        )
        serve_metrics_port(settings)
        server = uvicorn.Server(
            uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, server_header=False)
        )
        tasks.append(asyncio.create_task(server.serve(), name="api"))
    # What start-up built (the app, schemas, the catalog) lives as long as the process: the collector's passes
    # need not walk it. A crisis batch allocates hundreds of thousands of short-lived objects (alerts, payloads,
    # decisions) that are all alive until its transaction ends: collecting every 700 allocations walked them
    # again and again, a sixth to a quarter of dispatch's CPU; every 10,000 keeps cycles bounded all the same.
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        notifier.stop()
        if server is not None:
            server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
        engine.dispose()
