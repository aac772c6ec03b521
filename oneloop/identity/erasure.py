"""One person's identity, for a privacy request: what we hold (access) and taking it out of
the graph (erasure).

A person is their profile and every profile merged into it. Erasure deletes their identifier
nodes and every edge, pin, merge record, review pair and matching key that names them, and
empties the identifier lists of their events; the profile ids stay (pseudonymous keys the
aggregates are counted by) but lead to nothing. The governance service orchestrates; this
module only knows identity's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from oneloop.core.db import in_chunks
from oneloop.identity.models import (
    EdgeRow,
    EventProfileRow,
    IdentifierRow,
    MatchKeyRow,
    MergeRow,
    PinRow,
    ProfileRow,
    RejectionRow,
    ReviewRow,
)
from oneloop.identity.service import current_id

ERASED_TABLES = (
    "identity_edge",
    "identity_pin",
    "identity_merge",
    "identity_review",
    "identity_match_key",
    "identity_event",
    "identity_identifier",
    "identity_rejection",
)


def person(session: Session, profile_id: str) -> list[str]:
    """The current profile id first, then every profile merged into it, however deep."""
    current = current_id(session, profile_id)
    found, frontier = [current], [current]
    while frontier:
        absorbed = list(
            session.scalars(select(ProfileRow.id).where(ProfileRow.merged_into.in_(frontier)))
        )
        frontier = [p for p in absorbed if p not in found]
        found.extend(frontier)
    return found


def identifiers(session: Session, profile_ids: Sequence[str]) -> list[IdentifierRow]:
    return list(
        session.scalars(
            select(IdentifierRow)
            .where(IdentifierRow.profile_id.in_(profile_ids))
            .order_by(IdentifierRow.type, IdentifierRow.value)
        )
    )


def event_seqs(session: Session, profile_ids: Sequence[str]) -> list[int]:
    """The log positions of the person's events, oldest first."""
    return sorted(
        session.scalars(
            select(EventProfileRow.seq).where(EventProfileRow.profile_id.in_(profile_ids))
        )
    )


def export(session: Session, profile_ids: Sequence[str]) -> dict[str, Any]:  # Any: JSON
    """Identifiers with where they were first seen, and the merge history."""
    merges = session.scalars(
        select(MergeRow)
        .where(or_(MergeRow.survivor_id.in_(profile_ids), MergeRow.absorbed_id.in_(profile_ids)))
        .order_by(MergeRow.created_at)
    )
    return {
        "identifiers": [
            {
                "type": row.type,
                "value": row.value,
                "first_seen_at": row.first_seen_at.isoformat(),
                "last_seen_at": row.last_seen_at.isoformat(),
                "first_source_id": row.first_source_id,
            }
            for row in identifiers(session, profile_ids)
        ],
        "merges": [
            {
                "kind": m.kind,
                "survivor_id": m.survivor_id,
                "absorbed_id": m.absorbed_id,
                "rule": m.rule,
                "at": m.created_at.isoformat(),
                "undone_at": m.undone_at.isoformat() if m.undone_at else None,
            }
            for m in merges
        ],
    }


def erase(session: Session, profile_ids: Sequence[str], raw_values: set[str]) -> dict[str, int]:
    """Take the person out of the graph; counts per table. Re-running finds nothing left."""
    nodes = [row.id for row in identifiers(session, profile_ids)]
    counts = dict.fromkeys(ERASED_TABLES, 0)

    def gone(name: str, statement: Any) -> None:  # Any: a DML statement
        result = session.execute(statement, execution_options={"synchronize_session": False})
        counts[name] = counts.get(name, 0) + (result.rowcount or 0)  # type: ignore[attr-defined]

    for part in in_chunks(nodes):
        gone(
            "identity_edge",
            delete(EdgeRow).where(or_(EdgeRow.a_id.in_(part), EdgeRow.b_id.in_(part))),
        )
        gone(
            "identity_pin", delete(PinRow).where(or_(PinRow.a_id.in_(part), PinRow.b_id.in_(part)))
        )
    gone(
        "identity_merge",
        delete(MergeRow).where(
            or_(MergeRow.survivor_id.in_(profile_ids), MergeRow.absorbed_id.in_(profile_ids))
        ),
    )
    gone(
        "identity_review",
        delete(ReviewRow).where(
            or_(ReviewRow.left_id.in_(profile_ids), ReviewRow.right_id.in_(profile_ids))
        ),
    )
    gone("identity_match_key", delete(MatchKeyRow).where(MatchKeyRow.profile_id.in_(profile_ids)))
    gone(
        "identity_event",
        update(EventProfileRow)
        .where(EventProfileRow.profile_id.in_(profile_ids))
        .values(identifiers=[], has_traits=False),
    )
    for part in in_chunks(nodes):
        gone("identity_identifier", delete(IdentifierRow).where(IdentifierRow.id.in_(part)))
    for part in in_chunks(sorted(raw_values)):
        gone(
            "identity_rejection",
            update(RejectionRow).where(RejectionRow.example.in_(part)).values(example=""),
        )
    return counts
