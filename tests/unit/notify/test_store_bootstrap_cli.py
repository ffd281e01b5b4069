"""`mews notify migrate` and `bootstrap-org` create the schema and a first organisation whose key works once shown."""

from __future__ import annotations

from click.testing import CliRunner

from services.notify.cli import notify
from services.notify.store.db import create_db_engine, session_factory
from services.notify.store.keys import find_active_key
from services.notify.store.models import Organisation, User


def test_bootstrap_org_prints_a_working_admin_key_only_on_stdout(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    runner = CliRunner()
    assert runner.invoke(notify, ["migrate", "--database-url", url]).exit_code == 0
    result = runner.invoke(
        notify,
        [
            "bootstrap-org",
            "--name",
            "Ministerie van EZK",
            "--kind",
            "ministry",
            "--clearance",
            "government",
            "--platform-admin",
            "--admin-email",
            "crisis@ezk.example",
            "--database-url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("mews_")
    assert key not in result.stderr

    engine = create_db_engine(url)
    try:
        with session_factory(engine)() as session:
            found = find_active_key(session, key)
            assert found is not None
            assert found.role == "admin"
            organisation = session.get(Organisation, found.organisation_id)
            assert (organisation.name, organisation.kind, organisation.clearance, organisation.platform_admin) == (
                "Ministerie van EZK",
                "ministry",
                "government",
                True,
            )
            assert session.get(User, found.user_id).email == "crisis@ezk.example"
    finally:
        engine.dispose()
