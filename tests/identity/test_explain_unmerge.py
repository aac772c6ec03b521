"""Every merge is explained, and every merge can be undone."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.errors import Conflict, NotFound
from oneloop.governance import audit
from oneloop.identity import service
from oneloop.identity.models import EdgeRow, EventProfileRow, MergeRow, ProfileRow
from oneloop.identity.schemas import IdentifierRef, UnmergeIn
from tests.identity.conftest import BU, ev, partition, profile_of, run


def brothers(session: Session) -> tuple[str, str]:
    """Lei has an account and a phone; his brother browses without one and typed the family
    e-mail into a form; then a form carries Lei's phone with the family e-mail."""
    run(
        session,
        [
            ev(1, ("user_id", "wang.lei"), ("anonymous_id", "a1"), ("phone", "13800138001")),
            ev(2, ("anonymous_id", "a2")),
            ev(3, ("anonymous_id", "a2"), ("email", "wang.family@163.com")),
            ev(4, ("anonymous_id", "a2")),
        ],
    )
    before = profile_of(session, "user_id", "wang.lei"), profile_of(session, "anonymous_id", "a2")
    run(session, [ev(5, ("phone", "138 0013 8001"), ("email", "WANG.FAMILY@163.com"))])
    return before


def test_the_explanation_names_the_identifier_the_event_and_the_rule(
    session: Session, ctx: Context
) -> None:
    lei, fang = brothers(session)
    merged = profile_of(session, "user_id", "wang.lei")
    assert merged == profile_of(session, "anonymous_id", "a2")
    absorbed = fang if merged == lei else lei
    explained = service.explain(session, ctx, absorbed)  # the old id still finds the person
    assert explained.profile_id == merged and explained.requested_id == absorbed
    assert explained.absorbed_ids == [absorbed]
    merge = next(m for m in explained.history if m.kind == "merge")
    assert merge.message_id == "m5" and merge.absorbed_id == absorbed
    assert "email + phone" in merge.rule
    values = {i.value for i in explained.identifiers}
    assert {"+8613800138001", "wang.family@163.com", f"{BU}:wang.lei", "a2"} <= values
    assert {link.status for link in explained.links} == {"linked"}


def test_undoing_a_merge_restores_both_profiles_and_their_events(
    session: Session, ctx: Context
) -> None:
    lei, fang = brothers(session)
    merged = profile_of(session, "user_id", "wang.lei")
    merge = session.scalars(select(MergeRow).where(MergeRow.kind == "merge")).one()
    out = service.unmerge(
        session, ctx, merged, UnmergeIn(merge_id=merge.id, reason="two brothers, one family mail")
    )
    assert out.cut_links >= 1
    assert profile_of(session, "user_id", "wang.lei") == lei
    assert profile_of(session, "anonymous_id", "a2") == fang
    assert session.get(ProfileRow, merge.absorbed_id).merged_into is None  # type: ignore[union-attr]
    events = dict(session.execute(select(EventProfileRow.seq, EventProfileRow.profile_id)).all())
    assert events[1] == lei and events[2] == fang and events[4] == fang
    assert session.get(MergeRow, merge.id).undone_by == ctx.user_id  # type: ignore[union-attr]
    # the same evidence again changes nothing: the links are cut, the profiles pinned apart
    run(session, [ev(6, ("phone", "13800138001"), ("email", "wang.family@163.com"))])
    assert profile_of(session, "user_id", "wang.lei") != profile_of(session, "anonymous_id", "a2")
    with_pytest_raises_conflict(
        lambda: service.unmerge(session, ctx, lei, UnmergeIn(merge_id=merge.id, reason="again"))
    )


def with_pytest_raises_conflict(call: object) -> None:
    import pytest

    with pytest.raises(Conflict):
        call()  # type: ignore[operator]


def test_detaching_an_identifier_moves_it_and_its_events_to_a_profile_of_its_own(
    session: Session, ctx: Context
) -> None:
    run(
        session,
        [
            ev(1, ("user_id", "u1"), ("email", "u1@a.cn"), ("anonymous_id", "a1")),
            ev(2, ("anonymous_id", "a1"), ("device_id", "SHARED-PAD")),
            ev(3, ("device_id", "SHARED-PAD")),
        ],
    )
    profile = profile_of(session, "user_id", "u1")
    out = service.unmerge(
        session,
        ctx,
        profile,
        UnmergeIn(identifier=IdentifierRef(type="device_id", value="shared-pad"), reason="a kiosk"),
    )
    pad = profile_of(session, "device_id", "shared-pad")
    assert out.split_off == [pad] and pad != profile
    events = dict(session.execute(select(EventProfileRow.seq, EventProfileRow.profile_id)).all())
    assert events == {1: profile, 2: pad, 3: pad}  # an event goes with its strongest identifier
    assert session.scalars(select(EdgeRow.status).where(EdgeRow.status == "cut")).all() == ["cut"]
    [entry] = audit.list_entries(session, ctx, action="identity.unmerged").items
    assert entry.object_id == profile and entry.actor == ctx.user_id
    # ids and counts only: neither the identifier's value nor the free-text reason
    assert entry.detail == {
        "merge_id": None,
        "identifier_type": "device_id",
        "split_off": [pad],
        "cut_links": 1,
    }
    assert audit.verify(session).is_intact


def test_unmerge_refuses_what_is_not_part_of_the_profile(session: Session, ctx: Context) -> None:
    import pytest

    run(session, [ev(1, ("user_id", "u1"), ("email", "u1@a.cn"))])
    profile = profile_of(session, "user_id", "u1")
    with pytest.raises(Conflict):
        service.unmerge(
            session,
            ctx,
            profile,
            UnmergeIn(identifier=IdentifierRef(type="email", value="x@a.cn"), reason="nope"),
        )
    with pytest.raises(NotFound):
        service.unmerge(session, ctx, profile, UnmergeIn(merge_id="nope", reason="nope"))


SMALL = [("email", f"e{i}@x.cn") for i in range(4)] + [("anonymous_id", f"a{i}") for i in range(5)]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=st.lists(
        st.lists(st.sampled_from(SMALL), min_size=1, max_size=3, unique=True),
        min_size=1,
        max_size=8,
    ),
    link=st.tuples(st.sampled_from(SMALL), st.sampled_from(SMALL)),
)
def test_merge_then_unmerge_returns_the_original_partition(
    session: Session, ctx: Context, events: list[list[tuple[str, str]]], link: tuple
) -> None:
    with session.begin_nested() as nested:
        run(session, [ev(i + 1, *ids) for i, ids in enumerate(events)])
        original = partition(session)
        run(session, [ev(100, *set(link))])
        for merge in session.scalars(
            select(MergeRow).where(MergeRow.kind == "merge", MergeRow.message_id == "m100")
        ).all():
            profile = service.current_id(session, merge.survivor_id)
            service.unmerge(session, ctx, profile, UnmergeIn(merge_id=merge.id, reason="test"))
        after = partition(session)
        # identifiers first seen on the linking event join whichever side they are on
        new = {f"{t}:{v}" for t, v in link} - set().union(*original) if original else set()
        assert {g - new for g in after if g - new} == original
        nested.rollback()
