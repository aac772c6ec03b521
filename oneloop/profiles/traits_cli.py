"""``oneloop traits …``: computed traits (计算属性) as YAML or JSON files, and their rebuild.

A trait is named by its name (``orders_90d``) or its id; when several units define the same
name, ``--bu`` says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from oneloop.cli.common import cli_session, console, print_json, progress_bar, reported_errors
from oneloop.core.context import Context
from oneloop.governance import service as governance
from oneloop.profiles import traits
from oneloop.profiles.trait_defs import NAME, Trait

traits_app = typer.Typer(
    help="计算属性 Computed traits: aggregations over events, defined as data.",
    no_args_is_help=True,
)
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
Bu = Annotated[
    str | None, typer.Option("--bu", help="business unit code, when several units use the name")
]
NewBu = Annotated[
    str | None, typer.Option("--bu", help="business unit code (default: the group, group-wide)")
]
OnlyBu = Annotated[str | None, typer.Option("--bu", help="only this business unit's (its code)")]
Ref = Annotated[str, typer.Argument(help="the trait's name (e.g. orders_90d) or id")]
File = Annotated[
    Path,
    typer.Option("--file", exists=True, dir_okay=False, help="the definition, YAML or JSON"),
]
NoCompute = Annotated[
    bool, typer.Option("--no-compute", help="save only; compute later with `traits recompute`")
]


def _read(file: Path) -> object:
    return traits.load_document(file.read_bytes(), is_yaml=file.suffix.lower() != ".json")


def _find(session: Session, ctx: Context, ref: str, bu: str | None) -> Trait:
    if NAME.fullmatch(ref):
        return traits.get_trait_named(session, ctx, ref, bu)
    return traits.get_trait(session, ctx, ref)


def _unit_codes(session: Session, ctx: Context) -> dict[str, str]:
    return {u.id: u.code for u in governance.list_business_units(session, ctx)}


def _compute(session: Session, ctx: Context, trait: Trait) -> int:
    with progress_bar(f"computing {trait.name}") as tick:
        return traits.recompute_trait(session, ctx, trait.id, on_progress=tick)


@traits_app.command("list", epilog="Example: oneloop traits list --bu north --json")
def list_(bu: OnlyBu = None, as_json: AsJson = False) -> None:
    """List computed-trait definitions."""
    with reported_errors(), cli_session() as (session, ctx):
        found = traits.list_traits(session, ctx, bu)
        units = _unit_codes(session, ctx)
    if as_json:
        print_json(found)
        return
    table = Table("name", "aggregate", "events", "window", "unit", "version", "id")
    table.columns[0].no_wrap = True
    for t in found:
        d = t.definition
        events = d.get("event")
        window = d.get("window") or {}
        table.add_row(
            t.name,
            str(d.get("aggregate")),
            escape(", ".join(events) if isinstance(events, list) else str(events)),
            f"{window.get('amount')} {window.get('unit', 'days')}" if window else "",
            units.get(t.bu_id, t.bu_id),
            str(t.version),
            t.id,
        )
    console.print(table)


@traits_app.command("show", epilog="Example: oneloop traits show orders_90d --bu north")
def show(ref: Ref, bu: Bu = None, as_json: AsJson = False) -> None:
    """Show a definition, as YAML ready to edit."""
    with reported_errors(), cli_session() as (session, ctx):
        found = _find(session, ctx, ref, bu)
        unit = _unit_codes(session, ctx).get(found.bu_id, found.bu_id)
    if as_json:
        print_json(found)
        return
    console.print(
        f"trait [bold]{found.name}[/] · id {found.id} · unit {unit} · "
        f"version {found.version} · updated {found.updated_at:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    typer.echo(yaml.safe_dump(found.definition, allow_unicode=True, sort_keys=False))


@traits_app.command(
    "create", epilog="Example: oneloop traits create --file orders_90d.yaml --bu north"
)
def create(file: File, bu: NewBu = None, no_compute: NoCompute = False) -> None:
    """Define a computed trait from a file, and compute its values."""
    with reported_errors():
        document = _read(file)
        with cli_session() as (session, ctx):
            created = traits.create_trait(session, ctx, document, bu)
            written = 0 if no_compute else _compute(session, ctx, created)
    console.print(
        f"trait {created.name} created: {created.id}; {written} values written", highlight=False
    )


@traits_app.command(
    "update", epilog="Example: oneloop traits update orders_90d --file orders_90d.yaml"
)
def update(ref: Ref, file: File, bu: Bu = None, no_compute: NoCompute = False) -> None:
    """Replace a definition (a new version), and compute its values again."""
    with reported_errors():
        document = _read(file)
        with cli_session() as (session, ctx):
            found = _find(session, ctx, ref, bu)
            updated = traits.update_trait(session, ctx, found.id, document)
            written = 0 if no_compute else _compute(session, ctx, updated)
    console.print(
        f"trait {updated.name} is at version {updated.version}; {written} values written",
        highlight=False,
    )


@traits_app.command("delete", epilog="Example: oneloop traits delete orders_90d --bu north")
def delete(ref: Ref, bu: Bu = None) -> None:
    """Delete a definition and every profile's value of it."""
    with reported_errors(), cli_session() as (session, ctx):
        found = _find(session, ctx, ref, bu)
        removed = traits.delete_trait(session, ctx, found.id)
    console.print(f"trait {found.name} deleted with {removed} values", highlight=False)


@traits_app.command(
    "recompute", epilog="Example: oneloop traits recompute --trait orders_90d --bu north"
)
def recompute(
    trait: Annotated[
        str | None, typer.Option("--trait", help="only the trait of this name")
    ] = None,
    bu: OnlyBu = None,
) -> None:
    """Rebuild computed-trait values from all events; safe to re-run (writes only changes)."""
    with (
        reported_errors(),
        cli_session() as (session, ctx),
        progress_bar("recomputing traits") as tick,
    ):
        written = traits.recompute(session, ctx, trait=trait, bu=bu, on_progress=tick)
    console.print(f"{written} values written", highlight=False)
