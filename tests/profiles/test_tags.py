"""Tags: categories, by hand (who, when, why), from a CSV of identifiers, by rule; and the
seed's story end to end: summit, whitepaper and pricing page make a lead 高意向 and put it in
the segment sales follows."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.governance import audit
from oneloop.profiles import score_models, service
from oneloop.profiles.models import ProfileRow, TagHistoryRow
from oneloop.profiles.schemas import TagCategoryIn, TagIn
from oneloop.segments import service as segments
from oneloop.segments.models import ChangeRow
from oneloop.segments.schemas import SegmentIn
from tests.conftest import ADMIN
from tests.pipeline import Feed


def test_manual_tags_with_reason_history_and_errors(
    client: TestClient, session: Session, feed: Feed
) -> None:
    feed({"type": "identify", "userId": "u1", "traits": {"phone": "13800138000"}})
    profile = session.scalars(select(ProfileRow.id)).one()
    made = client.post(
        "/api/v1/tag-categories",
        json={"code": "interest", "name_zh": "兴趣", "name_en": "Interest"},
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    again = client.post(
        "/api/v1/tag-categories",
        json={"code": "interest", "name_zh": "兴趣", "name_en": "Interest"},
        headers=ADMIN,
    )
    assert again.status_code == 409
    tag = client.post(
        "/api/v1/tags",
        json={"code": "booth", "category": "interest", "name_zh": "展位面谈", "name_en": "Booth"},
        headers=ADMIN,
    ).json()
    unknown = client.post(
        "/api/v1/tags",
        json={"code": "x", "category": "nope", "name_zh": "x", "name_en": "x"},
        headers=ADMIN,
    )
    assert unknown.status_code == 422 and "category" in unknown.text

    put = client.put(
        f"/api/v1/profiles/{profile}/tags/{tag['id']}",
        json={"reason": "met at the Shanghai summit"},
        headers=ADMIN,
    )
    assert put.status_code == 201 and put.json() == {"created": True}
    shown = client.get(f"/api/v1/profiles/{profile}/tags", headers=ADMIN).json()
    assert [(t["code"], t["source"], t["reason"]) for t in shown] == [
        ("booth", "manual", "met at the Shanghai summit")
    ]
    no_reason = client.put(f"/api/v1/profiles/{profile}/tags/{tag['id']}", json={}, headers=ADMIN)
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    removed = client.delete(
        f"/api/v1/profiles/{profile}/tags/{tag['id']}", params={"reason": "wrong"}, headers=ADMIN
    )
    assert removed.status_code == 204
    actions = session.scalars(select(TagHistoryRow.action).order_by(TagHistoryRow.id)).all()
    assert actions == ["set", "removed"]


def test_bulk_tag_from_csv_counts_every_row(
    client: TestClient, session: Session, ctx: Context, feed: Feed
) -> None:
    feed(
        {"type": "identify", "userId": "u1", "traits": {"phone": "13800138000"}},
        {"type": "identify", "userId": "u2", "traits": {"email": "wang.fang@163.com"}},
    )
    service.create_category(session, ctx, TagCategoryIn(code="tier", name_zh="分层", name_en="T"))
    tag = service.create_tag(
        session, ctx, TagIn(code="vip", category="tier", name_zh="贵宾", name_en="VIP")
    )
    session.commit()
    text = (
        "type,value\n"
        "phone,+86 138-0013-8000\n"
        "email,WANG.FANG@163.com\n"
        "phone,13900000000\n"  # nobody
        "phone,12345\n"  # not a phone
        "=cmd,x\n"  # not a type
    )
    result = client.post(
        f"/api/v1/tags/{tag.id}/bulk",
        params={"reason": "VIP list 2026"},
        content=text.encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert result.status_code == 200, result.text
    body = result.json()
    assert (body["rows"], body["tagged"], body["not_found"]) == (5, 2, 1)
    assert [bad["line"] for bad in body["invalid"]] == [5, 6]
    headless = client.post(
        f"/api/v1/tags/{tag.id}/bulk",
        params={"reason": "x"},
        content=b"13800138000\n",
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert headless.status_code == 422 and "type,value" in headless.text


def test_rule_tags_are_checked_and_not_set_by_hand(
    client: TestClient, session: Session, ctx: Context, feed: Feed
) -> None:
    service.create_category(session, ctx, TagCategoryIn(code="life", name_zh="生命", name_en="L"))
    session.commit()
    bad = client.post(
        "/api/v1/tags",
        json={
            "code": "fan",
            "category": "life",
            "name_zh": "粉丝",
            "name_en": "Fan",
            "rule": {"and": [{"tag": "no_such_tag"}]},
        },
        headers=ADMIN,
    )
    assert bad.status_code == 422 and "rule.and[0].tag" in bad.text
    rule_tag = client.post(
        "/api/v1/tags",
        json={
            "code": "buyer",
            "category": "life",
            "name_zh": "买家",
            "name_en": "Buyer",
            "rule": {"event": "Order Completed"},
        },
        headers=ADMIN,
    ).json()
    feed({"type": "track", "userId": "u1", "event": "Order Completed", "properties": {}})
    profile = session.scalars(select(ProfileRow.id)).one()
    carried = client.get(f"/api/v1/profiles/{profile}/tags", headers=ADMIN).json()
    assert [(t["code"], t["source"]) for t in carried] == [("buyer", "rule")]
    by_hand = client.put(
        f"/api/v1/profiles/{profile}/tags/{rule_tag['id']}", json={"reason": "x"}, headers=ADMIN
    )
    assert by_hand.status_code == 409


def test_seed_story_high_intent_enters_the_sales_segment(
    client: TestClient, session: Session, ctx: Context, feed: Feed
) -> None:
    """Registered for the summit, checked in, downloaded the whitepaper, viewed pricing:
    tagged 高意向 and in the segment sales follows, with the points that explain it."""
    service.create_category(session, ctx, TagCategoryIn(code="intent", name_zh="意向", name_en="I"))
    service.create_tag(
        session,
        ctx,
        TagIn(code="high_intent", category="intent", name_zh="高意向", name_en="High intent"),
    )
    score_models.create_model(
        session,
        ctx,
        {
            "code": "intent",
            "name_zh": "购买意向",
            "name_en": "Purchase intent",
            "half_life_days": 30,
            "rules": [
                {"id": "summit", "event": "Summit Checked In", "points": 20},
                {"id": "whitepaper", "event": "Whitepaper Downloaded", "points": 10},
                {
                    "id": "pricing",
                    "event": "Page Viewed",
                    "where": [{"property": "path", "op": "eq", "value": "/pricing"}],
                    "points": 15,
                    "cap": {"times": 1, "per": "day"},
                },
            ],
            "thresholds": [{"min": 40, "tag": "high_intent"}],
        },
    )
    followup = segments.create_segment(
        session,
        ctx,
        SegmentIn(code="followup", name="高意向待跟进 · Follow up", rule={"tag": "high_intent"}),
    )
    session.commit()
    visitor = {"anonymousId": "v1"}
    feed({"type": "track", **visitor, "event": "Summit Registered", "properties": {}})
    feed({"type": "track", **visitor, "event": "Summit Checked In", "properties": {}})
    feed({"type": "track", **visitor, "event": "Whitepaper Downloaded", "properties": {}})
    profile = session.scalars(select(ProfileRow.id)).one()
    assert session.scalars(select(ChangeRow)).all() == []  # 30 points: not yet
    feed({"type": "page", **visitor, "name": "Pricing", "properties": {"path": "/pricing"}})

    view = client.get(f"/api/v1/profiles/{profile}", headers=ADMIN).json()
    assert [t["name_zh"] for t in view["tags"]] == ["高意向"]
    assert [s["code"] for s in view["segments"]] == ["followup"]
    entered = session.scalars(select(ChangeRow)).one()
    assert (entered.segment_id, entered.profile_id, entered.kind) == (followup.id, profile, "enter")
    points = client.get(f"/api/v1/profiles/{profile}/scores", headers=ADMIN).json()
    assert [h["points"] for h in points["history"]] == [15, 10, 20]  # newest first
    assert round(points["history"][0]["value_after"]) == 45


def test_tag_changes_are_audited(session: Session, ctx: Context, feed: Feed) -> None:
    service.create_category(session, ctx, TagCategoryIn(code="tier", name_zh="分层", name_en="T"))
    tag = service.create_tag(
        session, ctx, TagIn(code="vip", category="tier", name_zh="贵宾", name_en="VIP")
    )
    service.delete_tag(session, ctx, tag.id)
    entries = audit.list_entries(session, ctx, object_id=tag.id).items
    assert [(e.action, e.detail) for e in entries] == [
        ("tag.deleted", {"holders": 0}),
        ("tag.created", None),
    ]
