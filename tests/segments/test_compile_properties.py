"""Properties of the compiler over generated rules, on both databases: a rule and its
negation split the candidates exactly (no profile lost to SQL's NULL, none counted twice),
and the set-based and per-profile compilations agree (``World.matches`` checks that)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from oneloop.profiles.models import ProfileUnitRow
from oneloop.segments.models import MemberRow
from tests.segments.conftest import NOW, World

TRAITS: list[tuple[str, str, Any]] = [  # Any: JSON values of every kind
    ("city", "eq", "上海"),
    ("city", "ne", "上海"),
    ("city", "in", ["上海", "北京"]),
    ("city", "not_in", ["北京"]),
    ("city", "contains", "海"),
    ("city", "starts_with", "北"),
    ("orders", "gte", 2),
    ("orders", "lt", 3),
    ("orders", "between", [1, 4]),
    ("orders", "eq", "abc"),
    ("vip", "eq", True),
    ("vip", "ne", False),
    ("signed_up", "within_last", {"amount": 30}),
    ("signed_up", "not_within_last", {"amount": 30}),
    ("signed_up", "lt", "2026-01-01"),
]
traits = st.sampled_from(TRAITS).map(lambda t: {"trait": t[0], "op": t[1], "value": t[2]}) | (
    st.sampled_from(["city", "orders", "nothing"]).flatmap(
        lambda n: st.sampled_from([{"trait": n, "op": "exists"}, {"trait": n, "op": "not_exists"}])
    )
)
events = st.builds(
    lambda name, did, count, window, where: {
        "event": name,
        **({"did": did} if did is not None else {}),
        **({"count": count} if count and did is not False else {}),
        **window,
        **({"where": where} if where else {}),
    },
    st.sampled_from(["Order Completed", "Page Viewed", ["Order Completed", "Page Viewed"]]),
    st.sampled_from([None, True, False]),
    st.sampled_from(
        [
            None,
            {"op": "gte", "value": 2},
            {"op": "lte", "value": 1},
            {"op": "eq", "value": 0},
            {"op": "between", "value": [0, 2]},
        ]
    ),
    st.sampled_from(
        [
            {},
            {"within": {"amount": 2}},
            {"between": ["2026-02-01", "2026-03-01"]},
            {"last": {"op": "within_last", "value": {"amount": 3}}},
            {"first": {"op": "lt", "value": "2026-02-20"}},
        ]
    ),
    st.sampled_from([[], [{"property": "revenue", "op": "gte", "value": 100}]]),
)
others = st.sampled_from(
    [
        {"tag": "hot"},
        {"score": "intent", "op": "gte", "value": 40},
        {"score": "intent", "op": "ne", "value": 10},
        {"segment": "vip"},
    ]
)
rules = st.recursive(
    traits | events | others,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"and": c})
        | st.lists(inner, min_size=1, max_size=3).map(lambda c: {"or": c})
        | inner.map(lambda c: {"not": c})
    ),
    max_leaves=6,
)


@pytest.fixture
def populated(world: World) -> World:
    """Eight profiles with a little of everything, and some with nothing at all."""
    people = [world.profile() for _ in range(6)] + [world.profile(world.south) for _ in range(2)]
    cities = ["上海", "北京", "Shanghai", None, "上海", None, "北京", "上海"]
    orders: list[Any] = [3, 1, "abc", None, 5, 0, 2, None]
    for pid, city, n in zip(people, cities, orders, strict=True):
        if city is not None:
            world.trait(pid, "city", city)
        if n is not None:
            world.trait(pid, "orders", n)
    world.trait(people[0], "vip", True)
    world.trait(people[1], "vip", False)
    world.trait(people[0], "signed_up", "2026-02-20T00:00:00Z")
    world.trait(people[2], "signed_up", "2025-06-01T00:00:00Z")
    for i, pid in enumerate(people[:5]):
        for d in range(i):
            world.event(
                pid,
                "Order Completed" if d % 2 == 0 else "Page Viewed",
                NOW - timedelta(days=d * 7 + 1),
                unit=world.north if i % 2 else world.south,
                properties={"revenue": d * 60},
            )
    world.event(people[6], "Order Completed", datetime(2026, 2, 28, 16, 30, tzinfo=UTC))
    hot = world.tag("hot")
    for pid in people[::3]:
        world.give_tag(pid, hot)
    model = world.score_model("intent")
    for pid, value in zip(people[:4], (55, 10, 40, 39), strict=True):
        world.score(pid, model, value)
    vip = world.segment("vip")
    for pid in people[1::2]:
        world.session.add(MemberRow(segment_id=vip, profile_id=pid, entered_at=NOW))
    world.session.flush()
    return world


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rule=rules, where=st.sampled_from(["group", "north"]))
def test_a_rule_and_its_negation_split_the_candidates(
    populated: World, rule: dict[str, Any], where: str
) -> None:
    world = populated
    unit = world.north if where == "north" else None
    if unit is None:
        everyone = set(world.session.scalars(select(ProfileUnitRow.profile_id)))
    else:
        everyone = set(
            world.session.scalars(
                select(ProfileUnitRow.profile_id).where(ProfileUnitRow.bu_id == unit)
            )
        )
    held = world.matches(rule, unit)
    not_held = world.matches({"not": rule}, unit)
    assert held | not_held == everyone
    assert not held & not_held
    assert world.matches({"not": {"not": rule}}, unit) == held
