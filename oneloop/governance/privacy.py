"""Privacy requests (DSAR): access, erasure and objection to profiling, tracked against the
deadline the law gives.

A request is logged by the unit that received it and followed up by its compliance officers;
it is executed by the group (HQ), because what it reaches, everything held about the person
in every unit, is more than any one unit may see. The domains each know their own tables
(``identity.erasure``, ``collect.erasure``, ``profiles.erasure``); this module decides the
order and keeps the record. An erasure removes the person's PII everywhere (identity graph,
events, dead letters, traits, tags, scores), keeps the pseudonymous rows aggregates are
counted by, puts their identifiers on the suppression list (salted hashes), and is audited
with counts only. Every step can run again without harm, so a failed erasure is re-run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from oneloop.collect import erasure as collect_erasure
from oneloop.core.context import Context
from oneloop.core.errors import Conflict, Forbidden, NotFound
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, PageRequest, keyset
from oneloop.governance import audit, pii, suppression
from oneloop.governance.models import ConsentHistoryRow
from oneloop.governance.privacy_models import ExclusionRow, PrivacyRequestRow, SuppressionRow
from oneloop.governance.scrub import PiiValues
from oneloop.governance.service import group_id
from oneloop.identity import erasure as identity_erasure
from oneloop.identity import service as identity
from oneloop.profiles import erasure as profiles_erasure
from oneloop.profiles import service as profiles
from oneloop.profiles.scores import when_of
from oneloop.segments import live

MANAGE = "privacy.manage"
Kind = Literal["access", "erasure", "objection"]
# GDPR Art. 12(3): one month from receipt; PIPL leaves it to "a reasonable time".
DEADLINE = timedelta(days=30)


def create_request(
    session: Session, ctx: Context, kind: Kind, profile_id: str, channel: str, note: str
) -> PrivacyRequestRow:
    """Log a request for a profile the caller may see; the deadline runs from now."""
    ctx.require(MANAGE)
    current = profiles.visible_id(session, ctx, profile_id)
    now = ctx.clock.now()
    row = PrivacyRequestRow(
        id=new_id(now),
        kind=kind,
        profile_id=current,
        bu_id=ctx.bu_id or group_id(session),
        status="received",
        received_at=now,
        due_at=now + DEADLINE,
        completed_at=None,
        requested_by=ctx.user_id,
        channel=channel,
        note=note,
        result=None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session, ctx, "privacy.requested", "privacy_request", row.id, detail={"kind": kind}
    )
    return row


def get_request(session: Session, ctx: Context, request_id: str) -> PrivacyRequestRow:
    """A unit sees the requests it received; the group all of them."""
    ctx.require(MANAGE)
    row = session.get(PrivacyRequestRow, request_id)
    if row is None or not (ctx.is_group_wide or row.bu_id == ctx.bu_id):
        raise NotFound(f"no privacy request {request_id!r}", request_id=request_id)
    return row


def list_requests(
    session: Session, ctx: Context, *, status: str | None = None, overdue: bool = False
) -> list[PrivacyRequestRow]:
    """Oldest deadline first: what must be done next is at the top."""
    ctx.require(MANAGE)
    query = select(PrivacyRequestRow).order_by(PrivacyRequestRow.due_at, PrivacyRequestRow.id)
    if not ctx.is_group_wide:
        query = query.where(PrivacyRequestRow.bu_id == ctx.bu_id)
    if status is not None:
        query = query.where(PrivacyRequestRow.status == status)
    if overdue:
        query = query.where(
            PrivacyRequestRow.status == "received", PrivacyRequestRow.due_at < ctx.clock.now()
        )
    return list(session.scalars(query))


def reject(session: Session, ctx: Context, request_id: str, reason: str) -> PrivacyRequestRow:
    """Refuse a request (the requester's identity could not be verified, say), with why."""
    row = _open(session, ctx, request_id)
    row.status, row.completed_at = "rejected", ctx.clock.now()
    row.result = {"reason": reason[:500]}
    session.flush()
    audit.record(
        session, ctx, "privacy.rejected", "privacy_request", row.id, detail={"kind": row.kind}
    )
    return row


def execute(
    session: Session, ctx: Context, request_id: str
) -> tuple[PrivacyRequestRow, dict[str, Any] | None]:  # Any: the access export, JSON
    """Carry a request out; for an access request, the export as well."""
    row = _open(session, ctx, request_id)
    if not ctx.is_group_wide:
        raise Forbidden(
            "a privacy request reaches every unit's data about the person: the group (HQ) "
            "executes it",
            request_id=request_id,
        )
    document = None
    if row.kind == "access":
        document = export_person(session, ctx, row.profile_id)
        row.result = {
            "events": len(document["events"]),
            "identifiers": len(document["identifiers"]),
        }
    elif row.kind == "erasure":
        row.result = erase_person(session, ctx, row.profile_id, row.id)
    else:
        row.result = object_to_profiling(session, ctx, row.profile_id, row.id)
    row.status, row.completed_at = "completed", ctx.clock.now()
    session.flush()
    detail: dict[str, audit.DetailValue] = {"kind": row.kind, "profile": row.profile_id}
    audit.record(
        session, ctx, f"privacy.{_ACTS[row.kind]}", "privacy_request", row.id, detail=detail
    )
    return row, document


_ACTS = {"access": "exported", "erasure": "erased", "objection": "objected"}


def _open(session: Session, ctx: Context, request_id: str) -> PrivacyRequestRow:
    row = get_request(session, ctx, request_id)
    if row.status != "received":
        raise Conflict(
            f"privacy request {request_id} is already {row.status}", request_id=request_id
        )
    return row


# --- what a request does ---------------------------------------------------------------------


def export_person(session: Session, ctx: Context, profile_id: str) -> dict[str, Any]:  # Any: JSON
    """Everything held about the person, machine-readable: identifiers and merges, the golden
    record with its lineage, traits, tags, scores (with their history), segments, events,
    and their privacy requests."""
    ids = identity_erasure.person(session, profile_id)
    seqs = identity_erasure.event_seqs(session, ids)
    golden = identity.golden(session, ctx, ids[0])
    requests = session.scalars(
        select(PrivacyRequestRow)
        .where(PrivacyRequestRow.profile_id.in_(ids))
        .order_by(PrivacyRequestRow.received_at)
    )
    return {
        "profile_id": ids[0],
        "merged_profiles": ids[1:],
        "generated_at": ctx.clock.now().isoformat(),
        **identity_erasure.export(session, ids),
        "golden_record": golden.model_dump(mode="json"),
        **profiles_erasure.export(session, ids),
        "segments": live.memberships(session, ids),
        "consent": consent_export(session, ids),
        "events": collect_erasure.export(session, seqs),
        "privacy_requests": [
            {
                "id": r.id,
                "kind": r.kind,
                "status": r.status,
                "received_at": r.received_at.isoformat(),
                "completed_at": r.completed_at.isoformat() if r.completed_at else None,
            }
            for r in requests
        ],
    }


def erase_person(
    session: Session, ctx: Context, profile_id: str, request_id: str
) -> dict[str, Any]:  # Any: counts per table
    """Find the person's values first (their events and identifiers say what to look for),
    then take them out of every domain, then leave every segment and rule tag."""
    ids = identity_erasure.person(session, profile_id)
    seqs = identity_erasure.event_seqs(session, ids)
    nodes = identity_erasure.identifiers(session, ids)
    pii = PiiValues(keys=personal_property_names(session))
    for node in nodes:
        pii.add(node.value)
        pii.add(node.value.rpartition(":")[2])  # a scoped value: "appliances:79723943"
    messages = collect_erasure.values_in(session, seqs, pii)
    _suppress(session, ctx, [(n.type, n.value) for n in nodes], request_id)
    counts: dict[str, Any] = {"profiles": len(ids), "suppressed": len(nodes)}
    counts |= identity_erasure.erase(session, ids, pii.values)
    counts["collect_event"] = collect_erasure.scrub_events(session, seqs, pii)
    counts["collect_dead_letter"] = collect_erasure.erase_dead_letters(session, messages, pii)
    counts |= profiles_erasure.erase(session, ids, pii)
    counts["governance_consent_history"] = consent_erasure(session, ids)
    _exclude(session, ctx, ids, "erasure", request_id)
    return counts


def object_to_profiling(
    session: Session, ctx: Context, profile_id: str, request_id: str
) -> dict[str, Any]:  # Any: counts
    """No more scores, segments or rule tags for the person; their data otherwise stays."""
    ids = identity_erasure.person(session, profile_id)
    counts: dict[str, Any] = dict(profiles_erasure.forget_profiling(session, ids))
    _exclude(session, ctx, ids, "objection", request_id)
    return counts


def personal_property_names(session: Session) -> set[str]:
    """What the data dictionary says is personal, by last name: event properties and traits."""
    found = pii.classes(session)
    return {path.rpartition(".")[2] for _, path in found.properties} | set(found.traits)


def consent_export(session: Session, ids: list[str]) -> list[dict[str, Any]]:  # Any: JSON
    """Every consent decision the person made, oldest first, with its proof."""
    rows = session.scalars(
        select(ConsentHistoryRow)
        .where(ConsentHistoryRow.profile_id.in_(ids))
        .order_by(ConsentHistoryRow.given_at, ConsentHistoryRow.seq)
    )
    return [
        {
            "purpose": r.purpose,
            "channel": r.channel,
            "status": r.status,
            "legal_basis": r.legal_basis,
            "given_at": r.given_at.isoformat(),
            "source": r.source,
            "message_id": r.message_id,
            "proof": r.proof,
        }
        for r in rows
    ]


def consent_erasure(session: Session, ids: list[str]) -> int:
    """The decisions stay, as evidence that what was done had a basis: they name nobody once
    the profile is erased. Their free-text proof (a form reference) may, and goes."""
    result = session.execute(
        update(ConsentHistoryRow)
        .where(ConsentHistoryRow.profile_id.in_(ids), ConsentHistoryRow.proof.is_not(None))
        .values(proof=None),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def _suppress(session: Session, ctx: Context, keys: list[tuple[str, str]], request_id: str) -> None:
    now = ctx.clock.now()
    for digest in suppression.hashes(session, keys).values():
        if session.get(SuppressionRow, digest) is None:
            session.add(SuppressionRow(hash=digest, request_id=request_id, created_at=now))
    session.flush()


def _exclude(session: Session, ctx: Context, ids: list[str], reason: str, request_id: str) -> None:
    """Keep the profiles out of profiling, and take them out of every segment and rule tag
    now (the live refresh finds them no candidate any more)."""
    now = ctx.clock.now()
    for profile_id in ids:
        row = session.get(ExclusionRow, profile_id)
        if row is None:
            session.add(
                ExclusionRow(profile_id=profile_id, reason=reason, request_id=request_id, since=now)
            )
        elif reason == "erasure":
            row.reason, row.request_id = reason, request_id
    session.flush()
    live.refresh(session, dict.fromkeys(ids, "privacy"), when_of(ctx))


def is_overdue(row: PrivacyRequestRow, now: datetime) -> bool:
    return row.status == "received" and row.due_at < now


REQUEST_SORTS: dict[str, Column] = {
    "due_at": PrivacyRequestRow.due_at,
    "received_at": PrivacyRequestRow.received_at,
    "status": PrivacyRequestRow.status,
}


def page_requests(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    status: str | None = None,
    kind: str | None = None,
    overdue: bool = False,
) -> tuple[list[PrivacyRequestRow], str | None]:
    """``list_requests`` a keyset page at a time (issue 8), with the next page's cursor.
    Rows, not models: whether one is overdue depends on the caller's clock (the router)."""
    ctx.require(MANAGE)
    query = select(PrivacyRequestRow)
    if not ctx.is_group_wide:
        query = query.where(PrivacyRequestRow.bu_id == ctx.bu_id)
    if status is not None:
        query = query.where(PrivacyRequestRow.status == status)
    if kind is not None:
        query = query.where(PrivacyRequestRow.kind == kind)
    if overdue:
        query = query.where(
            PrivacyRequestRow.status == "received", PrivacyRequestRow.due_at < ctx.clock.now()
        )
    rows, next_cursor = keyset(session, query, page, REQUEST_SORTS, PrivacyRequestRow.id)
    return list(rows), next_cursor
