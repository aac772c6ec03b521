"""``oneloop bu``: the group and its business units."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import cli_session, console, print_json, reported_errors
from oneloop.governance import service
from oneloop.governance.schemas import BusinessUnitIn, BusinessUnitPatch

bu_app = typer.Typer(help="Business units (事业部) and the group (集团).", no_args_is_help=True)


@bu_app.command(
    "create",
    epilog=(
        "Examples: oneloop bu create galaxy --name 星河集团 --name-en 'Galaxy Group'   "
        "oneloop bu create appliances --name 消费电器事业部 --name-en 'Consumer Appliances' "
        "--parent galaxy   "
        "oneloop bu create europe --name 欧洲事业部 --name-en Europe --parent galaxy "
        "--time-zone Europe/Berlin"
    ),
)
def create(
    code: Annotated[str, typer.Argument(help="short code: lower-case letters, digits, dashes")],
    name: Annotated[str, typer.Option("--name", help="display name (Chinese)")],
    name_en: Annotated[
        str | None, typer.Option("--name-en", help="English display name (default: --name)")
    ] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="code of the parent; omit for the group")
    ] = None,
    time_zone: Annotated[
        str | None,
        typer.Option(
            "--time-zone",
            help="IANA zone rules count days in (default: the parent's; Asia/Shanghai)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Create the group (no --parent) or a business unit under it."""
    with reported_errors(), cli_session() as (session, ctx):
        data = BusinessUnitIn(
            code=code, name_zh=name, name_en=name_en or name, parent=parent, time_zone=time_zone
        )
        unit = service.create_business_unit(session, ctx, data)
    if as_json:
        print_json(unit)
    else:
        console.print(f"created {unit.kind} [bold]{unit.code}[/] ({unit.id}, {unit.time_zone})")


@bu_app.command(
    "update",
    epilog="Example: oneloop bu update europe --time-zone Europe/Berlin --name-en 'Europe'",
)
def update(
    code: Annotated[str, typer.Argument(help="the unit's code")],
    name: Annotated[str | None, typer.Option("--name", help="display name (Chinese)")] = None,
    name_en: Annotated[str | None, typer.Option("--name-en", help="English display name")] = None,
    time_zone: Annotated[
        str | None,
        typer.Option("--time-zone", help="IANA zone the unit's rules count days in"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Change a unit's names or time zone. What was computed in the old zone stays until
    recomputed: `oneloop traits recompute`, `oneloop scores recompute`, `oneloop segments
    evaluate`."""
    with reported_errors(), cli_session() as (session, ctx):
        data = BusinessUnitPatch(name_zh=name, name_en=name_en, time_zone=time_zone)
        unit = service.update_business_unit(session, ctx, code, data)
    if as_json:
        print_json(unit)
    else:
        console.print(f"updated {unit.kind} [bold]{unit.code}[/] ({unit.time_zone})")


@bu_app.command("list", epilog="Example: oneloop bu list --json")
def list_(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """List the group and its business units."""
    with reported_errors(), cli_session() as (session, ctx):
        units = service.list_business_units(session, ctx)
    if as_json:
        print_json(units)
        return
    by_id = {u.id: u.code for u in units}
    table = Table("code", "kind", "名称", "name", "parent", "时区 zone", "id")
    for u in units:
        parent = by_id.get(u.parent_id or "", "")
        table.add_row(u.code, u.kind, u.name_zh, u.name_en, parent, u.time_zone, u.id)
    console.print(table)
