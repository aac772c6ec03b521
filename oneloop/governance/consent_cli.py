"""``oneloop consent …``: a person's consent in force, its history, recording a decision, and
``check``, the same answer journeys and exports get from ``may_contact``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from oneloop.cli.common import cli_session, console, fail, print_json, reported_errors
from oneloop.governance import consent, consent_views
from oneloop.governance.consent_schemas import (
    CHANNEL_LABELS,
    PURPOSE_LABELS,
    STATUS_LABELS,
    ConsentIn,
)

consent_app = typer.Typer(
    help="Consent (授权): per purpose and channel, its history, may-contact checks.",
    no_args_is_help=True,
)
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
ProfileArg = Annotated[str, typer.Argument(help="a OneID (an absorbed profile's id works too)")]
PurposeOpt = Annotated[
    str, typer.Option(help="marketing, analytics, third_party_sharing, cross_border_transfer")
]
ChannelOpt = Annotated[str, typer.Option(help="email, sms, wechat, phone, or any")]


def _label(code: str | None, labels: dict[str, tuple[str, str]]) -> str:
    if code is None:
        return ""
    zh, en = labels.get(code, ("", code))
    return f"{zh} {en}".strip()


@consent_app.command("show", epilog="Example: oneloop consent show 01J8ZK… --json")
def show(profile_id: ProfileArg, as_json: AsJson = False) -> None:
    """Every purpose × channel: the decision in force, or the default."""
    with reported_errors(), cli_session() as (session, ctx):
        state = consent_views.current_state(session, ctx, profile_id)
    if as_json:
        print_json(state)
        return
    table = Table("purpose", "channel", "status", "allowed", "decided by", "given at (UTC)")
    for item in state.items:
        table.add_row(
            _label(item.purpose, PURPOSE_LABELS),
            _label(item.channel, CHANNEL_LABELS),
            _label(item.status, STATUS_LABELS) or "(default)",
            "yes" if item.allowed else "no",
            item.decided_by,
            f"{item.given_at:%Y-%m-%d %H:%M}" if item.given_at else "",
        )
    console.print(f"profile [bold]{state.profile_id}[/]")
    console.print(table)


@consent_app.command(
    "history", epilog="Example: oneloop consent history 01J8ZK… --purpose marketing"
)
def history(
    profile_id: ProfileArg,
    purpose: Annotated[str | None, typer.Option(help="only this purpose")] = None,
    channel: Annotated[str | None, typer.Option(help="only this channel")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="entries per page")] = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page's cursor")] = None,
    as_json: AsJson = False,
) -> None:
    """Every decision of the person, newest first, with its source and proof."""
    with reported_errors(), cli_session() as (session, ctx):
        page = consent_views.history(
            session,
            ctx,
            profile_id,
            purpose=purpose,
            channel=channel,
            cursor=cursor,
            limit=limit,
        )
    if as_json:
        print_json(page)
        return
    table = Table("given at (UTC)", "purpose", "channel", "status", "basis", "source", "proof")
    for r in page.items:
        table.add_row(
            f"{r.given_at:%Y-%m-%d %H:%M}" + (" *" if r.is_current else ""),
            r.purpose,
            r.channel,
            r.status,
            r.legal_basis,
            escape(r.source or ""),
            escape(r.proof or r.message_id or ""),
        )
    console.print(table)
    console.print("* in force")
    if page.next_cursor:
        console.print(f"next page: --cursor {page.next_cursor}")


@consent_app.command(
    "set",
    epilog=(
        "Example: oneloop consent set 01J8ZK… --purpose marketing --channel email "
        '--status withdrawn --proof "hotline ticket T-1029"'
    ),
)
def set_(
    profile_id: ProfileArg,
    purpose: PurposeOpt,
    status: Annotated[str, typer.Option(help="granted, withdrawn or denied")],
    channel: ChannelOpt = "any",
    legal_basis: Annotated[
        str,
        typer.Option(
            "--legal-basis",
            help="consent, contract, legal_obligation, vital_interests, public_task, "
            "legitimate_interest",
        ),
    ] = "consent",
    proof: Annotated[
        str | None, typer.Option(help="the form, document or call that recorded it")
    ] = None,
    given_at: Annotated[
        str | None,
        typer.Option("--given-at", help="when the person said it, e.g. 2026-03-01T10:00+08:00"),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Record a grant, withdrawal or denial on the person's behalf (audited)."""
    when = None
    if given_at is not None:
        try:
            when = datetime.fromisoformat(given_at)
        except ValueError:
            fail(f"--given-at: not an ISO time: {given_at!r}; e.g. 2026-03-01T10:00+08:00", 2)
    with reported_errors():
        data = ConsentIn.model_validate(
            {
                "purpose": purpose,
                "channel": channel,
                "status": status,
                "legal_basis": legal_basis,
                "proof": proof,
                "given_at": when,
            }
        )
        with cli_session() as (session, ctx):
            made = consent.record_consent(session, ctx, profile_id, data)
    if as_json:
        print_json(made)
        return
    state = "in force" if made.is_current else "kept in the history (a newer decision holds)"
    console.print(
        f"recorded #{made.seq}: {made.status} for {made.purpose} ({made.channel}) — {state}"
    )


@consent_app.command(
    "check", epilog="Example: oneloop consent check 01J8ZK… --purpose marketing --channel sms"
)
def check(
    profile_id: ProfileArg,
    purpose: PurposeOpt,
    channel: ChannelOpt = "any",
    as_json: AsJson = False,
) -> None:
    """May the person be contacted? Prints yes or no and why; exits 0 either way."""
    with reported_errors(), cli_session() as (session, ctx):
        decision = consent.check_contact(session, ctx, profile_id, purpose, channel)
    if as_json:
        print_json(decision)
        return
    console.print(f"{'yes' if decision.allowed else 'no'}: {escape(decision.reason)}")


@consent_app.command("summary", epilog="Example: oneloop consent summary --bu appliances")
def summary(
    bu: Annotated[str | None, typer.Option(help="a unit's code; default: every profile")] = None,
    as_json: AsJson = False,
) -> None:
    """Opt-in rates per purpose × channel."""
    with reported_errors(), cli_session() as (session, ctx):
        result = consent_views.summary(session, ctx, bu)
    if as_json:
        print_json(result)
        return
    table = Table("purpose", "channel", "granted", "withdrawn", "denied", "allowed", "opt-in")
    for item in result.items:
        table.add_row(
            _label(item.purpose, PURPOSE_LABELS),
            _label(item.channel, CHANNEL_LABELS),
            str(item.granted),
            str(item.withdrawn),
            str(item.denied),
            str(item.allowed),
            f"{item.opt_in_rate:.1%}",
        )
    console.print(f"{result.profiles} profiles")
    console.print(table)
