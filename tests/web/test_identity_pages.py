"""Identity pages through the app: the stewards' review queue (masked pairs, weights, accept,
reject, paging, refusals) and a customer's merge history with unmerge after a confirmation;
another unit sees none of it. On the suite's fresh databases."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.governance import users
from oneloop.governance.models import AuditRow
from oneloop.governance.schemas import RoleIn
from oneloop.identity import service as identity
from oneloop.identity.models import MergeRow, PinRow, ReviewRow
from oneloop.web import identity_pages
from tests.factories import PASSWORD, make_user
from tests.governance.conftest import lookup
from tests.pipeline import Feed
from tests.web.conftest import csrf_of, sign_in

PHONE = "13800138000"
MASKED = "138****8000"
OTHER = "13800138001"
HOSTILE = "<script>alert(1)</script>"
STEWARD = ["identity.read", "identity.match", "identity.unmerge", "profiles.read"]


def _client(
    app: FastAPI, session: Session, ctx: Context, role: str, bu: str = "north"
) -> TestClient:
    email = f"{role}.{bu}@example.org"
    if not users.user_exists(session, ctx, email):
        if role == "steward" and users.role_permissions(session, "steward") is None:
            users.create_role(
                session,
                ctx,
                RoleIn(
                    code="steward", name_zh="数据管家", name_en="Data steward", permissions=STEWARD
                ),
            )
            session.commit()
        make_user(session, ctx, email, bu=bu, role=role)
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    return sign_in(client, email, PASSWORD)


def _token(client: TestClient) -> str:
    return csrf_of(client.get("/").text)


def _review(
    session: Session, ctx: Context, a: str, b: str, weight: float = 8.4, level: str = "same name"
) -> str:
    """A pair the matcher queued, as ``probabilistic._queue`` writes it."""
    left, right = sorted((a, b))
    row = ReviewRow(
        id=f"01REVIEW{left[-6:]}{right[-6:]}{int(weight * 10):04d}"[:26].ljust(26, "0"),
        left_id=left,
        right_id=right,
        match_weight=weight,
        match_probability=0.93,
        comparisons={
            "name": {"level": level, "match_weight": 6.2},
            "phone": {"level": "phone one digit off", "match_weight": 3.1},
            "city": {"level": "else", "match_weight": -1.5},
        },
        model_version="test-1",
        status="open",
        created_at=ctx.clock.now(),
    )
    session.add(row)
    session.commit()
    return row.id


@pytest.fixture
def pair(feed: Feed, session: Session, ctx: Context) -> tuple[str, str]:
    """Two profiles of north that no identifier joins: a web sign-up and a CRM contact."""
    feed(
        {"type": "identify", "userId": "u1", "traits": {"name": "张伟", "phone": PHONE}},
        {"type": "identify", "anonymousId": "crm-2", "traits": {"name": "张伟", "phone": OTHER}},
    )
    return lookup(session, ctx, "user_id", "north:u1"), lookup(
        session, ctx, "anonymous_id", "crm-2"
    )


@pytest.fixture
def merged(feed: Feed, session: Session, ctx: Context) -> tuple[str, str]:
    """A customer made of two profiles: a phone typed into a form joined a visitor to him.
    Returns (the profile now, the absorbed one)."""
    feed({"type": "identify", "userId": "u1", "traits": {"name": "张伟", "phone": PHONE}})
    feed({"type": "identify", "anonymousId": "a2", "traits": {"email": "zw@example.com"}})
    before = lookup(session, ctx, "user_id", "north:u1"), lookup(session, ctx, "anonymous_id", "a2")
    feed({"type": "identify", "anonymousId": "a2", "traits": {"phone": PHONE}})
    now = lookup(session, ctx, "user_id", "north:u1")
    assert now == lookup(session, ctx, "anonymous_id", "a2")
    return now, before[1] if before[0] == now else before[0]


# --- the review queue ---------------------------------------------------------------------------


def test_the_queue_shows_the_pair_masked_with_each_comparisons_weight(
    app: FastAPI, session: Session, ctx: Context, pair: tuple[str, str]
) -> None:
    review = _review(session, ctx, *pair)
    steward = _client(app, session, ctx, "steward")
    page = steward.get("/identity/reviews")
    assert page.status_code == 200 and 'href="/identity/reviews"' in page.text  # in the menu
    card = page.text.split(f'id="review-{review}"')[1]
    assert pair[0] in card and pair[1] in card
    assert MASKED in card and PHONE not in page.text and "张伟" not in page.text
    assert re.findall(r'data-comparison="(\w+)"', card) == ["name", "phone", "city"]  # strongest
    assert "+6.20" in card and "-1.50" in card and "phone one digit off" in card
    assert f'action="/identity/reviews/{review}"' in card
    reads = session.scalars(select(AuditRow).where(AuditRow.action == "pii.read")).all()
    assert reads == []  # nothing clear was shown, so nothing to audit
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert all("src=" in s for s in scripts) and not re.search(r"\son[a-z]+=", page.text)
    zh = steward.get("/identity/reviews?lang=zh-CN").text
    assert "身份审核" in zh and "接受：同一人" in zh
    marketer = _client(app, session, ctx, "marketer").get("/")
    assert 'href="/identity/reviews"' not in marketer.text  # a steward's page


def test_accepting_merges_the_pair_and_rejecting_pins_it_apart(
    app: FastAPI, feed: Feed, session: Session, ctx: Context, pair: tuple[str, str]
) -> None:
    feed({"type": "identify", "userId": "u3", "traits": {"name": "李娜"}})
    third = lookup(session, ctx, "user_id", "north:u3")
    accept = _review(session, ctx, *pair, weight=9.0)
    reject = _review(session, ctx, pair[0], third, weight=7.0)
    steward = _client(app, session, ctx, "steward")
    token = _token(steward)
    done = steward.post(
        f"/identity/reviews/{accept}",
        data={"csrf_token": token, "decision": "accept", "note": "same ID card",
              "next": "//evil.example/"},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/identity/reviews"
    session.expire_all()
    assert identity.current_id(session, pair[0]) == identity.current_id(session, pair[1])
    # two accounts (two user ids) are never one person: the graph refuses, nothing is kept
    refused = steward.post(
        f"/identity/reviews/{reject}", data={"csrf_token": token, "decision": "accept"}
    )
    assert refused.status_code == 409 and "the graph refused this merge" in refused.text
    session.expire_all()
    assert session.get(ReviewRow, reject).status == "open"  # type: ignore[union-attr]
    assert identity.current_id(session, third) == third
    kept = steward.post(
        f"/identity/reviews/{reject}",
        data={"csrf_token": token, "decision": "reject", "note": "two people"},
        follow_redirects=False,
    )
    assert kept.status_code == 303
    session.expire_all()
    assert session.get(ReviewRow, reject).status == "rejected"  # type: ignore[union-attr]
    assert session.scalars(select(PinRow)).all()
    actions = set(session.scalars(select(AuditRow.action)))
    assert {"identity.review_accepted", "identity.review_rejected"} <= actions
    again = steward.post(
        f"/identity/reviews/{accept}", data={"csrf_token": token, "decision": "reject"}
    )
    assert again.status_code == 409 and "already accepted" in again.text
    # a merged pair touches the unit through one profile only now: the group sees it decided
    group = _client(app, session, ctx, "group_admin", "galaxy")
    decided = group.get("/identity/reviews?status=accepted")
    assert f'id="review-{accept}"' in decided.text and "same ID card" in decided.text


def test_a_bad_decision_a_missing_token_and_a_reader_are_refused(
    app: FastAPI, session: Session, ctx: Context, pair: tuple[str, str]
) -> None:
    review = _review(session, ctx, *pair)
    steward = _client(app, session, ctx, "steward")
    token = _token(steward)
    bad = steward.post(f"/identity/reviews/{review}", data={"csrf_token": token, "decision": "x"})
    assert bad.status_code == 422 and "Choose accept or reject." in bad.text
    long = steward.post(
        f"/identity/reviews/{review}",
        data={"csrf_token": token, "decision": "accept", "note": "x" * 501},
    )
    assert long.status_code == 422
    assert (
        steward.post(f"/identity/reviews/{review}", data={"decision": "accept"}).status_code == 403
    )
    marketer = _client(app, session, ctx, "marketer")
    page = marketer.get("/identity/reviews")  # identity.read: may look, not decide
    assert page.status_code == 200 and f'id="review-{review}"' in page.text
    assert 'name="decision"' not in page.text
    refused = marketer.post(
        f"/identity/reviews/{review}", data={"csrf_token": _token(marketer), "decision": "accept"}
    )
    assert refused.status_code == 403
    session.expire_all()
    assert session.get(ReviewRow, review).status == "open"  # type: ignore[union-attr]


def test_another_unit_neither_sees_nor_decides_the_pair(
    app: FastAPI, session: Session, ctx: Context, pair: tuple[str, str]
) -> None:
    review = _review(session, ctx, *pair, level=HOSTILE)
    south = _client(app, session, ctx, "steward", "south")
    page = south.get("/identity/reviews")
    assert page.status_code == 200 and review not in page.text and 'id="no-reviews"' in page.text
    refused = south.post(
        f"/identity/reviews/{review}", data={"csrf_token": _token(south), "decision": "accept"}
    )
    assert refused.status_code == 404
    north = _client(app, session, ctx, "steward").get("/identity/reviews")
    assert HOSTILE not in north.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in north.text


def test_the_queue_pages_by_cursor_and_refuses_a_made_up_one(
    app: FastAPI,
    feed: Feed,
    session: Session,
    ctx: Context,
    pair: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed({"type": "identify", "userId": "u3", "traits": {"name": "李娜"}})
    third = lookup(session, ctx, "user_id", "north:u3")
    made = [
        _review(session, ctx, *pair, weight=9.0),
        _review(session, ctx, pair[0], third, weight=8.0),
        _review(session, ctx, pair[1], third, weight=7.0),
    ]
    monkeypatch.setattr(identity_pages, "REVIEW_PAGE", 2)
    steward = _client(app, session, ctx, "steward")
    first = steward.get("/identity/reviews")
    assert re.findall(r'data-review="(\w+)"', first.text) == made[:2]
    nxt = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert nxt, "the first page links to the next"
    second = steward.get(nxt.group(1).replace("&amp;", "&"))
    assert re.findall(r'data-review="(\w+)"', second.text) == made[2:]
    assert 'rel="prev"' in second.text
    assert steward.get("/identity/reviews?cursor=nonsense").status_code == 422


# --- merge history and unmerge -----------------------------------------------------------------


def test_the_merge_history_says_which_identifier_joined_them_masked(
    app: FastAPI, session: Session, ctx: Context, merged: tuple[str, str]
) -> None:
    profile, absorbed = merged
    marketer = _client(app, session, ctx, "marketer")
    view = marketer.get(f"/customers/{profile}")
    assert f'href="/customers/{profile}/identity"' in view.text  # the 360 view links to it
    page = marketer.get(f"/customers/{profile}/identity")
    assert page.status_code == 200
    row = page.text.split('data-kind="merge"')[1].split("</tr>")[0]
    assert absorbed in row and "phone" in row and MASKED in row and PHONE not in page.text
    assert "/unmerge" not in page.text  # a marketer cannot unmerge
    old = marketer.get(f"/customers/{absorbed}/identity")
    assert old.status_code == 200 and "was merged into this customer" in old.text
    south = _client(app, session, ctx, "marketer", "south")
    assert south.get(f"/customers/{profile}/identity").status_code == 404


def test_unmerge_asks_for_a_reason_then_splits_and_audits(
    app: FastAPI, session: Session, ctx: Context, merged: tuple[str, str]
) -> None:
    profile, absorbed = merged
    merge = session.scalars(select(MergeRow).where(MergeRow.kind == "merge")).one()
    steward = _client(app, session, ctx, "steward")
    page = steward.get(f"/customers/{profile}/identity")
    path = f"/customers/{profile}/identity/merges/{merge.id}/unmerge"
    assert f'href="{path}"' in page.text
    confirm = steward.get(path)
    assert confirm.status_code == 200 and f'action="{path}"' in confirm.text
    assert absorbed in confirm.text and 'id="f-reason"' in confirm.text
    token = csrf_of(confirm.text)
    missing = steward.post(path, data={"csrf_token": token, "reason": ""})
    assert missing.status_code == 422 and 'id="f-reason-error"' in missing.text
    session.expire_all()
    assert identity.current_id(session, absorbed) == profile  # nothing happened yet
    done = steward.post(
        path, data={"csrf_token": token, "reason": "two brothers"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].startswith(
        f"/customers/{profile}/identity"
    )
    session.expire_all()
    assert identity.current_id(session, absorbed) == absorbed
    entry = session.scalars(select(AuditRow).where(AuditRow.action == "identity.unmerged")).one()
    assert entry.object_id == profile and "two brothers" not in str(entry.detail)
    history = steward.get(f"/customers/{profile}/identity").text
    assert "two brothers" in history and f'href="{path}"' not in history  # undone, once
    again = steward.post(path, data={"csrf_token": token, "reason": "again"})
    assert again.status_code == 409
    marketer = _client(app, session, ctx, "marketer")
    assert marketer.get(path).status_code == 403
    assert steward.get(f"/customers/{profile}/identity/merges/nope/unmerge").status_code == 404
