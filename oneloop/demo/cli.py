"""``oneloop demo``: generate the Galaxy Group's data, and load it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from oneloop.cli.common import (
    cli_engine,
    cli_session,
    console,
    load_settings,
    print_json,
    progress_bar,
    reported_errors,
)
from oneloop.core.context import system_context
from oneloop.core.db import session_factory
from oneloop.demo import sales as demo_sales
from oneloop.demo.generate import generate
from oneloop.demo.load import load_demo

demo_app = typer.Typer(help="The demo group 星河集团 / Galaxy Group.", no_args_is_help=True)

OutDir = Annotated[
    Path | None,
    typer.Option("--out", "--dir", help="data folder (default: ONELOOP_DEMO_DIR, var/demo)"),
]


@demo_app.command(
    "generate", epilog="Example: oneloop demo generate --out var/demo --customers 20000 --seed 7"
)
def generate_cmd(
    out: OutDir = None,
    customers: Annotated[int, typer.Option(min=10, help="number of people")] = 20_000,
    seed: Annotated[int, typer.Option(help="same seed, same bytes")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Write tracking events, CRM, POS, service and cost files, plus identity ground truth."""
    out = out or load_settings().demo_dir
    with progress_bar("generating customers") as tick:
        summary = generate(out, customers=customers, seed=seed, on_progress=tick)
    if as_json:
        print_json({"out": str(out), "customers": customers, "seed": seed, "files": summary.files})
        return
    table = Table("file", "records", title=f"demo data in {out}")
    for name, count in summary.files.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"{customers:,} customers, {summary.events:,} tracking events")


@demo_app.command("load", epilog="Example: oneloop demo load --dir var/demo")
def load_cmd(
    out: OutDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Create the group, its units, an admin and sources; load the tracking events and the
    CRM, POS, ticket, survey and cost files. Re-running adds nothing; an interrupted load
    resumes."""
    demo_dir = out or load_settings().demo_dir
    with (
        reported_errors(),
        cli_engine() as (_, engine),
        session_factory(engine)() as session,
        progress_bar("loading demo files") as tick,
    ):
        summary = load_demo(session, system_context(), demo_dir, on_progress=tick)
        session.commit()
    if as_json:
        print_json(asdict(summary))
        return
    created = ", ".join(summary.created_units) or "none (all existed)"
    console.print(f"business units created: {created}")
    if summary.admin_password:
        console.print(
            f"admin [bold]{summary.admin_email}[/] password: [bold yellow]"
            f"{summary.admin_password}[/] (shown once; note it now)"
        )
    else:
        console.print(f"admin {summary.admin_email} exists; its password is unchanged")
    if summary.role_users:
        reps = set(demo_sales.rep_emails())
        users = Table("email", "role", "unit", title="demo users, one per role per unit")
        for user in summary.role_users:
            if user.email not in reps:
                users.add_row(user.email, user.role, user.unit)
        console.print(users)
        console.print(
            f"and {len(reps)} sales reps of the {demo_sales.UNIT} unit's teams, e.g. {min(reps)}"
        )
        console.print(
            f"their password: [bold yellow]{summary.role_password}[/] (shown once; "
            "`oneloop users set EMAIL --password` sets another)"
        )
    for code, key in summary.new_write_keys.items():
        console.print(f"write key for {code} (官网 Web): [bold yellow]{key}[/] (shown once)")
    if not summary.files:
        console.print(f"[yellow]no generated data in {demo_dir}; run `oneloop demo generate`[/]")
        return
    table = Table(
        "file", "records", "accepted", "duplicates", "dead-lettered", "status", title="demo data"
    )
    for load in summary.loads:
        table.add_row(
            load.file,
            f"{load.records:,}",
            f"{load.accepted:,}",
            f"{load.duplicates:,}",
            f"{load.dead_lettered:,}",
            load.status,
        )
    console.print(table)
    if summary.accepted == 0:
        console.print("nothing new: every file was loaded before")


@demo_app.command(
    "work-leads", epilog="Example: oneloop worker --once && oneloop demo work-leads --seed 7"
)
def work_leads_cmd(
    seed: Annotated[int, typer.Option(help="the draw of who does what")] = 7,
) -> None:
    """Play a week of the industrial unit's reps at work on its leads (run it after the worker
    has turned the demo's high-intent visitors into leads): contacts, qualifications, deals
    won and lost, leads returned, claimed from the pool and recalled to it."""
    with reported_errors(), cli_session() as (session, ctx):
        done = demo_sales.work_leads(session, ctx, seed)
    console.print(", ".join(f"{name} {count}" for name, count in asdict(done).items()))
