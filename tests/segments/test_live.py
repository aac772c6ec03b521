"""Live membership: ``refresh`` for the profiles a change touched, ``sweep`` for what time
alone changes; rule tags first, then segments in the order they use each other."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import IN_CHUNK
from oneloop.profiles import project
from oneloop.profiles.models import (
    ProfileEventRow,
    ProfileRow,
    ProfileTagRow,
    ProfileUnitRow,
    TagHistoryRow,
    TagRow,
)
from oneloop.segments import live, service
from oneloop.segments.models import ChangeRow
from oneloop.segments.schemas import SegmentIn, SegmentUpdate
from tests.segments.conftest import NOW, World

BOUGHT = {"event": "Order Completed"}


def make(ctx: Context, world: World, code: str, rule: object, **more: object) -> str:
    data = SegmentIn(code=code, name=code, rule=rule, **more)  # type: ignore[arg-type]
    return service.create_segment(world.session, ctx, data).id


def changes(world: World, segment_id: str) -> list[tuple[str, str, str]]:
    rows = world.session.execute(
        select(ChangeRow.profile_id, ChangeRow.kind, ChangeRow.cause)
        .where(ChangeRow.segment_id == segment_id)
        .order_by(ChangeRow.seq)
    )
    return [(p, k, c) for p, k, c in rows]


def size(world: World, ctx: Context, segment_id: str) -> int:
    return service.get_segment(world.session, ctx, segment_id).size


def carriers(world: World, tag: TagRow) -> dict[str, str]:
    rows = world.session.execute(
        select(ProfileTagRow.profile_id, ProfileTagRow.source).where(ProfileTagRow.tag_id == tag.id)
    )
    return {p: s for p, s in rows}


def forget(world: World, profile_id: str) -> None:
    """What ``profiles.project.forget`` does to a profile that identity merged away."""
    for model in (ProfileUnitRow, ProfileEventRow, ProfileTagRow):
        world.session.execute(delete(model).where(model.profile_id == profile_id))
    world.session.execute(delete(ProfileRow).where(ProfileRow.id == profile_id))


def test_refresh_records_entries_and_exits_with_their_cause(world: World, ctx: Context) -> None:
    a, b = world.profile(), world.profile()
    rule = {"and": [BOUGHT, {"trait": "blocked", "op": "ne", "value": True}]}
    buyers = make(ctx, world, "buyers", rule)
    assert world.members(buyers) == set()
    world.event(a, "Order Completed", NOW)
    world.event(b, "Order Completed", NOW)
    live.refresh(world.session, {a: "event"}, world.when)  # b's change is not announced yet
    assert world.members(buyers) == {a} and size(world, ctx, buyers) == 1
    world.trait(a, "blocked", True)
    live.refresh(world.session, {a: "trait", b: "event"}, world.when)
    assert world.members(buyers) == {b} and size(world, ctx, buyers) == 1
    history = changes(world, buyers)
    assert history[0] == (a, "enter", "event")
    assert sorted(history[1:]) == sorted([(b, "enter", "event"), (a, "exit", "trait")])
    live.refresh(world.session, {a: "trait", b: "event"}, world.when)  # nothing new, no rows
    assert len(changes(world, buyers)) == 3
    live.refresh(world.session, {}, world.when)


def test_a_merged_away_profile_leaves_every_segment(world: World, ctx: Context) -> None:
    survivor, absorbed = world.profile(), world.profile(world.north, world.south)
    for pid in (survivor, absorbed):
        world.event(pid, "Order Completed", NOW)
    segments = [
        make(ctx, world, "everyone", BOUGHT),
        make(ctx, world, "north_buyers", BOUGHT, bu="north"),
        make(ctx, world, "unblocked", {"trait": "blocked", "op": "not_exists"}),
        make(ctx, world, "not_buyers", {"not": {"event": "Order Completed", "did": False}}),
    ]
    assert all(absorbed in world.members(s) for s in segments)
    forget(world, absorbed)
    live.refresh(world.session, {survivor: "merge", absorbed: "merge"}, world.when)
    for segment in segments:
        assert world.members(segment) == {survivor}
        assert changes(world, segment)[-1] == (absorbed, "exit", "merge")
        assert size(world, ctx, segment) == 1


def test_rule_tags_follow_their_rule_and_segments_see_them_at_once(
    world: World, ctx: Context
) -> None:
    a, b, c = world.profile(), world.profile(), world.profile()
    hot = world.tag("hot", rule={"event": "Order Completed", "count": {"op": "gte", "value": 2}})
    tagged = make(ctx, world, "tagged", {"tag": "hot"})
    world.give_tag(c, hot, source="manual")  # a person set it: the rule never takes it away
    for _ in range(2):
        world.event(a, "Order Completed", NOW)
    world.event(b, "Order Completed", NOW)
    live.refresh(world.session, dict.fromkeys((a, b, c), "event"), world.when)
    assert carriers(world, hot) == {a: "rule", c: "manual"}
    assert world.members(tagged) == {a, c}  # evaluated after the tag, in the same refresh
    assert sorted(changes(world, tagged)) == sorted([(a, "enter", "event"), (c, "enter", "event")])
    for pid in (a, c):
        world.session.execute(delete(ProfileEventRow).where(ProfileEventRow.profile_id == pid))
        project.recount(world.session, [pid])
    live.refresh(world.session, {a: "event", c: "event"}, world.when)
    assert carriers(world, hot) == {c: "manual"}
    assert world.members(tagged) == {c}
    history = world.session.execute(
        select(TagHistoryRow.profile_id, TagHistoryRow.action, TagHistoryRow.source)
        .where(TagHistoryRow.tag_id == hot.id)
        .order_by(TagHistoryRow.id)
    )
    assert [(p, act, src) for p, act, src in history] == [
        (a, "set", "rule"),
        (a, "removed", "rule"),
    ]


def test_a_rule_tag_reading_a_segment_sees_it_in_the_same_refresh(
    world: World, ctx: Context
) -> None:
    """Tags and segments are one order: a tag whose rule reads a segment comes after it, and
    a segment reading that tag after the tag, so one event settles all three at once."""
    a = world.profile()
    make(ctx, world, "buyers", {"event": "Order Completed"})
    loyal = world.tag("loyal", rule={"segment": "buyers"})
    tagged = make(ctx, world, "loyal_people", {"tag": "loyal"})
    world.event(a, "Order Completed", NOW)
    live.refresh(world.session, {a: "event"}, world.when)
    assert carriers(world, loyal) == {a: "rule"}
    assert world.members(tagged) == {a}


def test_a_unit_rule_tag_counts_that_units_events_only(world: World) -> None:
    north_buyer, south_buyer = world.profile(world.north, world.south), world.profile(world.south)
    world.event(north_buyer, "Order Completed", NOW, unit=world.north)
    world.event(south_buyer, "Order Completed", NOW, unit=world.south)
    tag = world.tag("bought_north", world.north, rule=BOUGHT)
    live.refresh(world.session, dict.fromkeys((north_buyer, south_buyer), "event"), world.when)
    assert carriers(world, tag) == {north_buyer: "rule"}


def test_a_segment_is_evaluated_after_the_segments_it_uses(world: World, ctx: Context) -> None:
    a = world.profile()
    top = make(ctx, world, "top", BOUGHT)  # made first, changed to use the others later
    base = make(ctx, world, "base", BOUGHT)
    middle = make(ctx, world, "middle", {"segment": "base"})
    update = SegmentUpdate(name="top", rule={"not": {"not": {"segment": "middle"}}})
    service.update_segment(world.session, ctx, top, update)
    world.event(a, "Order Completed", NOW)
    live.refresh(world.session, {a: "event"}, world.when)
    assert all(world.members(s) == {a} for s in (base, middle, top))
    assert [c[0] for c in changes(world, top)] == [a]


def test_ordered_puts_what_is_used_first_and_survives_a_cycle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uses = {"a": {"c"}, "b": set(), "c": {"b"}, "d": {"a", "b"}}
    order = live.ordered(sorted(uses), key=lambda k: k, uses=lambda k: uses[k])
    assert order == ["b", "c", "a", "d"]
    looped = {"x": {"y"}, "y": {"x"}}
    with caplog.at_level(logging.ERROR):
        assert sorted(live.ordered(list(looped), key=str, uses=looped.__getitem__)) == ["x", "y"]
    assert "segment.cycle" in caplog.text


def test_refresh_of_many_profiles_goes_in_chunks(world: World, ctx: Context) -> None:
    pids = [world.profile() for _ in range(IN_CHUNK + 30)]
    buyers = make(ctx, world, "buyers", BOUGHT)
    for pid in pids:
        world.event(pid, "Order Completed", NOW)
    live.refresh(world.session, dict.fromkeys(pids, "event"), world.when)
    assert world.members(buyers) == set(pids) and size(world, ctx, buyers) == len(pids)


def test_on_demand_segments_and_other_units_profiles_are_left_alone(
    world: World, ctx: Context
) -> None:
    a, southern = world.profile(), world.profile(world.south)
    static = make(ctx, world, "static", BOUGHT, is_live=False)
    north = make(ctx, world, "north", BOUGHT, bu="north")
    for pid in (a, southern):
        world.event(pid, "Order Completed", NOW, unit=world.south)
    live.refresh(world.session, {a: "event", southern: "event"}, world.when)
    assert world.members(static) == set()
    assert world.members(north) == set()  # south's events do not count in north


def test_a_rule_that_no_longer_binds_is_logged_and_skipped(
    world: World, ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    a = world.profile()
    doomed = world.tag("doomed")
    broken = make(ctx, world, "broken", {"tag": "doomed"})
    fine = make(ctx, world, "fine", BOUGHT)
    world.session.delete(doomed)
    world.session.flush()
    world.event(a, "Order Completed", NOW)
    with caplog.at_level(logging.ERROR):
        live.refresh(world.session, {a: "event"}, world.when)
    assert "segment.rule_invalid" in caplog.text
    assert world.members(fine) == {a} and world.members(broken) == set()


def test_sweep_re_evaluates_what_time_changes(
    world: World, ctx: Context, clock: FixedClock
) -> None:
    a = world.profile()
    world.event(a, "Order Completed", NOW)
    today = make(ctx, world, "today", {**BOUGHT, "within": {"amount": 1}})
    ever = make(ctx, world, "ever", BOUGHT)
    uses_today = make(ctx, world, "uses_today", {"segment": "today"})
    recent = world.tag("recent", rule={**BOUGHT, "within": {"amount": 1}})
    via_tag = make(ctx, world, "via_tag", {"tag": "recent"})
    live.refresh(world.session, {a: "event"}, world.when)
    assert carriers(world, recent) == {a: "rule"} and world.members(via_tag) == {a}
    clock.at = NOW + timedelta(hours=14)  # 23:00 in Shanghai: still today
    live.sweep(world.session, world.when)
    assert world.members(today) == {a}
    clock.at = NOW + timedelta(hours=15)  # midnight: a new day
    live.sweep(world.session, world.when)
    for segment in (today, uses_today, via_tag):
        assert world.members(segment) == set()
        assert changes(world, segment)[-1] == (a, "exit", "time")
    assert carriers(world, recent) == {}
    assert world.members(ever) == {a} and len(changes(world, ever)) == 1
    evaluated = service.get_segment(world.session, ctx, today).evaluated_at
    assert evaluated == NOW + timedelta(hours=15)
    assert service.get_segment(world.session, ctx, ever).evaluated_at == NOW


def test_nothing_to_do_without_segments_or_rule_tags(world: World) -> None:
    a = world.profile()
    live.refresh(world.session, {a: "event"}, world.when)
    live.sweep(world.session, world.when)
    assert world.session.scalars(select(ChangeRow)).all() == []
