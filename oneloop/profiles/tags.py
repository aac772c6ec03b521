"""Tags (标签体系): categories, tags, and who carries which tag since when and why.

One profile carries a tag at most once; the row says where it came from (``manual``,
``import``, ``rule``, ``score``) and every change is kept in ``profiles_tag_history``. A tag
set by a rule or a score threshold is taken away by the same mechanism when it no longer holds,
but never one a person set by hand: the machine does not overrule people.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from oneloop.profiles.models import ProfileTagRow, TagHistoryRow, TagRow

SOURCES = ("manual", "import", "rule", "score")
MACHINE_SOURCES = ("rule", "score")


def tag_by_code(session: Session, code: str, bu_ids: tuple[str, ...]) -> TagRow | None:
    """The tag named ``code`` among the units in ``bu_ids``, earlier units first (a business
    unit's own tag before the group's of the same code)."""
    rows = {
        row.bu_id: row
        for row in session.scalars(
            select(TagRow).where(TagRow.code == code, TagRow.bu_id.in_(bu_ids))
        )
    }
    return next((rows[b] for b in bu_ids if b in rows), None)


def assign(
    session: Session,
    *,
    profile_id: str,
    tag: TagRow,
    source: str,
    by: str,
    reason: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> bool:
    """Give ``tag`` to the profile; True when it did not carry it. Carrying it already only
    moves a later expiry (a manual set over a machine's makes it manual)."""
    row = session.get(ProfileTagRow, (profile_id, tag.id))
    if row is not None:
        if source not in MACHINE_SOURCES and row.source in MACHINE_SOURCES:
            row.source, row.set_by, row.reason = source, by, reason[:500]
        if row.expires_at is not None and (expires_at is None or expires_at > row.expires_at):
            row.expires_at = expires_at
        return False
    session.add(
        ProfileTagRow(
            profile_id=profile_id,
            tag_id=tag.id,
            source=source,
            set_by=by,
            set_at=now,
            reason=reason[:500],
            expires_at=expires_at,
        )
    )
    _history(session, profile_id, tag.id, "set", source, by, reason, now)
    return True


def unassign(
    session: Session,
    *,
    profile_id: str,
    tag: TagRow,
    source: str,
    by: str,
    reason: str,
    now: datetime,
    action: str = "removed",
) -> bool:
    """Take ``tag`` away; True when the profile carried it. A machine source (rule, score)
    only takes away what a machine set."""
    query = delete(ProfileTagRow).where(
        ProfileTagRow.profile_id == profile_id, ProfileTagRow.tag_id == tag.id
    )
    if source in MACHINE_SOURCES:
        query = query.where(ProfileTagRow.source.in_(MACHINE_SOURCES))
    if session.execute(query).rowcount == 0:  # type: ignore[attr-defined]
        return False
    _history(session, profile_id, tag.id, action, source, by, reason, now)
    return True


def tags_of(session: Session, profile_ids: list[str]) -> dict[str, list[ProfileTagRow]]:
    found: dict[str, list[ProfileTagRow]] = {p: [] for p in profile_ids}
    for row in session.scalars(
        select(ProfileTagRow).where(ProfileTagRow.profile_id.in_(profile_ids))
    ):
        found[row.profile_id].append(row)
    return found


def expire(session: Session, now: datetime) -> set[str]:
    """Take away every tag whose expiry has passed; the profiles that lost one."""
    rows = list(session.scalars(select(ProfileTagRow).where(ProfileTagRow.expires_at <= now)))
    for row in rows:
        session.delete(row)
        _history(
            session, row.profile_id, row.tag_id, "expired", row.source, "system", "expired", now
        )
    return {row.profile_id for row in rows}


def _history(
    session: Session,
    profile_id: str,
    tag_id: str,
    action: str,
    source: str,
    by: str,
    reason: str,
    now: datetime,
) -> None:
    session.add(
        TagHistoryRow(
            profile_id=profile_id,
            tag_id=tag_id,
            action=action,
            source=source,
            by=by,
            reason=reason[:500],
            at=now,
        )
    )
