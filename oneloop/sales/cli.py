"""``oneloop leads …`` (list, route, recall, reports) and ``oneloop sales …`` (settings,
teams, the routing table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from oneloop.cli.common import cli_session, console, print_json, reported_errors
from oneloop.sales import config, leads, reports
from oneloop.sales.schemas import MemberIn, TeamIn

leads_app = typer.Typer(help="Leads and the pool (线索与公海).", no_args_is_help=True)
sales_app = typer.Typer(help="Sales settings, teams and routing (销售配置).", no_args_is_help=True)
teams_app = typer.Typer(help="Sales teams and their reps.", no_args_is_help=True)
sales_app.add_typer(teams_app, name="teams")

Bu = Annotated[str | None, typer.Option("--bu", help="business unit code")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


@leads_app.command("list", epilog="Example: oneloop leads list --bu industrial --status pooled")
def list_(
    bu: Bu = None,
    status: Annotated[str | None, typer.Option(help="pooled, assigned, contacted …")] = None,
    limit: Annotated[int, typer.Option(min=1, max=leads.MAX_PAGE)] = 50,
    as_json: AsJson = False,
) -> None:
    """The unit's leads, newest first."""
    with reported_errors(), cli_session() as (session, ctx):
        page = leads.list_leads(session, ctx, bu=bu, status=status, limit=limit)
    if as_json:
        print_json(page)
        return
    table = Table("lead", "status", "owner", "source", "rule", "SLA due (UTC)", "state")
    for lead in page.items:
        table.add_row(
            lead.id,
            lead.status,
            lead.owner_user_id or "-",
            escape(lead.source),
            str(lead.routing.get("rule_row", "-")),
            f"{lead.sla_due_at:%Y-%m-%d %H:%M}" if lead.sla_due_at else "-",
            lead.sla_state,
        )
    console.print(table)


@leads_app.command(
    "route",
    epilog="Example: oneloop leads route --bu industrial   (every pooled lead)\n"
    "         oneloop leads route 01JD… --bu industrial",
)
def route(
    lead_id: Annotated[str | None, typer.Argument(help="one lead; none: the whole pool")] = None,
    bu: Bu = None,
) -> None:
    """Route leads again by the unit's routing table: one lead, or every pooled one."""
    with reported_errors(), cli_session() as (session, ctx):
        if lead_id:
            lead = leads.reassign(session, ctx, lead_id, None)
            console.print(f"{lead.id}: {lead.status} {lead.owner_user_id or ''}")
            return
        looked, owned = leads.route_pool(session, ctx, bu)
    console.print(f"routed {looked} pooled lead(s): {owned} found an owner")


@leads_app.command("recall", epilog="Example: oneloop leads recall --bu industrial")
def recall(bu: Bu = None) -> None:
    """Send leads untouched for the unit's recall time back to the pool, now."""
    with reported_errors(), cli_session() as (session, ctx):
        count = leads.recall(session, ctx, bu)
    console.print(f"recalled {count} lead(s) to the pool")


@leads_app.command("funnel", epilog="Example: oneloop leads funnel --bu industrial")
def funnel(bu: Bu = None, as_json: AsJson = False) -> None:
    """created → assigned → contacted → qualified → won, per source and campaign."""
    with reported_errors(), cli_session() as (session, ctx):
        rows = reports.funnel(session, ctx, bu)
    if as_json:
        print_json(rows)
        return
    table = Table("source", "campaign", "created", "assigned", "contacted", "qualified", "won")
    for r in rows:
        table.add_row(
            escape(r.source), escape(r.campaign or "-"), *map(str, (
                r.created, r.assigned, r.contacted, r.qualified, r.won,
            )),
        )  # fmt: skip
    console.print(table)


@leads_app.command("handoffs", epilog="Example: oneloop leads handoffs --bu industrial --json")
def handoffs(bu: Bu = None, as_json: AsJson = False) -> None:
    """Hand-offs per converted customer, median time per hand-off, where leads die."""
    with reported_errors(), cli_session() as (session, ctx):
        report = reports.handoffs(session, ctx, bu)
    if as_json:
        print_json(report)
        return
    console.print(
        f"{report.converted_customers} converted customer(s); "
        f"{report.handoffs_per_converted or 0} hand-offs each"
    )
    table = Table("from", "to", "hand-offs", "median hours held before")
    for p in report.pairs:
        table.add_row(p.from_department, p.to_department, str(p.count), f"{p.median_hours:g}")
    console.print(table)
    died = Table("where leads stopped", "leads")
    for where, count in report.where_leads_die.items():
        died.add_row(where, str(count))
    console.print(died)


@sales_app.command("settings", epilog="Example: oneloop sales settings --bu industrial")
def settings(
    bu: Bu = None,
    file: Annotated[
        Path | None, typer.Option("--set", help="replace with this YAML or JSON file")
    ] = None,
) -> None:
    """Show the unit's sales settings (triggers, SLA, calendar, pool limits), or replace them."""
    with reported_errors(), cli_session() as (session, ctx):
        if file is not None:
            found = config.set_settings(
                session, ctx, yaml.safe_load(file.read_text("utf-8")) or {}, bu
            )
        else:
            found = config.get_settings(session, ctx, bu)
    print_json(found)


@sales_app.command(
    "routing",
    epilog="Example: oneloop sales routing --bu industrial --upload industrial_routing.dmn",
)
def routing_table(
    bu: Bu = None,
    upload: Annotated[Path | None, typer.Option(help="a DMN file to route by from now on")] = None,
    download: Annotated[Path | None, typer.Option(help="write the table in force here")] = None,
) -> None:
    """The unit's routing table: show it, upload a new version, or download it."""
    with reported_errors(), cli_session() as (session, ctx):
        if upload is not None:
            info = config.upload_table(session, ctx, upload.read_bytes(), bu)
        else:
            info = config.table_info(session, ctx, bu)
        if download is not None:
            download.write_text(config.current_table(session, ctx, bu).xml, "utf-8")
    console.print(f"{info.bu}: {escape(info.name)} v{info.version}, {info.rules} rule(s)")


@teams_app.command("list", epilog="Example: oneloop sales teams list --bu industrial")
def teams_list(bu: Bu = None, as_json: AsJson = False) -> None:
    """The unit's teams with their reps, capacities and open leads."""
    with reported_errors(), cli_session() as (session, ctx):
        found = config.list_teams(session, ctx, bu)
    if as_json:
        print_json(found)
        return
    table = Table("team", "strategy", "rep", "on duty", "open / capacity")
    for team in found:
        for m in team.members or []:
            table.add_row(
                f"{team.code} {escape(team.name_zh)}", team.strategy, m.email,
                "yes" if m.on_duty else "no", f"{m.open_leads} / {m.capacity}",
            )  # fmt: skip
    console.print(table)


@teams_app.command(
    "create",
    epilog="Example: oneloop sales teams create east --bu industrial --zh 华东组 --en 'East team'",
)
def teams_create(
    code: str,
    zh: Annotated[str, typer.Option("--zh", help="Chinese name")],
    en: Annotated[str, typer.Option("--en", help="English name")],
    bu: Bu = None,
    strategy: Annotated[str, typer.Option(help="round_robin, least_loaded, capacity_weighted")] = (
        "round_robin"
    ),
    manager: Annotated[str | None, typer.Option(help="the manager's email")] = None,
) -> None:
    """Create a sales team."""
    with reported_errors(), cli_session() as (session, ctx):
        data = TeamIn(
            code=code, name_zh=zh, name_en=en, strategy=strategy,  # type: ignore[arg-type]
            manager=manager, bu=bu,
        )  # fmt: skip
        team = config.create_team(session, ctx, data)
    console.print(f"created team {team.code} ({team.id})")


@teams_app.command(
    "member",
    epilog="Example: oneloop sales teams member east rep@galaxy.example.com --bu industrial "
    "--capacity 20 --off-duty",
)
def teams_member(
    code: str,
    email: str,
    bu: Bu = None,
    capacity: Annotated[int, typer.Option(min=0)] = 30,
    weight: Annotated[float, typer.Option(min=0.01)] = 1.0,
    off_duty: Annotated[bool, typer.Option("--off-duty", help="mark the rep off duty")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="take the rep out")] = False,
) -> None:
    """Add a rep to a team, change their capacity, weight or duty, or take them out."""
    with reported_errors(), cli_session() as (session, ctx):
        if remove:
            config.remove_member(session, ctx, code, email, bu)
        else:
            data = MemberIn(email=email, capacity=capacity, weight=weight, on_duty=not off_duty)
            config.set_member(session, ctx, code, data, bu)
    console.print(f"{code}: {email} {'removed' if remove else 'set'}")
