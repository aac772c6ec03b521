"""Consent that arrives through tracking, and consent that follows identity's merges.

Two shapes are read (``docs/consent.md``): a track event ``Consent Updated`` with
``properties`` ``{purpose, channel, status, legal_basis, proof}``, and an identify call's trait
``consent`` (``{"marketing": {"email": true, "sms": false}, "analytics": true}``).

The log consumer ``consent`` runs after identity resolution and records each decision under
the profile its event belongs to, with the event's time as ``given_at`` (never later than it
was received: a client clock in the future must not pin a decision forever), its message id
and source as proof. It is idempotent: a decision's history row is unique per event, purpose
and channel, so a replayed event adds nothing. An identify trait is a snapshot that SDKs send
again with every identify call, so one that repeats the decision in force is not a new one.

The events are valid Segment calls, already in the log when their consent is read. A consent
part that cannot be recorded (an unknown purpose, channel, status or legal basis; an event
that belongs to no profile) is dead-lettered with origin ``consent`` and the reason
(``invalid_consent``, ``consent_no_profile``), naming each bad path
(``properties.channel``, ``traits.consent.marketing.fax``); the good parts of the same event
are recorded. ``oneloop deadletters replay`` hands a letter back here once the cause is fixed.

Auditing: the audit log serialises its writers, so an entry per event would make every
ingest batch queue behind every other audited act. Each batch writes one ``consent.changed``
entry per business unit (origin ``worker``) with counts per purpose, channel and status and
the range of log positions; the history holds each decision with its proof.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.collect import deadletters
from oneloop.collect.consumers import advance, lock_cursor, register, register_task
from oneloop.collect.ingest import SourceKey, dead_letter
from oneloop.collect.log import LoggedEvent, read_seqs
from oneloop.collect.models import DeadLetterRow
from oneloop.collect.spec import Invalid
from oneloop.core.clock import Clock, SystemClock
from oneloop.core.context import SYSTEM_USER, Context
from oneloop.core.errors import FieldError
from oneloop.core.ids import BusinessUnitId
from oneloop.governance import audit, consent
from oneloop.governance.consent_schemas import (
    ANY,
    CHANNEL_CODES,
    LEGAL_BASIS_CODES,
    PURPOSE_CHANNELS,
    PURPOSE_CODES,
    STATUS_CODES,
)
from oneloop.governance.models import ConsentHistoryRow, ConsentRow
from oneloop.identity import service as identity

CONSUMER = "consent"
EVENT = "Consent Updated"
TRAIT = "consent"
ORIGIN = "consent"  # dead letters' origin: replay hands them back to ``redeliver``
INVALID = "invalid_consent"
NO_PROFILE = "consent_no_profile"
MAX_PROOF = 500
CHANGES_BATCH = 200

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Entry:
    """One decision an event carries."""

    purpose: str
    channel: str
    status: str
    legal_basis: str = "consent"
    proof: str | None = None


def is_consent(event: LoggedEvent) -> bool:
    if event.type == "track":
        return event.event == EVENT
    return event.type == "identify" and TRAIT in (event.traits or {})


def parse(event: LoggedEvent) -> tuple[list[Entry], list[FieldError]]:
    """The decisions an event carries and what is wrong with the rest of its consent."""
    if event.type == "track":
        return _from_properties(event.properties or {})
    return _from_trait((event.traits or {}).get(TRAIT), ("traits", TRAIT))


def _from_properties(props: dict[str, Any]) -> tuple[list[Entry], list[FieldError]]:  # Any: JSON
    errors: list[FieldError] = []
    loc: Loc = ("properties",)
    purpose = _code(props.get("purpose"), PURPOSE_CODES, (*loc, "purpose"), errors)
    channel = _code(props.get("channel") or ANY, CHANNEL_CODES, (*loc, "channel"), errors)
    status = _code(props.get("status"), STATUS_CODES, (*loc, "status"), errors)
    basis = _code(
        props.get("legal_basis") or "consent", LEGAL_BASIS_CODES, (*loc, "legal_basis"), errors
    )
    proof = props.get("proof")
    if proof is not None and (not isinstance(proof, str) or len(proof) > MAX_PROOF):
        errors.append(
            FieldError((*loc, "proof"), f"must be a text of at most {MAX_PROOF} characters")
        )
    if purpose and channel and channel not in PURPOSE_CHANNELS[purpose]:
        errors.append(FieldError((*loc, "channel"), f"{purpose} has no channels: send {ANY!r}"))
    if errors or not (purpose and channel and status and basis):
        return [], errors
    return [Entry(purpose, channel, status, basis, (proof or "").strip() or None)], []


def _from_trait(value: object, loc: Loc) -> tuple[list[Entry], list[FieldError]]:
    """``{purpose: choice}`` where a choice is true/false/a status, or, for a purpose with
    channels, ``{channel: choice}``."""
    if not isinstance(value, dict):
        example = '{"marketing": {"email": true}, "analytics": false}'
        return [], [FieldError(loc, f"must be an object of purposes, e.g. {example}")]
    entries: list[Entry] = []
    errors: list[FieldError] = []
    for purpose, choice in sorted(value.items()):  # JSONB keeps no key order
        at: Loc = (*loc, str(purpose))
        if purpose not in PURPOSE_CODES:
            errors.append(FieldError(at, f"unknown purpose; use one of {', '.join(PURPOSE_CODES)}"))
            continue
        nested = isinstance(choice, dict)
        choices = choice if isinstance(choice, dict) else {ANY: choice}
        for channel, wanted in sorted(choices.items()):
            where = (*at, str(channel)) if nested else at
            if channel not in PURPOSE_CHANNELS[purpose]:
                allowed = ", ".join(PURPOSE_CHANNELS[purpose])
                errors.append(FieldError(where, f"not a channel of {purpose}; use {allowed}"))
                continue
            status = _trait_status(wanted)
            if status is None:
                errors.append(
                    FieldError(where, f"must be true, false or one of {', '.join(STATUS_CODES)}")
                )
                continue
            entries.append(Entry(purpose, str(channel), status))
    return entries, errors


def _trait_status(value: object) -> str | None:
    if value is True:
        return "granted"
    if value is False:
        return "withdrawn"
    return value if isinstance(value, str) and value in STATUS_CODES else None


def _code(value: object, codes: Sequence[str], loc: Loc, errors: list[FieldError]) -> str | None:
    if isinstance(value, str) and value in codes:
        return value
    got = "missing" if value is None else repr(value)[:40]
    errors.append(FieldError(loc, f"must be one of {', '.join(codes)}; got {got}"))
    return None


# --- recording ------------------------------------------------------------------------------


def take(
    session: Session, events: Sequence[LoggedEvent], clock: Clock
) -> list[tuple[LoggedEvent, Invalid]]:
    """Record the consent of these (resolved) events; returns what could not be recorded."""
    now = clock.now()
    owners = identity.event_profiles(session, [e.seq for e in events])
    h = ConsentHistoryRow
    done = {
        tuple(row)
        for row in session.execute(
            select(h.event_seq, h.purpose, h.channel).where(
                h.event_seq.in_([e.seq for e in events])
            )
        )
    }
    refused: list[tuple[LoggedEvent, Invalid]] = []
    tally: dict[str, Counter[str]] = {}
    seqs: dict[str, list[int]] = {}
    for event in events:
        entries, errors = parse(event)
        owner = owners.get(event.seq)
        if entries and owner is None:
            why = FieldError(
                (),
                "the event belongs to no profile (its identifiers are unknown or all shared); "
                "replay it after an unmerge or a rules change",
            )
            refused.append((event, _invalid(event, NO_PROFILE, [why, *errors])))
            continue
        for entry in entries:
            assert owner is not None
            if (event.seq, entry.purpose, entry.channel) in done:
                continue
            if event.type == "identify" and _repeats(session, owner, entry):
                continue
            given_at = min(event.timestamp, event.received_at)
            consent.record(
                session,
                consent.Decision(
                    profile_id=owner,
                    purpose=entry.purpose,
                    channel=entry.channel,
                    status=entry.status,
                    legal_basis=entry.legal_basis,
                    given_at=given_at,
                    source=event.source_id,
                    recorded_by=SYSTEM_USER,
                    bu_id=event.bu_id,
                    event_seq=event.seq,
                    message_id=event.message_id,
                    proof=entry.proof,
                ),
                now,
            )
            tally.setdefault(event.bu_id, Counter())[
                f"{entry.purpose}.{entry.channel}.{entry.status}"
            ] += 1
            seqs.setdefault(event.bu_id, []).append(event.seq)
        if errors:
            refused.append((event, _invalid(event, INVALID, errors)))
    for bu_id, counts in tally.items():
        _audit(session, clock, bu_id, counts, seqs[bu_id])
    return refused


def _repeats(session: Session, profile_id: str, entry: Entry) -> bool:
    held = session.get(ConsentRow, (profile_id, entry.purpose, entry.channel))
    return held is not None and (held.status, held.legal_basis) == (
        entry.status,
        entry.legal_basis,
    )


def _audit(
    session: Session, clock: Clock, bu_id: str, counts: Counter[str], seqs: list[int]
) -> None:
    ctx = Context(bu_id=BusinessUnitId(bu_id), user_id=SYSTEM_USER, clock=clock, origin="worker")
    detail: dict[str, audit.DetailValue] = {
        "source": "tracking",
        "changes": sum(counts.values()),
        "first_seq": min(seqs),
        "last_seq": max(seqs),
        **dict(sorted(counts.items())),
    }
    audit.record(session, ctx, "consent.changed", "consent", None, detail=detail)


def _invalid(event: LoggedEvent, reason: str, errors: list[FieldError]) -> Invalid:
    part = event.properties if event.type == "track" else {TRAIT: (event.traits or {}).get(TRAIT)}
    payload = {"seq": event.seq, "message_id": event.message_id, "consent": part}
    return Invalid(reason, tuple(errors), payload, event.message_id)


@dataclass
class ConsentConsumer:
    """The log consumer; ``clock`` says when a decision was recorded."""

    clock: Clock = field(default_factory=SystemClock)
    name: str = CONSUMER

    def handle(self, session: Session, events: Sequence[LoggedEvent]) -> None:
        wanted = [e for e in events if is_consent(e)]
        if not wanted:
            return
        identity.require_resolved(session, events[-1].position)
        for event, invalid in take(session, wanted, self.clock):
            dead_letter(
                session,
                SourceKey(id=event.source_id, bu_id=event.bu_id),
                [invalid],
                received_at=self.clock.now(),
                origin=ORIGIN,
                ref=f"consent:seq {event.seq}",
            )


def redeliver(session: Session, letter: DeadLetterRow) -> Invalid | None:
    """Replay of a consent letter: read its event again with today's code and profiles."""
    payload = orjson.loads(letter.payload)
    events = read_seqs(session, [int(payload.get("seq", 0))])
    if not events:
        error = FieldError(("seq",), "the event is no longer in the log")
        return Invalid(INVALID, (error,), payload, letter.message_id)
    refused = take(session, events, SystemClock())
    return refused[0][1] if refused else None


@dataclass
class IdentityFollower:
    """Follows identity's change feed: each merge or split moves consent to the profile it
    belongs to now (``consent.follow``). It holds the consumer's cursor too, so a consumer
    step in another worker cannot record under a profile while it is being moved."""

    clock: Clock = field(default_factory=SystemClock)
    name: str = consent.FOLLOWER

    def run(self, session: Session, clock: Clock) -> int:
        position = lock_cursor(session, self.name, clock)
        changes = identity.changes_after(session, position.seq, CHANGES_BATCH)
        if not changes:
            return 0
        lock_cursor(session, CONSUMER, clock)
        consent.follow(session, changes, self.clock.now())
        advance(session, self.name, seq=changes[-1].seq, processed=len(changes), now=clock.now())
        return len(changes)


register(ConsentConsumer())
register_task(IdentityFollower())
deadletters.register_redeliverer(ORIGIN, redeliver)
