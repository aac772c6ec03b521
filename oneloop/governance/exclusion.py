"""Profiles kept out of profiling: their owner objected, or was erased.

The segment compiler puts ``profiling_allowed`` into every candidate query and scoring asks
``excluded`` for each batch, so one table decides for segments, rule tags and scores alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from oneloop.core.db import in_chunks
from oneloop.governance.privacy_models import ExclusionRow


def profiling_allowed(profile_id: ColumnElement[str]) -> ColumnElement[bool]:
    """True where the profile may be profiled: one primary-key probe per candidate."""
    return ~exists().where(ExclusionRow.profile_id == profile_id)


def excluded(session: Session, profile_ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(profile_ids))
    if not wanted or session.scalar(select(ExclusionRow.profile_id).limit(1)) is None:
        return set()
    found: set[str] = set()
    for part in in_chunks(wanted):
        found.update(
            session.scalars(
                select(ExclusionRow.profile_id).where(ExclusionRow.profile_id.in_(part))
            )
        )
    return found
