"""The `mews` command: one entry point, each service's commands loaded only when used."""

from __future__ import annotations

import asyncio
import importlib

import click

# command name -> "module:attribute" of a click command or group
COMMANDS = {
    "topics": "services.cli:topics",
    "ingest": "services.ingest.cli:ingest",
    "news": "services.ingest.cli:news",
    "scoring": "services.scoring.cli:scoring",
    "backtest": "services.scoring.cli:backtest",
    "refdata": "services.scoring.refdata.cli:refdata",
    "trade": "services.scoring.cli:trade",
    "notify": "services.notify.cli:notify",
}


class LazyGroup(click.Group):
    """Import a subcommand's module only when it is invoked, so `mews news classify` starts fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup)
def main() -> None:
    """mews: Materials Early Warning Service."""


@click.group()
def topics() -> None:
    """Kafka topics, from the one declaration in shared/topics.py."""


@topics.command("create")
def create_topics() -> None:
    """Create every declared topic that does not exist yet."""
    from shared.kafka import ensure_topics
    from shared.settings import CommonSettings

    settings = CommonSettings()
    created = asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, settings.topic_namespace))
    click.echo(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))


@topics.command("list")
def list_topics() -> None:
    """Print the declared topics with their partitions, retention and cleanup policy."""
    from shared import topics as declared

    for t in declared.ALL:
        click.echo(f"{t.name}\tpartitions={t.partitions}\tcleanup={t.cleanup_policy}\t{t.description}")


if __name__ == "__main__":
    main()
