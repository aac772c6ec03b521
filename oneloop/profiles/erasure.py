"""One person's profile data, for a privacy request: traits, tags, scores and their history
(access), and taking them away (erasure), or only what profiling made of them (objection).

After an erasure the profile row stays with its counts, the pseudonymous key the event log
and the aggregates are counted by; everything that described the person goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from oneloop.governance.scrub import PiiValues, scrub
from oneloop.profiles.models import (
    ProfileEventRow,
    ProfileTagRow,
    ScoreHistoryRow,
    ScoreModelRow,
    ScoreRow,
    TagHistoryRow,
    TagRow,
    TraitRow,
)


def export(session: Session, profile_ids: Sequence[str]) -> dict[str, Any]:  # Any: JSON
    traits = session.scalars(
        select(TraitRow).where(TraitRow.profile_id.in_(profile_ids)).order_by(TraitRow.key)
    )
    tags = session.execute(
        select(ProfileTagRow, TagRow.code)
        .join(TagRow, TagRow.id == ProfileTagRow.tag_id)
        .where(ProfileTagRow.profile_id.in_(profile_ids))
        .order_by(TagRow.code)
    )
    tag_history = session.execute(
        select(TagHistoryRow, TagRow.code)
        .join(TagRow, TagRow.id == TagHistoryRow.tag_id)
        .where(TagHistoryRow.profile_id.in_(profile_ids))
        .order_by(TagHistoryRow.at, TagHistoryRow.id)
    )
    scores = session.execute(
        select(ScoreRow, ScoreModelRow.code)
        .join(ScoreModelRow, ScoreModelRow.id == ScoreRow.model_id)
        .where(ScoreRow.profile_id.in_(profile_ids))
        .order_by(ScoreModelRow.code)
    )
    score_history = session.execute(
        select(ScoreHistoryRow, ScoreModelRow.code)
        .join(ScoreModelRow, ScoreModelRow.id == ScoreHistoryRow.model_id)
        .where(ScoreHistoryRow.profile_id.in_(profile_ids))
        .order_by(ScoreHistoryRow.at, ScoreHistoryRow.id)
    )
    return {
        "traits": {t.key: t.value for t in traits},
        "tags": [
            {
                "tag": code,
                "source": t.source,
                "set_by": t.set_by,
                "set_at": t.set_at.isoformat(),
                "reason": t.reason,
                "expires_at": t.expires_at.isoformat() if t.expires_at else None,
            }
            for t, code in tags
        ],
        "tag_history": [
            {
                "tag": code,
                "action": h.action,
                "by": h.by,
                "reason": h.reason,
                "at": h.at.isoformat(),
            }
            for h, code in tag_history
        ],
        "scores": [
            {"model": code, "value": s.value, "as_of": s.as_of.isoformat()} for s, code in scores
        ],
        "score_history": [
            {
                "model": code,
                "rule": h.rule,
                "points": h.points,
                "value_after": h.value_after,
                "at": h.at.isoformat(),
            }
            for h, code in score_history
        ],
    }


def forget_profiling(session: Session, profile_ids: Sequence[str]) -> dict[str, int]:
    """What scoring made of the person: their scores and how they came about. Rule and
    threshold tags leave with the live refresh that follows (the person is no candidate)."""
    counts: dict[str, int] = {}
    for name, table in (("profiles_score", ScoreRow), ("profiles_score_history", ScoreHistoryRow)):
        result = session.execute(
            delete(table).where(table.profile_id.in_(profile_ids)),
            execution_options={"synchronize_session": False},
        )
        counts[name] = result.rowcount or 0  # type: ignore[attr-defined]
    threshold_tags = session.execute(
        delete(ProfileTagRow).where(
            ProfileTagRow.profile_id.in_(profile_ids), ProfileTagRow.source == "score"
        ),
        execution_options={"synchronize_session": False},
    )
    counts["profiles_profile_tag"] = threshold_tags.rowcount or 0  # type: ignore[attr-defined]
    return counts


def erase(session: Session, profile_ids: Sequence[str], pii: PiiValues) -> dict[str, int]:
    """Everything that describes the person; their events' projections keep what counts."""
    counts = forget_profiling(session, profile_ids)
    for name, table in (("profiles_trait", TraitRow), ("profiles_profile_tag", ProfileTagRow)):
        result = session.execute(
            delete(table).where(table.profile_id.in_(profile_ids)),
            execution_options={"synchronize_session": False},
        )
        counts[name] = counts.get(name, 0) + (result.rowcount or 0)  # type: ignore[attr-defined]
    # Who tagged and when stays (it is the tagger's act); the free-text reason may name them.
    reasons = session.execute(
        update(TagHistoryRow)
        .where(TagHistoryRow.profile_id.in_(profile_ids), TagHistoryRow.reason != "")
        .values(reason=""),
        execution_options={"synchronize_session": False},
    )
    counts["profiles_tag_history"] = reasons.rowcount or 0  # type: ignore[attr-defined]
    scrubbed = 0
    for row in session.scalars(
        select(ProfileEventRow).where(ProfileEventRow.profile_id.in_(profile_ids))
    ):
        cleaned = scrub(row.properties, pii) if row.properties else row.properties
        if cleaned != row.properties:
            row.properties = cleaned
            scrubbed += 1
    counts["profiles_event"] = scrubbed
    session.flush()
    return counts
