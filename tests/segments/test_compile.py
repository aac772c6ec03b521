"""Each node type of the language, compiled and run on SQLite and PostgreSQL. ``World.matches``
evaluates a rule both ways (set-based over every candidate, and probing each profile), so every
case also checks that the two compilations agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from oneloop.core.errors import ValidationFailed
from oneloop.profiles.models import ProfileRow
from oneloop.segments.compile import bind
from oneloop.segments.language import parse_rule
from oneloop.segments.models import MemberRow
from tests.segments.conftest import NOW, World


@pytest.fixture
def people(world: World) -> dict[str, str]:
    """a: a Shanghai VIP with 3 orders; b: Beijing, orders sent as text; c: knows nothing."""
    a, b, c = world.profile(), world.profile(), world.profile()
    world.trait(a, "city", "上海")
    world.trait(a, "orders", 3)
    world.trait(a, "vip", True)
    world.trait(a, "signed_up", "2026-02-20T10:00:00Z")
    world.trait(a, "discount", "50%")
    world.trait(b, "city", "Beijing")
    world.trait(b, "orders", "abc")
    world.trait(b, "vip", False)
    world.trait(b, "signed_up", "2025-12-01T00:00:00Z")
    world.trait(b, "discount", "50x")
    return {"a": a, "b": b, "c": c}


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "上海", "a"),
        ("ne", "上海", "bc"),
        ("in", ["上海", "Beijing"], "ab"),
        ("not_in", ["上海"], "bc"),
        ("contains", "海", "a"),
        ("starts_with", "Bei", "b"),
        ("exists", None, "ab"),
        ("not_exists", None, "c"),
    ],
)
def test_text_trait_operators(
    world: World, people: dict[str, str], op: str, value: object, expected: str
) -> None:
    rule = {"trait": "city", "op": op, **({"value": value} if value is not None else {})}
    assert world.matches(rule) == {people[k] for k in expected}


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 3, "a"),
        ("ne", 3, "bc"),  # wrong type and missing count as "not equal"
        ("gte", 2, "a"),  # "abc" is not a number: it matches no comparison
        ("gt", 3, ""),
        ("lt", 5, "a"),
        ("lte", 3, "a"),
        ("between", [1, 3], "a"),
        ("in", [1, 3], "a"),
        ("eq", "abc", "b"),
    ],
)
def test_number_trait_operators_and_wrong_types(
    world: World, people: dict[str, str], op: str, value: object, expected: str
) -> None:
    assert world.matches({"trait": "orders", "op": op, "value": value}) == {
        people[k] for k in expected
    }


def test_boolean_and_time_traits(world: World, people: dict[str, str]) -> None:
    a, b, c = people["a"], people["b"], people["c"]
    assert world.matches({"trait": "vip", "op": "eq", "value": True}) == {a}
    assert world.matches({"trait": "vip", "op": "ne", "value": True}) == {b, c}
    within = {"trait": "signed_up", "op": "within_last", "value": {"amount": 30, "unit": "days"}}
    assert world.matches(within) == {a}
    assert world.matches({**within, "op": "not_within_last"}) == {b}
    assert world.matches({"trait": "signed_up", "op": "lt", "value": "2026-01-01"}) == {b}
    span = {"trait": "signed_up", "op": "between", "value": ["2026-02-01", "2026-03-01"]}
    assert world.matches(span) == {a}


def test_like_wildcards_in_a_value_are_literal(world: World, people: dict[str, str]) -> None:
    assert world.matches({"trait": "discount", "op": "contains", "value": "0%"}) == {people["a"]}
    assert world.matches({"trait": "discount", "op": "starts_with", "value": "5_"}) == set()


def test_injection_literals_are_only_ever_compared(world: World) -> None:
    hostile = "'); DROP TABLE profiles_profile; --"
    bobby, curly, plain = world.profile(), world.profile(), world.profile()
    world.trait(bobby, "name", hostile)
    world.trait(curly, "name", "{{7*7}}")
    world.trait(plain, "name", "49")
    assert world.matches({"trait": "name", "op": "eq", "value": hostile}) == {bobby}
    assert world.matches({"trait": "name", "op": "eq", "value": "{{7*7}}"}) == {curly}
    assert world.matches({"trait": "name", "op": "contains", "value": "'); DROP"}) == {bobby}
    assert (
        world.matches({"event": hostile, "where": [{"property": "x');--", "op": "exists"}]})
        == set()
    )
    assert world.session.scalar(select(func.count()).select_from(ProfileRow)) == 3


def test_a_computed_trait_is_found_by_name_unit_first(world: World) -> None:
    a, b = world.profile(), world.profile()
    group_def = world.trait_def("orders_90d")
    north_def = world.trait_def("orders_90d", world.north)
    world.trait(a, "orders_90d", 5, key=group_def)
    world.trait(b, "orders_90d", 5, key=north_def)
    rule = {"trait": "orders_90d", "op": "gte", "value": 2}
    assert world.matches(rule) == {a}  # group-wide: the group's definition
    assert world.matches(rule, world.north) == {b}  # north: its own definition wins
    assert world.matches(rule, world.south) == set()  # south: the group's, but no south profiles


# --- events ---------------------------------------------------------------------------------


def test_within_the_last_day_is_today_in_shanghai(world: World) -> None:
    """NOW is 2026-03-02 09:00 in Shanghai; 2026-03-01T17:00Z is 01:00 there, "today"."""
    today, yesterday, never = world.profile(), world.profile(), world.profile()
    world.event(today, "Page Viewed", datetime(2026, 3, 1, 17, 0, tzinfo=UTC))
    world.event(yesterday, "Page Viewed", datetime(2026, 3, 1, 15, 59, tzinfo=UTC))  # 23:59
    one_day = {"event": "Page Viewed", "within": {"amount": 1, "unit": "days"}}
    assert world.matches(one_day) == {today}
    assert world.matches({**one_day, "within": {"amount": 2}}) == {today, yesterday}
    assert world.matches({**one_day, "within": {"amount": 9, "unit": "hours"}}) == {today}
    assert world.matches({**one_day, "did": False}) == {yesterday, never}
    local_day = {"event": "Page Viewed", "between": ["2026-03-01", "2026-03-01"]}
    assert world.matches(local_day) == {yesterday}  # 3/1 in Shanghai: 16:00Z 2/28 to 16:00Z 3/1
    exact = {"event": "Page Viewed", "between": ["2026-03-01T16:00:00Z", "2026-03-01T17:00:00Z"]}
    assert world.matches(exact) == {today}


def test_did_and_did_not_and_counts_include_people_without_events(world: World) -> None:
    none, once, thrice = world.profile(), world.profile(), world.profile()
    for pid, n in ((once, 1), (thrice, 3)):
        for i in range(n):
            world.event(pid, "Order Completed", NOW - timedelta(days=i + 1))
    world.event(none, "Page Viewed", NOW - timedelta(days=1))
    order = {"event": "Order Completed"}
    assert world.matches(order) == {once, thrice}
    assert world.matches({**order, "did": False}) == {none}
    assert world.matches({**order, "count": {"op": "gte", "value": 2}}) == {thrice}
    assert world.matches({**order, "count": {"op": "lte", "value": 1}}) == {none, once}
    assert world.matches({**order, "count": {"op": "lt", "value": 1}}) == {none}
    assert world.matches({**order, "count": {"op": "eq", "value": 0}}) == {none}
    assert world.matches({**order, "count": {"op": "ne", "value": 1}}) == {none, thrice}
    assert world.matches({**order, "count": {"op": "between", "value": [0, 1]}}) == {none, once}
    assert world.matches({**order, "count": {"op": "between", "value": [1, 2]}}) == {once}
    recent = {**order, "within": {"amount": 3}, "count": {"op": "gte", "value": 2}}
    assert world.matches(recent) == {thrice}  # today and the 2 days before: 2 of its 3 orders
    assert world.matches({**recent, "within": {"amount": 2}}) == set()
    assert world.matches({"not": {**order, "count": {"op": "lte", "value": 1}}}) == {thrice}


def test_property_filters_and_event_name_lists(world: World) -> None:
    big, small, odd = world.profile(), world.profile(), world.profile()
    world.event(big, "Order Completed", NOW, properties={"revenue": 500, "city": "上海"})
    world.event(small, "Order Completed", NOW, properties={"revenue": 20})
    world.event(odd, "Order Refunded", NOW, properties={"revenue": "lots"})
    rich = {
        "event": "Order Completed",
        "where": [{"property": "revenue", "op": "gte", "value": 100}],
    }
    assert world.matches(rich) == {big}
    assert world.matches({**rich, "did": False}) == {small, odd}
    anything = {"event": ["Order Completed", "Order Refunded"]}
    assert world.matches(anything) == {big, small, odd}
    numeric = {**anything, "where": [{"property": "revenue", "op": "gt", "value": 0}]}
    assert world.matches(numeric) == {big, small}  # "lots" is not a number
    assert world.matches(
        {"event": "Order Completed", "where": [{"property": "city", "op": "not_exists"}]}
    ) == {small}


def test_first_and_last_time(world: World) -> None:
    new, old, both = world.profile(), world.profile(), world.profile()
    world.event(new, "Order Completed", NOW - timedelta(days=2))
    world.event(old, "Order Completed", NOW - timedelta(days=200))
    world.event(both, "Order Completed", NOW - timedelta(days=200))
    world.event(both, "Order Completed", NOW - timedelta(hours=1))
    first_recent = {
        "event": "Order Completed",
        "first": {"op": "within_last", "value": {"amount": 7}},
    }
    assert world.matches(first_recent) == {new}
    last_recent = {
        "event": "Order Completed",
        "last": {"op": "within_last", "value": {"amount": 7}},
    }
    assert world.matches(last_recent) == {new, both}
    lapsed = {"event": "Order Completed", "last": {"op": "lt", "value": "2026-01-01"}}
    assert world.matches(lapsed) == {old}
    assert world.matches({**lapsed, "did": False}) == {new, both}
    loyal = {
        "event": "Order Completed",
        "count": {"op": "gte", "value": 2},
        "last": {"op": "within_last", "value": {"amount": 1}},
    }
    assert world.matches(loyal) == {both}


def test_a_unit_counts_its_own_events_and_profiles_the_group_all(world: World) -> None:
    northern = world.profile(world.north)
    southern = world.profile(world.south)
    traveller = world.profile(world.north, world.south)
    world.event(northern, "Order Completed", NOW, unit=world.north)
    world.event(southern, "Order Completed", NOW, unit=world.south)
    world.event(traveller, "Order Completed", NOW, unit=world.south)
    bought = {"event": "Order Completed"}
    assert world.matches(bought) == {northern, southern, traveller}
    assert world.matches(bought, world.north) == {northern}
    assert world.matches({**bought, "did": False}, world.north) == {traveller}
    assert world.matches(bought, world.south) == {southern, traveller}


# --- tags, scores, other segments, nesting --------------------------------------------------


def test_tags_scores_and_segments(world: World) -> None:
    a, b, c = world.profile(), world.profile(), world.profile()
    hot = world.tag("high_intent")
    world.give_tag(a, hot)
    model = world.score_model("intent")
    world.score(a, model, 55)
    world.score(b, model, 12)
    vip = world.segment("vip")
    world.session.add(MemberRow(segment_id=vip, profile_id=c, entered_at=NOW))
    world.session.flush()
    assert world.matches({"tag": "high_intent"}) == {a}
    assert world.matches({"not": {"tag": "high_intent"}}) == {b, c}
    assert world.matches({"score": "intent", "op": "gte", "value": 40}) == {a}
    assert world.matches({"score": "intent", "op": "ne", "value": 55}) == {b, c}
    assert world.matches({"score": "intent", "op": "between", "value": [10, 20]}) == {b}
    assert world.matches({"segment": "vip"}) == {c}
    assert world.matches({"not": {"segment": "vip"}}, world.north) == {a, b}
    assert world.matches({"segment": "vip"}, world.south) == set()


def test_unit_definitions_come_before_the_groups(world: World) -> None:
    a, b = world.profile(), world.profile()
    world.give_tag(a, world.tag("hot"))
    world.give_tag(b, world.tag("hot", world.north))
    assert world.matches({"tag": "hot"}) == {a}
    assert world.matches({"tag": "hot"}, world.north) == {b}
    assert world.matches({"tag": "hot"}, world.south) == set()


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"and": [{"trait": "x", "op": "exists"}, {"tag": "nope"}]}, "rule.and[1].tag"),
        ({"or": [{"not": {"score": "nope", "op": "gte", "value": 1}}]}, "rule.or[0].not.score"),
        ({"segment": "nope"}, "rule.segment"),
    ],
)
def test_unknown_names_are_refused_at_their_path(world: World, rule: object, path: str) -> None:
    world.tag("hot", world.south)  # another unit's tag is unknown here
    with pytest.raises(ValidationFailed) as caught:
        bind(world.session, parse_rule(rule), world.scope(world.north))
    assert caught.value.errors[0].path == path


def test_nested_and_or_not(world: World) -> None:
    a, b, c, d = (world.profile() for _ in range(4))
    for pid in (a, b):
        world.trait(pid, "city", "上海")
    for pid in (a, c):
        world.event(pid, "Order Completed", NOW)
    shanghai = {"trait": "city", "op": "eq", "value": "上海"}
    bought = {"event": "Order Completed"}
    assert world.matches({"and": [shanghai, bought]}) == {a}
    assert world.matches({"or": [shanghai, bought]}) == {a, b, c}
    assert world.matches({"not": {"and": [shanghai, bought]}}) == {b, c, d}
    assert world.matches({"not": {"or": [shanghai, bought]}}) == {d}
    assert world.matches({"and": [{"not": shanghai}, {"not": {**bought, "did": False}}]}) == {c}
    assert world.matches({"not": {"not": {"or": [{"and": [shanghai]}, {"not": bought}]}}}) == {
        a,
        b,
        d,
    }
