"""Commands of the scoring service: `mews scoring` (the worker and its API).

`mews backtest` and `mews trade` read files through ingest's readers, so they are wired in services/cli.py.
"""

from __future__ import annotations

import click

scoring = click.Group("scoring", help="The scoring service: indicators, rules and breaches from the input topics.")


@scoring.command("run")
def run_scoring() -> None:
    """Run the scoring worker and its read API on MEWS_SCORING_PORT until SIGINT or SIGTERM."""
    from pydantic import ValidationError

    from services.scoring.app import run
    from services.scoring.settings import ScoringSettings

    try:
        settings = ScoringSettings()
    except ValidationError as exc:
        raise click.ClickException(f"scoring settings: {exc}") from exc
    run(settings)
