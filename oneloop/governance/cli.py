"""``oneloop bu``: the group and its business units."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import cli_session, console, print_json, reported_errors
from oneloop.governance import service
from oneloop.governance.schemas import BusinessUnitIn

bu_app = typer.Typer(help="Business units (事业部) and the group (集团).", no_args_is_help=True)


@bu_app.command(
    "create",
    epilog=(
        "Examples: oneloop bu create galaxy --name 星河集团 --name-en 'Galaxy Group'   "
        "oneloop bu create appliances --name 消费电器事业部 --name-en 'Consumer Appliances' "
        "--parent galaxy"
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
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Create the group (no --parent) or a business unit under it."""
    with reported_errors(), cli_session() as (session, ctx):
        data = BusinessUnitIn(code=code, name_zh=name, name_en=name_en or name, parent=parent)
        unit = service.create_business_unit(session, ctx, data)
    if as_json:
        print_json(unit)
    else:
        console.print(f"created {unit.kind} [bold]{unit.code}[/] ({unit.id})")


@bu_app.command("list", epilog="Example: oneloop bu list --json")
def list_(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """List the group and its business units."""
    with reported_errors(), cli_session() as (session, ctx):
        units = service.list_business_units(session, ctx)
    if as_json:
        print_json(units)
        return
    by_id = {u.id: u.code for u in units}
    table = Table("code", "kind", "名称", "name", "parent", "id")
    for u in units:
        table.add_row(u.code, u.kind, u.name_zh, u.name_en, by_id.get(u.parent_id or "", ""), u.id)
    console.print(table)
