"""``oneloop segments …``: create segments from rule files (YAML or JSON), preview a rule,
list and show segments, page through or export members, and re-evaluate."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from oneloop.cli.common import (
    cli_session,
    console,
    fail,
    print_json,
    progress_bar,
    reported_errors,
)
from oneloop.core.context import Context
from oneloop.segments import service
from oneloop.segments.schemas import CODE_PATTERN, Segment, SegmentIn

segments_app = typer.Typer(
    help="人群分群 Segments: rules over traits, events, tags and scores, with live membership.",
    no_args_is_help=True,
)
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
Bu = Annotated[str | None, typer.Option("--bu", help="business unit code (default: the group)")]
Ref = Annotated[str, typer.Argument(help="the segment's code (e.g. repeat_buyers) or id")]
GoldenFields = Annotated[
    list[str] | None,
    typer.Option(
        "--field", help="a golden-record field to add (repeat it); masked without pii:read"
    ),
]
RuleFile = Annotated[
    Path,
    typer.Option("--file", exists=True, dir_okay=False, help="the rule, YAML or JSON"),
]

RULE_HELP = """A rule file holds one segment-language rule, for example (YAML):

    and:
      - {trait: city, op: eq, value: 上海}
      - {event: Order Completed, count: {op: gte, value: 2}, within: {amount: 90}}
      - not: {tag: unsubscribed}
"""


def _read_rule(file: Path) -> dict[str, object]:
    text = file.read_text(encoding="utf-8")
    try:
        rule = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        fail(f"{file} is not valid {'JSON' if file.suffix.lower() == '.json' else 'YAML'}: {exc}")
    if not isinstance(rule, dict):
        fail(f"{file} must hold one rule: an object such as {{and: [...]}}")
    return rule


def _find(session: Session, ctx: Context, ref: str, bu: str | None) -> Segment:
    if re.fullmatch(CODE_PATTERN, ref):
        return service.get_segment_by_code(session, ctx, ref, bu)
    return service.get_segment(session, ctx, ref)


def _show(segment: Segment) -> None:
    evaluated = f"{segment.evaluated_at:%Y-%m-%d %H:%M}" if segment.evaluated_at else "never"
    console.print(
        f"[bold]{escape(segment.code)}[/] {escape(segment.name)}  "
        f"{segment.size:,} members (evaluated {evaluated}, version {segment.version}, "
        f"{'live' if segment.is_live else 'on demand'})"
    )
    if segment.description:
        console.print(escape(segment.description))
    console.print(f"[dim]id {segment.id} · unit {segment.bu_id} · owner {escape(segment.owner)}[/]")


@segments_app.command(
    "create",
    help="Create a segment from a rule file and evaluate it.\n\n" + RULE_HELP,
    epilog="Example: oneloop segments create --file repeat_buyers.yaml --code repeat_buyers "
    "--name '复购客户 Repeat buyers' --bu north",
)
def create(
    file: RuleFile,
    code: Annotated[str, typer.Option(help="lower-case code other rules name it by")],
    name: Annotated[str, typer.Option(help="display name")],
    bu: Bu = None,
    description: Annotated[str, typer.Option(help="what it is for")] = "",
    owner: Annotated[str | None, typer.Option(help="who answers for it")] = None,
    static: Annotated[
        bool, typer.Option("--static", help="evaluate on demand only, not on every change")
    ] = False,
    as_json: AsJson = False,
) -> None:
    rule = _read_rule(file)
    with reported_errors(), cli_session() as (session, ctx):
        data = SegmentIn(
            code=code,
            name=name,
            description=description,
            rule=rule,
            bu=bu,
            owner=owner,
            is_live=not static,
        )
        with progress_bar(f"evaluating {code}") as tick:
            made = service.create_segment(session, ctx, data, on_progress=tick)
        session.commit()
    if as_json:
        print_json(made)
        return
    _show(made)


@segments_app.command("list", epilog="Example: oneloop segments list --bu north --json")
def list_(bu: Bu = None, as_json: AsJson = False) -> None:
    """List segments by code (every unit's, or one unit's with --bu)."""
    with reported_errors(), cli_session() as (session, ctx):
        found = service.list_segments(session, ctx, bu=bu)
    if as_json:
        print_json(found)
        return
    table = Table("code", "name", "unit", "members", "live", "evaluated")
    for s in found:
        table.add_row(
            escape(s.code),
            escape(s.name),
            s.bu_id,
            f"{s.size:,}",
            "yes" if s.is_live else "no",
            f"{s.evaluated_at:%Y-%m-%d %H:%M}" if s.evaluated_at else "never",
        )
    console.print(table)


@segments_app.command("show", epilog="Example: oneloop segments show repeat_buyers --bu north")
def show(ref: Ref, bu: Bu = None, as_json: AsJson = False) -> None:
    """Show a segment and its rule (as YAML)."""
    with reported_errors(), cli_session() as (session, ctx):
        found = _find(session, ctx, ref, bu)
    if as_json:
        print_json(found)
        return
    _show(found)
    typer.echo(yaml.safe_dump(found.rule, allow_unicode=True, sort_keys=False), nl=False)


@segments_app.command(
    "preview",
    help="Count the profiles a rule holds for, without saving it (an estimate on large units, "
    "labelled as such).\n\n" + RULE_HELP,
    epilog="Example: oneloop segments preview --file repeat_buyers.yaml --bu north --exact",
)
def preview(
    file: RuleFile,
    bu: Bu = None,
    exact: Annotated[bool, typer.Option("--exact", help="also count exactly")] = False,
    as_json: AsJson = False,
) -> None:
    rule = _read_rule(file)
    with reported_errors(), cli_session() as (session, ctx):
        found = service.preview(session, ctx, rule, bu=bu, exact=exact)
    if as_json:
        print_json(found)
        return
    console.print(found.label)
    if found.exact_count is not None and found.is_estimate:
        console.print(f"exactly {found.exact_count:,}")
    for profile_id in found.sample_ids:
        console.print(f"  {profile_id}")


@segments_app.command(
    "members",
    epilog="Example: oneloop segments members repeat_buyers --bu north --limit 50 --field name",
)
def members(
    ref: Ref,
    bu: Bu = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    cursor: Annotated[str | None, typer.Option(help="the previous page's next cursor")] = None,
    field: GoldenFields = None,
    as_json: AsJson = False,
) -> None:
    """Page through a segment's members (profile id, when they entered, and fields)."""
    with reported_errors(), cli_session() as (session, ctx):
        segment = _find(session, ctx, ref, bu)
        page = service.list_members(
            session, ctx, segment.id, cursor=cursor, limit=limit, fields=field or ()
        )
    if as_json:
        print_json(page)
        return
    table = Table("profile", "entered", *(field or ()))
    for m in page.members:
        shown = (escape(_cell(m.fields.get(f))) for f in field or ())
        table.add_row(m.profile_id, f"{m.entered_at:%Y-%m-%d %H:%M}", *shown)
    console.print(table)
    if page.next_cursor:
        console.print(f"[dim]more: --cursor {page.next_cursor}[/]")


def _cell(value: object) -> str:
    return "" if value is None else str(value)


@segments_app.command(
    "export",
    epilog=(
        "Example: oneloop segments export repeat_buyers --bu north --field name --field phone "
        "-o buyers.csv"
    ),
)
def export(
    ref: Ref,
    bu: Bu = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", dir_okay=False, help="file (default: stdout)")
    ] = None,
    field: GoldenFields = None,
) -> None:
    """Write every member as CSV (profile_id, entered_at, and the fields asked for)."""
    with reported_errors(), cli_session() as (session, ctx):
        segment = _find(session, ctx, ref, bu)
        chunks = service.export_csv(session, ctx, segment.id, field or ())
        if output is None:
            for chunk in chunks:
                typer.echo(chunk, nl=False)
            return
        with (
            output.open("w", encoding="utf-8", newline="") as out,
            progress_bar(f"exporting {segment.code}", total=segment.size) as tick,
        ):
            written = 0
            for chunk in chunks:
                out.write(chunk)
                written += chunk.count("\n")
                tick(min(max(written - 1, 0), segment.size), segment.size)
    console.print(f"{segment.size:,} members written to {output}")


@segments_app.command(
    "evaluate", epilog="Example: oneloop segments evaluate repeat_buyers --bu north"
)
def evaluate(ref: Ref, bu: Bu = None, as_json: AsJson = False) -> None:
    """Evaluate a segment's rule over every profile now, recording who entered and left."""
    with reported_errors(), cli_session() as (session, ctx):
        segment = _find(session, ctx, ref, bu)
        with progress_bar(f"evaluating {segment.code}") as tick:
            done = service.evaluate(session, ctx, segment.id, on_progress=tick)
        session.commit()
    if as_json:
        print_json(done)
        return
    console.print(
        f"{segment.code}: {done.entered:,} entered, {done.exited:,} left, {done.size:,} members"
    )
