"""``oneloop audit``: search the audit log and verify its hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import cli_session, console, fail, print_json, reported_errors
from oneloop.governance import audit

audit_app = typer.Typer(help="The audit log: who did what, when, from where.", no_args_is_help=True)


@audit_app.command("verify", epilog="Example: oneloop audit verify --json")
def verify(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Re-check every entry's hash and link; exit 1 naming the first edited or deleted one."""
    with reported_errors(), cli_session() as (session, _):
        result = audit.verify(session)
    if as_json:
        print_json(result)
    elif result.is_intact:
        console.print(f"chain intact: {result.entries} entries")
    if not result.is_intact:
        fail(f"chain broken at seq {result.bad_seq}: {result.reason}")


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(f"--{name}: not an ISO time: {value!r}; e.g. 2026-01-01T00:00+08:00", code=2)


@audit_app.command(
    "list",
    epilog=(
        "Example: oneloop audit list --action segment.exported --since 2026-01-01T00:00+08:00 "
        "--limit 20 --json"
    ),
)
def list_(
    action: Annotated[str | None, typer.Option(help="e.g. identity.unmerged")] = None,
    object_id: Annotated[str | None, typer.Option("--object-id", help="the object's id")] = None,
    actor: Annotated[str | None, typer.Option(help="the user's id, e.g. system")] = None,
    since: Annotated[
        str | None, typer.Option(help="ISO time with offset, e.g. 2026-01-01T00:00Z")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="newest N entries")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List audit entries, newest first."""
    since_at = _time(since, "since")
    with reported_errors(), cli_session() as (session, ctx):
        page = audit.list_entries(
            session,
            ctx,
            action=action,
            object_id=object_id,
            actor=actor,
            since=since_at,
            limit=limit,
        )
    if as_json:
        print_json(page.items)
        return
    table = Table("seq", "at", "actor", "action", "object", "origin", "outcome")
    for e in page.items:
        obj = f"{e.object_type} {e.object_id or ''}".strip()
        table.add_row(
            str(e.seq), e.at.isoformat(), e.actor, e.action, obj, e.origin or "", e.outcome
        )
    console.print(table)
