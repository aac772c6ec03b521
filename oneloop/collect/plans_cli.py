"""``oneloop plans``: tracking plans as YAML files, which source follows which, and what broke."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import cli_session, console, print_json, reported_errors
from oneloop.collect import plans
from oneloop.collect.plan_schemas import PlanMode

plans_app = typer.Typer(
    help="Tracking plans: per event a JSON Schema, allow or block mode.", no_args_is_help=True
)

AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
PlanId = Annotated[str, typer.Argument(help="the tracking plan's id")]
SourceOpt = Annotated[str, typer.Option("--source", help="the source's id")]


@plans_app.command(
    "import",
    epilog="Example: oneloop plans import oneloop/demo/plans/industrial.yaml --bu industrial",
)
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="the plan as a YAML file")
    ],
    bu: Annotated[str, typer.Option(help="business unit code")],
    name: Annotated[str | None, typer.Option(help="the plan's name (default: the file's)")] = None,
    mode: Annotated[
        PlanMode | None, typer.Option(help="allow or block (default: the file's)")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Create a plan from a YAML file, or replace the unit's plan of the same name."""
    with reported_errors():
        data = plans.plan_from_yaml(file.read_bytes(), bu=bu, name=name, mode=mode)
        with cli_session() as (session, ctx):
            plan, created = plans.import_plan(session, ctx, data)
    if as_json:
        print_json(plan)
        return
    verb = "created" if created else "replaced"
    console.print(
        f"{verb} plan [bold]{plan.id}[/] {plan.name!r} version {plan.version} "
        f"({len(plan.events)} events, {plan.mode} mode)",
        highlight=False,
    )


@plans_app.command("export", epilog="Example: oneloop plans export 01J0ABC… --out plan.yaml")
def export(
    plan_id: PlanId,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="write here (default: print it)")
    ] = None,
) -> None:
    """Write a plan as YAML, ready to edit and import again."""
    with reported_errors(), cli_session() as (session, ctx):
        text = plans.export_plan(session, ctx, plan_id)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@plans_app.command("list", epilog="Example: oneloop plans list --json")
def list_(as_json: AsJson = False) -> None:
    """List tracking plans."""
    with reported_errors(), cli_session() as (session, ctx):
        found = plans.list_plans(session, ctx)
    if as_json:
        print_json(found)
        return
    table = Table("id", "name", "mode", "unplanned", "events", "traits", "version", "updated")
    for p in found:
        table.add_row(
            p.id,
            p.name,
            p.mode,
            p.unplanned,
            str(len(p.events)),
            "yes" if p.traits is not None else "no",
            str(p.version),
            f"{p.updated_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@plans_app.command("delete", epilog="Example: oneloop plans delete 01J0ABC…")
def delete(plan_id: PlanId) -> None:
    """Delete a plan that no source uses."""
    with reported_errors(), cli_session() as (session, ctx):
        plans.delete_plan(session, ctx, plan_id)
    console.print(f"deleted {plan_id}")


@plans_app.command("attach", epilog="Example: oneloop plans attach 01J0ABC… --source 01J0DEF…")
def attach(plan_id: PlanId, source: SourceOpt) -> None:
    """Check a source's events against a plan of its business unit, from the next batch on."""
    with reported_errors(), cli_session() as (session, ctx):
        plans.attach_plan(session, ctx, source, plan_id)
    console.print(f"source {source} now follows plan {plan_id}")


@plans_app.command("detach", epilog="Example: oneloop plans detach --source 01J0DEF…")
def detach(source: SourceOpt) -> None:
    """Stop checking a source's events against a plan."""
    with reported_errors(), cli_session() as (session, ctx):
        plans.attach_plan(session, ctx, source, None)
    console.print(f"source {source} follows no plan")


@plans_app.command("violations", epilog="Example: oneloop plans violations --source 01J0DEF…")
def violations(source: SourceOpt, as_json: AsJson = False) -> None:
    """How often a source broke its plan, per event, property and kind, most frequent first."""
    with reported_errors(), cli_session() as (session, ctx):
        found = plans.list_violations(session, ctx, source)
    if as_json:
        print_json(found)
        return
    table = Table("event", "path", "kind", "count", "last seen", "example message id")
    for v in found:
        table.add_row(
            v.event if v.event is not None else "(identify)",
            v.path,
            v.kind,
            str(v.count),
            f"{v.last_seen_at:%Y-%m-%d %H:%M}",
            v.example_message_id,
        )
    console.print(table)
