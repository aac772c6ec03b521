"""A rule counts calendar days in the zone of the unit it belongs to (issue 6): north is moved
to Berlin, south stays in Shanghai, and at 20:00 UTC on 1 March it is still the 1st in Berlin
(21:00) and already the 2nd in Shanghai (04:00). The same rule means a different day in each
unit, and each answer is the right one for its zone, whether the rule is compiled directly,
evaluated by the service (create, estimate, preview) or kept live (refresh, sweep)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.profiles.models import ProfileTagRow
from oneloop.segments import live, service
from oneloop.segments.compile import Scope
from oneloop.segments.schemas import SegmentIn
from tests.factories import set_time_zone
from tests.segments.conftest import World

EVENING = datetime(
    2026, 3, 1, 20, 0, tzinfo=UTC
)  # 21:00 on the 1st in Berlin, 04:00 on the 2nd in SH
NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # 13:00 on the 1st in Berlin, 20:00 on the 1st in SH
LATE = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # 18:00 on the 1st in Berlin, 01:00 on the 2nd in SH
TODAY = {"event": "Page Viewed", "within": {"amount": 1, "unit": "days"}}
FIRST_OF_MARCH = {"event": "Page Viewed", "between": ["2026-03-01", "2026-03-01"]}


@pytest.fixture
def berlin(world: World, ctx: Context, clock: FixedClock) -> dict[str, str]:
    """North in Berlin; ``noon`` and ``late`` viewed a page at NOON and LATE in both units."""
    set_time_zone(world.session, ctx, "north", "Europe/Berlin")
    clock.at = EVENING
    people = {"noon": world.profile(world.north, world.south)}
    people["late"] = world.profile(world.north, world.south)
    for unit in (world.north, world.south):
        world.event(people["noon"], "Page Viewed", NOON, unit=unit)
        world.event(people["late"], "Page Viewed", LATE, unit=unit)
    return people


def test_a_scope_carries_its_units_zone(world: World, berlin: dict[str, str]) -> None:
    assert world.scope(world.north).zone == ZoneInfo("Europe/Berlin")
    assert world.scope(world.south).zone == ZoneInfo("Asia/Shanghai")
    assert world.scope().zone == ZoneInfo("Asia/Shanghai")  # group-wide: the group's zone
    assert Scope(world.north, world.group).zone == ZoneInfo("Asia/Shanghai")  # the default


def test_the_last_day_and_a_plain_date_are_each_units_own(
    world: World, berlin: dict[str, str]
) -> None:
    noon, late = berlin["noon"], berlin["late"]
    assert world.matches(TODAY, world.north) == {noon, late}  # both on the 1st, today in Berlin
    assert world.matches(TODAY, world.south) == {late}  # only LATE is on the 2nd in Shanghai
    assert world.matches(TODAY) == {late}  # the group's rule: the group's zone, Shanghai
    assert world.matches({**TODAY, "did": False}, world.south) == {noon}
    assert world.matches(FIRST_OF_MARCH, world.north) == {noon, late}
    assert world.matches(FIRST_OF_MARCH, world.south) == {noon}


def test_a_date_trait_compares_with_the_units_local_day(world: World, ctx: Context) -> None:
    set_time_zone(world.session, ctx, "north", "Europe/Berlin")
    signed = world.profile(world.north, world.south)
    world.trait(signed, "signed_up", "2026-03-01T22:30:00Z")  # 23:30 Berlin, 06:30 Shanghai
    on_the_first = {"trait": "signed_up", "op": "lte", "value": "2026-03-01"}
    assert world.matches(on_the_first, world.north) == {signed}
    assert world.matches(on_the_first, world.south) == set()
    assert world.matches({**on_the_first, "op": "gt"}, world.south) == {signed}


def test_segments_and_estimates_count_days_in_their_units_zone(
    world: World, ctx: Context, berlin: dict[str, str]
) -> None:
    noon, late = berlin["noon"], berlin["late"]
    made = {
        bu: service.create_segment(
            world.session, ctx, SegmentIn(code="today", name="今日访客", rule=TODAY, bu=bu)
        )
        for bu in ("north", "south")
    }
    assert world.members(made["north"].id) == {noon, late}
    assert world.members(made["south"].id) == {late}
    north = service.preview(world.session, ctx, TODAY, bu="north")
    south = service.preview(world.session, ctx, TODAY, bu="south")
    assert (north.count, sorted(north.sample_ids)) == (2, sorted([noon, late]))
    assert (south.count, south.sample_ids) == (1, [late])
    assert service.estimate(world.session, ctx, FIRST_OF_MARCH, bu="south").count == 1


def test_live_rules_follow_their_units_midnight(
    world: World, ctx: Context, clock: FixedClock, berlin: dict[str, str]
) -> None:
    """Live segments and rule tags, kept by the refresh and the sweep: each unit's "today"
    moves on at its own midnight, Berlin's seven hours after Shanghai's."""
    noon, late = berlin["noon"], berlin["late"]
    units = {"north": world.north, "south": world.south}
    segments = {
        bu: service.create_segment(
            world.session, ctx, SegmentIn(code="today", name="今日访客", rule=TODAY, bu=bu)
        ).id
        for bu in units
    }
    tags = {bu: world.tag("seen_today", unit, rule=TODAY).id for bu, unit in units.items()}

    def carriers(bu: str) -> set[str]:
        query = select(ProfileTagRow.profile_id).where(ProfileTagRow.tag_id == tags[bu])
        return set(world.session.scalars(query))

    live.refresh(world.session, {noon: "event", late: "event"}, world.when)
    assert (carriers("north"), carriers("south")) == ({noon, late}, {late})
    clock.at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 00:30 on the 2nd in Berlin, 07:30 in SH
    live.sweep(world.session, world.when)
    assert world.members(segments["north"]) == set() and carriers("north") == set()
    assert world.members(segments["south"]) == {late} and carriers("south") == {late}
    clock.at = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # midnight in Shanghai: the 3rd
    live.sweep(world.session, world.when)
    assert world.members(segments["south"]) == set() and carriers("south") == set()
