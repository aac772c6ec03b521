"""Probabilistic matching inside the identity graph: merges explained and reversible, the
review queue, and pins respected."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from oneloop.collect import consumers
from oneloop.collect.ingest import ingest
from oneloop.collect.spec import parse_batch
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.identity import probabilistic, service
from oneloop.identity.matching import load_config
from oneloop.identity.models import EdgeRow, IdentifierRow, MergeRow
from oneloop.identity.resolver import ResolveConsumer
from oneloop.identity.rules import DEFAULT_RULES
from oneloop.identity.schemas import MatchRun, PinIn, UnmergeIn
from tests.factories import make_group, make_source
from tests.identity.conftest import T0, profile_of

FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
CITIES = ["上海", "北京", "深圳", "苏州", "杭州", "成都", "武汉", "南京"]


def world(
    seed: int = 3, people: int = 400
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Web sign-ups (and for some a second visit from the app with the same phone), and for
    half of the people a CRM contact typed by a sales rep: the same name, a phone one digit
    off and another e-mail domain, so no identifier is shared with the web."""
    rng = random.Random(seed)
    calls: list[dict[str, object]] = []
    app: list[dict[str, object]] = []
    for i in range(people):
        name = rng.choice(FAMILY) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        phone = "1" + rng.choice("3589") + "".join(rng.choices("0123456789", k=9))
        city = rng.choice(CITIES)
        local = f"user{i}x{rng.randrange(1000)}"
        at = (T0 + timedelta(minutes=i)).isoformat()
        calls.append(
            {
                "type": "identify",
                "userId": f"w{i}",
                "timestamp": at,
                "messageId": f"w{i}",
                "traits": {"name": name, "phone": phone, "email": f"{local}@qq.com", "city": city},
            }
        )
        if i % 3 == 0:
            app.append(
                {
                    "type": "identify",
                    "anonymousId": f"app-{i}",
                    "timestamp": at,
                    "messageId": f"a{i}",
                    "traits": {"name": name, "phone": phone, "city": city},
                }
            )
        if i % 2 == 0:
            at_digit = rng.randrange(3, 7)  # a rep's slip inside the number
            typo = phone[:at_digit] + str((int(phone[at_digit]) + 1) % 10) + phone[at_digit + 1 :]
            calls.append(
                {
                    "type": "identify",
                    "anonymousId": f"crm-{i}",
                    "timestamp": at,
                    "messageId": f"c{i}",
                    "traits": {
                        "name": name,
                        "phone": typo,
                        "email": f"{local}@163.com",
                        "city": city,
                        "crm_id": f"C{i}",
                    },
                }
            )
    return calls, app


@pytest.fixture
def matched(engine: Engine, session: Session, ctx: Context) -> MatchRun:
    make_group(session, ctx)
    web, _ = make_source(session, ctx)
    app, _ = make_source(session, ctx, name="App")
    for source, batch in zip((web, app), world(), strict=True):
        messages, invalid = parse_batch({"batch": batch}, T0)
        ingest(session, source, messages, invalid, received_at=T0, origin="api", ref="test")
    session.commit()
    consumers.drain(session_factory(engine), [ResolveConsumer()])
    # keep one true pair apart before matching: the pin must hold
    service.pin_apart(
        session,
        ctx,
        PinIn(
            a=profile_of(session, "user_id", "w0"),
            b=profile_of(session, "crm_id", "C0"),
            reason="a steward knows better",
        ),
    )
    config = load_config(probabilistic.CONFIG_PATH)
    summary = probabilistic.run_match(session, ctx, DEFAULT_RULES, config=config)
    session.commit()
    return summary


def test_matching_merges_the_crm_contacts_into_their_web_profiles(
    session: Session, ctx: Context, matched: MatchRun
) -> None:
    assert matched.records == 600 + 134  # web and CRM records, and app records
    joined = sum(
        profile_of(session, "user_id", f"w{i}") == profile_of(session, "crm_id", f"C{i}")
        for i in range(0, 400, 2)
    )
    assert joined >= 190
    # never two people in one profile: every id in it names the same person number
    people: dict[str, set[str]] = {}
    for profile_id, value in session.execute(select(IdentifierRow.profile_id, IdentifierRow.value)):
        if found := re.fullmatch(r"(?:w|C|app-|crm-)(\d+)", value):
            people.setdefault(profile_id, set()).add(found.group(1))
    assert all(len(numbers) == 1 for numbers in people.values())
    assert profile_of(session, "user_id", "w0") != profile_of(session, "crm_id", "C0")  # pinned
    merge = session.scalars(select(MergeRow).where(MergeRow.kind == "merge")).first()
    assert merge is not None and merge.rule.startswith("probabilistic match, weight")
    assert merge.match_weight is not None and merge.match_weight >= 12
    edge = session.get(EdgeRow, merge.edge_id)
    assert edge is not None and edge.kind == "match" and edge.status == "linked"
    # and like every merge it can be undone
    profile = service.current_id(session, merge.survivor_id)
    service.unmerge(session, ctx, profile, UnmergeIn(merge_id=merge.id, reason="not him"))
    assert service.current_id(session, merge.absorbed_id) == merge.absorbed_id


def test_the_review_queue_accepts_and_rejects(
    session: Session, ctx: Context, matched: MatchRun
) -> None:
    queued = probabilistic.list_reviews(session, ctx)
    assert len(queued) == matched.queued
    if len(queued) < 2:
        pytest.skip("this world queued fewer than two doubtful pairs")
    first, second = queued[:2]
    assert first.match_weight >= second.match_weight and first.comparisons
    accepted = probabilistic.decide_review(
        session, ctx, DEFAULT_RULES, first.id, accept=True, note="ok"
    )
    assert accepted.status == "accepted"
    assert service.current_id(session, first.left_id) == service.current_id(session, first.right_id)
    probabilistic.decide_review(session, ctx, DEFAULT_RULES, second.id, accept=False, note="no")
    again = probabilistic.run_match(session, ctx, DEFAULT_RULES)
    assert service.current_id(session, second.left_id) != service.current_id(
        session, second.right_id
    )
    assert again.queued == 0


def test_a_new_contact_is_matched_as_it_arrives(
    engine: Engine, session: Session, ctx: Context, matched: MatchRun
) -> None:
    """With a trained model, the worker scores a changed profile against its blocking
    candidates at once: no batch run needed."""
    web = profile_of(session, "user_id", "w1")
    source = make_source(session, ctx, name="CRM 导出")[0]
    sign_up = next(call for call in world()[0] if call["messageId"] == "w1")
    traits = dict(sign_up["traits"])  # type: ignore[call-overload]  # a dict, as built above
    phone = str(traits["phone"])
    traits |= {
        "phone": phone[:4] + str((int(phone[4]) + 1) % 10) + phone[5:],
        "email": str(traits["email"]).replace("@qq.com", "@163.com"),
        "crm_id": "C-NEW",
    }
    late = {"type": "identify", "anonymousId": "crm-new", "traits": traits,
            "messageId": "late", "timestamp": T0.isoformat()}  # fmt: skip
    messages, invalid = parse_batch({"batch": [late]}, T0)
    ingest(session, source, messages, invalid, received_at=T0, origin="api", ref="test")
    session.commit()
    sessions = session_factory(engine)
    matcher = probabilistic.MatchConsumer()
    # the matcher waits for the resolver: no progress, no cursor move, no dead letter
    assert consumers.step(sessions, matcher).processed == 0
    consumers.drain(sessions, [ResolveConsumer(), matcher])
    session.expire_all()
    assert profile_of(session, "crm_id", "C-NEW") == service.current_id(session, web)
