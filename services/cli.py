"""The `mews` command: one entry point, each service's commands loaded only when used.

This module is the one place where services meet: `mews backtest` and `mews trade` read files through ingest's
readers and hand the events to scoring's pure code, so neither service imports the other.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from services.scoring.backtest import ReadReport

# command name -> "module:attribute" of a click command or group
COMMANDS = {
    "topics": "services.cli:topics",
    "ingest": "services.ingest.cli:ingest",
    "news": "services.ingest.cli:news",
    "scoring": "services.scoring.cli:scoring",
    "backtest": "services.cli:backtest",
    "refdata": "services.scoring.refdata.cli:refdata",
    "trade": "services.cli:trade",
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


# --- files through ingest's readers into scoring's pure code ---------------------------------------------


def read_pinksheet(path: Path, series: dict[str, str] | None = None) -> ReadReport:
    """The Pink Sheet's monthly prices as replay inputs, read and normalised exactly as ingest does.

    `series` maps workbook codes to material names (default: the metals the catalog knows); records ingest
    would dead-letter are counted as unreadable, by reason.
    """
    from services.ingest.sources.history import read_pinksheet_file
    from services.scoring.backtest import report_of

    read = read_pinksheet_file(path, series)
    return report_of(read.events, read.unreadable)


def read_prices(path: Path) -> ReadReport:
    """Prices from a Pink Sheet workbook (.xlsx), a CSV of records or JSON lines, by the file's suffix."""
    from services.scoring import backtest as bt
    from shared.events import PriceObserved

    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return read_pinksheet(path)
    if suffix == ".csv":
        return bt.read_price_csv(path)
    return bt.read_jsonl(path, PriceObserved)


trade = click.Group("trade", help="Trade dependency figures for analysts, from trade files.")


@trade.command("shares")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Comext bulk file or extract (CSV).",
)
@click.option("--material", required=True, help="Catalog material id (or a name of it), e.g. gallium.")
@click.option("--period", required=True, help="YYYY or YYYY-MM.")
def trade_shares(path: Path, material: str, period: str) -> None:
    """Print the EU's extra-EU import shares by partner, their HHI and the top partner as JSON."""
    import json

    from services.ingest.observation import normalise_period
    from services.ingest.sources.history import read_comext_file
    from services.scoring.shares import import_shares_of
    from shared.catalog import load_catalog

    material_id = load_catalog().resolve_material(material)
    if material_id is None:
        raise click.BadParameter(f"{material!r} is not a material of the catalog", param_hint="--material")
    wanted = normalise_period(period)
    if wanted is None:
        raise click.BadParameter(f"{period!r} is not YYYY or YYYY-MM", param_hint="--period")
    read = read_comext_file(path)
    for reason, count in sorted(read.unreadable.items()):
        click.echo(f"unusable: {count} x {reason}", err=True)
    shares = import_shares_of(read.events, material_id, wanted)
    if shares is None:
        raise click.ClickException(f"no EU27 imports of {material_id} in {wanted} in {path.name}")
    click.echo(json.dumps({**shares, "file": path.name}, indent=1))


@trade.command("table")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Comext bulk file or extract (CSV).",
)
@click.option("--period", required=True, help="YYYY or YYYY-MM.")
@click.option("--source", required=True, help="Where the file comes from, cited in the table.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The JSON table to write (notify ships one as services/notify/data/import_shares.json).",
)
def trade_table(path: Path, period: str, source: str, out: Path) -> None:
    """Write the extra-EU import shares of every catalog material with imports in the period, as one table.

    The notify service reads this table for stress tests; it never imports scoring, so the table is data.
    """
    import json

    from services.ingest.observation import normalise_period
    from services.ingest.sources.history import read_comext_file
    from services.scoring.shares import import_shares_of
    from shared.catalog import load_catalog

    wanted = normalise_period(period)
    if wanted is None:
        raise click.BadParameter(f"{period!r} is not YYYY or YYYY-MM", param_hint="--period")
    read = read_comext_file(path)
    for reason, count in sorted(read.unreadable.items()):
        click.echo(f"unusable: {count} x {reason}", err=True)
    materials = {}
    for material in sorted(m.id for m in load_catalog().materials):
        shares = import_shares_of(read.events, material, wanted)
        if shares is not None:
            materials[material] = {
                k: shares[k] for k in ("basis", "unit", "extra_eu_total", "intra_eu_total", "partners", "hs_codes")
            }
    if not materials:
        raise click.ClickException(f"no EU27 imports of a catalog material in {wanted} in {path.name}")
    table = {"source": source, "file": path.name, "period": wanted, "reporter": "EU27", "materials": materials}
    out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    click.echo(f"{len(materials)} materials written to {out}", err=True)


def _input_files(flag: str, help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A repeatable option naming input files that must exist."""
    return click.option(
        flag, multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help=help_text
    )


@click.command("backtest")
@_input_files("--prices", "Pink Sheet workbook (.xlsx), or PriceObserved records as .csv or .jsonl; repeatable.")
@_input_files("--news", "NewsReported JSON lines (fields or CloudEvents); repeatable.")
@_input_files("--trade", "TradeFlowReported JSON lines; repeatable.")
@_input_files("--leadtimes", "LeadTimeQuoted JSON lines; repeatable.")
@_input_files("--stocks", "StockReported JSON lines; repeatable.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Scoring configuration (default: $MEWS_SCORING_CONFIG or the shipped scoring.toml).",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Report file (default: standard output).",
)
@click.option("--progress/--no-progress", default=True, help="Show progress on standard error.")
def backtest(
    prices: tuple[Path, ...],
    news: tuple[Path, ...],
    trade: tuple[Path, ...],
    leadtimes: tuple[Path, ...],
    stocks: tuple[Path, ...],
    config_path: Path | None,
    fmt: str,
    out: Path | None,
    progress: bool,
) -> None:
    """Replay historical inputs through the scoring engine and report every breach transition."""
    import gc

    from tqdm import tqdm

    from services.scoring import backtest as bt
    from services.scoring.config import ConfigError, load_config
    from shared.events import SIGNALS

    if not (prices or news or trade or leadtimes or stocks):
        raise click.UsageError("give at least one input: --prices, --news, --trade, --leadtimes or --stocks")
    env_config = os.environ.get("MEWS_SCORING_CONFIG")
    try:
        config = load_config(config_path or (Path(env_config) if env_config else None))
    except (ConfigError, OSError) as exc:
        raise click.ClickException(f"scoring configuration: {exc}") from exc
    reports = [read_prices(p) for p in prices]
    reports += [
        bt.read_jsonl(p, SIGNALS[kind].event)
        for kind, paths in (("news", news), ("trade", trade), ("leadtime", leadtimes), ("stock", stocks))
        for p in paths
    ]
    for r in reports:
        for reason, count in sorted(r.unreadable.items()):
            click.echo(f"unreadable: {count} x {reason}", err=True)
    inputs = bt.merge_inputs(reports)
    # The inputs live until the command ends: keep the garbage collector's full passes from walking them
    # again and again during the replay (a sixth of its CPU on ten years of daily prices for fifty materials).
    gc.freeze()
    bar = tqdm(inputs, desc="replaying", unit="event", file=sys.stderr, disable=not progress, mininterval=0.5)
    result = bt.replay(bar, config)
    if out is None:
        rows = bt.write_report(result.breaches, sys.stdout, fmt)
    else:
        with out.open("w", encoding="utf-8", newline="") as f:
            rows = bt.write_report(result.breaches, f, fmt)
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(result.rejected.items())) or "none"
    click.echo(
        f"{len(inputs)} inputs, {result.applied} applied, rejected: {rejected}; {rows} breach events "
        f"for {len(result.states)} materials",
        err=True,
    )


if __name__ == "__main__":
    main()
