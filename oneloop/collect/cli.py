"""``oneloop sources``: where events come from, and the write keys that let them in."""

from __future__ import annotations

import threading
from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import (
    cli_engine,
    cli_session,
    console,
    print_json,
    progress_bar,
    reported_errors,
)
from oneloop.collect import catalog, consumers, deadletters, service, stats
from oneloop.collect.schemas import CreatableKind, NewWriteKey, SourceIn
from oneloop.core.db import session_factory
from oneloop.worker import worker_tasks

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
    kind: Annotated[CreatableKind, typer.Option(help="http, file or webhook")] = "http",
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


@sources_app.command("stats", epilog="Example: oneloop sources stats 01J0ABC… --json")
def stats_cmd(source_id: SourceId, as_json: AsJson = False) -> None:
    """Received, accepted, duplicates, dead letters, violations, and the last hour per minute."""
    with reported_errors(), cli_session() as (session, ctx):
        report = stats.source_stats(session, ctx, source_id, now=ctx.clock.now())
    if as_json:
        print_json(report)
        return
    table = Table("received", "accepted", "duplicates", "dead-lettered", "violations", "last event")
    table.add_row(
        f"{report.received:,}",
        f"{report.accepted:,}",
        f"{report.duplicates:,}",
        f"{report.dead_lettered:,}",
        f"{report.violations:,}",
        str(report.last_event_at or "—"),
    )
    console.print(table)
    last_hour = sum(m.events for m in report.per_minute)
    console.print(f"accepted in the last hour: {last_hour:,}")


@sources_app.command("catalog", epilog="Example: oneloop sources catalog 01J0ABC…")
def catalog_cmd(source_id: SourceId, as_json: AsJson = False) -> None:
    """What the source really sends: event names, property keys, counts (kept by the worker)."""
    with reported_errors(), cli_session() as (session, ctx):
        entries = catalog.list_catalog(session, ctx, source_id)
    if as_json:
        print_json(entries)
        return
    table = Table("type", "name", "count", "property keys", "last seen")
    for e in entries:
        keys = ", ".join(e.keys[:8]) + (" …" if len(e.keys) > 8 else "")
        table.add_row(e.type, e.name, f"{e.count:,}", keys, str(e.last_seen_at))
    console.print(table)


deadletters_app = typer.Typer(
    help="Dead letters: what was received but refused, kept for replay.", no_args_is_help=True
)
SourceOpt = Annotated[str | None, typer.Option("--source", help="only this source's")]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="only this reason, e.g. invalid_event")
]


@deadletters_app.command(
    "list", epilog="Example: oneloop deadletters list --reason invalid_event --limit 20"
)
def dl_list(
    source: SourceOpt = None,
    reason: ReasonOpt = None,
    status: Annotated[str, typer.Option(help="waiting or replayed")] = "waiting",
    limit: Annotated[int, typer.Option(min=1, max=500, help="how many")] = 50,
    as_json: AsJson = False,
) -> None:
    """Newest first: id, source, reason, and what was wrong."""
    with reported_errors(), cli_session() as (session, ctx):
        page = deadletters.list_dead_letters(
            session, ctx, source=source, reason=reason, status=status, limit=limit
        )
    if as_json:
        print_json(page)
        return
    table = Table("id", "source", "origin", "reason", "detail", "attempts")
    for d in page.items:
        table.add_row(d.id, d.source_id, d.origin, d.reason, d.detail[:80], str(d.attempts))
    console.print(table)


@deadletters_app.command("show", epilog="Example: oneloop deadletters show 01J0ABC…")
def dl_show(dead_letter_id: Annotated[str, typer.Argument(help="the dead letter's id")]) -> None:
    """One dead letter with its raw payload, as JSON."""
    with reported_errors(), cli_session() as (session, ctx):
        letter = deadletters.get_dead_letter(session, ctx, dead_letter_id)
    print_json(letter)


@deadletters_app.command(
    "replay", epilog="Example: oneloop deadletters replay --source 01J0ABC… --reason plan_violation"
)
def dl_replay(
    source: SourceOpt = None,
    reason: ReasonOpt = None,
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="only this dead letter (repeatable)")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Replay waiting dead letters after the fix: good ones enter the log exactly once."""
    with reported_errors(), cli_session() as (session, ctx), progress_bar("replaying") as tick:
        report = deadletters.replay(
            session, ctx, source=source, reason=reason, ids=ids, on_progress=tick
        )
    if as_json:
        print_json(report)
        return
    console.print(
        f"selected {report.selected:,}: replayed {report.replayed:,}, already stored "
        f"{report.already_stored:,}, still refused {report.still_refused:,}"
    )


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="catch up with the log, then exit (for batch runs)")
    ] = False,
) -> None:
    """Run the event log's consumers (identity, profiles, segments …) until stopped."""
    with reported_errors(), cli_engine() as (settings, engine):
        sessions = session_factory(engine)
        found = consumers.registered()
        tasks = worker_tasks(settings)
        if once:
            with progress_bar("consuming the log") as tick:
                totals = consumers.drain(sessions, found, tasks=tasks, on_progress=tick)
            for name, total in totals.items():
                console.print(f"{name}: {total.processed:,} processed, {total.failed:,} failed")
            return
        stop = threading.Event()
        console.print(f"consumers: {', '.join(c.name for c in found) or 'none'}; Ctrl-C stops")
        try:
            consumers.run_forever(sessions, found, stop, tasks=tasks)
        except KeyboardInterrupt:
            stop.set()
