"""``oneloop import FILE --source ID --mapping M``: a CSV, XLSX or JSONL export into a source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import cli_engine, console, print_json, progress_bar, reported_errors
from oneloop.collect.importers import CHUNK, ImportReport, import_file
from oneloop.core.context import system_context
from oneloop.core.db import session_factory

EPILOG = (
    "Example: oneloop import var/demo/crm/contacts.csv --source SOURCE_ID "
    "--mapping demo-crm-contacts   (or --mapping my-crm.yaml; --mapping segment for a file of "
    "Segment-spec calls)"
)


def import_cmd(
    file: Annotated[Path, typer.Argument(help="the CSV, XLSX or JSONL file to import")],
    source: Annotated[str, typer.Option(help="id of the source to import into (sources list)")],
    mapping: Annotated[
        str,
        typer.Option(help="a mapping YAML file, a shipped mapping's name, or 'segment'"),
    ],
    chunk_size: Annotated[int, typer.Option(min=1, help="rows per committed chunk")] = CHUNK,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Import a file through a mapping; resumes an interrupted run, and re-running adds nothing."""
    with (
        reported_errors(),
        cli_engine() as (_, engine),
        session_factory(engine)() as session,
        progress_bar(f"importing {file.name}") as tick,
    ):
        report = import_file(
            session,
            system_context(),
            source,
            file,
            mapping,
            chunk_size=chunk_size,
            on_progress=tick,
        )
    if as_json:
        print_json(report)
        return
    show_report(report)


def show_report(report: ImportReport) -> None:
    table = Table("rows read", "accepted", "duplicates", "dead-lettered", title=report.file)
    table.add_row(
        f"{report.rows_read:,}",
        f"{report.accepted:,}",
        f"{report.duplicates:,}",
        f"{report.dead_lettered:,}",
    )
    console.print(table)
    if report.resumed_after_row is not None:
        console.print(f"resumed run {report.run_id} after row {report.resumed_after_row:,}")
    if report.dead_lettered:
        console.print(
            f"[yellow]{report.dead_lettered:,} record(s) dead-lettered[/] with the column named; "
            "fix the mapping and replay them"
        )


def register(app: typer.Typer) -> None:
    """Add ``import`` as a top-level command: importing is one verb, not a group."""
    app.command("import", epilog=EPILOG)(import_cmd)
