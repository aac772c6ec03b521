"""Segment tests write the profiles domain's rows directly (profiles, units, traits, events,
tags, scores): the language and its compiler only read those tables, and building them by hand
keeps each case to the few rows it is about."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.ids import new_id
from oneloop.profiles import project
from oneloop.profiles.filters import When, zone_of
from oneloop.profiles.models import (
    ProfileEventRow,
    ProfileRow,
    ProfileTagRow,
    ProfileUnitRow,
    ScoreModelRow,
    ScoreRow,
    TagCategoryRow,
    TagRow,
    TraitDefRow,
    TraitRow,
)
from oneloop.profiles.values import typed
from oneloop.segments.compile import Scope, bind, matching, scope_in
from oneloop.segments.language import parse_rule
from oneloop.segments.models import MemberRow, SegmentRow
from tests.factories import make_group

# 2026-03-02 09:00 in Shanghai: "today" there began at 2026-03-01T16:00Z.
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
SHANGHAI = zone_of(None)


@dataclass
class World:
    """The group ``galaxy`` with units ``north`` and ``south``, and row builders."""

    session: Session
    group: str
    north: str
    south: str
    clock: FixedClock
    _seq: count[int]

    @property
    def when(self) -> When:
        return When(self.clock.now(), SHANGHAI)

    def scope(self, unit: str | None = None) -> Scope:
        """The scope of a rule owned by ``unit`` (default: the group), in that unit's zone."""
        return scope_in(self.session, unit or self.group, self.group)

    def profile(self, *units: str, pid: str | None = None) -> str:
        """A profile that touched ``units`` (default: north)."""
        pid = pid or new_id()
        at = self.clock.now()
        self.session.add(
            ProfileRow(id=pid, first_seen_at=at, last_seen_at=at, events=0, updated_at=at)
        )
        for unit in units or (self.north,):
            self.session.add(ProfileUnitRow(profile_id=pid, bu_id=unit, first_at=at, last_at=at))
        self.session.flush()
        return pid

    def trait(self, pid: str, name: str, value: object, *, key: str | None = None) -> None:
        t = typed(value)
        self.session.add(
            TraitRow(
                profile_id=pid,
                key=key or f"golden:{name}",
                value=t.value,
                num=t.num,
                text=t.text,
                at=t.at,
                updated_at=self.clock.now(),
            )
        )
        self.session.flush()

    def trait_def(self, name: str, unit: str | None = None) -> str:
        now = self.clock.now()
        row = TraitDefRow(
            id=new_id(),
            bu_id=unit or self.group,
            name=name,
            description="",
            definition={},
            version=1,
            created_at=now,
            created_by="test",
            updated_at=now,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def event(
        self,
        pid: str,
        name: str,
        at: datetime,
        *,
        unit: str | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.session.add(
            ProfileEventRow(
                seq=next(self._seq),
                profile_id=pid,
                bu_id=unit or self.north,
                source_id="01JSRC00000000000000000000",
                type="track",
                name=name,
                department="marketing",
                at=at,
                properties=dict(properties or {}),
            )
        )
        self.session.flush()
        project.recount(self.session, [pid])  # what the profiles consumer keeps for rules

    def tag(self, code: str, unit: str | None = None, rule: dict[str, Any] | None = None) -> TagRow:
        now = self.clock.now()
        unit = unit or self.group
        category = self.session.scalar(
            select(TagCategoryRow).where(TagCategoryRow.bu_id == unit, TagCategoryRow.code == "c")
        )
        if category is None:
            category = TagCategoryRow(
                id=new_id(), bu_id=unit, code="c", name_zh="类", name_en="C", created_at=now
            )
            self.session.add(category)
        row = TagRow(
            id=new_id(),
            bu_id=unit,
            category_id=category.id,
            code=code,
            name_zh=code,
            name_en=code,
            description="",
            kind="rule" if rule else "manual",
            rule=rule,
            expires_after_days=None,
            version=1,
            created_at=now,
            created_by="test",
            updated_at=now,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def give_tag(self, pid: str, tag: TagRow, source: str = "manual") -> None:
        self.session.add(
            ProfileTagRow(
                profile_id=pid,
                tag_id=tag.id,
                source=source,
                set_by="test",
                set_at=self.clock.now(),
                reason="test",
                expires_at=None,
            )
        )
        self.session.flush()

    def score_model(self, code: str, unit: str | None = None) -> str:
        now = self.clock.now()
        row = ScoreModelRow(
            id=new_id(),
            bu_id=unit or self.group,
            code=code,
            name_zh=code,
            name_en=code,
            description="",
            definition={},
            version=1,
            created_at=now,
            created_by="test",
            updated_at=now,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def score(self, pid: str, model_id: str, value: float) -> None:
        now = self.clock.now()
        self.session.add(
            ScoreRow(profile_id=pid, model_id=model_id, value=value, as_of=now, updated_at=now)
        )
        self.session.flush()

    def segment(self, code: str, unit: str | None = None, rule: object = None) -> str:
        """A segment row as is (members are the test's to write)."""
        now = self.clock.now()
        row = SegmentRow(
            id=new_id(),
            bu_id=unit or self.group,
            code=code,
            name=code,
            description="",
            owner="test",
            rule=rule or {"tag": "none"},
            is_live=False,
            size=0,
            version=1,
            evaluated_at=None,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def matches(self, rule: object, unit: str | None = None) -> set[str]:
        """The profiles ``rule`` holds for, computed both ways (a full evaluation and probing
        each profile), which must agree."""
        bound = bind(self.session, parse_rule(rule), self.scope(unit))
        full = set(self.session.scalars(matching(bound, self.when)))
        everyone = list(self.session.scalars(select(ProfileRow.id)))
        probed = set(self.session.scalars(matching(bound, self.when, ids=everyone)))
        assert full == probed, (rule, full, probed)
        return full

    def members(self, segment_id: str) -> set[str]:
        return set(
            self.session.scalars(
                select(MemberRow.profile_id).where(MemberRow.segment_id == segment_id)
            )
        )

    def size_of(self, segment_id: str) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(MemberRow)
                .where(MemberRow.segment_id == segment_id)
            )
            or 0
        )


@pytest.fixture
def world(session: Session, ctx: Context, clock: FixedClock) -> World:
    clock.at = NOW
    group, north, south = (u.id for u in make_group(session, ctx))
    return World(session, group, north, south, clock, count(1))
