"""`mews notify`: migrate the database, create organisations, and run the notifier."""

from __future__ import annotations

import click


@click.group()
def notify() -> None:
    """Alerts to subscribers by email and signed webhooks."""


@notify.command("migrate")
@click.option("--database-url", default=None, help="Defaults to MEWS_DATABASE_URL (SQLite under var/notify).")
def migrate_command(database_url: str | None) -> None:
    """Bring the database schema to the newest revision."""
    from services.notify.settings import NotifySettings
    from services.notify.store.db import create_db_engine, current_revision, migrate

    url = database_url or NotifySettings().database_url
    migrate(url)
    engine = create_db_engine(url)
    try:
        click.echo(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@notify.command("bootstrap-org")
@click.option("--name", required=True, help="The organisation's name.")
@click.option("--kind", type=click.Choice(["company", "ministry", "agency"]), required=True)
@click.option("--clearance", type=click.Choice(["public", "restricted", "government"]), default="public",
              show_default=True)
@click.option("--platform-admin", is_flag=True, help="Its admin keys may create other organisations.")
@click.option("--admin-email", default=None, help="Also create an admin user with this address.")
@click.option("--admin-name", default="")
@click.option("--language", type=click.Choice(["nl", "en"]), default="en", show_default=True)
@click.option("--database-url", default=None, help="Defaults to MEWS_DATABASE_URL.")
def bootstrap_org(name: str, kind: str, clearance: str, platform_admin: bool, admin_email: str | None,
                  admin_name: str, language: str, database_url: str | None) -> None:
    """Create an organisation and its first admin key; the key is printed once, on stdout."""
    from services.notify.settings import NotifySettings
    from services.notify.store import keys, organisations
    from services.notify.store.db import create_db_engine, migrate, session_factory, unit_of_work

    url = database_url or NotifySettings().database_url
    migrate(url)
    engine = create_db_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            org = organisations.create_organisation(session, name=name, kind=kind, clearance=clearance,
                                                    platform_admin=platform_admin)
            user = None
            if admin_email:
                user = organisations.create_user(session, org.id, email=admin_email, name=admin_name, role="admin",
                                                 language=language)
            _, plaintext = keys.issue_api_key(session, org.id, name="first admin key", role="admin",
                                              user_id=user.id if user else None)
            org_id = org.id
    finally:
        engine.dispose()
    click.echo(f"organisation {org_id} created ({kind}, {clearance}{', platform admin' if platform_admin else ''})",
               err=True)
    click.echo("admin API key (shown once, store it now):", err=True)
    click.echo(plaintext)
