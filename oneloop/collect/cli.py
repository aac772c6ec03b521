"""``oneloop sources``: where events come from, and the write keys that let them in."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import cli_session, console, print_json, reported_errors
from oneloop.collect import service
from oneloop.collect.schemas import NewWriteKey, SourceIn, SourceKind

sources_app = typer.Typer(help="Sources and their write keys.", no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
SourceId = Annotated[str, typer.Argument(help="the source's id")]


def _show_key(new: NewWriteKey, as_json: bool, what: str) -> None:
    if as_json:
        print_json(new)
        return
    console.print(f"{what} source [bold]{new.id}[/]")
    console.print(f"write key: [bold yellow]{new.write_key}[/] (shown once; store it now)")


@sources_app.command(
    "create",
    epilog="Example: oneloop sources create --bu appliances --name 官网 --kind http --json",
)
def create(
    bu: Annotated[str, typer.Option(help="business unit code")],
    name: Annotated[str, typer.Option(help="a name people recognise, e.g. 官网 Web")],
    kind: Annotated[SourceKind, typer.Option(help="http, file or webhook")] = "http",
    as_json: AsJson = False,
) -> None:
    """Create a source and print its first write key (the only time it is shown)."""
    with reported_errors(), cli_session() as (session, ctx):
        new = service.create_source(session, ctx, SourceIn(bu=bu, name=name, kind=kind))
    _show_key(new, as_json, "created")


@sources_app.command("list", epilog="Example: oneloop sources list --json")
def list_(as_json: AsJson = False) -> None:
    """List sources with their keys' prefixes (never the keys)."""
    with reported_errors(), cli_session() as (session, ctx):
        sources = service.list_sources(session, ctx)
    if as_json:
        print_json(sources)
        return
    table = Table("id", "name", "kind", "enabled", "active keys")
    for s in sources:
        active = ", ".join(k.prefix + "…" for k in s.keys if k.revoked_at is None)
        table.add_row(s.id, s.name, s.kind, "yes" if s.is_enabled else "no", active)
    console.print(table)


@sources_app.command(
    "rotate-key", epilog="Example: oneloop sources rotate-key 01J0ABC… --revoke-old"
)
def rotate_key(
    source_id: SourceId,
    revoke_old: Annotated[
        bool, typer.Option(help="revoke the old keys now (default: keep them until revoked)")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Make a new write key; old keys keep working until revoked, so SDKs can roll over."""
    with reported_errors(), cli_session() as (session, ctx):
        new = service.rotate_key(session, ctx, source_id, revoke_old=revoke_old)
    _show_key(new, as_json, "new key for")


@sources_app.command(
    "revoke-key", epilog="Example: oneloop sources revoke-key 01J0ABC… olk_AbCdEfGh"
)
def revoke_key(
    source_id: SourceId,
    prefix: Annotated[str, typer.Argument(help="the key's prefix, as `sources list` shows it")],
) -> None:
    """Revoke one key: requests with it are refused (401) from now on."""
    with reported_errors(), cli_session() as (session, ctx):
        service.revoke_key(session, ctx, source_id, prefix)
    console.print(f"revoked {prefix}…")


@sources_app.command("disable", epilog="Example: oneloop sources disable 01J0ABC…")
def disable(source_id: SourceId) -> None:
    """Refuse every key of the source (401) until it is enabled again."""
    with reported_errors(), cli_session() as (session, ctx):
        service.set_enabled(session, ctx, source_id, enabled=False)
    console.print(f"disabled {source_id}")


@sources_app.command("enable", epilog="Example: oneloop sources enable 01J0ABC…")
def enable(source_id: SourceId) -> None:
    """Accept the source's active keys again."""
    with reported_errors(), cli_session() as (session, ctx):
        service.set_enabled(session, ctx, source_id, enabled=True)
    console.print(f"enabled {source_id}")
