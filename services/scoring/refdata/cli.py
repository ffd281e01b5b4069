"""`mews refdata`: build the reference tables from the published files, and read them."""

from __future__ import annotations

import json
from pathlib import Path

import click

refdata = click.Group("refdata", help="Reference data: WGI governance, USGS world production, EU CRM study.")

_DATA = click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Reference tables to read (default: the ones shipped in the package).",
)


def _load(data_dir: Path | None):  # -> ReferenceData
    from services.scoring.refdata.tables import DATA_DIR, load_reference_data

    try:
        return load_reference_data(data_dir or DATA_DIR)
    except (OSError, ValueError, KeyError) as exc:
        raise click.ClickException(f"reference data: {exc}") from exc


@refdata.command("build")
@click.option(
    "--from",
    "source_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with one subfolder per publication (worldbank-wgi-2024, usgs-mcs2023, usgs-mcs2024, "
    "eu-crm-2023-study-tables), files as published.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the tables (default: the package's services/scoring/refdata/data).",
)
def build(source_dir: Path, out_dir: Path | None) -> None:
    """Turn the published files into the compact tables scoring reads, with manifest.json citing each."""
    from services.scoring.refdata.build import RefdataError, build_tables
    from services.scoring.refdata.tables import DATA_DIR

    out_dir = out_dir or DATA_DIR
    try:
        manifest = build_tables(source_dir, out_dir)
    except RefdataError as exc:
        raise click.ClickException(str(exc)) from exc
    for meta in manifest["tables"].values():
        click.echo(f"{meta['file']}: {meta['rows']} rows from {len(meta['inputs'])} file(s); {meta['source']}")
    for missing in manifest["tables"]["production"].get("not_found", []):
        click.echo(f"not found: {missing}", err=True)
    for name in manifest.get("unmatched_country_names", []):
        click.echo(f"country name not matched, row left out: {name!r}", err=True)
    click.echo(f"wrote {out_dir}")


@refdata.command("supply")
@click.option("--material", required=True, help="Catalog material id, e.g. gallium.")
@click.option("--year", type=int, default=None, help="Production year (default: the latest USGS has).")
@click.option(
    "--wgi",
    "measure",
    type=click.Choice(["mean", "va", "pv", "ge", "rq", "rl", "cc"]),
    default="mean",
    show_default=True,
    help="WGI measure of HHI_WGI: the mean of the six dimensions, or one of them.",
)
@_DATA
def supply(material: str, year: int | None, measure: str, data_dir: Path | None) -> None:
    """Print global supply concentration (HHI, top producer, HHI_WGI) of a material per stage, as JSON."""
    from services.scoring.refdata.supply import material_supply

    stages = material_supply(_load(data_dir), material, year, measure=measure)
    if not stages:
        raise click.ClickException(f"no USGS country production for {material!r}" + (f" in {year}" if year else ""))
    click.echo(json.dumps([s.as_dict() for s in stages], indent=1))


@refdata.command("validate")
@click.option(
    "--year",
    type=int,
    default=2021,
    show_default=True,
    help="USGS production year (2021 is the nearest to the study's 2016-2020 averages).",
)
@click.option(
    "--wgi",
    "measure",
    type=click.Choice(["mean", "va", "pv", "ge", "rq", "rl", "cc"]),
    default="mean",
    show_default=True,
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_DATA
def validate(year: int, measure: str, fmt: str, data_dir: Path | None) -> None:
    """Rank our HHI_WGI against the EU 2023 CRM study's supply risk (Spearman), largest differences first."""
    from dataclasses import asdict

    from services.scoring.refdata.supply import compare_with_study, render_comparison

    try:
        cmp = compare_with_study(_load(data_dir), year, measure=measure)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if not cmp.materials:
        raise click.ClickException(f"no material has both USGS production in {year} and a study SR")
    click.echo(json.dumps(asdict(cmp), indent=1) if fmt == "json" else render_comparison(cmp), nl=fmt == "json")
