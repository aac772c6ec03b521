"""Computed traits: every aggregate, filters, windows, hostile values, bad definitions, unit
scope, the API and the CLI, and the promise the design rests on: values kept current event by
event (``refresh``, ``sweep``) are exactly the values of one full ``recompute``."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app as cli_app
from oneloop.collect import consumers
from oneloop.collect.ingest import ingest
from oneloop.collect.spec import parse_batch
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.core.errors import Conflict, NotFound, ValidationFailed
from oneloop.core.ids import BusinessUnitId, UserId
from oneloop.governance import audit
from oneloop.identity.resolver import ResolveConsumer
from oneloop.profiles import traits
from oneloop.profiles.filters import When, zone_of
from oneloop.profiles.live import IdentityChanges, ProfilesConsumer, Sweep
from oneloop.profiles.models import (
    ProfileEventRow,
    ProfileRow,
    ProfileUnitRow,
    TraitDefRow,
    TraitRow,
)
from oneloop.profiles.trait_defs import parse_definition
from tests.conftest import ADMIN
from tests.factories import make_group, make_source
from tests.profiles.conftest import World

T0 = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # noon in Shanghai
ORDER = "Order Completed"
PAGE = "Page Viewed"
E = ProfileEventRow


@pytest.fixture
def world(session: Session, ctx: Context, clock: FixedClock) -> World:
    clock.at = T0
    units = {u.code: u.id for u in make_group(session, ctx)}
    return World(session, units)


def when(at: datetime) -> When:
    return When(now=at, zone=zone_of(None))


def define(session: Session, ctx: Context, bu: str | None = None, **document: Any) -> str:
    return traits.create_trait(session, ctx, document, bu).id


def stored(session: Session, trait_id: str) -> dict[str, Any]:
    rows = session.execute(
        select(TraitRow.profile_id, traits.STORED_VALUE).where(TraitRow.key == trait_id)
    )
    return {p: v for p, v in rows}


def snapshot(session: Session) -> dict[tuple[str, str], tuple[Any, ...]]:
    rows = session.execute(
        select(
            TraitRow.key,
            TraitRow.profile_id,
            traits.STORED_VALUE,
            TraitRow.num,
            TraitRow.text,
            TraitRow.at,
        ).where(TraitRow.key.not_like("golden:%"))
    )
    return {(k, p): (type(v).__name__, v, n, t, a) for k, p, v, n, t, a in rows}


def typed_columns(session: Session, profile: str, trait_id: str) -> tuple[Any, ...]:
    row = session.execute(
        select(TraitRow.num, TraitRow.text, TraitRow.at).where(
            TraitRow.profile_id == profile, TraitRow.key == trait_id
        )
    ).one()
    return tuple(row)


def iso(at: datetime) -> str:
    return at.isoformat()


# --- every aggregate ------------------------------------------------------------------------


def test_every_aggregate_over_the_same_events(world: World, session: Session, ctx: Context) -> None:
    day = timedelta(days=1)
    world.event("a", ORDER, T0 - 3 * day, revenue="abc", products=[{"category": "phone"}])
    world.event("a", ORDER, T0 - 2 * day, revenue=50.5, products=[{"category": "laptop"}])
    world.event(
        "a", ORDER, T0 - day, revenue=100, channel="tmall", products=[{"category": "phone"}]
    )
    world.event("a", PAGE, T0 - timedelta(hours=1), path="/")
    world.event("b", ORDER, T0 - 5 * day, revenue=20, products=[{"category": "tv"}])
    world.event("b", ORDER, T0 - 5 * day, revenue=30, products=[{"category": "audio"}])
    world.event("c", PAGE, T0 - 7 * day)
    revenue, category = {"property": "revenue"}, {"property": "products.0.category"}
    cases: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "orders": ({"aggregate": "count"}, {"a": 3, "b": 2}),
        "revenue": ({"aggregate": "sum", **revenue}, {"a": 150.5, "b": 50}),
        "low": ({"aggregate": "min", **revenue}, {"a": 50.5, "b": 20}),
        "high": ({"aggregate": "max", **revenue}, {"a": 100, "b": 30}),
        "mean": ({"aggregate": "avg", **revenue}, {"a": 75.25, "b": 25}),
        "first_at": ({"aggregate": "first"}, {"a": iso(T0 - 3 * day), "b": iso(T0 - 5 * day)}),
        "last_at": (
            {"aggregate": "last", "property": "at"},
            {"a": iso(T0 - day), "b": iso(T0 - 5 * day)},
        ),
        "earliest": (
            {"aggregate": "min", "property": "at"},
            {"a": iso(T0 - 3 * day), "b": iso(T0 - 5 * day)},
        ),
        # b: two orders at the same time; the earlier log position is first
        "first_revenue": ({"aggregate": "first", **revenue}, {"a": "abc", "b": 20}),
        "last_revenue": ({"aggregate": "last", **revenue}, {"a": 100, "b": 30}),
        "categories": ({"aggregate": "distinct_count", **category}, {"a": 2, "b": 2}),
        # b: a tie, which goes to the later event
        "favourite": ({"aggregate": "most_frequent", **category}, {"a": "phone", "b": "audio"}),
        "last_seen_at": (
            {"aggregate": "last", "event": [ORDER, PAGE]},
            {"a": iso(T0 - timedelta(hours=1)), "b": iso(T0 - 5 * day), "c": iso(T0 - 7 * day)},
        ),
    }
    ids = {
        name: define(session, ctx, **{"name": name, "event": ORDER, **document})
        for name, (document, _) in cases.items()
    }
    expected = {name: values for name, (_, values) in cases.items()}
    assert traits.recompute(session, ctx) == sum(len(v) for v in expected.values())
    assert {name: stored(session, i) for name, i in ids.items()} == expected
    # the typed columns a segment rule compares
    last_seen = T0 - timedelta(hours=1)
    assert typed_columns(session, "a", ids["last_seen_at"]) == (None, iso(last_seen), last_seen)
    assert typed_columns(session, "a", ids["revenue"]) == (150.5, None, None)
    assert typed_columns(session, "a", ids["favourite"]) == (None, "phone", None)
    # the incremental path gives the same, starting from nothing
    full = snapshot(session)
    session.execute(delete(TraitRow))
    assert traits.refresh(session, ["a", "b", "c", "nobody"], when(T0)) == {"a", "b", "c"}
    assert snapshot(session) == full
    assert traits.refresh(session, ["a", "b", "c"], when(T0)) == set()  # nothing changed


def test_boolean_values_are_not_numbers(world: World, session: Session, ctx: Context) -> None:
    world.event("a", ORDER, T0, gift=True)
    world.event("a", ORDER, T0, gift=True)
    world.event("a", ORDER, T0, gift=1)
    gift = define(
        session, ctx, name="gift", event=ORDER, aggregate="most_frequent", property="gift"
    )
    kinds = define(
        session, ctx, name="kinds", event=ORDER, aggregate="distinct_count", property="gift"
    )
    total = define(session, ctx, name="total", event=ORDER, aggregate="sum", property="gift")
    traits.recompute(session, ctx)
    assert stored(session, gift) == {"a": True} and stored(session, kinds) == {"a": 2}
    assert stored(session, total) == {"a": 1}
    value = stored(session, gift)["a"]
    assert value is True


# --- filters and windows --------------------------------------------------------------------


def test_where_conditions_and_event_lists(world: World, session: Session, ctx: Context) -> None:
    world.event("a", ORDER, T0, channel="tmall", revenue=80)
    world.event("a", ORDER, T0, channel="jd", revenue=40)
    world.event("a", "Order Refunded", T0, channel="tmall")
    world.event("a", "Summit Checked In", T0, summit="上海峰会 2026")
    tmall = define(
        session,
        ctx,
        name="tmall_orders",
        event=ORDER,
        where=[{"property": "channel", "op": "eq", "value": "tmall"}],
        aggregate="count",
    )
    big = define(
        session,
        ctx,
        name="big_orders",
        event=ORDER,
        where=[{"property": "revenue", "op": "gt", "value": 50}],
        aggregate="count",
    )
    either = define(
        session, ctx, name="commerce", event=[ORDER, "Order Refunded"], aggregate="count"
    )
    summit = define(
        session,
        ctx,
        name="summit_checkins_180d",
        event="Summit Checked In",
        where=[{"property": "summit", "op": "contains", "value": "峰会"}],
        aggregate="count",
        window={"amount": 180, "unit": "days"},
    )
    traits.recompute(session, ctx)
    assert stored(session, tmall) == {"a": 1} and stored(session, big) == {"a": 1}
    assert stored(session, either) == {"a": 3} and stored(session, summit) == {"a": 1}


def test_refresh_only_touches_definitions_of_the_events_named(
    world: World, session: Session, ctx: Context
) -> None:
    orders = define(session, ctx, name="orders", event=ORDER, aggregate="count")
    pages = define(session, ctx, name="pages", event=PAGE, aggregate="count")
    world.event("a", ORDER, T0)
    world.event("a", PAGE, T0)
    assert traits.refresh(session, ["a"], when(T0), event_names=[ORDER]) == {"a"}
    assert stored(session, orders) == {"a": 1} and stored(session, pages) == {}
    assert traits.refresh(session, ["a"], when(T0), event_names=["Identify"]) == set()
    assert traits.refresh(session, [], when(T0)) == set()
    # events move to another profile (a merge): the old one's values go
    session.execute(update(ProfileEventRow).values(profile_id="b"))
    assert traits.refresh(session, ["a", "b"], when(T0)) == {"a", "b"}
    assert stored(session, orders) == {"b": 1} and stored(session, pages) == {"b": 1}


def test_windows_are_calendar_days_in_shanghai_and_the_sweep_closes_them(
    world: World, session: Session, ctx: Context
) -> None:
    now = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)  # 01:00 on 10 March in Shanghai
    world.event("a", PAGE, datetime(2026, 3, 9, 15, 59, 59, tzinfo=UTC))  # 23:59:59 on the 9th
    world.event("a", PAGE, datetime(2026, 3, 9, 16, 0, 0, tzinfo=UTC))  # midnight, the 10th
    world.event("b", PAGE, datetime(2026, 3, 1, tzinfo=UTC))
    today = define(
        session, ctx, name="pages_today", event=PAGE, aggregate="count", window={"amount": 1}
    )
    two = define(
        session,
        ctx,
        name="pages_2d",
        event=PAGE,
        aggregate="count",
        window={"amount": 2, "unit": "days"},
    )
    hours = define(
        session,
        ctx,
        name="pages_3h",
        event=PAGE,
        aggregate="count",
        window={"amount": 3, "unit": "hours"},
    )
    forever = define(session, ctx, name="pages", event=PAGE, aggregate="count")
    traits.recompute(session, ctx, when=when(now))
    assert stored(session, today) == {"a": 1} and stored(session, two) == {"a": 2}
    assert stored(session, hours) == {"a": 2} and stored(session, forever) == {"a": 2, "b": 1}
    # 23:59 on the 10th: the hours window lost both, the calendar windows nothing yet
    later = datetime(2026, 3, 10, 15, 59, tzinfo=UTC)
    assert traits.sweep(session, when(later), since=now) == {"a"}
    assert stored(session, hours) == {} and stored(session, today) == {"a": 1}
    # past midnight: the day before yesterday's event leaves the 2-day window
    after = datetime(2026, 3, 10, 16, 30, tzinfo=UTC)
    assert traits.sweep(session, when(after), since=later) == {"a"}
    assert stored(session, today) == {} and stored(session, two) == {"a": 1}
    assert stored(session, forever) == {"a": 2, "b": 1}
    assert traits.sweep(session, when(after), since=after) == set()
    full = snapshot(session)
    assert traits.recompute(session, ctx, when=when(after)) == 0
    assert snapshot(session) == full


# --- hostile values -------------------------------------------------------------------------

HOSTILE = [
    "abc",
    "'); DROP TABLE profiles_event; --",
    "12",
    None,
    [1, 2],
    {"amount": 5},
    True,
    1e300,
    -1e16,
    "NaN",
    7,
]


def test_hostile_property_values_are_skipped_not_fatal(
    world: World, session: Session, ctx: Context
) -> None:
    for value in HOSTILE:
        world.event("a", ORDER, T0, revenue=value, note=value)
    world.event("a", ORDER, T0, note="'); DROP TABLE profiles_event; --")
    ids = {
        agg: define(session, ctx, name=f"r_{agg}", event=ORDER, aggregate=agg, property="revenue")
        for agg in ("sum", "avg", "min", "max")
    }
    favourite = define(
        session, ctx, name="note", event=ORDER, aggregate="most_frequent", property="note"
    )
    odd = define(
        session,
        ctx,
        name="odd",
        event="'); DROP TABLE profiles_event; --",
        where=[{"property": "x'); DROP TABLE profiles_trait; --", "op": "eq", "value": "1"}],
        aggregate="sum",
        property="'; DELETE FROM profiles_event; --.0.a",
    )
    traits.recompute(session, ctx)
    assert {agg: stored(session, i) for agg, i in ids.items()} == {
        "sum": {"a": 7},
        "avg": {"a": 7},
        "min": {"a": 7},
        "max": {"a": 7},
    }
    assert stored(session, favourite) == {"a": "'); DROP TABLE profiles_event; --"}
    assert stored(session, odd) == {}
    assert session.scalar(select(func.count()).select_from(ProfileEventRow)) == len(HOSTILE) + 1


def test_a_hostile_sum_cannot_overflow(world: World, session: Session, ctx: Context) -> None:
    """Integers just under the bound, enough of them to pass 2^63: SQLite's integer sum would
    raise, and the consumer would stop on every batch."""
    world.event("a", PAGE, T0)
    rows = [
        {
            "seq": 100 + i,
            "profile_id": "a",
            "bu_id": world.units["north"],
            "source_id": "src",
            "type": "track",
            "name": ORDER,
            "department": "sales",
            "at": T0,
            "properties": {"revenue": 999_999_999_999_999},
        }
        for i in range(9_300)
    ]
    session.execute(insert(ProfileEventRow), rows)
    total = define(session, ctx, name="total", event=ORDER, aggregate="sum", property="revenue")
    mean = define(session, ctx, name="mean", event=ORDER, aggregate="avg", property="revenue")
    traits.recompute(session, ctx)
    assert stored(session, total)["a"] == pytest.approx(9.3e18, rel=1e-9)
    assert stored(session, mean)["a"] == pytest.approx(999_999_999_999_999, rel=1e-9)


# --- bad definitions ------------------------------------------------------------------------

GOOD = {"name": "orders_90d", "event": ORDER, "aggregate": "count"}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"name": None}, "name"),
        ({"name": "Orders"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "9lives"}, "name"),
        ({"description": 5}, "description"),
        ({"event": None}, "event"),
        ({"event": []}, "event"),
        ({"aggregate": "median"}, "aggregate"),
        ({"aggregate": None}, "aggregate"),
        ({"filter": {}}, "filter"),
        ({"where": {"property": "x"}}, "where"),
        ({"where": [{"property": "x", "op": "like", "value": 1}]}, "where[0].op"),
        ({"where": [{"property": "x", "op": "eq"}]}, "where[0].value"),
        ({"where": [{"property": "", "op": "eq", "value": 1}]}, "where[0].property"),
        (
            {"where": [{"property": "x", "op": "within_last", "value": {"amount": 3}}]},
            "where[0].op",
        ),
        ({"property": "revenue"}, "property"),  # count takes none
        ({"aggregate": "sum"}, "property"),
        ({"aggregate": "avg", "property": "at"}, "property"),
        ({"aggregate": "most_frequent", "property": "a..b"}, "property"),
        ({"aggregate": "max", "property": 3}, "property"),
        ({"window": {"amount": 0}}, "window.amount"),
        ({"window": {"amount": 1.5}}, "window.amount"),
        ({"window": {"amount": 3, "unit": "fortnights"}}, "window.unit"),
        ({"window": {"amount": 3, "days": 1}}, "window.days"),
        ({"window": 90}, "window"),
    ],
)
def test_bad_definitions_name_the_path(change: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationFailed) as failed:
        parse_definition({**GOOD, **change})
    assert [e.path for e in failed.value.errors] == [path]
    assert path in failed.value.detail


@pytest.mark.parametrize("document", [None, [], "orders", 3, {1: "x"}])
def test_a_definition_must_be_an_object(document: Any) -> None:
    with pytest.raises(ValidationFailed):
        parse_definition(document)


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["orders", "X", ""]) | JSON,
            "event": st.sampled_from([ORDER, [ORDER, PAGE]]) | JSON,
            "where": JSON,
            "aggregate": st.sampled_from(traits.AGGREGATES) | JSON,
            "property": st.sampled_from(["revenue", "at", "a.0.b"]) | JSON,
            "window": JSON,
        },
    )
)
def test_parsing_never_crashes_on_junk(document: dict[str, Any]) -> None:
    try:
        spec = parse_definition(document)
    except ValidationFailed as exc:
        assert exc.errors and exc.errors[0].msg
    else:
        assert spec.aggregate in traits.AGGREGATES and spec.filter.names


def test_yaml_and_json_files_load_as_plain_json() -> None:
    text = "name: orders\nevent: Order Completed\naggregate: count\nwhere:\n"
    text += "  - {property: day, op: gt, value: 2026-03-01}\n"
    document = traits.load_document(text, is_yaml=True)
    spec = parse_definition(document)
    assert spec.filter.where[0].comparison.value == date(2026, 3, 1)  # a whole local day
    laughs = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    bad = (("{not json", False), ("a: [", True), ("!!binary aGk=", True), (laughs, True))
    for raw, is_yaml in bad:
        with pytest.raises(ValidationFailed) as failed:
            traits.load_document(raw, is_yaml=is_yaml)
        assert failed.value.code == "invalid-payload"


# --- business units -------------------------------------------------------------------------


def unit_context(world: World, code: str) -> Context:
    return Context(
        bu_id=BusinessUnitId(world.units[code]),
        user_id=UserId("marketer@north"),
        permissions=frozenset({"profiles.read", "profiles.admin", "governance.bu.read"}),
    )


def test_a_unit_trait_reads_only_its_units_events(
    world: World, session: Session, ctx: Context
) -> None:
    world.event("a", ORDER, T0, bu="north")
    world.event("a", ORDER, T0, bu="north")
    world.event("a", ORDER, T0, bu="south")
    world.event("b", ORDER, T0, bu="south")
    north = define(session, ctx, "north", name="orders", event=ORDER, aggregate="count")
    south = define(session, ctx, "south", name="orders", event=ORDER, aggregate="count")
    group = define(session, ctx, name="orders", event=ORDER, aggregate="count")
    assert traits.recompute(session, ctx, bu="north") == 1
    assert stored(session, north) == {"a": 2} and stored(session, south) == {}
    traits.recompute(session, ctx)
    assert stored(session, south) == {"a": 1, "b": 1}
    assert stored(session, group) == {"a": 3, "b": 1}
    session.add(
        TraitRow(profile_id="a", key="golden:city", value="上海", updated_at=T0)  # by identity
    )
    shown = traits.traits_of(session, "a", (world.units["north"], world.units["galaxy"]))
    assert [(t.name, t.value, t.kind) for t in shown] == [
        ("orders", 2, "computed"),  # the unit's own hides the group's
        ("city", "上海", "golden"),
    ]
    shown = traits.traits_of(session, "a", (world.units["galaxy"],))
    assert [(t.name, t.value) for t in shown] == [("orders", 3), ("city", "上海")]
    assert traits.find_definition(session, "orders", (world.units["south"],)) is not None
    defs = traits.definitions_for(session, (world.units["south"], world.units["galaxy"]))
    assert [(d.id, d.spec.value_kind) for d in defs] == [(south, "number")]
    # the same trait refreshed with the incremental path
    full = snapshot(session)
    session.execute(delete(TraitRow).where(TraitRow.key != "golden:city"))
    traits.refresh(session, ["a", "b"], when(T0), event_names=[ORDER])
    assert snapshot(session) == full


def test_a_units_users_see_and_change_only_their_definitions(
    world: World, session: Session, ctx: Context
) -> None:
    group = define(session, ctx, name="orders_all", event=ORDER, aggregate="count")
    south = define(session, ctx, "south", name="orders", event=ORDER, aggregate="count")
    north_ctx = unit_context(world, "north")
    mine = traits.create_trait(session, north_ctx, {**GOOD, "name": "orders"})
    assert mine.bu_id == world.units["north"]
    assert {t.id for t in traits.list_traits(session, north_ctx)} == {mine.id, group}
    assert traits.get_trait(session, north_ctx, group).name == "orders_all"
    assert traits.get_trait_named(session, north_ctx, "orders").id == mine.id
    with pytest.raises(NotFound):
        traits.get_trait(session, north_ctx, south)
    with pytest.raises(NotFound):
        traits.update_trait(session, north_ctx, group, GOOD)  # the group's is HQ's to change
    with pytest.raises(NotFound):
        traits.delete_trait(session, north_ctx, south)
    with pytest.raises(NotFound):
        traits.create_trait(session, north_ctx, GOOD, "south")
    with pytest.raises(NotFound):
        traits.recompute(session, north_ctx, trait="orders_all")
    world.event("a", ORDER, T0, bu="north")
    world.event("b", ORDER, T0, bu="south")
    assert traits.recompute(session, north_ctx) == 1  # its own definition only
    assert stored(session, mine.id) == {"a": 1} and stored(session, south) == {}
    with pytest.raises(Conflict):
        traits.get_trait_named(session, ctx, "orders")  # two units have one
    assert traits.get_trait_named(session, ctx, "orders", "south").id == south


def test_names_are_unique_per_unit_and_updates_bump_the_version(
    world: World, session: Session, ctx: Context
) -> None:
    first = define(session, ctx, name="orders", event=ORDER, aggregate="count")
    define(session, ctx, "north", name="orders", event=ORDER, aggregate="count")
    with pytest.raises(Conflict):
        define(session, ctx, name="orders", event=PAGE, aggregate="count")
    other = define(session, ctx, name="pages", event=PAGE, aggregate="count")
    with pytest.raises(Conflict):
        traits.update_trait(session, ctx, other, {**GOOD, "name": "orders"})
    changed = traits.update_trait(session, ctx, first, {**GOOD, "name": "orders_v2"})
    assert changed.version == 2 and changed.name == "orders_v2"
    world.event("a", ORDER, T0)
    traits.recompute(session, ctx)
    assert traits.delete_trait(session, ctx, first) == 1
    assert stored(session, first) == {}
    with pytest.raises(NotFound):
        traits.get_trait(session, ctx, first)
    entries = audit.list_entries(session, ctx, object_id=first).items
    assert [(e.action, e.detail) for e in entries] == [
        ("trait.deleted", {"values": 1}),
        ("trait.updated", {"version": 2}),
        ("trait.created", None),
    ]


# --- incremental equals full ----------------------------------------------------------------


def _random_definition(
    name: str, aggregate: str, prop: str | None = None, days: int | None = None, **more: Any
) -> dict[str, Any]:
    document = {"name": name, "event": ORDER, "aggregate": aggregate, **more}
    if prop is not None:
        document["property"] = prop
    if days is not None:
        document["window"] = {"amount": days}
    return document


RANDOM_DEFINITIONS: list[tuple[str | None, dict[str, Any]]] = [
    (None, _random_definition("orders", "count")),
    ("north", _random_definition("orders_7d", "count", days=7)),
    ("south", _random_definition("revenue_30d", "sum", "revenue", 30)),
    (None, _random_definition("revenue_avg", "avg", "revenue")),
    (None, _random_definition("cheapest_2d", "min", "revenue", 2)),
    (
        "north",
        _random_definition(
            "dearest",
            "max",
            "revenue",
            where=[{"property": "channel", "op": "ne", "value": "test"}],
        ),
    ),
    (None, _random_definition("first_seen", "first", event=[ORDER, PAGE])),
    (None, _random_definition("last_seen_1d", "last", days=1, event=[ORDER, PAGE])),
    (None, _random_definition("first_channel", "first", "channel")),
    (
        "north",
        _random_definition(
            "last_path_6h", "last", "path", event=PAGE, window={"amount": 6, "unit": "hours"}
        ),
    ),
    (None, _random_definition("channels", "distinct_count", "channel")),
    (None, _random_definition("favourite_14d", "most_frequent", "products.0.category", 14)),
]
PROFILES = [f"p{i}" for i in range(9)]


def random_event(
    rng: random.Random, now: datetime
) -> tuple[str, str, datetime, str, dict[str, Any]]:
    at = now - timedelta(seconds=rng.randrange(0, 20 * 86_400))
    name = rng.choice([ORDER, ORDER, PAGE, "Identify"])
    properties: dict[str, Any] = {}
    if rng.random() < 0.9:
        properties["revenue"] = rng.choice(
            [rng.randrange(1, 500), rng.randrange(100, 50_000) / 100, "abc", None, True, 1e300]
        )
    if rng.random() < 0.8:
        properties["channel"] = rng.choice(["tmall", "jd", "test", "门店", 3, False])
    if rng.random() < 0.8:
        properties["products"] = [{"category": rng.choice(["phone", "tv", "audio", 7])}]
    properties["path"] = rng.choice(["/", "/pricing", "/docs"])
    return rng.choice(PROFILES), name, at, rng.choice(["north", "south"]), properties


def merge(session: Session, absorbed: str, survivor: str) -> None:
    session.execute(
        update(ProfileEventRow)
        .where(ProfileEventRow.profile_id == absorbed)
        .values(profile_id=survivor)
    )
    for unit in session.scalars(
        select(ProfileUnitRow).where(ProfileUnitRow.profile_id == absorbed)
    ):
        if session.get(ProfileUnitRow, (survivor, unit.bu_id)) is None:
            session.add(
                ProfileUnitRow(profile_id=survivor, bu_id=unit.bu_id, first_at=T0, last_at=T0)
            )
        session.delete(unit)
    session.execute(delete(ProfileRow).where(ProfileRow.id == absorbed))
    session.flush()


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_equals_full(
    world: World,
    session: Session,
    ctx: Context,
    clock: FixedClock,
    seed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A random stream, in batches through ``refresh``, with merges and a clock that crosses
    window edges (``sweep``), leaves exactly the values one ``recompute`` computes."""
    monkeypatch.setattr(traits, "PAGE", 2)  # several pages, so their edges are covered
    rng = random.Random(seed)
    for bu, document in RANDOM_DEFINITIONS:
        define(session, ctx, bu, **document)
    now = T0
    for batch in range(40):
        touched: set[str] = set()
        names: set[str] = set()
        for _ in range(rng.randrange(1, 6)):
            profile, name, at, bu, properties = random_event(rng, now)
            world.event(profile, name, at, bu, **properties)
            touched.add(profile)
            names.add(name)
        traits.refresh(session, touched, when(now), event_names=names)
        if batch % 7 == 6 or batch == 39:  # the last one right before the comparison
            absorbed, survivor = rng.sample(sorted(set(session.scalars(select(E.profile_id)))), 2)
            merge(session, absorbed, survivor)
            traits.refresh(session, [absorbed, survivor], when(now))
            assert absorbed not in {p for _, p in snapshot(session)}
        later = now + timedelta(hours=rng.randrange(0, 30), minutes=rng.randrange(60))
        traits.sweep(session, when(later), since=now)
        now = later
    clock.at = now
    incremental = snapshot(session)
    assert incremental  # the stream produced values to compare
    assert traits.recompute(session, ctx) == 0  # nothing to correct
    session.execute(delete(TraitRow))
    assert traits.recompute(session, ctx) == len(incremental)
    assert snapshot(session) == incremental


# --- API ------------------------------------------------------------------------------------

API_EXAMPLE = {
    "name": "orders_90d",
    "description": "近 90 天订单数 Orders in the last 90 days",
    "event": ORDER,
    "aggregate": "count",
    "window": {"amount": 90, "unit": "days"},
}


@pytest.fixture
def api_world(world: World, session: Session) -> World:
    world.event("a", ORDER, datetime.now(UTC) - timedelta(days=1))
    world.event("a", ORDER, datetime.now(UTC) - timedelta(days=400))
    session.commit()
    return world


def test_the_api_defines_computes_and_deletes(
    client: TestClient, api_world: World, engine: Engine
) -> None:
    created = client.post("/api/v1/traits", params={"bu": "north"}, json=API_EXAMPLE, headers=ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["bu_id"] == api_world.units["north"] and body["version"] == 1
    assert body["definition"] == API_EXAMPLE
    trait_id = body["id"]
    with Session(engine) as fresh:
        assert stored(fresh, trait_id) == {"a": 1}
    yaml_body = "name: pages\nevent: Page Viewed\naggregate: count\n"
    yaml_made = client.post(
        "/api/v1/traits",
        content=yaml_body,
        headers={**ADMIN, "Content-Type": "application/yaml"},
        params={"compute": "false"},
    )
    assert yaml_made.status_code == 201 and yaml_made.json()["bu_id"] == api_world.units["galaxy"]
    listed = client.get("/api/v1/traits", headers=ADMIN).json()["items"]
    assert [t["name"] for t in listed] == ["orders_90d", "pages"]
    only_north = client.get("/api/v1/traits", params={"bu": "north"}, headers=ADMIN).json()["items"]
    assert [t["id"] for t in only_north] == [trait_id]
    assert client.get(f"/api/v1/traits/{trait_id}", headers=ADMIN).json()["name"] == "orders_90d"
    replaced = client.put(
        f"/api/v1/traits/{trait_id}", json={**API_EXAMPLE, "window": {"amount": 500}}, headers=ADMIN
    )
    assert replaced.status_code == 200 and replaced.json()["version"] == 2
    with Session(engine) as fresh:
        assert stored(fresh, trait_id) == {"a": 2}
    again = client.post(f"/api/v1/traits/{trait_id}/recompute", headers=ADMIN)
    assert again.status_code == 200 and again.json() == {"trait_id": trait_id, "written": 0}
    assert client.delete(f"/api/v1/traits/{trait_id}", headers=ADMIN).status_code == 204
    assert client.get(f"/api/v1/traits/{trait_id}", headers=ADMIN).status_code == 404
    with Session(engine) as fresh:
        assert stored(fresh, trait_id) == {}


def test_the_api_refuses_bad_requests(client: TestClient, api_world: World) -> None:
    bad = {**API_EXAMPLE, "where": [{"property": "x", "op": "like", "value": 1}]}
    refused = client.post("/api/v1/traits", json=bad, headers=ADMIN)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["type"] == "/problems/validation-failed"
    assert [e["path"] for e in problem["errors"]] == ["where[0].op"]
    no_agg = client.post(
        "/api/v1/traits", json={**API_EXAMPLE, "aggregate": "median"}, headers=ADMIN
    )
    assert no_agg.status_code == 422 and no_agg.json()["errors"][0]["path"] == "aggregate"
    garbled = client.post(
        "/api/v1/traits",
        content=b"{not json",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert garbled.status_code == 400 and garbled.json()["type"] == "/problems/invalid-payload"
    bad_yaml = client.post(
        "/api/v1/traits",
        content=b"name: [",
        headers={**ADMIN, "Content-Type": "application/yaml"},
    )
    assert bad_yaml.status_code == 400
    not_object = client.post("/api/v1/traits", json=["orders"], headers=ADMIN)
    assert not_object.status_code == 422
    nowhere = client.post(
        "/api/v1/traits", params={"bu": "nowhere"}, json=API_EXAMPLE, headers=ADMIN
    )
    assert nowhere.status_code == 404
    assert client.post("/api/v1/traits", json=API_EXAMPLE, headers=ADMIN).status_code == 201
    twice = client.post("/api/v1/traits", json=API_EXAMPLE, headers=ADMIN)
    assert twice.status_code == 409 and twice.json()["name"] == "orders_90d"
    assert client.get("/api/v1/traits/nope", headers=ADMIN).status_code == 404
    assert client.put("/api/v1/traits/nope", json=API_EXAMPLE, headers=ADMIN).status_code == 404
    assert client.delete("/api/v1/traits/nope", headers=ADMIN).status_code == 404
    assert client.post("/api/v1/traits/nope/recompute", headers=ADMIN).status_code == 404
    assert client.get("/api/v1/traits").status_code == 401
    huge = client.post(
        "/api/v1/traits",
        content=b"{" + b" " * 70_000 + b"}",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413


# --- CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(db_url: str, api_world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    yield CliRunner()


def test_the_cli_defines_shows_recomputes_and_deletes(cli: CliRunner, tmp_path: Path) -> None:
    definition = tmp_path / "orders_90d.yaml"
    definition.write_text(
        "name: orders_90d\ndescription: 近 90 天订单数\nevent: Order Completed\n"
        "aggregate: count\nwindow: {amount: 90, unit: days}\n",
        encoding="utf-8",
    )
    made = cli.invoke(cli_app, ["traits", "create", "--file", str(definition), "--bu", "north"])
    assert made.exit_code == 0, made.output
    assert "1 values written" in made.output
    listed = cli.invoke(cli_app, ["traits", "list", "--json"])
    assert listed.exit_code == 0 and orjson.loads(listed.output)[0]["name"] == "orders_90d"
    table = cli.invoke(cli_app, ["traits", "list"], env={"COLUMNS": "200"})
    assert "orders_90d" in table.output and "Order Completed" in table.output
    shown = cli.invoke(cli_app, ["traits", "show", "orders_90d"])
    assert shown.exit_code == 0 and "近 90 天订单数" in shown.output
    again = cli.invoke(cli_app, ["traits", "recompute", "--trait", "orders_90d", "--bu", "north"])
    assert again.exit_code == 0 and "0 values written" in again.output
    as_json = tmp_path / "pages.json"
    as_json.write_text(
        orjson.dumps({"name": "pages", "event": PAGE, "aggregate": "count"}).decode()
    )
    assert cli.invoke(cli_app, ["traits", "create", "--file", str(as_json)]).exit_code == 0
    changed = cli.invoke(
        cli_app, ["traits", "update", "orders_90d", "--file", str(definition), "--no-compute"]
    )
    assert changed.exit_code == 0 and "version 2" in changed.output
    assert cli.invoke(cli_app, ["traits", "recompute"]).exit_code == 0
    gone = cli.invoke(cli_app, ["traits", "delete", "orders_90d"])
    assert gone.exit_code == 0 and "1 values" in gone.output
    missing = cli.invoke(cli_app, ["traits", "show", "orders_90d"])
    assert missing.exit_code == 1 and "no trait named" in missing.output


def test_the_cli_names_the_bad_path(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: orders\nevent: Order Completed\naggregate: count\n"
        "where: [{property: x, op: like, value: 1}]\n",
        encoding="utf-8",
    )
    failed = cli.invoke(cli_app, ["traits", "create", "--file", str(bad)])
    assert failed.exit_code == 1 and "where[0].op" in failed.output
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{nope")
    failed = cli.invoke(cli_app, ["traits", "create", "--file", str(garbled)])
    assert failed.exit_code == 1 and "not valid JSON" in failed.output
    unknown = cli.invoke(cli_app, ["traits", "recompute", "--bu", "nowhere"])
    assert unknown.exit_code == 1 and "nowhere" in unknown.output
    assert cli.invoke(cli_app, ["traits", "create"]).exit_code == 2


@pytest.mark.parametrize("command", ["list", "show", "create", "update", "delete", "recompute"])
def test_every_command_has_an_example(command: str) -> None:
    shown = CliRunner().invoke(cli_app, ["traits", command, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "Example: oneloop traits" in shown.output


def test_trait_definitions_are_stored_as_validated(
    world: World, session: Session, ctx: Context
) -> None:
    trait_id = define(session, ctx, name="orders", event=ORDER, aggregate="count")
    row = session.get(TraitDefRow, trait_id)
    assert row is not None and row.definition == {
        "name": "orders",
        "event": ORDER,
        "aggregate": "count",
    }


# --- through the pipeline -------------------------------------------------------------------


def test_the_profiles_consumer_keeps_traits_current_through_a_merge_and_a_night(
    engine: Engine, session: Session, ctx: Context, clock: FixedClock
) -> None:
    """Tracked calls in through ingest, resolution and the profiles consumer: the values that
    ``refresh`` and ``sweep`` leave behind are the ones a full recompute finds."""
    clock.at = T0
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    orders = define(session, ctx, name="orders", event=ORDER, aggregate="count")
    revenue = define(session, ctx, name="revenue", event=ORDER, aggregate="sum", property="revenue")
    today = define(
        session, ctx, name="orders_today", event=ORDER, aggregate="count", window={"amount": 1}
    )
    session.commit()
    counter = iter(range(1_000))

    def feed(*calls: dict[str, object]) -> None:
        batch = [
            {"messageId": f"m{next(counter)}", "timestamp": clock.now().isoformat(), **c}
            for c in calls
        ]
        messages, invalid = parse_batch({"batch": batch}, clock.now())
        ingest(session, source, messages, invalid, received_at=clock.now(), origin="api", ref="t")
        session.commit()
        done = consumers.drain(
            session_factory(engine),
            [ResolveConsumer(), ProfilesConsumer(clock=clock)],
            tasks=[IdentityChanges(clock=clock), Sweep(clock=clock)],
            clock=clock,
        )
        assert all(r.failed == 0 for r in done.values())
        session.expire_all()

    feed({"type": "track", "anonymousId": "a1", "event": ORDER, "properties": {"revenue": 100}})
    feed({"type": "track", "userId": "u1", "event": ORDER, "properties": {"revenue": "abc"}})
    assert sorted(stored(session, orders).values()) == [1, 1]
    absorbed = set(stored(session, orders))
    feed({"type": "identify", "anonymousId": "a1", "userId": "u1", "traits": {}})
    survivor = session.scalars(select(ProfileRow.id)).one()
    assert stored(session, orders) == {survivor: 2} and stored(session, revenue) == {survivor: 100}
    assert stored(session, today) == {survivor: 2}
    assert survivor in absorbed and len(absorbed) == 2
    clock.advance(timedelta(days=1))
    feed()  # nothing new: the sweep alone closes yesterday
    assert stored(session, today) == {} and stored(session, orders) == {survivor: 2}
    before = snapshot(session)
    assert traits.recompute(session, ctx) == 0 and snapshot(session) == before
