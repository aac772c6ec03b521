"""The audit log (issue 7): who did what to which object, from where, when, with what outcome.

Append-only and hash-chained: each entry's ``hash`` is the SHA-256 of a canonical JSON of its
other fields, ``prev_hash`` (the previous entry's hash) included. Editing an entry changes its
hash; deleting one leaves the next entry pointing at a hash that is no longer there. Deleting
the newest entries leaves a shorter, valid chain: anchoring the head outside the database
(a signed checkpoint) is what catches that, and is not done here.

``record`` writes in the caller's transaction, so an act and its entry commit or vanish
together; the caller commits. ``detail`` holds ids and counts only, never PII values.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal

import orjson
from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.db import in_tenancy
from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance.models import AuditRow
from oneloop.governance.schemas import AuditEntry, AuditPage, VerifyResult

Outcome = Literal["ok", "denied", "failed"]
# What ``detail`` may hold: ids, counts, names of fields; never a PII value.
DetailValue = str | int | float | bool | None | list[str]
# What the first entry points back to.
GENESIS = "0" * 64
# The advisory lock key of the audit log's writers (PostgreSQL); see ``_lock``.
AUDIT_LOCK = 0xA0D17
READ_PERMISSION = "governance.audit.read"
VERIFY_BATCH = 1000


def record(
    session: Session,
    ctx: Context,
    action: str,
    object_type: str,
    object_id: str | None,
    *,
    outcome: Outcome = "ok",
    detail: dict[str, DetailValue] | None = None,
    bu_id: str | None = None,
) -> AuditEntry:
    """Append one entry, chained onto the newest. Writers are serialised until the caller's
    transaction ends, so two cannot chain onto the same previous entry: call it last in a
    short transaction (after the caller's own locks, so waits cannot cross), since every
    audited act waits on this one lock. ``bu_id`` is the unit the object belongs to (default:
    the caller's), so that unit's users find the entry."""
    _lock(session)
    last = session.execute(
        select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
    ).first()
    values: dict[str, object] = {
        "seq": 1 if last is None else last.seq + 1,
        "at": ctx.clock.now().astimezone(UTC),
        "actor": ctx.user_id,
        "bu_id": bu_id or ctx.bu_id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "origin": ctx.origin,
        "outcome": outcome,
        "detail": detail,
        "prev_hash": GENESIS if last is None else last.hash,
    }
    values["hash"] = entry_hash(values)
    session.execute(insert(AuditRow).values(**values))
    return AuditEntry.model_validate(values)


def entry_hash(values: dict[str, object]) -> str:
    """SHA-256 hex of the entry's fields but ``hash``, as sorted-key JSON: the same bytes
    whichever database gives the row back (JSONB reorders keys; SQLite drops the zone)."""
    fields = {k: v for k, v in values.items() if k != "hash"}
    at = fields["at"]
    assert isinstance(at, datetime)
    fields["at"] = at.astimezone(UTC).isoformat()
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _lock(session: Session) -> None:
    """PostgreSQL: a transaction-level advisory lock, so reading the newest entry and
    appending after it is one step. SQLite has one writer; a second one that read the old
    head fails to write (its snapshot is stale) instead of forking the chain."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(AUDIT_LOCK)))


def verify(session: Session) -> VerifyResult:
    """Walk the chain in ``seq`` order and stop at the first broken entry. Linkage, not
    gaps in ``seq``, tells a deletion: the entry after it names a hash nobody has."""
    columns = list(AuditRow.__table__.columns)
    prev = GENESIS
    count = 0
    rows = session.execute(select(*columns).order_by(AuditRow.seq)).yield_per(VERIFY_BATCH)
    for row in rows:
        values = dict(row._mapping)
        if values["prev_hash"] != prev:
            why = (
                "the entries before it were deleted"
                if count == 0
                else "the entry before it was deleted, or its hash was changed"
            )
            return VerifyResult(is_intact=False, entries=count, bad_seq=row.seq, reason=why)
        if entry_hash(values) != row.hash:
            return VerifyResult(
                is_intact=False,
                entries=count,
                bad_seq=row.seq,
                reason="the entry was edited: its hash does not match its fields",
            )
        prev = row.hash
        count += 1
    return VerifyResult(is_intact=True, entries=count)


def _filtered(
    ctx: Context,
    action: str | None,
    object_type: str | None,
    object_id: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[tuple[AuditRow]]:
    """The entries the caller may read that match every filter given."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationFailed(
                f"{name} has no time zone; add one, e.g. 2026-01-01T00:00:00+08:00 or ...Z",
                [FieldError((name,), "must carry a time zone offset")],
            )
    query = in_tenancy(select(AuditRow), AuditRow.bu_id, ctx)
    for column, wanted in (
        (AuditRow.action, action),
        (AuditRow.object_type, object_type),
        (AuditRow.object_id, object_id),
        (AuditRow.actor, actor),
    ):
        if wanted is not None:
            query = query.where(column == wanted)
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if until is not None:
        query = query.where(AuditRow.at < until)
    return query


def list_entries(
    session: Session,
    ctx: Context,
    *,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> AuditPage:
    """Newest first; ``cursor`` is the last ``seq`` of the previous page. A unit's user sees
    only its unit's entries; ``since`` is inclusive, ``until`` exclusive."""
    ctx.require(READ_PERMISSION)
    query = _filtered(ctx, action, object_type, object_id, actor, since, until)
    if cursor is not None:
        query = query.where(AuditRow.seq < cursor)
    rows = list(session.scalars(query.order_by(AuditRow.seq.desc()).limit(limit + 1)))
    page = rows[:limit]
    return AuditPage(
        items=[AuditEntry.model_validate(r) for r in page],
        next_cursor=page[-1].seq if len(rows) > limit else None,
    )


# ``seq`` is the log's own order (and its id); ``at`` can tie, ``seq`` breaks the tie.
ENTRY_SORTS: dict[str, Column] = {"seq": AuditRow.seq, "at": AuditRow.at}


def page_entries(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEntry]:
    """``list_entries`` in the API's common page and opaque cursor format (issue 8)."""
    ctx.require(READ_PERMISSION)
    query = _filtered(ctx, action, object_type, object_id, actor, since, until)
    return keyset_page(
        session,
        query,
        page,
        ENTRY_SORTS,
        AuditRow.seq,
        lambda rows: [AuditEntry.model_validate(r) for r in rows],
    )
