"""Identity tests feed the resolver log events directly: the graph does not care how an event
reached the log, and building ``LoggedEvent``s keeps hundreds of Hypothesis examples fast."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.collect.log import LoggedEvent
from oneloop.identity.models import IdentifierRow
from oneloop.identity.resolver import Changes, resolve
from oneloop.identity.rules import DEFAULT_RULES, Rules

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BU = "01JBU000000000000000000000"
SOURCE = "01JSRC00000000000000000000"


def ev(
    seq: int,
    *identifiers: tuple[str, str],
    at: int | None = None,
    traits: dict[str, object] | None = None,
    source: str = SOURCE,
    kind: str = "track",
    bu: str = BU,
) -> LoggedEvent:
    """An event carrying ``identifiers`` as ``(type, raw value)``; ``at`` in minutes after T0
    (default: its seq)."""
    when = T0 + timedelta(minutes=seq if at is None else at)
    return LoggedEvent(
        seq=seq,
        tx=0,
        bu_id=bu,
        source_id=source,
        message_id=f"m{seq}",
        type=kind,
        event="Visit" if kind == "track" else None,
        name=None,
        user_id=None,
        anonymous_id=None,
        group_id=None,
        previous_id=None,
        timestamp=when,
        received_at=when,
        properties=None,
        traits=traits,
        context=None,
        identifiers=[list(pair) for pair in identifiers],
    )


def run(session: Session, events: Sequence[LoggedEvent], rules: Rules = DEFAULT_RULES) -> Changes:
    changes = resolve(session, events, rules, now=T0 + timedelta(days=1))
    session.flush()
    return changes


def partition(session: Session) -> set[frozenset[str]]:
    """The profiles as sets of ``type:value`` (without the unit of unit-scoped values)."""
    groups: dict[str, set[str]] = {}
    for row in session.scalars(select(IdentifierRow)):
        value = row.value.removeprefix(f"{BU}:")
        groups.setdefault(row.profile_id, set()).add(f"{row.type}:{value}")
    return {frozenset(g) for g in groups.values()}


def profile_of(session: Session, kind: str, value: str) -> str:
    """The profile of a stored identifier; a ``user_id`` is kept per unit, and any unit's
    (these tests' events come from one) will do."""
    matches = [value] if kind != "user_id" else [value, f"{BU}:{value}", f"north:{value}"]
    return session.scalars(
        select(IdentifierRow.profile_id).where(
            IdentifierRow.type == kind, IdentifierRow.value.in_(matches)
        )
    ).one()
