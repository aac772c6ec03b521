"""The segments service: CRUD per business unit, evaluation and its history, cycles,
members, export, estimates and the feed journeys read."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from oneloop.core.ids import BusinessUnitId, UserId
from oneloop.governance import audit
from oneloop.segments import service
from oneloop.segments.compile import bind
from oneloop.segments.language import parse_rule
from oneloop.segments.models import ChangeRow
from oneloop.segments.schemas import SegmentIn, SegmentUpdate
from tests.segments.conftest import NOW, World

PERMISSIONS = frozenset(
    {"segments.read", "segments.manage", "segments.export", "governance.bu.read"}
)
SHANGHAI_RULE = {"trait": "city", "op": "eq", "value": "上海"}


def unit_ctx(unit: str, clock: FixedClock, permissions: frozenset[str] = PERMISSIONS) -> Context:
    return Context(
        bu_id=BusinessUnitId(unit),
        user_id=UserId("ann@north"),
        permissions=permissions,
        clock=clock,
    )


def new(code: str, rule: dict[str, object], bu: str | None = None, **more: object) -> SegmentIn:
    return SegmentIn(code=code, name=f"{code} 人群", rule=rule, bu=bu, **more)  # type: ignore[arg-type]


def kinds(session: object, segment_id: str) -> list[tuple[str, str, str]]:
    rows = session.execute(  # type: ignore[attr-defined]
        select(ChangeRow.profile_id, ChangeRow.kind, ChangeRow.cause)
        .where(ChangeRow.segment_id == segment_id)
        .order_by(ChangeRow.seq)
    )
    return [tuple(r) for r in rows]


def test_create_evaluates_at_once_and_records_entries(world: World, ctx: Context) -> None:
    a, b = world.profile(), world.profile(world.south)
    world.trait(a, "city", "上海")
    world.trait(b, "city", "上海")
    made = service.create_segment(world.session, ctx, new("sh", SHANGHAI_RULE, bu="north"))
    assert made.bu_id == world.north and made.version == 1 and made.size == 1
    assert made.owner == "system" and made.evaluated_at == NOW and made.is_live
    assert kinds(world.session, made.id) == [(a, "enter", "rule")]
    group_wide = service.create_segment(world.session, ctx, new("sh", SHANGHAI_RULE))
    assert group_wide.bu_id == world.group and group_wide.size == 2
    with pytest.raises(Conflict):
        service.create_segment(world.session, ctx, new("sh", SHANGHAI_RULE, bu="north"))


def test_a_bad_rule_is_refused_naming_the_node(world: World, ctx: Context) -> None:
    rule = {"and": [SHANGHAI_RULE, {"trait": "city", "op": "like", "value": "%"}]}
    with pytest.raises(ValidationFailed) as caught:
        service.create_segment(world.session, ctx, new("bad", rule))
    assert caught.value.errors[0].path == "rule.and[1].op"
    with pytest.raises(ValidationFailed) as caught:
        service.create_segment(world.session, ctx, new("bad", {"tag": "nobody_has_this"}))
    assert caught.value.errors[0].path == "rule.tag"
    assert service.list_segments(world.session, ctx) == []


def test_a_unit_sees_and_manages_only_its_own_segments(
    world: World, ctx: Context, clock: FixedClock
) -> None:
    north, south = unit_ctx(world.north, clock), unit_ctx(world.south, clock)
    a = world.profile(world.north, world.south)
    world.trait(a, "city", "上海")
    mine = service.create_segment(world.session, north, new("sh", SHANGHAI_RULE))
    assert mine.bu_id == world.north
    theirs = service.create_segment(world.session, south, new("sh", SHANGHAI_RULE))
    hq = service.create_segment(world.session, ctx, new("hq", SHANGHAI_RULE))
    assert [s.id for s in service.list_segments(world.session, north)] == [mine.id]
    assert {s.id for s in service.list_segments(world.session, ctx)} == {mine.id, theirs.id, hq.id}
    assert [s.id for s in service.list_segments(world.session, ctx, bu="south")] == [theirs.id]
    calls: list[tuple[Callable[..., object], tuple[object, ...]]] = [
        (service.get_segment, ()),
        (service.evaluate, ()),
        (service.list_members, ()),
        (service.export_csv, ()),
        (service.history, ()),
        (service.delete_segment, ()),
        (service.update_segment, (SegmentUpdate(name="x", rule=SHANGHAI_RULE),)),
    ]
    for other in (theirs.id, hq.id):
        for call, more in calls:
            with pytest.raises(NotFound):
                call(world.session, north, other, *more)
    with pytest.raises(NotFound):
        service.get_segment_by_code(world.session, north, "hq")
    with pytest.raises(NotFound):  # naming another unit is not a way in
        service.create_segment(world.session, north, new("x", SHANGHAI_RULE, bu="south"))
    assert [m.segment_id for m in service.memberships_of(world.session, north, a)] == [mine.id]
    assert len(service.memberships_of(world.session, ctx, a)) == 3
    reader = unit_ctx(world.north, clock, frozenset({"segments.read"}))
    with pytest.raises(Forbidden):
        service.create_segment(world.session, reader, new("y", SHANGHAI_RULE))
    with pytest.raises(Forbidden):
        service.export_csv(world.session, reader, mine.id)


def test_update_bumps_the_version_and_re_evaluates_with_cause_rule(
    world: World, ctx: Context
) -> None:
    a, b = world.profile(), world.profile()
    world.trait(a, "city", "上海")
    world.trait(b, "city", "Beijing")
    made = service.create_segment(world.session, ctx, new("city", SHANGHAI_RULE))
    user = service.create_segment(world.session, ctx, new("user", {"segment": "city"}))
    assert world.members(user.id) == {a}
    beijing = {"trait": "city", "op": "eq", "value": "Beijing"}
    changed = service.update_segment(
        world.session, ctx, made.id, SegmentUpdate(name="北京 Beijing", rule=beijing)
    )
    assert changed.version == 2 and changed.name == "北京 Beijing" and changed.size == 1
    assert kinds(world.session, made.id) == [
        (a, "enter", "rule"),
        (b, "enter", "rule"),
        (a, "exit", "rule"),
    ]
    assert world.members(user.id) == {b}  # a segment that uses it follows at once
    assert service.get_segment(world.session, ctx, user.id).size == 1


def test_segments_cannot_use_each_other_in_a_circle(world: World, ctx: Context) -> None:
    a = service.create_segment(world.session, ctx, new("a", SHANGHAI_RULE))
    service.create_segment(world.session, ctx, new("b", {"segment": "a"}))
    service.create_segment(world.session, ctx, new("c", {"not": {"segment": "b"}}))
    with pytest.raises(ValidationFailed) as caught:
        service.update_segment(
            world.session, ctx, a.id, SegmentUpdate(name="a", rule={"or": [{"segment": "c"}]})
        )
    assert caught.value.errors[0].path == "rule.or[0].segment"
    assert "a → c → b → a" in caught.value.detail
    with pytest.raises(ValidationFailed) as caught:
        service.update_segment(
            world.session, ctx, a.id, SegmentUpdate(name="a", rule={"segment": "a"})
        )
    assert caught.value.errors[0].path == "rule.segment"


def test_a_unit_segment_shadowing_a_group_one_cannot_close_a_circle(
    world: World, ctx: Context
) -> None:
    """north's "p" uses "x", the group's today; a north "x" that uses "p" would be a circle."""
    service.create_segment(world.session, ctx, new("x", SHANGHAI_RULE))
    service.create_segment(world.session, ctx, new("p", {"segment": "x"}, bu="north"))
    with pytest.raises(ValidationFailed) as caught:
        service.create_segment(world.session, ctx, new("x", {"segment": "p"}, bu="north"))
    assert caught.value.errors[0].path == "rule.segment"


def test_delete_is_refused_while_the_segment_is_used(world: World, ctx: Context) -> None:
    a = world.profile()
    world.trait(a, "city", "上海")
    used = service.create_segment(world.session, ctx, new("used", SHANGHAI_RULE))
    user = service.create_segment(world.session, ctx, new("user", {"segment": "used"}))
    world.tag("from_rule", rule={"segment": "used"})
    with pytest.raises(Conflict) as caught:
        service.delete_segment(world.session, ctx, used.id)
    assert "tag from_rule" in caught.value.detail and "user" in caught.value.detail
    service.delete_segment(world.session, ctx, user.id)
    assert world.members(user.id) == set()
    with pytest.raises(NotFound):
        service.get_segment(world.session, ctx, user.id)
    assert kinds(world.session, user.id) == [(a, "enter", "rule")]  # the history stays


def test_evaluate_diffs_and_running_it_again_changes_nothing(
    world: World, ctx: Context, clock: FixedClock
) -> None:
    a, b = world.profile(), world.profile()
    world.event(a, "Order Completed", NOW - timedelta(hours=1))
    made = service.create_segment(
        world.session,
        ctx,
        new("recent", {"event": "Order Completed", "within": {"amount": 1}}, is_live=False),
    )
    world.event(b, "Order Completed", NOW)
    clock.advance(timedelta(days=1))
    done = service.evaluate(world.session, ctx, made.id)
    assert (done.entered, done.exited, done.size) == (0, 1, 0)
    clock.at = NOW
    done = service.evaluate(world.session, ctx, made.id)
    assert (done.entered, done.exited, done.size) == (2, 0, 2)
    again = service.evaluate(world.session, ctx, made.id)
    assert (again.entered, again.exited, again.size) == (0, 0, 2)
    history = kinds(world.session, made.id)
    assert history[:2] == [(a, "enter", "rule"), (a, "exit", "full")]
    assert sorted(history[2:]) == sorted([(a, "enter", "full"), (b, "enter", "full")])
    with pytest.raises(ValidationFailed):
        service.evaluate(world.session, ctx, made.id, cause="whim")


def test_members_page_by_cursor_and_history(world: World, ctx: Context) -> None:
    pids = sorted(world.profile() for _ in range(7))
    made = service.create_segment(
        world.session, ctx, new("all", {"trait": "x", "op": "not_exists"})
    )
    seen, cursor = [], None
    while True:
        page = service.list_members(world.session, ctx, made.id, cursor=cursor, limit=3)
        seen += [m.profile_id for m in page.members]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == pids
    history = service.history(world.session, ctx, made.id, limit=5)
    assert [h.kind for h in history] == ["enter"] * 5
    rest = service.history(world.session, ctx, made.id, after=history[-1].seq)
    assert len(rest) == 2
    assert [
        h.profile_id for h in service.history(world.session, ctx, made.id, profile_id=pids[0])
    ] == [pids[0]]


def test_export_streams_csv_and_neutralises_formulas(world: World, ctx: Context) -> None:
    plain = world.profile()
    formula = world.profile(pid='=HYPERLINK("http://x")')
    for pid in (plain, formula, world.profile(pid="+1"), world.profile(pid="@SUM(A1)")):
        world.trait(pid, "city", "上海")
    made = service.create_segment(world.session, ctx, new("sh", SHANGHAI_RULE))
    text = "".join(service.export_csv(world.session, ctx, made.id))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["profile_id", "entered_at"]
    cells = {r[0] for r in rows[1:]}
    assert cells == {plain, '\'=HYPERLINK("http://x")', "'+1", "'@SUM(A1)"}
    assert all(r[1].startswith("2026-03-02T01:00:00") for r in rows[1:])
    assert service.safe_cell("-2") == "'-2" and service.safe_cell("\tx") == "'\tx"
    assert service.safe_cell("01J8") == "01J8"
    [entry] = audit.list_entries(world.session, ctx, action="segment.exported").items
    assert entry.object_id == made.id and entry.detail == {"rows": 4}


def test_segment_changes_are_audited(world: World, ctx: Context) -> None:
    made = service.create_segment(world.session, ctx, new("sh", SHANGHAI_RULE))
    service.update_segment(
        world.session, ctx, made.id, SegmentUpdate(name="沪", rule=SHANGHAI_RULE)
    )
    service.delete_segment(world.session, ctx, made.id)
    entries = audit.list_entries(world.session, ctx, object_id=made.id).items
    assert [e.action for e in entries] == [
        "segment.deleted",
        "segment.updated",
        "segment.created",
    ]
    assert entries[1].detail == {"version": 2, "size": 0}


def test_estimate_is_exact_over_few_candidates(world: World, ctx: Context) -> None:
    a = world.profile()
    world.profile()
    world.trait(a, "city", "上海")
    found = service.estimate(world.session, ctx, SHANGHAI_RULE)
    assert (found.count, found.is_estimate, found.candidates) == (1, False, 2)
    assert found.label == "1 (exact)"
    shown = service.preview(world.session, ctx, SHANGHAI_RULE, bu="north")
    assert shown.exact_count == 1 and shown.sample_ids == [a]
    with pytest.raises(ValidationFailed) as caught:
        service.preview(world.session, ctx, {"not": {"tag": "missing"}})
    assert caught.value.errors[0].path == "rule.not.tag"


def test_estimate_samples_large_units_and_says_so(
    world: World, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = [world.profile() for _ in range(300)]
    for pid in pids[:100]:
        world.trait(pid, "city", "上海")
    monkeypatch.setattr(service, "EXACT_LIMIT", 50)
    monkeypatch.setattr(service, "MIN_SAMPLE", 10)
    monkeypatch.setattr(service, "SAMPLE_SIZE", 150)  # about half the buckets
    found = service.estimate(world.session, ctx, SHANGHAI_RULE)
    assert found.is_estimate and found.candidates == 300
    assert 10 <= found.sampled < 300
    assert found.label.startswith("≈ ") and "of ≈ 300 profiles" in found.label
    assert 30 <= found.count <= 200  # a sample of ~150 from a third: far inside these bounds
    shown = service.preview(world.session, ctx, SHANGHAI_RULE, exact=True)
    assert shown.is_estimate and shown.exact_count == 100
    assert set(shown.sample_ids) <= set(pids[:100]) and shown.sample_ids
    monkeypatch.setattr(service, "SAMPLE_SIZE", 10**9)  # every bucket: the sample is everyone
    everyone = service.estimate(world.session, ctx, SHANGHAI_RULE)
    assert (everyone.count, everyone.sampled) == (100, 300)


def test_estimate_of_a_small_unit_in_a_large_table_falls_back(
    world: World, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(300):
        world.profile(world.north)
    southern = [world.profile(world.south) for _ in range(40)]
    for pid in southern[:10]:
        world.trait(pid, "city", "上海")
    monkeypatch.setattr(service, "EXACT_LIMIT", 20)
    monkeypatch.setattr(service, "SAMPLE_SIZE", 60)
    monkeypatch.setattr(service, "MIN_SAMPLE", 41)  # more than south has: no sample will do
    found = service.estimate(world.session, ctx, SHANGHAI_RULE, bu="south")
    assert (found.count, found.is_estimate, found.candidates) == (10, False, 40)
    assert service.estimate(world.session, ctx, SHANGHAI_RULE, bu="north").count == 0


def test_sampling_by_the_ids_last_characters(
    world: World, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = [world.profile() for _ in range(200)]
    for pid in pids[:50]:
        world.trait(pid, "city", "上海")
    monkeypatch.setattr(service, "MIN_SAMPLE", 10)
    monkeypatch.setattr(service, "SAMPLE_SIZE", 100)
    bound = bind(world.session, parse_rule(SHANGHAI_RULE), world.scope())
    drawn = service._draw_by_id(world.session, bound, world.when, 200)
    assert drawn is not None and 10 <= len(drawn.rows) < 200
    assert {p for p, held in drawn.rows if held} <= set(pids[:50])
    assert drawn.scale == 200 / len(drawn.rows)


def test_estimate_counts_exactly_when_ids_are_not_ulids(
    world: World, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(60):
        world.trait(world.profile(pid=f"p{i}"), "city", "上海")
    monkeypatch.setattr(service, "EXACT_LIMIT", 50)
    found = service.estimate(world.session, ctx, SHANGHAI_RULE)
    assert (found.count, found.is_estimate) == (60, False)


def test_the_feed_lists_every_segments_changes_in_order(world: World, ctx: Context) -> None:
    a = world.profile()
    world.trait(a, "city", "上海")
    first = service.create_segment(world.session, ctx, new("one", SHANGHAI_RULE))
    second = service.create_segment(world.session, ctx, new("two", {"segment": "one"}))
    feed = service.changes_after(world.session, 0, 10)
    assert [(c.segment_id, c.profile_id, c.kind) for c in feed] == [
        (first.id, a, "enter"),
        (second.id, a, "enter"),
    ]
    assert service.changes_after(world.session, feed[0].seq, 10) == feed[1:]
    assert service.changes_after(world.session, feed[-1].seq, 10) == []


def test_what_a_rule_names_cannot_be_deleted_or_renamed_while_it_does(
    world: World, ctx: Context
) -> None:
    """Deleting a trait, tag or score model a rule names would make the rule stop binding and
    its segment silently stop following people: refused with who uses it."""
    from oneloop.profiles import score_models, traits
    from oneloop.profiles import service as profiles
    from oneloop.profiles.schemas import TagCategoryIn, TagIn

    trait = traits.create_trait(
        world.session, ctx, {"name": "orders_all", "event": "Order Completed", "aggregate": "count"}
    )
    profiles.create_category(world.session, ctx, TagCategoryIn(code="k", name_zh="类", name_en="K"))
    hot = TagIn(code="hot", category="k", name_zh="热", name_en="Hot")
    tag = profiles.create_tag(world.session, ctx, hot)
    model = score_models.create_model(
        world.session,
        ctx,
        {"code": "intent", "name_zh": "意向", "name_en": "Intent",
         "rules": [{"id": "s", "event": "Summit Checked In", "points": 20}]},
    )  # fmt: skip
    rule = {"or": [{"trait": "orders_all", "op": "gte", "value": 2}, {"tag": "hot"},
                   {"score": "intent", "op": "gte", "value": 20}]}  # fmt: skip
    made = service.create_segment(world.session, ctx, new("fans", rule))
    renamed = {"name": "orders", "event": "Order Completed", "aggregate": "count"}
    attempts: list[Callable[[], object]] = [
        lambda: traits.delete_trait(world.session, ctx, trait.id),
        lambda: traits.update_trait(world.session, ctx, trait.id, renamed),
        lambda: profiles.delete_tag(world.session, ctx, tag.id),
        lambda: score_models.delete_model(world.session, ctx, model.id),
    ]
    for attempt in attempts:
        with pytest.raises(Conflict, match="used by segment fans"):
            attempt()
    service.delete_segment(world.session, ctx, made.id)
    for attempt in attempts[1:]:  # the renamed trait is deleted by id all the same
        attempt()
    traits.delete_trait(world.session, ctx, trait.id)
