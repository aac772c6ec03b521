"""``oneloop sharing``: what one unit lets another read."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import cli_session, console, print_json, reported_errors
from oneloop.governance import sharing
from oneloop.governance.schemas import SharingPolicyIn

sharing_app = typer.Typer(
    help="Sharing policies between business units (事业部间数据共享).", no_args_is_help=True
)


@sharing_app.command(
    "create",
    epilog=(
        "Example: oneloop sharing create appliances --with service --resource traits "
        "--name orders_90d --name revenue_90d"
    ),
)
def create(
    owner: Annotated[str, typer.Argument(help="code of the unit whose data is shared")],
    reader: Annotated[str, typer.Option("--with", help="code of the unit that may read it")],
    resource: Annotated[str, typer.Option(help="traits, tags, scores or events")],
    name: Annotated[list[str], typer.Option("--name", help="a name to share; '*' for all")],
    note: Annotated[str, typer.Option(help="why")] = "",
) -> None:
    """Let one unit read some of another's traits, tags, scores or events."""
    with reported_errors(), cli_session() as (session, ctx):
        data = SharingPolicyIn(
            owner=owner,
            reader=reader,
            resource=resource,
            names=name,
            note=note,  # type: ignore[arg-type]
        )
        made = sharing.create_policy(session, ctx, data)
    console.print(f"{owner} shares {resource} {', '.join(made.names)} with {reader} ({made.id})")


@sharing_app.command("list", epilog="Example: oneloop sharing list --json")
def list_(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Every sharing policy."""
    with reported_errors(), cli_session() as (session, ctx):
        found = sharing.list_policies(session, ctx)
    if as_json:
        print_json(found)
        return
    table = Table("id", "owner", "reader", "resource", "names", "note")
    for p in found:
        table.add_row(p.id, p.owner_bu_id, p.reader_bu_id, p.resource, " ".join(p.names), p.note)
    console.print(table)


@sharing_app.command("delete", epilog="Example: oneloop sharing delete 01J9…")
def delete(policy_id: Annotated[str, typer.Argument(help="the policy's id")]) -> None:
    """Withdraw a sharing policy."""
    with reported_errors(), cli_session() as (session, ctx):
        sharing.delete_policy(session, ctx, policy_id)
    console.print(f"deleted {policy_id}")
