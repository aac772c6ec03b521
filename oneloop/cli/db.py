"""``oneloop db``: bring the schema to the code's migrations, and say where it stands."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from oneloop.cli.common import cli_engine, console, print_json, reported_errors
from oneloop.migrations import current_revision, downgrade, head_revision, upgrade

app = typer.Typer(help="Database schema: migrations.", no_args_is_help=True)


@app.command(
    "upgrade", epilog="Example: ONELOOP_DATABASE_URL=sqlite:///var/x.db oneloop db upgrade"
)
def upgrade_cmd(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the newest). Safe to run again."""
    with reported_errors(), cli_engine() as (settings, engine):
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
    console.print(f"database {_where(settings.database_url)}: {before or 'empty'} → {after}")


@app.command("downgrade", epilog="Example: oneloop db downgrade 0001")
def downgrade_cmd(revision: Annotated[str, typer.Argument(help="target revision")]) -> None:
    """Undo migrations down to REVISION (use 'base' for an empty schema)."""
    with reported_errors(), cli_engine() as (_, engine):
        downgrade(engine, revision)
        console.print(f"database now at {current_revision(engine) or 'base'}")


@app.command("current", epilog="Example: oneloop db current --json")
def current_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show the database's migration and the code's newest one; exit 1 if they differ."""
    with reported_errors(), cli_engine() as (settings, engine):
        current = current_revision(engine)
    head = head_revision()
    if as_json:
        print_json({"current": current, "head": head, "is_current": current == head})
    else:
        state = "[green]up to date[/]" if current == head else "[yellow]needs upgrade[/]"
        console.print(
            f"{_where(settings.database_url)}: {current or 'empty'} (head {head}) {state}"
        )
    if current != head:
        raise typer.Exit(1)


def _where(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)
