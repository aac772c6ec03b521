"""``oneloop bench NAME``: a Rich table on the terminal and a JSON report for machines."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from oneloop.bench import api, demo, identity, ingest, leads, segments, store
from oneloop.bench.harness import BenchFailed, BenchReport, Progress
from oneloop.cli.common import console, err_console, fail, load_settings, progress_bar

PostgresUrl = Annotated[
    str | None,
    typer.Option(
        envvar="ONELOOP_BENCH_POSTGRES_URL",
        help="measure PostgreSQL at this URL instead of a scratch SQLite file",
    ),
]

bench_app = typer.Typer(
    help="Benchmarks: ours against a raw baseline in the same run.", no_args_is_help=True
)

JsonOut = Annotated[Path | None, typer.Option("--json", help="write the JSON report to this file")]


def show(report: BenchReport, json_out: Path | None) -> None:
    table = Table(title=f"bench {report.name}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in report.metrics.items():
        table.add_row(key, _fmt(value))
    for key, value in report.baseline.items():
        table.add_row(f"baseline {key}", _fmt(value), style="dim")
    table.add_row("ratio (ours / baseline)", _fmt(report.ratio), style="bold")
    table.add_row("cores", _fmt(report.env.get("cores")), style="dim")
    console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]")
    if json_out is not None:
        report.write(json_out)
        console.print(f"report written to {json_out}")


def _measured(label: str, json_out: Path | None, run: Callable[[Progress], BenchReport]) -> None:
    """A bench whose pipeline would log every change at INFO: quiet the log, show progress,
    turn a failed run into an error message, then the report."""
    logging.getLogger("oneloop").setLevel(logging.WARNING)
    try:
        with progress_bar(label) as tick:
            report = run(tick)
    except BenchFailed as exc:
        fail(str(exc))
    show(report, json_out)


def _say(message: str) -> None:
    err_console.print(f"[dim]{message}[/]")


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@bench_app.command("store", epilog="Example: oneloop bench store --rows 50000 --json store.json")
def store_cmd(
    json_out: JsonOut = None,
    rows: Annotated[int, typer.Option(min=1000, help="rows to insert per store")] = 50_000,
    batch: Annotated[int, typer.Option(min=1, help="rows per transaction")] = 500,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            envvar="ONELOOP_BENCH_POSTGRES_URL",
            help="PostgreSQL to measure (default: ONELOOP_DATABASE_URL when it is PostgreSQL)",
        ),
    ] = None,
) -> None:
    """Raw insert ceilings on SQLite and PostgreSQL, and the same rows through our engine."""
    settings = load_settings()
    url = postgres_url or (None if settings.is_sqlite else settings.database_url)
    stores = 2 if url else 1
    with progress_bar(f"inserting {rows:,} rows × {stores * 2} runs") as tick:
        report = store.run(settings, rows=rows, batch=batch, postgres_url=url, on_progress=tick)
    show(report, json_out)


@bench_app.command("demo", epilog="Example: oneloop bench demo --customers 20000 --json demo.json")
def demo_cmd(
    json_out: JsonOut = None,
    customers: Annotated[int, typer.Option(min=10, help="customers to generate")] = 5000,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
) -> None:
    """Demo data generation rate (customers and events per second)."""
    load_settings()
    with progress_bar("generating") as tick:
        report = demo.run(customers=customers, seed=seed, on_progress=tick)
    show(report, json_out)


@bench_app.command(
    "ingest", epilog="Example: oneloop bench ingest --seconds 10 --connections 4 --json ingest.json"
)
def ingest_cmd(
    json_out: JsonOut = None,
    seconds: Annotated[float, typer.Option(min=1, help="how long to send")] = 10.0,
    connections: Annotated[int, typer.Option(min=1, max=64, help="client connections")] = 4,
    port: Annotated[int, typer.Option(help="port for the server under test")] = 18765,
    postgres_url: PostgresUrl = None,
) -> None:
    """Acknowledged events/s through the HTTP tracking API, against raw batched inserts."""
    settings = load_settings()
    with progress_bar(f"sending for {seconds:.0f} s") as tick:
        report = ingest.run(
            settings,
            seconds=seconds,
            connections=connections,
            port=port,
            postgres_url=postgres_url,
            on_progress=tick,
        )
    show(report, json_out)


@bench_app.command(
    "identity", epilog="Example: oneloop bench identity --customers 2000 --json identity.json"
)
def identity_cmd(
    json_out: JsonOut = None,
    customers: Annotated[int, typer.Option(min=50, help="customers of the generated demo")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed of the generated demo")] = 7,
    demo_dir: Annotated[
        Path | None,
        typer.Option(exists=True, file_okay=False, help="use this demo directory instead"),
    ] = None,
    febrl: Annotated[bool, typer.Option(help="also match FEBRL4 (needs the dev group)")] = True,
) -> None:
    """Resolution events/s and accuracy on the demo's truth; FEBRL4 precision/recall/F1."""
    load_settings()
    with progress_bar("resolving the demo log") as tick:
        report = identity.run(
            customers=customers, seed=seed, demo_dir=demo_dir, febrl=febrl, on_progress=tick
        )
    show(report, json_out)


@bench_app.command(
    "segments",
    epilog="Example: oneloop bench segments --profiles 1000000 --json segments.json",
)
def segments_cmd(
    json_out: JsonOut = None,
    profiles: Annotated[int, typer.Option(min=100, help="people to generate")] = 1_000_000,
    events: Annotated[
        int, typer.Option(min=10, help="tracking calls drained through the consumers")
    ] = 20_000,
    rate: Annotated[
        float, typer.Option(min=0.1, help="events per second while latency is measured")
    ] = 50.0,
    seconds: Annotated[float, typer.Option(min=0.1, help="how long latency is measured")] = 30.0,
    seed: Annotated[int, typer.Option(help="random seed of the generated people")] = 7,
    db: Annotated[
        str | None,
        typer.Option(
            help="SQLite URL to fill (or reuse when filled before) instead of a scratch file"
        ),
    ] = None,
) -> None:
    """Segment evaluation over generated people against hand-written SQL; the estimate; the
    live path's events/s and event-to-entry delay."""
    load_settings()
    _measured(
        f"generating up to {profiles:,} people",
        json_out,
        lambda tick: segments.run(
            profiles=profiles, events=events, rate_per_s=rate, seconds=seconds, seed=seed,
            db_url=db, on_progress=tick, say=_say,
        ),
    )  # fmt: skip


@bench_app.command("leads", epilog="Example: oneloop bench leads --leads 10000 --json leads.json")
def leads_cmd(
    json_out: JsonOut = None,
    count: Annotated[int, typer.Option("--leads", min=10, help="leads to trigger")] = 10_000,
    rate: Annotated[float, typer.Option(min=0.1, help="triggers per second")] = 20.0,
    seed: Annotated[int, typer.Option(help="random seed of the customers")] = 7,
    postgres_url: PostgresUrl = None,
) -> None:
    """Trigger event committed → lead assigned, p50/p99, with the worker running as the server
    runs it; routing decisions/s of the shipped DMN table."""
    settings = load_settings()
    _measured(
        f"triggering {count:,} leads at {rate:g}/s",
        json_out,
        lambda tick: leads.run(
            settings, leads=count, rate_per_s=rate, seed=seed, postgres_url=postgres_url,
            on_progress=tick,
        ),
    )  # fmt: skip


@bench_app.command(
    "api", epilog="Example: oneloop bench api --rate 200 --seconds 30 --json api.json"
)
def api_cmd(
    json_out: JsonOut = None,
    rate: Annotated[float, typer.Option(min=1, help="requests per second")] = 200.0,
    seconds: Annotated[float, typer.Option(min=1, help="how long each load runs")] = 20.0,
    customers: Annotated[int, typer.Option(min=50, help="customers of the scratch demo")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed of the scratch demo")] = 7,
    db: Annotated[
        str | None,
        typer.Option(help="a database `make demo` filled (sqlite:///var/oneloop.db) instead"),
    ] = None,
    port: Annotated[int, typer.Option(help="port for the server under test")] = 18766,
    workers: Annotated[
        int, typer.Option(min=1, help="server processes (serve --workers); default: the cores")
    ] = os.cpu_count() or 1,
) -> None:
    """Profile by phone, a timeline page, the segment list and a GraphQL profile query at a
    fixed rate against the real server: p50/p95/p99 and errors; /healthz as the baseline."""
    settings = load_settings()
    _measured(
        f"reading at {rate:g}/s",
        json_out,
        lambda tick: api.run(
            settings, rate_per_s=rate, seconds=seconds, customers=customers, seed=seed,
            db_url=db, port=port, workers=workers, on_progress=tick, say=_say,
        ),
    )  # fmt: skip
