"""``oneloop dictionary …``: the data dictionary (数据字典 / 指标口径) — list, show, set from a
YAML file, install the shipped defaults, and an entry's versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from oneloop.cli.common import cli_session, console, fail, print_json, reported_errors
from oneloop.governance import dictionary
from oneloop.governance.dictionary_schemas import Classification, Entry, EntryKind

dictionary_app = typer.Typer(
    help="数据字典 Data dictionary: what each field and metric means, and how personal it is.",
    no_args_is_help=True,
)
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
Key = Annotated[str, typer.Argument(help="the entry's key, e.g. phone or revenue")]


@dictionary_app.command(
    "list", epilog="Example: oneloop dictionary list --kind field --classification pii"
)
def list_(
    kind: Annotated[EntryKind | None, typer.Option(help="field or metric")] = None,
    classification: Annotated[
        Classification | None, typer.Option(help="public, internal, pii or sensitive_pii")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List the dictionary's entries by key."""
    with reported_errors(), cli_session() as (session, ctx):
        items: list[Entry] = []
        cursor = None
        while True:
            page = dictionary.list_entries(
                session, ctx, kind=kind, classification=classification, cursor=cursor
            )
            items.extend(page.items)
            if (cursor := page.next_cursor) is None:
                break
    if as_json:
        print_json(items)
        return
    table = Table("key", "kind", "name", "type", "unit", "classification", "masked as", "v")
    table.columns[0].no_wrap = True
    for e in items:
        table.add_row(
            escape(e.key),
            f"{e.kind_label.zh} {e.kind}",
            escape(f"{e.name_zh} · {e.name_en}"),
            e.data_type,
            escape(_unit(e)),
            f"{e.classification_label.zh} {e.classification}",
            e.pii_kind or "",
            str(e.version),
        )
    console.print(table)


def _unit(e: Entry) -> str:
    if e.currency is not None:
        tax = "incl. tax" if e.includes_tax else "excl. tax"
        return f"{e.currency} ({tax})"
    return e.unit or ""


@dictionary_app.command("show", epilog="Example: oneloop dictionary show revenue --json")
def show(key: Key, as_json: AsJson = False) -> None:
    """One entry as it stands: meaning, unit, owner, classification and lineage."""
    with reported_errors(), cli_session() as (session, ctx):
        entry = dictionary.get_entry(session, ctx, key)
    if as_json:
        print_json(entry)
        return
    console.print(
        f"[bold]{escape(entry.key)}[/] {escape(entry.name_zh)} · {escape(entry.name_en)} "
        f"({entry.kind}, version {entry.version})"
    )
    for text in (entry.description_zh, entry.description_en):
        if text:
            console.print(escape(text))
    console.print(f"type {entry.data_type}  {escape(_unit(entry))}")
    console.print(
        f"classification {entry.classification_label.zh} {entry.classification}"
        + (f" · masked as {entry.pii_kind}" if entry.pii_kind else "")
    )
    console.print(f"owner {escape(entry.owner_bu or 'the group')}")
    for item in entry.lineage:
        where = f"{item.event}." if item.event else ""
        note = f"  ({item.note})" if item.note else ""
        console.print(escape(f"  ← {item.kind} {where}{item.name}{note}"))


@dictionary_app.command("set", epilog="Example: oneloop dictionary set revenue --file revenue.yaml")
def set_(
    key: Key,
    file: Annotated[
        Path, typer.Option("--file", exists=True, dir_okay=False, help="the entry, as YAML")
    ],
    as_json: AsJson = False,
) -> None:
    """Create an entry, or change it: a new version, kept with who, when and why (note)."""
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        fail(f"{file}: not a YAML file: {exc}")
    with reported_errors(), cli_session() as (session, ctx):
        entry = dictionary.set_entry(session, ctx, key, dictionary.parse_entry(document))
    if as_json:
        print_json(entry)
        return
    console.print(f"{escape(entry.key)}: version {entry.version}")


@dictionary_app.command("install", epilog="Example: oneloop dictionary install")
def install(as_json: AsJson = False) -> None:
    """Install the shipped default dictionary; entries someone changed are kept. Idempotent."""
    with reported_errors(), cli_session() as (session, ctx):
        report = dictionary.install_defaults(session, ctx)
    if as_json:
        print_json(report)
        return
    console.print(
        f"{len(report.created)} created, {len(report.updated)} updated, "
        f"{report.unchanged} unchanged, {len(report.kept)} kept as edited"
    )
    if report.kept:
        console.print(escape("kept: " + ", ".join(report.kept)))


@dictionary_app.command("versions", epilog="Example: oneloop dictionary versions revenue")
def versions(key: Key, as_json: AsJson = False) -> None:
    """Every version of an entry, newest first: who changed which fields, when and why."""
    with reported_errors(), cli_session() as (session, ctx):
        found = dictionary.list_versions(session, ctx, key)
    if as_json:
        print_json(found)
        return
    table = Table("v", "at", "by", "change", "fields", "note")
    for v in found:
        table.add_row(
            str(v.version),
            f"{v.changed_at:%Y-%m-%d %H:%M}",
            escape(v.changed_by),
            v.change,
            escape(", ".join(v.changed)),
            escape(v.note or ""),
        )
    console.print(table)
