"""The deterministic resolver: links, limits, shared identifiers, history, order independence."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.identity.models import EdgeRow, EventProfileRow, MergeRow, ProfileRow
from tests.identity.conftest import ev, partition, profile_of, run


def test_a_login_links_the_cookie_to_the_account_and_its_email(session: Session) -> None:
    run(session, [ev(1, ("anonymous_id", "a1")), ev(2, ("anonymous_id", "a2"))])
    assert len(partition(session)) == 2
    changes = run(
        session,
        [ev(3, ("user_id", "u1"), ("anonymous_id", "a1"), ("email", " Zhang.Wei@QQ.com "))],
    )
    assert changes.events == 1
    assert partition(session) == {
        frozenset({"user_id:u1", "anonymous_id:a1", "email:zhang.wei@qq.com"}),
        frozenset({"anonymous_id:a2"}),
    }
    # a second cookie of the same person: a merge of two existing profiles, explained
    run(session, [ev(4, ("anonymous_id", "a2"), ("email", "zhang.wei@qq.com"))])
    assert len(partition(session)) == 1
    merge = session.scalars(select(MergeRow)).one()
    assert merge.kind == "merge"
    assert merge.message_id == "m4"
    assert "anonymous_id + email" in merge.rule
    absorbed = session.get(ProfileRow, merge.absorbed_id)
    assert absorbed is not None and absorbed.merged_into == merge.survivor_id
    profiles = set(session.scalars(select(EventProfileRow.profile_id)))
    assert profiles == {merge.survivor_id}


def test_the_same_phone_in_every_format_is_one_identifier(session: Session) -> None:
    formats = ["138 0013 8000", "+86 138-0013-8000", "8613800138000", "13800138000"]
    run(session, [ev(i, ("phone", f), ("anonymous_id", f"a{i}")) for i, f in enumerate(formats)])
    assert partition(session) == {
        frozenset({"phone:+8613800138000", *(f"anonymous_id:a{i}" for i in range(4))})
    }


def test_a_shared_switchboard_does_not_merge_fifty_people(session: Session) -> None:
    people = [
        ev(i, ("crm_id", f"C{i}"), ("email", f"p{i}@corp.cn"), ("phone", "021-6888 0000"))
        for i in range(50)
    ]
    run(session, people[:10])
    run(session, people[10:])
    groups = partition(session)
    assert len(groups) == 51  # fifty people and the switchboard on its own
    assert frozenset({"phone:+862168880000"}) in groups
    statuses = dict(
        session.execute(select(EdgeRow.status, func.count()).group_by(EdgeRow.status)).all()
    )
    assert statuses == {"linked": 50, "shared": 100}


def test_a_limit_keeps_two_accounts_apart_and_records_the_conflict(session: Session) -> None:
    run(
        session,
        [
            ev(1, ("user_id", "alice"), ("device_id", "D1")),
            ev(2, ("user_id", "bob"), ("device_id", "D1")),
        ],
    )
    groups = partition(session)
    # D1 was seen with two user ids: a family computer, which links nobody
    assert {frozenset({"user_id:alice"}), frozenset({"user_id:bob"})} <= groups
    assert session.scalars(select(EdgeRow.status)).all() == ["shared", "shared"]


def test_limits_refuse_a_third_identifier_of_a_unique_type(session: Session) -> None:
    run(session, [ev(1, ("user_id", "u1"), ("email", "x@a.cn"))])
    run(session, [ev(2, ("crm_id", "C1"), ("email", "y@a.cn"))])
    run(session, [ev(3, ("crm_id", "C2"), ("email", "z@a.cn"))])
    # y and z each link to u1 through a phone; the profile may hold one crm_id only
    run(session, [ev(4, ("email", "x@a.cn"), ("email", "y@a.cn"))])
    run(session, [ev(5, ("email", "x@a.cn"), ("email", "z@a.cn"))])
    conflicts = session.scalars(select(EdgeRow).where(EdgeRow.status == "conflict")).all()
    assert len(conflicts) == 1 and "crm_id" in (conflicts[0].reason or "")
    assert profile_of(session, "crm_id", "C1") == profile_of(session, "user_id", "u1")
    assert profile_of(session, "crm_id", "C2") != profile_of(session, "user_id", "u1")


def test_each_unit_has_its_own_user_ids(session: Session) -> None:
    """Appliances' user 1001 and industrial's user 1001 are two accounts of two systems; one
    person with an account in each unit links through the phone both know."""
    other = "01JBU" + "0" * 16 + "OTHER"  # another unit's id (26 characters)
    run(
        session,
        [
            ev(1, ("user_id", "1001"), ("email", "a@x.cn")),
            ev(2, ("user_id", "1001"), ("email", "b@y.cn"), bu=other),
            ev(3, ("user_id", "2002"), ("phone", "13800138000")),
            ev(4, ("user_id", "7"), ("phone", "13800138000"), bu=other),
        ],
    )
    assert profile_of(session, "email", "a@x.cn") != profile_of(session, "email", "b@y.cn")
    assert profile_of(session, "user_id", f"{other}:7") == profile_of(session, "user_id", "2002")


def test_a_foreign_number_is_read_in_the_senders_region(session: Session) -> None:
    """07858 244833 is no number in China; from an en-GB browser it is a UK mobile."""
    event = ev(1, ("phone", "07858 244833"), ("anonymous_id", "a1"))
    uk = dataclasses.replace(event, context={"locale": "en-GB"})
    changes = run(session, [event, dataclasses.replace(uk, seq=2, message_id="m2")])
    assert {"phone:+447858244833", "anonymous_id:a1"} in partition(session)
    assert sum(changes.rejected.values()) == 1  # the one without a locale


def test_a_national_number_is_read_in_the_senders_region_first(session: Session) -> None:
    """0157 4189 4279 from a de-DE browser is a German mobile, though it would also pass as
    +86 157 4189 4279: a trunk 0 is how one writes a number at home. It meets the same
    customer's +49 spelling; a Chinese mobile from the same browser stays Chinese."""
    german = {"locale": "de-DE"}
    events = [
        dataclasses.replace(
            ev(1, ("phone", "0157 4189 4279"), ("anonymous_id", "a1")), context=german
        ),
        ev(2, ("phone", "+49 157 41894279"), ("email", "anna@example.de")),
        dataclasses.replace(
            ev(3, ("phone", "138 0013 8000"), ("anonymous_id", "a3")), context=german
        ),
    ]
    run(session, events)
    parts = partition(session)
    assert {"phone:+4915741894279", "anonymous_id:a1", "email:anna@example.de"} in parts
    assert {"phone:+8613800138000", "anonymous_id:a3"} in parts


def test_blocked_values_are_no_identifiers(session: Session) -> None:
    run(
        session,
        [ev(i, ("email", "TEST@test.com"), ("anonymous_id", f"a{i}")) for i in range(5)],
    )
    assert len(partition(session)) == 5


def test_resolving_the_same_events_again_changes_nothing(session: Session) -> None:
    events = [ev(1, ("user_id", "u"), ("anonymous_id", "a")), ev(2, ("anonymous_id", "a"))]
    run(session, events)
    before = partition(session)
    changes = run(session, events)
    assert changes.events == 0 and changes.new_edges == 0
    assert partition(session) == before


UNIVERSE = (
    [("user_id", f"u{i}") for i in range(3)]
    + [("crm_id", f"C{i}") for i in range(2)]
    + [("email", f"e{i}@x.cn") for i in range(4)]
    + [("phone", f"1380013800{i}") for i in range(3)]
    + [("anonymous_id", f"a{i}") for i in range(6)]
)


@st.composite
def event_sets(draw: st.DrawFn) -> list[list[tuple[str, str]]]:
    count = draw(st.integers(min_value=1, max_value=14))
    return [
        draw(st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=4, unique=True))
        for _ in range(count)
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=event_sets(), seed=st.integers(0, 10_000), batch=st.integers(1, 5))
def test_the_partition_does_not_depend_on_arrival_order_or_batching(
    session: Session, events: list[list[tuple[str, str]]], seed: int, batch: int
) -> None:
    logged = [ev(i + 1, *ids, at=i) for i, ids in enumerate(events)]
    with session.begin_nested() as first:
        run(session, logged)
        expected = partition(session)
        first.rollback()
    shuffled = logged[:]
    random.Random(seed).shuffle(shuffled)
    with session.begin_nested() as second:
        for start in range(0, len(shuffled), batch):
            run(session, shuffled[start : start + batch])
        assert partition(session) == expected
        second.rollback()
