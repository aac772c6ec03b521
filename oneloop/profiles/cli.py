"""``oneloop profiles …`` (find, show, timeline, departments) and ``oneloop tags …``
(categories, tags, tagging by hand and from a CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from oneloop.cli.common import cli_session, console, print_json, reported_errors
from oneloop.profiles import departments, service
from oneloop.profiles.schemas import TagAssignIn, TagCategoryIn, TagIn

profiles_app = typer.Typer(
    help="Profiles: find one by any identifier, its 360 view and timeline.",
    no_args_is_help=True,
)
tags_app = typer.Typer(help="Tags (标签体系): categories, tags, tagging.", no_args_is_help=True)
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


@profiles_app.command("find", epilog="Example: oneloop profiles find phone 13800138000")
def find(
    kind: Annotated[str, typer.Argument(help="phone, email, wechat_openid, …, or oneid")],
    value: Annotated[str, typer.Argument(help="the identifier as anyone would write it")],
    as_json: AsJson = False,
) -> None:
    """Find the profile an identifier belongs to."""
    with reported_errors(), cli_session() as (session, ctx):
        found = service.find(session, ctx, kind, value)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    console.print(
        f"profile [bold]{found.id}[/] · {found.events} events · "
        f"{found.first_seen_at:%Y-%m-%d} – {found.last_seen_at:%Y-%m-%d}"
    )


@profiles_app.command("show", epilog="Example: oneloop profiles show 01J8ZK…")
def show(
    profile_id: Annotated[str, typer.Argument(help="a OneID")],
    as_json: AsJson = False,
) -> None:
    """The 360 view: golden record, identifiers, traits, tags, scores and segments."""
    with reported_errors(), cli_session() as (session, ctx):
        found = service.get(session, ctx, profile_id)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    console.print(f"profile [bold]{found.id}[/] · {found.events} events")
    table = Table("field", "value", title="golden record")
    for name, field in found.golden.fields.items():
        table.add_row(escape(name), escape(f"{field.value}"))
    console.print(table)
    table = Table("trait", "value", "kind", title="traits")
    for trait in found.traits:
        item = trait if isinstance(trait, dict) else trait.model_dump()
        table.add_row(escape(str(item["name"])), escape(str(item["value"])), str(item["kind"]))
    console.print(table)
    table = Table("tag", "category", "source", "why", title="tags")
    for tag in found.tags:
        table.add_row(f"{tag.name_zh} {tag.name_en}", tag.category, tag.source, escape(tag.reason))
    console.print(table)
    for score in found.scores:
        console.print(f"score {escape(str(score.get('code')))}: {score.get('value', 0):.1f}")
    for segment in found.segments:
        console.print(f"segment {escape(str(segment.get('name') or segment.get('code')))}")


@profiles_app.command(
    "timeline", epilog="Example: oneloop profiles timeline 01J8ZK… --department sales"
)
def timeline(
    profile_id: Annotated[str, typer.Argument(help="a OneID")],
    department: Annotated[str | None, typer.Option(help="marketing, sales, service …")] = None,
    event: Annotated[str | None, typer.Option(help="only this event name")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page's cursor")] = None,
    as_json: AsJson = False,
) -> None:
    """What happened to the person, newest first."""
    with reported_errors(), cli_session() as (session, ctx):
        page = service.timeline(
            session, ctx, profile_id, department=department, event=event, cursor=cursor, limit=limit
        )
    if as_json:
        print_json(page.model_dump(mode="json"))
        return
    table = Table("time (UTC)", "department", "event", "details")
    for entry in page.entries:
        detail = ", ".join(f"{k}={v}" for k, v in list(entry.properties.items())[:3])
        table.add_row(
            f"{entry.at:%Y-%m-%d %H:%M}", entry.department, escape(entry.name), escape(detail[:80])
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"next page: --cursor {page.next_cursor}")


departments_app = typer.Typer(help="Which department each event belongs to.", no_args_is_help=True)
profiles_app.add_typer(departments_app, name="departments")


@departments_app.command("show", epilog="Example: oneloop profiles departments show > d.yaml")
def departments_show() -> None:
    """Print the mapping as YAML."""
    with reported_errors(), cli_session() as (session, ctx):
        doc = departments.document(session, ctx)
    typer.echo(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


@departments_app.command("set", epilog="Example: oneloop profiles departments set d.yaml")
def departments_set(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a YAML mapping")],
) -> None:
    """Replace the mapping and re-stamp the events already on timelines."""
    with reported_errors(), cli_session() as (session, ctx):
        changed = departments.set_document(session, ctx, yaml.safe_load(file.read_text("utf-8")))
        session.commit()
    console.print(f"mapping saved; {changed} events re-stamped")


@tags_app.command("categories", epilog="Example: oneloop tags categories")
def categories(as_json: AsJson = False) -> None:
    """List tag categories."""
    with reported_errors(), cli_session() as (session, ctx):
        found = service.list_categories(session, ctx)
    if as_json:
        print_json([c.model_dump(mode="json") for c in found])
        return
    table = Table("code", "中文", "English")
    for c in found:
        table.add_row(c.code, c.name_zh, c.name_en)
    console.print(table)


@tags_app.command(
    "create-category", epilog="Example: oneloop tags create-category intent 意向 Intent"
)
def create_category(
    code: str,
    name_zh: str,
    name_en: str,
    bu: Annotated[str | None, typer.Option(help="business unit code (default: the group)")] = None,
) -> None:
    """Create a tag category."""
    with reported_errors(), cli_session() as (session, ctx):
        service.create_category(
            session, ctx, TagCategoryIn(code=code, name_zh=name_zh, name_en=name_en, bu=bu)
        )
        session.commit()
    console.print(f"category {code} created")


@tags_app.command("list", epilog="Example: oneloop tags list --json")
def list_tags(as_json: AsJson = False) -> None:
    """List tags."""
    with reported_errors(), cli_session() as (session, ctx):
        found = service.list_tags(session, ctx)
    if as_json:
        print_json([t.model_dump(mode="json") for t in found])
        return
    table = Table("id", "code", "中文", "English", "kind")
    for t in found:
        table.add_row(t.id, t.code, t.name_zh, t.name_en, t.kind)
    console.print(table)


@tags_app.command(
    "create",
    epilog="Example: oneloop tags create high_intent --category intent --zh 高意向 --en 'High'",
)
def create(
    code: str,
    category: Annotated[str, typer.Option(help="category code")],
    zh: Annotated[str, typer.Option(help="Chinese name")],
    en: Annotated[str, typer.Option(help="English name")],
    rule: Annotated[
        Path | None, typer.Option(help="a segment-language rule (JSON/YAML): a rule tag")
    ] = None,
    expires_after_days: Annotated[float | None, typer.Option(min=0.01)] = None,
    bu: Annotated[str | None, typer.Option(help="business unit code (default: the group)")] = None,
) -> None:
    """Create a manual tag, or a rule tag (set while its rule holds)."""
    with reported_errors(), cli_session() as (session, ctx):
        document = yaml.safe_load(rule.read_text("utf-8")) if rule else None
        tag = service.create_tag(
            session,
            ctx,
            TagIn(
                code=code,
                category=category,
                name_zh=zh,
                name_en=en,
                rule=document,
                expires_after_days=expires_after_days,
                bu=bu,
            ),
        )
        session.commit()
    console.print(f"tag {tag.code} created: {tag.id}")


@tags_app.command(
    "assign", epilog="Example: oneloop tags assign 01J8ZK… 01J9TAG… --reason 'met at summit'"
)
def assign(
    profile_id: str,
    tag_id: str,
    reason: Annotated[str, typer.Option(help="why (kept with the tag)")],
) -> None:
    """Tag a profile by hand."""
    with reported_errors(), cli_session() as (session, ctx):
        done = service.assign_tag(session, ctx, profile_id, tag_id, TagAssignIn(reason=reason))
        session.commit()
    console.print("tagged" if done else "already tagged")


@tags_app.command(
    "remove", epilog="Example: oneloop tags remove 01J8ZK… 01J9TAG… --reason 'wrong person'"
)
def remove(
    profile_id: str,
    tag_id: str,
    reason: Annotated[str, typer.Option(help="why (kept in the history)")],
) -> None:
    """Take a tag away from a profile."""
    with reported_errors(), cli_session() as (session, ctx):
        done = service.remove_tag(session, ctx, profile_id, tag_id, reason)
        session.commit()
    console.print("removed" if done else "the profile did not carry it")


@tags_app.command(
    "bulk", epilog="Example: oneloop tags bulk 01J9TAG… vip.csv --reason 'VIP list 2026'"
)
def bulk(
    tag_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: type,value")],
    reason: Annotated[str, typer.Option(help="why (kept with each tag)")],
    as_json: AsJson = False,
) -> None:
    """Tag every profile a CSV of identifiers names."""
    with reported_errors(), cli_session() as (session, ctx):
        result = service.bulk_tag(session, ctx, tag_id, file.read_text("utf-8-sig"), reason)
        session.commit()
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(
        f"{result.rows} rows: {result.tagged} tagged, {result.already} already, "
        f"{result.not_found} not found, {len(result.invalid)} invalid"
    )
    for bad in result.invalid[:20]:
        console.print(f"  line {bad['line']}: {escape(str(bad['message']))}")
