"""The consent registry (issue 7, part 4): what each person allowed, for which purpose and
channel, and ``may_contact``, the one place journeys and exports ask.

**Decisions.** Every grant, withdrawal or denial is appended to the history
(``governance_consent_history``) and never edited; the decision in force per profile ×
purpose × channel (``governance_consent``) is the history's newest by the time the person
gave it (``given_at``; a tracked event's own time), ties broken by arrival. So a replayed or
late event is kept in the history but does not override a newer decision.

**Channels.** A purpose without a channel (analytics, sharing, transfer abroad) is recorded
for the channel ``any``; marketing may be recorded per channel or for ``any`` (all of it).
``may_contact(…, "marketing", "email")`` is answered by the email record first, then by the
any-channel record, then by the default, with one exception: a no to the whole purpose given
after the channel's yes wins (someone who unsubscribes from all marketing must not keep
getting e-mail because they once ticked the e-mail box). A later yes to the whole purpose does
not undo a no given for one channel.

**Merges and splits.** Consent is stored against profiles and follows identity's change feed
(``identity.profiles``; the task ``consent.identity`` in ``consent_tracking``), as the
profiles domain moves events: on a merge or a split every history row goes to the profile
identity says it belongs to now (a tracked decision with its event, one made over the API
with the profile it was made for) and the decisions in force are derived again from the
history, so the newest decision per purpose × channel wins and a withdrawal is never lost.
Reads do not wait for that task: they follow merges at once (``current_id``) and also read
the profiles that merges the task has not followed yet folded into the person. Until the task
has followed a split, the part that left answers with the defaults (no) and the rest keeps
every decision it held.

**Defaults.** When nothing is recorded, ``DEFAULTS`` answers: PIPL is opt-in, so every purpose
here needs consent and defaults to no.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from oneloop.collect.models import CursorRow
from oneloop.core.context import Context
from oneloop.core.db import in_chunks
from oneloop.core.errors import FieldError, NotFound, ValidationFailed
from oneloop.governance import audit
from oneloop.governance.consent_schemas import (
    ANY,
    CHANNEL_CODES,
    GRANTED,
    PURPOSE_CHANNELS,
    PURPOSE_CODES,
    ConsentIn,
    ConsentRecord,
    ContactDecision,
    DecidedBy,
)
from oneloop.governance.models import ConsentHistoryRow, ConsentRow
from oneloop.identity import service as identity
from oneloop.profiles import service as profiles

READ = "consent.read"
MANAGE = "consent.manage"
# The task that moves consent along identity's merges and splits (its cursor's name).
FOLLOWER = "consent.identity"
# How many of identity's changes a read looks through for merges the task has not followed.
UNFOLLOWED_LIMIT = 1000
# A decision "given" later than this after it was received is a wrong clock, not the future.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Default:
    allowed: bool
    reason: str


# What ``may_contact`` answers when nothing is recorded for a purpose. PIPL (个人信息保护法)
# is opt-in: processing needs the person's consent unless another basis of Art. 13 applies,
# and none of these purposes has one by itself.
DEFAULTS: dict[str, Default] = {
    "marketing": Default(
        False,
        "commercial messages need prior consent (PIPL Art. 13-14; Advertising Law Art. 43)",
    ),
    "analytics": Default(
        False,
        "profiling for personalised marketing needs consent and an easy way out (PIPL Art. 24)",
    ),
    "third_party_sharing": Default(
        False, "giving data to another handler needs separate consent (PIPL Art. 23)"
    ),
    "cross_border_transfer": Default(
        False, "transfer abroad needs separate consent (PIPL Art. 39)"
    ),
}


@dataclass(frozen=True)
class Decision:
    """A decision to record, whichever door it came in by; ``profile_id`` is the person's
    profile now, ``bu_id`` the unit that recorded it (None: the group or the platform)."""

    profile_id: str
    purpose: str
    channel: str
    status: str
    legal_basis: str
    given_at: datetime
    source: str
    recorded_by: str
    bu_id: str | None = None
    event_seq: int | None = None
    message_id: str | None = None
    proof: str | None = None


@dataclass(frozen=True)
class InForce:
    """A decision in force (or, with ``at``, the one that was)."""

    purpose: str
    channel: str
    status: str
    legal_basis: str
    given_at: datetime
    seq: int

    def newer_than(self, other: InForce) -> bool:
        return (self.given_at, self.seq) > (other.given_at, other.seq)


# --- recording ------------------------------------------------------------------------------


def record(session: Session, decision: Decision, now: datetime) -> int:
    """Append ``decision`` to the history and put it in force if it is now the newest for its
    purpose and channel; returns its history ``seq``. Core statements, one upsert: the
    tracking consumer records many, and two writers of one person cannot both insert."""
    seq: int = session.execute(
        insert(ConsentHistoryRow)
        .values(
            profile_id=decision.profile_id,
            recorded_profile_id=decision.profile_id,
            purpose=decision.purpose,
            channel=decision.channel,
            status=decision.status,
            legal_basis=decision.legal_basis,
            given_at=decision.given_at,
            recorded_at=now,
            bu_id=decision.bu_id,
            source=decision.source,
            event_seq=decision.event_seq,
            message_id=decision.message_id,
            proof=decision.proof,
            recorded_by=decision.recorded_by,
        )
        .returning(ConsentHistoryRow.seq)
    ).scalar_one()
    values = {
        "profile_id": decision.profile_id,
        "purpose": decision.purpose,
        "channel": decision.channel,
        "status": decision.status,
        "legal_basis": decision.legal_basis,
        "given_at": decision.given_at,
        "history_seq": seq,
        "updated_at": now,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ConsentRow).values(**values)
    held = ConsentRow.__table__.c
    newer = or_(
        stmt.excluded.given_at > held.given_at,
        and_(
            stmt.excluded.given_at == held.given_at,
            stmt.excluded.history_seq > held.history_seq,
        ),
    )
    kept = ("status", "legal_basis", "given_at", "history_seq", "updated_at")
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[held.profile_id, held.purpose, held.channel],
            set_={name: stmt.excluded[name] for name in kept},
            where=newer,
        )
    )
    return seq


def record_consent(
    session: Session,
    ctx: Context,
    profile_id: str,
    data: ConsentIn,
    *,
    idempotency_key: str | None = None,
) -> ConsentRecord:
    """Record a grant, withdrawal or denial on the person's behalf (a service desk, a signed
    form); audited as ``consent.changed``. The caller commits. A retry carrying the same
    ``idempotency_key`` for the person gets the first record back and records nothing (the
    key is kept as the record's ``message_id``)."""
    ctx.require(MANAGE)
    current = profiles.visible_id(session, ctx, profile_id)
    check_codes(data.purpose, data.channel, for_recording=True)
    if idempotency_key:
        h = ConsentHistoryRow
        earlier = session.scalar(
            select(h).where(
                h.profile_id == current,
                h.event_seq.is_(None),
                h.message_id == idempotency_key,
            )
        )
        if earlier is not None:
            deciding = {d.seq for d in in_force(session, current, None, None).values()}
            return to_record(earlier, ctx, deciding)
    now = ctx.clock.now()
    given_at = _given_at(data.given_at, now)
    source = data.source or ("cli" if ctx.origin == "cli" else "api")
    decision = Decision(
        profile_id=current,
        purpose=data.purpose,
        channel=data.channel,
        status=data.status,
        legal_basis=data.legal_basis,
        given_at=given_at,
        source=source,
        recorded_by=ctx.user_id,
        bu_id=ctx.bu_id,
        message_id=idempotency_key,
        proof=data.proof,
    )
    seq = record(session, decision, now)
    detail: dict[str, audit.DetailValue] = {
        "purpose": data.purpose,
        "channel": data.channel,
        "status": data.status,
        "legal_basis": data.legal_basis,
        "source": source,
        "record": seq,
    }
    audit.record(session, ctx, "consent.changed", "profile", current, detail=detail)
    row = session.get(ConsentHistoryRow, seq)
    assert row is not None
    deciding = {d.seq for d in in_force(session, current, [data.purpose], None).values()}
    return to_record(row, ctx, deciding)


def _given_at(given_at: datetime | None, now: datetime) -> datetime:
    if given_at is None:
        return now
    if given_at.tzinfo is None:
        raise ValidationFailed(
            "given_at has no time zone",
            [FieldError(("given_at",), "must carry an offset, e.g. 2026-03-01T10:00:00+08:00")],
        )
    if given_at > now + CLOCK_SKEW:
        raise ValidationFailed(
            "given_at is in the future",
            [FieldError(("given_at",), "a decision cannot be given after it is recorded")],
        )
    return given_at


def check_codes(purpose: str, channel: str, *, for_recording: bool = False) -> None:
    """Refuse an unknown purpose or channel, naming the field. A purpose without channels is
    recorded for ``any`` only (asking about another channel falls back to it)."""
    errors = []
    if purpose not in PURPOSE_CODES:
        errors.append(FieldError(("purpose",), f"must be one of {', '.join(PURPOSE_CODES)}"))
    if channel not in CHANNEL_CODES:
        errors.append(FieldError(("channel",), f"must be one of {', '.join(CHANNEL_CODES)}"))
    elif for_recording and purpose in PURPOSE_CODES:
        allowed = PURPOSE_CHANNELS[purpose]
        if channel not in allowed:
            errors.append(
                FieldError(("channel",), f"{purpose} has no channels: record it for {ANY!r}")
            )
    if errors:
        raise ValidationFailed("not a purpose and channel the registry knows", errors)


# --- what is in force, and may_contact -------------------------------------------------------


def may_contact(
    session: Session, profile_id: str, purpose: str, channel: str, *, at: datetime | None = None
) -> bool:
    """Whether the person may be contacted (or their data used) for ``purpose`` over
    ``channel`` now, or as the registry knew it at ``at``. The platform's own jobs call this,
    so it takes no context: check the caller's visibility before showing its answer. An
    absorbed profile's id answers for the person it was merged into."""
    return _decision(session, profile_id, purpose, channel, at)[0]


def contact_decision(
    session: Session, profile_id: str, purpose: str, channel: str, *, at: datetime | None = None
) -> ContactDecision:
    """``may_contact`` with its reason: the record that decided, or the default."""
    allowed, found, by, current = _decision(session, profile_id, purpose, channel, at)
    record_out = None
    if found is None:
        reason = f"nothing recorded for {purpose}: {DEFAULTS[purpose].reason}"
    else:
        row = session.get(ConsentHistoryRow, found.seq)
        assert row is not None
        record_out = to_record(row, None, {found.seq} if at is None else set())
        scope = f"by {found.channel}" if found.channel != ANY else "on every channel"
        reason = f"{found.status} for {purpose} {scope} at {found.given_at.isoformat()}"
        if by == "purpose" and channel != ANY:
            reason += f" (the purpose's record decides for {channel})"
    return ContactDecision.model_validate(
        {
            "profile_id": current,
            "purpose": purpose,
            "channel": channel,
            "allowed": allowed,
            "decided_by": by,
            "reason": reason,
            "record": record_out,
        }
    )


def check_contact(
    session: Session, ctx: Context, profile_id: str, purpose: str, channel: str
) -> ContactDecision:
    """``contact_decision`` for a caller who may see the profile (HTTP, CLI)."""
    ctx.require(READ)
    current = profiles.visible_id(session, ctx, profile_id)
    decision = contact_decision(session, current, purpose, channel)
    if decision.record is not None:
        decision.record = redacted(decision.record, ctx)
    return decision


def _decision(
    session: Session, profile_id: str, purpose: str, channel: str, at: datetime | None
) -> tuple[bool, InForce | None, DecidedBy, str]:
    check_codes(purpose, channel)
    current = identity.current_id(session, profile_id)
    found = in_force(session, current, [purpose], at)
    decided, by = decide(found, purpose, channel)
    allowed = decided.status == GRANTED if decided else DEFAULTS[purpose].allowed
    return allowed, decided, by, current


def decide(
    found: dict[tuple[str, str], InForce], purpose: str, channel: str
) -> tuple[InForce | None, DecidedBy]:
    """The record that answers for ``purpose`` over ``channel`` (see the module's rules)."""
    own = found.get((purpose, channel)) if channel != ANY else None
    whole = found.get((purpose, ANY))
    by = decided_by(
        own.status if own else None,
        whole.status if whole else None,
        bool(own and whole and whole.newer_than(own)),
    )
    return {"channel": own, "purpose": whole, "default": None}[by], by


def decided_by(own: str | None, whole: str | None, whole_is_newer: bool) -> DecidedBy:
    """One rule for one person (``decide``) and for counts over many (``summary``)."""
    if own is not None and whole is not None and whole != GRANTED and whole_is_newer:
        return "purpose"
    if own is not None:
        return "channel"
    return "purpose" if whole is not None else "default"


def in_force(
    session: Session, profile_id: str, purposes: Collection[str] | None, at: datetime | None
) -> dict[tuple[str, str], InForce]:
    """The person's decisions in force per (purpose, channel), over the profile and those that
    merges not yet followed folded into it; with ``at``, from the history as known then."""
    ids = [profile_id, *unfollowed(session, profile_id)]
    if at is None:
        c = ConsentRow
        query = select(
            c.purpose, c.channel, c.status, c.legal_basis, c.given_at, c.history_seq
        ).where(c.profile_id.in_(ids))
        purpose_column = c.purpose
    else:
        h = ConsentHistoryRow
        query = select(h.purpose, h.channel, h.status, h.legal_basis, h.given_at, h.seq).where(
            h.profile_id.in_(ids), h.given_at <= at, h.recorded_at <= at
        )
        purpose_column = h.purpose
    if purposes is not None:
        query = query.where(purpose_column.in_(list(purposes)))
    best: dict[tuple[str, str], InForce] = {}
    for row in session.execute(query):
        found = InForce(*row)
        key = (found.purpose, found.channel)
        if key not in best or found.newer_than(best[key]):
            best[key] = found
    return best


def unfollowed(session: Session, profile_id: str) -> list[str]:
    """Profiles merged into this one whose consent the task has not moved yet: found in
    identity's change feed after the task's cursor (one indexed read when it is caught up)."""
    seq = session.scalar(select(CursorRow.seq).where(CursorRow.name == FOLLOWER)) or 0
    changes = identity.changes_after(session, seq, UNFOLLOWED_LIMIT)
    others = sorted(
        {c.other_id for c in changes if c.kind == "merge" and c.other_id} - {profile_id}
    )
    if not others:
        return []
    holding = session.scalars(
        select(ConsentHistoryRow.profile_id)
        .where(ConsentHistoryRow.profile_id.in_(others))
        .distinct()
    ).all()
    return sorted(p for p in holding if _current_or_none(session, p) == profile_id)


def _current_or_none(session: Session, profile_id: str) -> str | None:
    try:
        return identity.current_id(session, profile_id)
    except NotFound:
        return None


# --- records as callers see them ----------------------------------------------------------


def to_record(row: ConsentHistoryRow, ctx: Context | None, deciding: set[int]) -> ConsentRecord:
    """A history row as a caller sees it: ``deciding`` holds the seqs of the records in
    force; without a context (the platform's own jobs), nothing is redacted."""
    out = ConsentRecord.model_validate(row)
    out.is_current = row.seq in deciding
    return out if ctx is None else redacted(out, ctx)


def redacted(out: ConsentRecord, ctx: Context) -> ConsentRecord:
    """A record another unit made keeps its decision (it binds every unit) and loses where it
    came from: a unit must not learn that, or how, another unit is in touch with someone."""
    if ctx.is_group_wide or out.bu_id == ctx.bu_id:
        return out
    return out.model_copy(
        update={
            "bu_id": None,
            "source": None,
            "event_seq": None,
            "message_id": None,
            "proof": None,
            "recorded_by": None,
            "recorded_elsewhere": True,
        }
    )


# --- following merges and splits ------------------------------------------------------------


def follow(session: Session, changes: Sequence[identity.Change], now: datetime) -> set[str]:
    """Move the history of the profiles a merge or split touched to where identity says each
    decision belongs now, and derive their decisions in force again; returns the profiles
    whose consent was rebuilt."""
    involved: set[str] = set()
    for change in changes:
        if change.kind in ("merge", "split") and change.other_id is not None:
            involved.update((change.profile_id, change.other_id))
    if not involved:
        return set()
    h = ConsentHistoryRow
    rows = []
    for part in in_chunks(sorted(involved)):
        rows.extend(
            session.execute(
                select(h.seq, h.profile_id, h.recorded_profile_id, h.event_seq).where(
                    h.profile_id.in_(part)
                )
            ).all()
        )
    if not rows:
        return set()
    by_event = identity.event_profiles(session, [r.event_seq for r in rows if r.event_seq])
    moves: dict[str, list[int]] = {}
    for row in rows:
        owner = by_event.get(row.event_seq) if row.event_seq is not None else None
        owner = owner or _current_or_none(session, row.recorded_profile_id) or row.profile_id
        if owner != row.profile_id:
            moves.setdefault(owner, []).append(row.seq)
    rebuilt = {r.profile_id for r in rows} | set(moves)
    for owner, seqs in moves.items():
        for chunk in in_chunks(seqs):
            session.execute(update(h).where(h.seq.in_(chunk)).values(profile_id=owner))
    rebuild(session, rebuilt, now)
    return rebuilt


def rebuild(session: Session, profile_ids: Iterable[str], now: datetime) -> None:
    """Derive the decisions in force of these profiles from their history again."""
    h = ConsentHistoryRow
    for part in in_chunks(sorted(set(profile_ids))):
        session.execute(delete(ConsentRow).where(ConsentRow.profile_id.in_(part)))
        best: dict[tuple[str, str, str], InForce] = {}
        for row in session.execute(
            select(
                h.profile_id, h.purpose, h.channel, h.status, h.legal_basis, h.given_at, h.seq
            ).where(h.profile_id.in_(part))
        ):
            found = InForce(*row[1:])
            key = (row.profile_id, found.purpose, found.channel)
            if key not in best or found.newer_than(best[key]):
                best[key] = found
        if best:
            session.execute(
                insert(ConsentRow),
                [
                    {
                        "profile_id": pid,
                        "purpose": d.purpose,
                        "channel": d.channel,
                        "status": d.status,
                        "legal_basis": d.legal_basis,
                        "given_at": d.given_at,
                        "history_seq": d.seq,
                        "updated_at": now,
                    }
                    for (pid, _, _), d in best.items()
                ],
            )
