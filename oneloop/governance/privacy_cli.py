"""``oneloop privacy``: a data subject's requests from the command line, which acts as the
group (HQ) and so can execute them."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import cli_session, console, print_json, reported_errors
from oneloop.governance import privacy

privacy_app = typer.Typer(
    help="Privacy requests (DSAR): access, erasure, objection to profiling.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
NoteOpt = Annotated[str, typer.Option("--note", help="a reference (ticket, letter): no PII")]


class Kind(StrEnum):
    access = "access"
    erasure = "erasure"
    objection = "objection"


@privacy_app.command(
    "export", epilog="Example: oneloop privacy export 01J8… --out person.json --note 'ticket 4711'"
)
def export(
    profile: Annotated[str, typer.Argument(help="the person's OneID")],
    out: Annotated[Path | None, typer.Option("--out", help="write here (default: stdout)")] = None,
    note: NoteOpt = "",
) -> None:
    """Everything held about a person, as JSON (an access request, logged and audited)."""
    with reported_errors(), cli_session() as (session, ctx):
        row = privacy.create_request(session, ctx, "access", profile, "other", note)
        _, document = privacy.execute(session, ctx, row.id)
    text = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out} (request {row.id})")


@privacy_app.command(
    "erase", epilog="Example: oneloop privacy erase 01J8… --yes --note 'ticket 4711'"
)
def erase(
    profile: Annotated[str, typer.Argument(help="the person's OneID")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    note: NoteOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Remove a person's PII everywhere, for good, and keep them from coming back."""
    if not yes:
        typer.confirm(
            f"Erase everything that identifies {profile}? This cannot be undone", abort=True
        )
    with reported_errors(), cli_session() as (session, ctx):
        row = privacy.create_request(session, ctx, "erasure", profile, "other", note)
        done, _ = privacy.execute(session, ctx, row.id)
        result = dict(done.result or {})
    if as_json:
        print_json({"request": row.id, "result": result})
        return
    table = Table("what", "rows", title=f"erased (request {row.id})")
    for name, count in result.items():
        table.add_row(name, str(count))
    console.print(table)


@privacy_app.command("object", epilog="Example: oneloop privacy object 01J8… --note 'letter 12'")
def object_(
    profile: Annotated[str, typer.Argument(help="the person's OneID")],
    note: NoteOpt = "",
) -> None:
    """The person objects to profiling: no more scores, segments or rule tags."""
    with reported_errors(), cli_session() as (session, ctx):
        row = privacy.create_request(session, ctx, "objection", profile, "other", note)
        privacy.execute(session, ctx, row.id)
    console.print(f"{profile} is no longer profiled (request {row.id})")


@privacy_app.command(
    "request", epilog="Example: oneloop privacy request 01J8… --kind erasure --note 'ticket 4711'"
)
def request(
    profile: Annotated[str, typer.Argument(help="the person's OneID")],
    kind: Annotated[Kind, typer.Option("--kind", help="what the person asks for")],
    note: NoteOpt = "",
) -> None:
    """Log a request to carry out later (`oneloop privacy execute`); its deadline starts now."""
    with reported_errors(), cli_session() as (session, ctx):
        row = privacy.create_request(session, ctx, kind.value, profile, "other", note)
        due = row.due_at
    console.print(f"logged {kind.value} request {row.id}, due {due:%Y-%m-%d}")


@privacy_app.command("execute", epilog="Example: oneloop privacy execute 01J9…")
def execute(request_id: Annotated[str, typer.Argument(help="the request's id")]) -> None:
    """Carry out a logged request (an access request prints its export)."""
    with reported_errors(), cli_session() as (session, ctx):
        row, document = privacy.execute(session, ctx, request_id)
        kind = row.kind
    if document is not None:
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))
    else:
        console.print(f"{kind} request {request_id} done")


@privacy_app.command(
    "reject", epilog="Example: oneloop privacy reject 01J9… --reason 'identity not verified'"
)
def reject(
    request_id: Annotated[str, typer.Argument(help="the request's id")],
    reason: Annotated[str, typer.Option("--reason", help="why it is refused")],
) -> None:
    """Refuse a request, saying why."""
    with reported_errors(), cli_session() as (session, ctx):
        privacy.reject(session, ctx, request_id, reason)
    console.print(f"rejected {request_id}")


@privacy_app.command("list", epilog="Example: oneloop privacy list --overdue")
def list_(
    overdue: Annotated[
        bool, typer.Option("--overdue", help="only open ones past deadline")
    ] = False,
    status: Annotated[str | None, typer.Option(help="received, completed or rejected")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests, nearest deadline first."""
    with reported_errors(), cli_session() as (session, ctx):
        rows = privacy.list_requests(session, ctx, status=status, overdue=overdue)
        now = ctx.clock.now()
        found = [
            {
                "id": r.id,
                "kind": r.kind,
                "profile_id": r.profile_id,
                "status": r.status,
                "received_at": r.received_at.isoformat(),
                "due_at": r.due_at.isoformat(),
                "overdue": privacy.is_overdue(r, now),
            }
            for r in rows
        ]
    if as_json:
        print_json(found)
        return
    table = Table("id", "kind", "profile", "status", "due", "overdue")
    for r in found:
        table.add_row(
            r["id"],
            r["kind"],
            r["profile_id"],
            r["status"],
            r["due_at"][:10],
            "yes" if r["overdue"] else "",
        )
    console.print(table)
