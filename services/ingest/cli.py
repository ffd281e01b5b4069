"""Commands: `mews ingest api|poll|backfill` and `mews news classify`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click


def _settings():
    from services.ingest.settings import IngestSettings
    from shared.logging import configure_logging

    settings = IngestSettings()
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _load(config: Path):
    from services.ingest.config import SourcesError, load_sources
    from shared.catalog import load_catalog

    try:
        return load_sources(config, load_catalog())
    except SourcesError as exc:
        raise click.ClickException(f"{config.name}: {exc}") from exc


@click.group()
def ingest() -> None:
    """Prices, export-control news, trade flows and lead times into Kafka."""


@ingest.command("api")
@click.option(
    "--sources",
    "config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also run these scheduled sources in this process.",
)
def api(config: Path | None) -> None:
    """Serve the push API (and /metrics, /healthz, /readyz) on MEWS_INGEST_PORT."""
    import uvicorn

    from services.ingest.api import create_app
    from shared.metrics import serve_metrics_port

    settings = _settings()
    app = create_app(settings, _load(config) if config else None)
    serve_metrics_port(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, server_header=False)


@ingest.command("poll")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The sources file (TOML).",
)
@click.option("--once", is_flag=True, help="Fetch every source once and exit.")
def poll(config: Path, once: bool) -> None:
    """Run the scheduled sources; exit status 1 if a source failed in a --once run."""
    import signal

    from services.ingest.poll import open_ingestion, poll_forever, poll_once

    settings = _settings()
    sources = _load(config)

    async def main() -> int:
        async with open_ingestion(settings) as ingestion:
            if once:
                reports = await poll_once(sources, ingestion)
                for r in reports:
                    counts = " ".join(f"{k}={v}" for k, v in sorted(r.counts.items()))
                    click.echo(f"{r.source}\t{r.outcome}\t{counts}{(' ' + r.error) if r.error else ''}")
                return 1 if any(r.outcome == "error" for r in reports) else 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await poll_forever(sources, ingestion, {}, stop)
            return 0

    sys.exit(asyncio.run(main()))


@ingest.command("backfill")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The sources file declaring --source.",
)
@click.option("--source", "source_name", help="Load this declared source's whole history.")
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Load this file instead of a declared source.",
)
@click.option(
    "--kind",
    type=click.Choice(["json_prices", "csv_prices", "pinksheet", "feed", "comext", "comtrade", "leadtimes"]),
    help="The layout of --file.",
)
@click.option("--name", help="Source name for --file (default: backfill:<file name>).")
@click.option("--currency", default="", help="Currency of a --file price series.")
@click.option("--unit", default="", help="Unit of a --file price series.")
@click.option("--material", default="", help="Material of a --file price series.")
@click.option(
    "--eu27-total",
    is_flag=True,
    help="comext --file: sum the member states' rows into EU27 flows (the flows scoring reads).",
)
def backfill(
    config: Path | None,
    source_name: str | None,
    file: Path | None,
    kind: str | None,
    name: str | None,
    currency: str,
    unit: str,
    material: str,
    eu27_total: bool,
) -> None:
    """Load a source's history unconditionally, with a progress bar; duplicates are still skipped."""
    from tqdm import tqdm

    from services.ingest.config import SourceConfig
    from services.ingest.poll import open_ingestion, run_source

    if bool(source_name) == bool(file):
        raise click.UsageError("give --source (with --config) or --file (with --kind)")
    if source_name:
        if config is None:
            raise click.UsageError("--source needs --config")
        source = _source_named(_load(config), source_name)
    else:
        if kind is None:
            raise click.UsageError("--file needs --kind")
        assert file is not None  # given: checked above
        try:
            source = SourceConfig.model_validate(
                {
                    "name": name or f"backfill:{file.name}"[:100],
                    "kind": kind,
                    "path": file.resolve(),
                    "currency": currency,
                    "unit": unit,
                    "material": material,
                    "eu27_total": eu27_total,
                }
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    settings = _settings()

    async def main() -> int:
        async with open_ingestion(settings) as ingestion:
            with tqdm(desc=source.name, unit="rec", file=sys.stderr) as bar:
                report = await run_source(source, ingestion, conditional=False, progress=bar.update)
        counts = " ".join(f"{k}={v}" for k, v in sorted(report.counts.items()))
        click.echo(f"{report.source}\t{report.outcome}\t{counts}{(' ' + report.error) if report.error else ''}")
        return 1 if report.outcome == "error" else 0

    sys.exit(asyncio.run(main()))


def _source_named(sources, name: str):
    try:
        return sources.by_name(name)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from exc


@click.group()
def news() -> None:
    """Export-control news."""


@news.command("classify")
def classify() -> None:
    """Read JSON lines with a `text` field (and optional `title`) on stdin; write one JSON result per line."""
    from services.ingest.classify.cli import classify_lines

    for line in classify_lines(sys.stdin):
        sys.stdout.write(line if line.endswith("\n") else line + "\n")
        sys.stdout.flush()
