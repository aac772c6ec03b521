"""The consent registry: decisions and their history, ``may_contact`` and its precedence,
defaults, late and replayed decisions, and merges. Tracking, HTTP and the CLI are in
``test_consent_api.py``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from oneloop.collect import consumers
from oneloop.collect.schemas import Source
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.core.errors import NotFound, ValidationFailed
from oneloop.governance import consent, consent_views
from oneloop.governance.consent_schemas import PURPOSE_CHANNELS, ConsentIn
from oneloop.governance.consent_tracking import ConsentConsumer, IdentityFollower
from oneloop.governance.models import ConsentHistoryRow, ConsentRow
from oneloop.identity import service as identity
from oneloop.identity.models import MergeRow
from oneloop.identity.models import ProfileRow as IdentityProfileRow
from oneloop.identity.resolver import ResolveConsumer
from oneloop.identity.schemas import UnmergeIn
from oneloop.profiles.live import IdentityChanges, ProfilesConsumer
from tests.governance.conftest import lookup, person, ticked
from tests.pipeline import Feed


def decide(session: Session, ctx: Context, profile: str, **fields: object) -> int:
    """Record a decision as the service desk would; marketing unless told otherwise."""
    data = ConsentIn.model_validate({"purpose": "marketing", **fields})
    return consent.record_consent(session, ctx, profile, data).seq


def test_a_withdrawal_is_visible_to_may_contact_at_once(
    engine: Engine, session: Session, ctx: Context, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    decide(session, ctx, profile, channel="email", status="granted")
    assert consent.may_contact(session, profile, "marketing", "email")
    decide(session, ctx, profile, channel="email", status="withdrawn")
    # the same transaction, before any commit
    assert not consent.may_contact(session, profile, "marketing", "email")
    session.commit()
    with session_factory(engine)() as other:  # the next request
        assert not consent.may_contact(other, profile, "marketing", "email")
        answer = consent.contact_decision(other, profile, "marketing", "email")
    assert answer.decided_by == "channel" and answer.record is not None
    assert answer.record.status == "withdrawn" and "withdrawn for marketing by email" in (
        answer.reason
    )


def test_history_is_kept_in_order_newest_first_and_paged(
    session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    for status in ("granted", "withdrawn", "granted"):
        clock.advance(timedelta(minutes=1))
        decide(session, ctx, profile, channel="sms", status=status, proof=f"form {status}")
    first = consent_views.history(session, ctx, profile, limit=2)
    assert [r.status for r in first.items] == ["granted", "withdrawn"]
    assert [r.is_current for r in first.items] == [True, False]
    assert first.next_cursor is not None
    rest = consent_views.history(session, ctx, profile, limit=2, cursor=first.next_cursor)
    assert [r.status for r in rest.items] == ["granted"] and rest.next_cursor is None
    assert rest.items[0].proof == "form granted" and rest.items[0].source == "api"
    assert rest.items[0].recorded_by == ctx.user_id
    with pytest.raises(ValidationFailed) as bad:
        consent_views.history(session, ctx, profile, cursor="not-a-cursor")
    assert bad.value.errors[0].loc == ("cursor",)


def test_nothing_recorded_means_no_for_every_purpose_and_says_so(
    session: Session, ctx: Context, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    state = consent_views.current_state(session, ctx, profile)
    expected = {(p, c) for p, channels in PURPOSE_CHANNELS.items() for c in channels}
    assert {(i.purpose, i.channel) for i in state.items} == expected
    assert all(i.is_default and not i.allowed and i.status is None for i in state.items)
    answer = consent.contact_decision(session, profile, "cross_border_transfer", "any")
    assert not answer.allowed and answer.decided_by == "default"
    assert "PIPL Art. 39" in answer.reason and answer.record is None
    assert all(not d.allowed for d in consent.DEFAULTS.values())


def test_the_channels_record_answers_before_the_purposes(
    session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    decide(session, ctx, profile, channel="any", status="granted")
    clock.advance(timedelta(minutes=1))
    decide(session, ctx, profile, channel="email", status="withdrawn")
    email = consent.contact_decision(session, profile, "marketing", "email")
    sms = consent.contact_decision(session, profile, "marketing", "sms")
    assert (email.allowed, email.decided_by) == (False, "channel")
    assert (sms.allowed, sms.decided_by) == (True, "purpose")
    # a later yes to marketing as a whole does not undo the e-mail no
    clock.advance(timedelta(minutes=1))
    decide(session, ctx, profile, channel="any", status="granted")
    assert not consent.may_contact(session, profile, "marketing", "email")
    # a channel's own yes, then a later no to all marketing: the no covers every channel
    clock.advance(timedelta(minutes=1))
    decide(session, ctx, profile, channel="wechat", status="granted")
    assert consent.may_contact(session, profile, "marketing", "wechat")
    clock.advance(timedelta(minutes=1))
    decide(session, ctx, profile, channel="any", status="withdrawn")
    wechat = consent.contact_decision(session, profile, "marketing", "wechat")
    assert (wechat.allowed, wechat.decided_by) == (False, "purpose")
    # a purpose without channels is asked about any channel through its any-channel record
    decide(session, ctx, profile, purpose="analytics", status="granted")
    assert consent.may_contact(session, profile, "analytics", "email")
    assert consent.may_contact(session, profile, "analytics", "any")


def test_a_late_decision_is_kept_but_does_not_override_a_newer_one(
    session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    now = clock.now()
    decide(session, ctx, profile, channel="email", status="withdrawn", given_at=now)
    late = decide(
        session,
        ctx,
        profile,
        channel="email",
        status="granted",
        given_at=now - timedelta(days=3),
    )
    assert not consent.may_contact(session, profile, "marketing", "email")
    items = consent_views.history(session, ctx, profile).items
    assert [(r.status, r.is_current) for r in items] == [("withdrawn", True), ("granted", False)]
    assert items[1].seq == late
    # the same given_at: the later arrival wins
    decide(session, ctx, profile, channel="email", status="granted", given_at=now)
    assert consent.may_contact(session, profile, "marketing", "email")


def test_may_contact_as_of_a_time(
    session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    start = clock.now()
    decide(session, ctx, profile, channel="email", status="granted")
    clock.advance(timedelta(days=1))
    decide(session, ctx, profile, channel="email", status="withdrawn")
    assert not consent.may_contact(session, profile, "marketing", "email")
    assert consent.may_contact(session, profile, "marketing", "email", at=start)
    assert not consent.may_contact(
        session, profile, "marketing", "email", at=start - timedelta(seconds=1)
    )


def test_bad_codes_are_refused_naming_the_field(session: Session, ctx: Context, feed: Feed) -> None:
    profile = person(feed, session, ctx)
    with pytest.raises(ValidationFailed) as bad:
        consent.may_contact(session, profile, "spam", "email")
    assert [e.loc for e in bad.value.errors] == [("purpose",)]
    with pytest.raises(ValidationFailed) as bad:
        consent.may_contact(session, profile, "marketing", "fax")
    assert [e.loc for e in bad.value.errors] == [("channel",)]
    with pytest.raises(ValidationFailed) as bad:
        decide(session, ctx, profile, purpose="analytics", channel="email", status="granted")
    assert [e.loc for e in bad.value.errors] == [("channel",)]
    with pytest.raises(ValidationFailed) as bad:
        decide(
            session,
            ctx,
            profile,
            status="granted",
            given_at=ctx.clock.now() + timedelta(days=1),
        )
    assert [e.loc for e in bad.value.errors] == [("given_at",)]
    with pytest.raises(NotFound):
        consent.may_contact(session, "01JNOBODY00000000000000000", "marketing", "email")


def test_a_merge_keeps_the_newest_decision_and_never_loses_a_withdrawal(
    session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    wei = person(feed, session, ctx, user="wei", phone="13800138001")
    clock.advance(timedelta(minutes=1))
    feed({"type": "identify", "anonymousId": "a-fang", "traits": {"email": "fang@163.com"}})
    fang = lookup(session, ctx, "anonymous_id", "a-fang")
    assert fang != wei
    # wei: e-mail yes (older), sms no (newer); fang: e-mail no (newer), sms yes (older)
    decide(session, ctx, wei, channel="email", status="granted")
    decide(session, ctx, fang, channel="sms", status="granted")
    clock.advance(timedelta(minutes=1))
    decide(session, ctx, fang, channel="email", status="withdrawn")
    decide(session, ctx, wei, channel="sms", status="withdrawn")
    decide(session, ctx, fang, purpose="analytics", status="granted")
    session.commit()
    clock.advance(timedelta(minutes=1))
    feed({"type": "identify", "userId": "wei", "traits": {"email": "fang@163.com"}})
    survivor = identity.current_id(session, wei)
    absorbed = fang if survivor == wei else wei
    assert identity.current_id(session, absorbed) == survivor
    for asked in (survivor, absorbed):  # an absorbed id answers for the person
        assert not consent.may_contact(session, asked, "marketing", "email")
        assert not consent.may_contact(session, asked, "marketing", "sms")
        assert consent.may_contact(session, asked, "analytics", "any")
    # the follower moved everything to the survivor: five decisions, none lost
    rows = session.scalars(select(ConsentHistoryRow)).all()
    assert {r.profile_id for r in rows} == {survivor} and len(rows) == 5
    held = session.scalars(select(ConsentRow)).all()
    assert {(r.purpose, r.channel, r.status) for r in held} == {
        ("marketing", "email", "withdrawn"),
        ("marketing", "sms", "withdrawn"),
        ("analytics", "any", "granted"),
    }
    assert {r.profile_id for r in held} == {survivor}
    history = consent_views.history(session, ctx, absorbed).items
    assert len(history) == 5 and sum(r.is_current for r in history) == 3


def test_reads_follow_a_merge_before_the_follower_has_moved_anything(
    engine: Engine, session: Session, ctx: Context, clock: FixedClock, source: Source, feed: Feed
) -> None:
    wei = person(feed, session, ctx, user="wei", phone="13800138001")
    feed({"type": "identify", "anonymousId": "a2", "traits": {"email": "f@163.com"}})
    fang = lookup(session, ctx, "anonymous_id", "a2")
    # whichever survives, its own rows allow one channel the other's newer no forbids
    decide(session, ctx, wei, channel="email", status="granted")
    decide(session, ctx, fang, channel="sms", status="granted")
    clock.advance(timedelta(minutes=1))
    decide(session, ctx, fang, channel="email", status="withdrawn")
    decide(session, ctx, wei, channel="sms", status="withdrawn")
    session.commit()
    # the merge, resolved and projected, but not yet followed by consent's task
    ticked(
        engine,
        session,
        source,
        clock,
        {"type": "identify", "userId": "wei", "traits": {"email": "f@163.com"}},
        consumers_=[ResolveConsumer(), ProfilesConsumer(clock=clock), ConsentConsumer(clock)],
        tasks=[IdentityChanges(clock=clock)],
    )
    survivor = identity.current_id(session, wei)
    absorbed = fang if survivor == wei else wei
    held = session.scalars(select(ConsentRow.profile_id)).all()
    assert sorted(set(held)) == sorted([absorbed, survivor])  # not moved yet
    assert consent.unfollowed(session, survivor) == [absorbed]
    assert not consent.may_contact(session, survivor, "marketing", "email")
    assert not consent.may_contact(session, survivor, "marketing", "sms")
    assert len(consent_views.history(session, ctx, survivor).items) == 4
    # once followed, the same answer from the survivor's own rows
    follower = IdentityFollower(clock=clock)
    assert consumers.run_task(session_factory(engine), follower, clock) > 0
    session.expire_all()
    assert consent.unfollowed(session, survivor) == []
    assert set(session.scalars(select(ConsentRow.profile_id)).all()) == {survivor}
    assert not consent.may_contact(session, survivor, "marketing", "email")
    assert not consent.may_contact(session, survivor, "marketing", "sms")
    absorbed_row = session.get(IdentityProfileRow, absorbed)
    assert absorbed_row is not None and absorbed_row.merged_into == survivor


def test_an_unmerge_gives_each_part_back_the_decisions_its_events_made(
    session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    feed({"type": "identify", "userId": "lei", "traits": {"phone": "13800138001"}})
    feed({"type": "identify", "anonymousId": "a2", "traits": {"email": "family@163.com"}})
    lei = lookup(session, ctx, "user_id", "north:lei")
    fang = lookup(session, ctx, "anonymous_id", "a2")
    yes = {"purpose": "marketing", "channel": "email", "status": "granted"}
    feed({"type": "track", "userId": "lei", "event": "Consent Updated", "properties": yes})
    clock.advance(timedelta(minutes=1))
    no = {**yes, "status": "withdrawn"}
    feed({"type": "track", "anonymousId": "a2", "event": "Consent Updated", "properties": no})
    decide(session, ctx, fang, purpose="analytics", status="granted")
    session.commit()
    clock.advance(timedelta(minutes=1))
    both = {"phone": "13800138001", "email": "family@163.com"}
    feed({"type": "identify", "anonymousId": "a3", "traits": both})
    survivor = identity.current_id(session, lei)
    assert identity.current_id(session, fang) == survivor
    assert not consent.may_contact(session, survivor, "marketing", "email")
    assert consent.may_contact(session, survivor, "analytics", "any")
    merge = session.scalars(select(MergeRow).where(MergeRow.kind == "merge")).one()
    identity.unmerge(session, ctx, survivor, UnmergeIn(merge_id=merge.id, reason="brothers"))
    session.commit()
    feed()  # the worker's next round: the change feed reaches consent
    assert identity.current_id(session, lei) == lei and identity.current_id(session, fang) == fang
    # each event's decision went back with its event; the API's with the profile it named
    assert consent.may_contact(session, lei, "marketing", "email")
    assert not consent.may_contact(session, lei, "analytics", "any")
    assert not consent.may_contact(session, fang, "marketing", "email")
    assert consent.may_contact(session, fang, "analytics", "any")
    h = ConsentHistoryRow
    owners = {
        (p, s): owner for p, s, owner in session.execute(select(h.purpose, h.status, h.profile_id))
    }
    assert owners == {
        ("marketing", "granted"): lei,
        ("marketing", "withdrawn"): fang,
        ("analytics", "granted"): fang,
    }
