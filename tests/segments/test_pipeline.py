"""Segments live from the real pipeline: events in through ingest, resolved, projected by the
profiles consumer, which calls ``segments.live.refresh``; a merge moves the absorbed profile
out of its segments."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.profiles import score_models, traits
from oneloop.profiles import service as tags
from oneloop.profiles.models import EventCountRow, ProfileEventRow, ProfileRow
from oneloop.profiles.schemas import TagCategoryIn, TagIn
from oneloop.segments import live, service
from oneloop.segments.models import ChangeRow, MemberRow, SegmentRow
from oneloop.segments.schemas import SegmentIn
from tests.pipeline import Feed


def test_events_move_profiles_in_and_a_merge_moves_the_absorbed_out(
    session: Session, ctx: Context, feed: Feed
) -> None:
    bought = {"event": "Order Completed"}
    segment = service.create_segment(
        session, ctx, SegmentIn(code="buyers", name="购买者 Buyers", rule=bought, bu="north")
    )
    session.commit()
    feed({"type": "track", "anonymousId": "a1", "event": "Order Completed", "properties": {}})
    feed({"type": "track", "userId": "u1", "event": "Order Completed", "properties": {}})
    members = set(session.scalars(select(MemberRow.profile_id)))
    assert len(members) == 2
    causes = session.execute(select(ChangeRow.kind, ChangeRow.cause)).all()
    assert [tuple(c) for c in causes] == [("enter", "event"), ("enter", "event")]

    feed({"type": "identify", "anonymousId": "a1", "userId": "u1", "traits": {}})
    survivor = session.scalars(select(ProfileRow.id)).one()
    assert set(session.scalars(select(MemberRow.profile_id))) == {survivor}
    (absorbed,) = members - {survivor}
    left = session.execute(
        select(ChangeRow.kind, ChangeRow.cause).where(ChangeRow.profile_id == absorbed)
    ).all()
    assert [tuple(c) for c in left][-1] == ("exit", "merge")
    assert service.get_segment(session, ctx, segment.id).size == 1


RULES: dict[str, dict[str, object]] = {
    "buyers": {"event": "Order Completed"},
    "repeat": {"trait": "orders_all", "op": "gte", "value": 2},
    "shanghai": {"trait": "city", "op": "eq", "value": "上海"},
    "warm": {"score": "intent", "op": "gte", "value": 20},
    "hot": {"tag": "hot"},
    "cold": {"not": {"tag": "hot"}},
    "browsing_buyers": {"and": [{"segment": "buyers"}, {"tag": "browser"}]},
}


def test_live_membership_equals_a_full_evaluation_and_skips_rules_reading_nothing_new(
    session: Session, ctx: Context, feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live refresh evaluates a rule for a profile only when what the rule reads may have
    moved; after every batch of a random stream, a full evaluation must find nothing to do."""
    traits.create_trait(
        session, ctx, {"name": "orders_all", "event": "Order Completed", "aggregate": "count"}
    )
    tags.create_category(session, ctx, TagCategoryIn(code="intent", name_zh="意向", name_en="I"))
    tags.create_tag(session, ctx, TagIn(code="hot", category="intent", name_zh="热", name_en="Hot"))
    tags.create_tag(
        session,
        ctx,
        TagIn(
            code="browser",
            category="intent",
            name_zh="浏览者",
            name_en="Browser",
            rule={"event": "Page Viewed"},
        ),
    )
    score_models.create_model(
        session,
        ctx,
        {
            "code": "intent",
            "name_zh": "意向",
            "name_en": "Intent",
            "rules": [{"id": "summit", "event": "Summit Checked In", "points": 20}],
            "thresholds": [{"min": 40, "tag": "hot"}],
        },
    )
    made = {
        code: service.create_segment(session, ctx, SegmentIn(code=code, name=code, rule=rule))
        for code, rule in RULES.items()
    }
    session.commit()
    evaluated: list[tuple[str, tuple[str, ...]]] = []
    original = live.apply

    def spy(session: Session, segment: SegmentRow, *args: object, **kw: object) -> live.Applied:
        ids = args[3] if len(args) > 3 else kw.get("ids")
        evaluated.append((segment.code, tuple(ids or ())))  # type: ignore[arg-type]
        return original(session, segment, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(live, "apply", spy)
    rng = random.Random(6)
    people = [{"anonymousId": f"a{i}"} for i in range(4)] + [{"userId": f"u{i}"} for i in range(3)]
    calls: list[dict[str, object]] = [
        {"type": "track", "event": "Order Completed", "properties": {}},
        {"type": "track", "event": "Summit Checked In", "properties": {}},
        {"type": "page", "name": "Pricing", "properties": {"path": "/pricing"}},
        {"type": "identify", "traits": {"city": rng.choice(["上海", "北京"])}},
        {"type": "track", "event": "Newsletter Opened", "properties": {}},
    ]
    for _ in range(12):
        batch = [{**rng.choice(calls), **rng.choice(people)} for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.2:  # a merge: an anonymous visitor logs in
            batch.append({"type": "identify", **rng.choice(people[:4]), "userId": "u0"})
        feed(*batch)
        monkeypatch.setattr(live, "apply", original)
        for code, segment in made.items():
            full = service.evaluate(session, ctx, segment.id)
            assert (code, full.entered, full.exited) == (code, 0, 0)
        assert counted(session) == counted_again(session)  # merges included
        session.commit()
        monkeypatch.setattr(live, "apply", spy)
    assert {code for code, _ in evaluated} == set(RULES)  # every rule had its turn

    evaluated.clear()
    known = session.scalars(select(ProfileRow.id).order_by(ProfileRow.id)).first()
    assert known is not None
    feed({"type": "track", "userId": "u1", "event": "Newsletter Opened", "properties": {}})
    assert evaluated == []  # nobody reads that event: no rule ran
    feed({"type": "track", "userId": "u1", "event": "Summit Checked In", "properties": {}})
    assert {code for code, _ in evaluated} == {"warm", "hot", "cold"}  # the score, its tag


def counted(session: Session) -> set[tuple[object, ...]]:
    c = EventCountRow
    rows = session.execute(select(c.profile_id, c.bu_id, c.name, c.count, c.first_at, c.last_at))
    return {tuple(r) for r in rows}


def counted_again(session: Session) -> set[tuple[object, ...]]:
    e = ProfileEventRow
    rows = session.execute(
        select(
            e.profile_id, e.bu_id, e.name, func.count(), func.min(e.at), func.max(e.at)
        ).group_by(e.profile_id, e.bu_id, e.name)
    )
    return {tuple(r) for r in rows}


def test_a_changed_trait_definition_moves_the_live_segments_that_read_it(
    session: Session, ctx: Context, feed: Feed
) -> None:
    trait = traits.create_trait(
        session, ctx, {"name": "visits", "event": "Order Completed", "aggregate": "count"}
    )
    rule = {"trait": "visits", "op": "gte", "value": 2}
    made = SegmentIn(code="regulars", name="常客 Regulars", rule=rule)
    regulars = service.create_segment(session, ctx, made)
    session.commit()
    page = {"type": "page", "userId": "u1", "name": "Home", "properties": {"path": "/"}}
    order = {"type": "track", "userId": "u2", "event": "Order Completed", "properties": {}}
    feed(page, page, order)
    assert session.scalars(select(MemberRow.profile_id)).all() == []

    document = {"name": "visits", "event": "Page Viewed", "aggregate": "count"}
    traits.update_trait(session, ctx, trait.id, document)
    traits.recompute_trait(session, ctx, trait.id)
    session.commit()
    (u1,) = session.scalars(select(MemberRow.profile_id).where(MemberRow.segment_id == regulars.id))
    entered = session.execute(select(ChangeRow.profile_id, ChangeRow.cause)).all()
    assert [tuple(e) for e in entered] == [(u1, "trait")]
