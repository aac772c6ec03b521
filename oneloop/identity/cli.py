"""``oneloop identity …``: explain a profile, look one up, unmerge, pin apart, review refused
links, show and set the rules, and run resolution over the log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from oneloop.cli.common import (
    cli_session,
    console,
    print_json,
    progress_bar,
    reported_errors,
)
from oneloop.governance import pii
from oneloop.governance import service as governance
from oneloop.identity import probabilistic, service
from oneloop.identity.rules import load_yaml
from oneloop.identity.schemas import IdentifierRef, IdentityExplanation, PinIn, UnmergeIn

identity_app = typer.Typer(
    help="OneID: explain, look up, unmerge and pin profiles; the identity rules.",
    no_args_is_help=True,
)
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


@identity_app.command("explain", epilog="Example: oneloop identity explain 01J8ZK…")
def explain(
    profile_id: Annotated[str, typer.Argument(help="a OneID (an absorbed one redirects)")],
    as_json: AsJson = False,
) -> None:
    """Show a profile's identifiers, the links between them and every merge and split."""
    with reported_errors(), cli_session() as (session, ctx):
        view = pii.view(session, ctx)  # one audited read for both (the CLI reads unmasked)
        found = service.explain(session, ctx, profile_id, view=view)
        golden = service.golden(session, ctx, found.profile_id, view=view)
        view.audit(session, "profile", found.profile_id)
    if as_json:
        print_json(
            {
                "identity": found.model_dump(mode="json"),
                "golden_record": golden.model_dump(mode="json"),
            }
        )
        return
    _show(found)
    table = Table("field", "value", "rule", "source", "seen", title="golden record")
    for name, field in golden.fields.items():
        alternatives = len({repr(h.value) for h in field.history} - {repr(field.value)})
        shown = escape(f"{field.value}") + (
            f"  [dim](+{alternatives} other)[/]" if alternatives else ""
        )
        table.add_row(name, shown, field.rule, field.source_name, f"{field.observed_at:%Y-%m-%d}")
    console.print(table)


def _show(found: IdentityExplanation) -> None:
    console.print(f"profile [bold]{found.profile_id}[/]")
    if found.requested_id != found.profile_id:
        console.print(f"[dim]{found.requested_id} was merged into it[/]")
    names = {i.id: escape(f"{i.type}:{i.value}") for i in found.identifiers}
    table = Table("type", "value", "first seen", "last seen", "shared", title="identifiers")
    for i in found.identifiers:
        table.add_row(
            i.type,
            escape(i.value),
            f"{i.first_seen_at:%Y-%m-%d %H:%M}",
            f"{i.last_seen_at:%Y-%m-%d %H:%M}",
            i.shared_reason or "",
        )
    console.print(table)
    links = Table("from", "to", "status", "why", "first event", title="links")
    for link in found.links:
        links.add_row(
            names.get(link.a, link.other_profile_id or link.a),
            names.get(link.b, link.other_profile_id or link.b),
            link.status,
            link.reason or "",
            f"{link.first_message_id} {link.first_at:%Y-%m-%d %H:%M}",
        )
    console.print(links)
    history = Table("when", "kind", "from", "into", "rule", "event", "undone", title="history")
    for m in found.history:
        history.add_row(
            f"{m.created_at:%Y-%m-%d %H:%M}",
            m.kind,
            m.absorbed_id,
            m.survivor_id,
            m.rule,
            m.message_id or "",
            f"{m.undone_by}: {m.undo_reason}" if m.undone_at else "",
        )
    console.print(history)


@identity_app.command("lookup", epilog="Example: oneloop identity lookup phone '138 0013 8000'")
def lookup(
    kind: Annotated[str, typer.Argument(metavar="TYPE", help="identifier type, e.g. phone")],
    value: Annotated[str, typer.Argument(help="the value as written anywhere")],
) -> None:
    """Print the OneID an identifier belongs to (exit 1 when none)."""
    with reported_errors(), cli_session() as (session, ctx):
        found = service.find_profile(session, ctx, kind, value)
    if found is None:
        console.print(f"no profile has the {kind} {value}")
        raise typer.Exit(1)
    console.print(found)


@identity_app.command(
    "unmerge",
    epilog="Examples: oneloop identity unmerge 01J8… --merge 01J9… --reason 'two brothers'\n\n"
    "oneloop identity unmerge 01J8… --identifier 'phone:021-6888 0000' --reason switchboard",
)
def unmerge(
    profile_id: Annotated[str, typer.Argument(help="the OneID to split")],
    reason: Annotated[str, typer.Option(help="why: kept in the history")],
    merge: Annotated[str | None, typer.Option(help="undo this merge of the history")] = None,
    identifier: Annotated[
        str | None, typer.Option(help="detach this identifier, as TYPE:VALUE")
    ] = None,
) -> None:
    """Split a profile; events follow their identifiers and the split is kept apart."""
    ref = None
    if identifier is not None:
        kind, sep, value = identifier.partition(":")
        if not sep:
            raise typer.BadParameter(
                "write the identifier as TYPE:VALUE", param_hint="--identifier"
            )
        ref = IdentifierRef(type=kind, value=value)
    with reported_errors(), cli_session() as (session, ctx):
        out = service.unmerge(
            session, ctx, profile_id, UnmergeIn(merge_id=merge, identifier=ref, reason=reason)
        )
        session.commit()
    console.print(
        f"split {out.profile_id}: {', '.join(out.split_off) or 'nothing'} "
        f"({out.cut_links} links cut)"
    )


@identity_app.command("pin", epilog="Example: oneloop identity pin 01J8… 01J9… --reason twins")
def pin(
    a: Annotated[str, typer.Argument(help="a OneID")],
    b: Annotated[str, typer.Argument(help="another OneID")],
    reason: Annotated[str, typer.Option(help="why they are different people")],
) -> None:
    """Keep two profiles apart, whatever evidence comes later (do not merge)."""
    with reported_errors(), cli_session() as (session, ctx):
        made = service.pin_apart(session, ctx, PinIn(a=a, b=b, reason=reason))
        session.commit()
    console.print(f"pinned apart ({made.id})")


@identity_app.command("conflicts", epilog="Example: oneloop identity conflicts --limit 20")
def conflicts(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50, as_json: AsJson = False
) -> None:
    """Links a limit or a pin refused, newest first: the deterministic review list."""
    with reported_errors(), cli_session() as (session, ctx):
        found = service.conflicts(session, ctx, limit=limit)
    if as_json:
        print_json(found)
        return
    table = Table("link", "why", "first event")
    for link in found:
        table.add_row(link.id, link.reason or "", link.first_message_id)
    console.print(table)


@identity_app.command("rejections", epilog="Example: oneloop identity rejections --source 01J…")
def rejections(
    source: Annotated[str | None, typer.Option(help="one source's id")] = None,
    as_json: AsJson = False,
) -> None:
    """Identifiers sources send that do not normalise (bad phones, e-mails), with examples."""
    with reported_errors(), cli_session() as (session, ctx):
        found = service.list_rejections(session, ctx, source_id=source)
    if as_json:
        print_json(found)
        return
    table = Table("source", "type", "reason", "count", "latest example")
    for r in found:
        table.add_row(r.source_id, r.type, r.reason, f"{r.count:,}", escape(r.example))
    console.print(table)


@identity_app.command(
    "rebuild", epilog="Example: oneloop identity rules set rules.yaml && oneloop identity rebuild"
)
def rebuild() -> None:
    """Apply the rules in force to every profile (after `rules set`); keeps ids, logs changes."""
    with (
        reported_errors(),
        cli_session() as (session, ctx),
        progress_bar("re-partitioning profiles") as tick,
    ):
        out = service.rebuild(session, ctx, on_progress=tick)
    console.print(f"{out.profiles:,} profiles: {out.merges:,} merges, {out.splits:,} splits")


rules_app = typer.Typer(help="The identity rules: types, limits, priorities, blocked values.")
identity_app.add_typer(rules_app, name="rules")


@rules_app.command("show", epilog="Example: oneloop identity rules show > rules.yaml")
def rules_show() -> None:
    """Print the rules in force as YAML."""
    with reported_errors(), cli_session() as (session, ctx):
        document = service.rules_document(session, ctx)
    typer.echo(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), nl=False)


@rules_app.command("set", epilog="Example: oneloop identity rules set rules.yaml")
def rules_set(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a rules YAML file")],
) -> None:
    """Store a new version of the rules (checked first; a bad key is named)."""
    text = path.read_text(encoding="utf-8")
    with reported_errors(), cli_session() as (session, ctx):
        load_yaml(text)
        rules = service.set_rules(session, ctx, yaml.safe_load(text))
        session.commit()
    console.print(f"rules version {rules.version} in force")


@identity_app.command(
    "match",
    epilog="Example: oneloop identity match --train\n\noneloop identity match --bu industrial",
)
def match(
    train: Annotated[bool, typer.Option("--train", help="train a new model first")] = False,
    bu: Annotated[str | None, typer.Option(help="only profiles that touched this unit")] = None,
    as_json: AsJson = False,
) -> None:
    """Probabilistic matching: merge pairs above the auto-merge weight, queue the doubtful."""
    with reported_errors(), cli_session() as (session, ctx):
        bu_id = governance.get_business_unit(session, ctx, bu).id if bu else None
        with progress_bar("matching profiles", total=4) as tick:
            summary = probabilistic.run_match(
                session,
                ctx,
                service.active_rules(session),
                retrain=train,
                bu_id=bu_id,
                on_progress=tick,
            )
        session.commit()
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{summary.records:,} profiles compared, {summary.candidates:,} candidate pairs: "
        f"{summary.merged:,} merged, {summary.queued:,} queued for review, "
        f"{summary.refused:,} refused by limits or pins (model {summary.model_version})"
    )


@identity_app.command("reviews", epilog="Example: oneloop identity reviews --limit 10")
def reviews(
    status: Annotated[str, typer.Option(help="open, accepted or rejected")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: AsJson = False,
) -> None:
    """Candidate pairs waiting for a steward, strongest first, with each comparison's weight."""
    with reported_errors(), cli_session() as (session, ctx):
        found = probabilistic.list_reviews(session, ctx, status=status, limit=limit)
    if as_json:
        print_json(found)
        return
    table = Table("review", "left", "right", "weight", "why")
    for r in found:
        why = ", ".join(
            f"{name}: {c['level']} ({c['match_weight']:+.1f})" for name, c in r.comparisons.items()
        )
        table.add_row(r.id, r.left_id, r.right_id, f"{r.match_weight:.1f}", escape(why))
    console.print(table)


@identity_app.command(
    "review", epilog="Example: oneloop identity review 01J9… --accept --note 'same person'"
)
def review(
    review_id: Annotated[str, typer.Argument(help="the review's id")],
    accept: Annotated[bool, typer.Option("--accept/--reject", help="merge, or keep apart")],
    note: Annotated[str | None, typer.Option(help="why")] = None,
) -> None:
    """Decide a review: accept merges the pair, reject pins it apart."""
    with reported_errors(), cli_session() as (session, ctx):
        done = probabilistic.decide_review(
            session, ctx, service.active_rules(session), review_id, accept=accept, note=note
        )
        session.commit()
    console.print(f"review {done.id}: {done.status}")
