"""Scores: the model language, the engine, the stored state kept equal to a replay, thresholds
that set and take away tags, business-unit scope, the API and the CLI.

Events are written into ``profiles_event`` directly, as the projection would: the engine does
not care how an event got there, and this keeps the random streams fast on both databases.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, inspect, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.core.context import Context
from oneloop.core.errors import NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.governance import audit
from oneloop.profiles import score_models, scores
from oneloop.profiles.filters import When, zone_of
from oneloop.profiles.models import (
    ProfileEventRow,
    ProfileRow,
    ProfileTagRow,
    ProfileUnitRow,
    ScoreHistoryRow,
    ScoreRow,
    TagCategoryRow,
    TagHistoryRow,
    TagRow,
)
from oneloop.profiles.score_rules import (
    INTENT_EXAMPLE,
    Running,
    apply,
    decayed,
    parse_model,
    value_now,
)
from tests.conftest import ADMIN
from tests.factories import make_group

ZONE = zone_of(None)
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def at(moment: datetime) -> When:
    return When(now=moment, zone=ZONE)


def model(code: str, rules: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"code": code, "name_zh": code, "name_en": code.title(), "rules": rules, **more}


# --- fixtures and helpers -------------------------------------------------------------------


@dataclass(frozen=True)
class Units:
    group: str
    north: str
    south: str


@pytest.fixture
def units(session: Session, ctx: Context) -> Units:
    group, north, south = make_group(session, ctx)
    return Units(group.id, north.id, south.id)


def make_tag(
    session: Session, bu_id: str, code: str = "high_intent", kind: str = "manual"
) -> TagRow:
    """A tag (and its category) written directly: the tag service is not under test here."""
    category = session.scalar(
        select(TagCategoryRow).where(TagCategoryRow.bu_id == bu_id, TagCategoryRow.code == "intent")
    )
    if category is None:
        category = TagCategoryRow(
            id=new_id(), bu_id=bu_id, code="intent", name_zh="意向", name_en="Intent", created_at=T0
        )
        session.add(category)
    tag = TagRow(
        id=new_id(),
        bu_id=bu_id,
        category_id=category.id,
        code=code,
        name_zh="高意向" if code == "high_intent" else code,
        name_en="High intent" if code == "high_intent" else code,
        description="",
        kind=kind,
        rule={"trait": "x", "op": "exists"} if kind == "rule" else None,
        expires_after_days=None,
        version=1,
        created_at=T0,
        created_by="test",
        updated_at=T0,
    )
    session.add(tag)
    session.flush()
    return tag


@dataclass
class Events:
    """Writes events as the profiles projection would, with increasing seqs."""

    session: Session
    seq: int = 0
    written: list[int] = field(default_factory=list)

    def add(self, profile: str, name: str, when: datetime, bu: str, properties: Any = None) -> int:
        if self.session.get(ProfileRow, profile) is None:
            self.session.add(
                ProfileRow(
                    id=profile, first_seen_at=when, last_seen_at=when, events=0, updated_at=when
                )
            )
        if self.session.get(ProfileUnitRow, (profile, bu)) is None:
            self.session.add(
                ProfileUnitRow(profile_id=profile, bu_id=bu, first_at=when, last_at=when)
            )
        self.seq += 1
        self.session.add(
            ProfileEventRow(
                seq=self.seq,
                profile_id=profile,
                bu_id=bu,
                source_id="src",
                type="track",
                name=name,
                department="marketing",
                at=when,
                properties={} if properties is None else properties,
            )
        )
        self.session.flush()
        self.written.append(self.seq)
        return self.seq


def held(session: Session, profile: str) -> dict[str, ProfileTagRow]:
    return {
        row.tag_id: row
        for row in session.scalars(select(ProfileTagRow).where(ProfileTagRow.profile_id == profile))
    }


def value_of(
    session: Session, profile: str, code: str, now: datetime, units: tuple[str, ...]
) -> float:
    found = [s for s in scores.scores_of(session, profile, units, now=now) if s.code == code]
    assert len(found) == 1
    return found[0].value


def awards(session: Session, profile: str) -> list[tuple[str, int | None, float]]:
    """(rule, seq, points) oldest first."""
    return [
        (p.rule, p.seq, p.points) for p in reversed(scores.history(session, profile, limit=500))
    ]


# --- the seed example -----------------------------------------------------------------------


def test_seed_example_tags_high_intent_until_the_score_decays(
    session: Session, ctx: Context, units: Units
) -> None:
    tag = make_tag(session, units.group)
    score_models.create_model(session, ctx, INTENT_EXAMPLE, bu="north")
    events = Events(session)
    visitor = "visitor-1"
    registered = events.add(visitor, "Summit Registered", T0, units.north, {"summit_id": "SH"})
    assert scores.refresh(session, {visitor: [registered]}, (), at(T0)) == {visitor}
    assert tag.id not in held(session, visitor)

    paper = events.add(visitor, "Whitepaper Downloaded", T0, units.north, {"title": "白皮书"})
    pricing = events.add(
        visitor, "Page Viewed", T0, units.north, {"path": "/pricing", "name": "价格页"}
    )
    assert scores.refresh(session, {visitor: [paper, pricing]}, (), at(T0)) == {visitor}
    assert value_of(session, visitor, "intent", T0, (units.north, units.group)) == 45
    tagged = held(session, visitor)[tag.id]
    assert (tagged.source, tagged.set_by, tagged.reason) == (
        "score",
        "score:intent",
        "intent 45 ≥ 40",
    )

    history = scores.history(session, visitor)
    assert [(p.rule, p.event, p.points, p.value_after) for p in history] == [
        ("pricing_page", "Page Viewed", 15, 45),
        ("whitepaper", "Whitepaper Downloaded", 10, 30),
        ("summit", "Summit Registered", 20, 20),
    ]

    # checking in at the summit the same month earns nothing more: 20 points per month
    checked_in = events.add(visitor, "Summit Checked In", T0 + HOUR, units.north)
    assert scores.refresh(session, {visitor: [checked_in]}, (), at(T0 + HOUR)) == set()

    # a 30-day half-life takes 45 under 40 in a little over five days
    assert scores.sweep(session, at(T0 + 5 * DAY)) == {visitor}  # 40.09: still tagged
    assert tag.id in held(session, visitor)
    later = T0 + 6 * DAY
    assert scores.sweep(session, at(later)) == {visitor}
    assert tag.id not in held(session, visitor)
    row = session.scalar(select(ScoreRow).where(ScoreRow.profile_id == visitor))
    assert row is not None and row.as_of == later
    assert row.value == pytest.approx(45 * 0.5 ** (6 / 30))
    removed = session.scalars(
        select(TagHistoryRow).where(TagHistoryRow.profile_id == visitor).order_by(TagHistoryRow.id)
    ).all()
    assert [(h.action, h.source) for h in removed] == [("set", "score"), ("removed", "score")]
    assert removed[-1].reason == "intent 39.2 < 40"
    assert scores.sweep(session, at(later + HOUR)) == set()  # nothing left to move


def test_old_events_are_stored_decayed_to_now(session: Session, ctx: Context, units: Units) -> None:
    """Segment rules compare the stored value: a backfilled history must not look hot."""
    tag = make_tag(session, units.group)
    score_models.create_model(session, ctx, INTENT_EXAMPLE)
    events = Events(session)
    long_ago = T0 - 60 * DAY
    seqs = [
        events.add("old", "Summit Checked In", long_ago, units.north),
        events.add("old", "Whitepaper Downloaded", long_ago, units.north),
        events.add("old", "Page Viewed", long_ago, units.north, {"path": "/pricing"}),
    ]
    assert scores.refresh(session, {"old": seqs}, (), at(T0)) == {"old"}
    row = session.scalar(select(ScoreRow).where(ScoreRow.profile_id == "old"))
    assert row is not None and (row.value, row.as_of) == (pytest.approx(45 / 4), T0)
    assert [p.value_after for p in scores.history(session, "old")] == [45, 30, 20]
    assert tag.id not in held(session, "old")


# --- the engine, without a database ---------------------------------------------------------


@dataclass(frozen=True)
class Ev:
    seq: int
    at: datetime
    name: str
    properties: Any = field(default_factory=dict)


def test_decay_halves_the_value_every_half_life_and_composes() -> None:
    doc = parse_model(
        model(
            "engagement",
            [{"id": "a", "event": "A", "points": 40}, {"id": "b", "event": "B", "points": 5}],
            half_life_days=10,
        )
    )
    state = Running()
    given = apply(doc, state, [Ev(1, T0, "A"), Ev(2, T0 + 10 * DAY, "B")], at(T0))
    assert [g.value_after for g in given] == [40, pytest.approx(25)]
    assert value_now(state.value, state.at, T0 + 30 * DAY, 10) == pytest.approx(6.25)
    step = decayed(25, T0 + 10 * DAY, T0 + 17 * DAY, 10)
    assert decayed(step, T0 + 17 * DAY, T0 + 30 * DAY, 10) == pytest.approx(6.25)
    assert decayed(step, T0 + 17 * DAY, T0 + 10 * DAY, 10) == pytest.approx(25)  # runs back
    assert value_now(25, T0 + 10 * DAY, T0, 10) == 25  # a future as_of is not grown back
    assert value_now(25, T0, T0 + 1000 * DAY, None) == 25  # no half-life: no decay
    # far back from a value decayed to almost nothing: 2^1500 overflows a float, the value not
    assert decayed(2.0**-1000, T0, T0 - 1500 * DAY, 1) == pytest.approx(2.0**500)
    assert decayed(-(2.0**-1000), T0, T0 - 1500 * DAY, 1) == pytest.approx(-(2.0**500))


def test_a_points_cap_clips_the_last_award_and_weeks_start_on_monday_in_shanghai() -> None:
    doc = parse_model(
        model(
            "reading",
            [
                {
                    "id": "read",
                    "event": "Article Read",
                    "points": 10,
                    "cap": {"points": 25, "per": "week"},
                }
            ],
        )
    )
    sunday_night = datetime(2026, 3, 8, 15, 0, tzinfo=UTC)  # 23:00 Sunday in Shanghai
    monday = datetime(2026, 3, 8, 16, 10, tzinfo=UTC)  # 00:10 Monday in Shanghai (UTC: Sunday)
    stream = [Ev(i, sunday_night + i * timedelta(minutes=5), "Article Read") for i in range(1, 5)]
    given = apply(doc, Running(), [*stream, Ev(9, monday, "Article Read")], at(monday))
    assert [(g.seq, g.points) for g in given] == [(1, 10), (2, 10), (3, 5), (9, 10)]


@pytest.mark.parametrize(
    ("per", "times", "expected"),
    [
        # 23:59 on 31 January and 00:01 on 1 February in Shanghai: two months
        (
            "month",
            [datetime(2026, 1, 31, 15, 59, tzinfo=UTC), datetime(2026, 1, 31, 16, 1, tzinfo=UTC)],
            [1, 2],
        ),
        (
            "month",
            [datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 31, 15, 59, tzinfo=UTC)],
            [1],
        ),
        ("ever", [datetime(2024, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)], [1]),
        (
            "day",
            [datetime(2026, 3, 1, 15, 0, tzinfo=UTC), datetime(2026, 3, 1, 16, 0, tzinfo=UTC)],
            [1, 2],
        ),
        (
            "week",
            [datetime(2026, 3, 2, 16, 0, tzinfo=UTC), datetime(2026, 3, 8, 15, 0, tzinfo=UTC)],
            [1],
        ),
    ],
)
def test_a_cap_per_calendar_period_counts_in_the_units_zone(
    per: str, times: list[datetime], expected: list[int]
) -> None:
    doc = parse_model(
        model("once", [{"id": "x", "event": "X", "points": 1, "cap": {"times": 1, "per": per}}])
    )
    events = [Ev(i, moment, "X") for i, moment in enumerate(times, start=1)]
    assert [g.seq for g in apply(doc, Running(), events, at(times[-1]))] == expected


def test_an_event_matching_several_rules_earns_each_in_rule_order() -> None:
    doc = parse_model(
        model(
            "pages",
            [
                {"id": "any_page", "event": "Page Viewed", "points": 1},
                {
                    "id": "pricing",
                    "event": "Page Viewed",
                    "where": [{"property": "path", "op": "eq", "value": "/pricing"}],
                    "points": 15,
                },
            ],
        )
    )
    given = apply(doc, Running(), [Ev(1, T0, "Page Viewed", {"path": "/pricing"})], at(T0))
    assert [(g.rule, g.value_after) for g in given] == [("any_page", 1), ("pricing", 16)]


# --- bad documents --------------------------------------------------------------------------


def _bad(change: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(INTENT_EXAMPLE))
    change(doc)
    return doc


BAD = [
    (lambda d: d["rules"][2]["cap"].update(per="fortnight"), "rules[2].cap.per"),
    (lambda d: d.pop("code"), "code"),
    (lambda d: d.update(code="Intent!"), "code"),
    (lambda d: d.update(colour="red"), "colour"),
    (lambda d: d.update(rules=[]), "rules"),
    (lambda d: d.update(rules={"a": 1}), "rules"),
    (lambda d: d["rules"][0].update(points=0), "rules[0].points"),
    (lambda d: d["rules"][0].update(points="10"), "rules[0].points"),
    (lambda d: d["rules"][0].update(points=True), "rules[0].points"),
    (lambda d: d["rules"][1].update(id="summit"), "rules[1].id"),
    (lambda d: d["rules"][1].update(id="a b"), "rules[1].id"),
    (lambda d: d["rules"][1].update(event=""), "rules[1].event"),
    (lambda d: d["rules"][1].update(event=None), "rules[1].event"),
    (lambda d: d["rules"][1].update(colour="red"), "rules[1].colour"),
    (lambda d: d["rules"][2]["where"][0].update(op="like"), "rules[2].where[0].op"),
    (lambda d: d["rules"][2]["where"][0].update(property=""), "rules[2].where[0].property"),
    (
        lambda d: d["rules"][2]["where"].append(
            {"property": "at", "op": "within_last", "value": {"amount": 7, "unit": "days"}}
        ),
        "rules[2].where[1].op",
    ),
    (lambda d: d["rules"][0]["cap"].update(times=2), "rules[0].cap"),
    (lambda d: d["rules"][0].update(cap={"per": "day"}), "rules[0].cap"),
    (lambda d: d["rules"][0].update(cap={"times": 0, "per": "day"}), "rules[0].cap.times"),
    (lambda d: d["rules"][0].update(cap={"points": -5, "per": "day"}), "rules[0].cap.points"),
    (lambda d: d["rules"][0].update(cap=[1]), "rules[0].cap"),
    (lambda d: d.update(half_life_days=-1), "half_life_days"),
    (lambda d: d.update(half_life_days=True), "half_life_days"),
    (lambda d: d.update(half_life_days="30"), "half_life_days"),
    (lambda d: d.update(name_zh="", name_en=None), "name_zh"),
    (lambda d: (d.pop("name_zh"), d.pop("name_en")), "name_en"),
    (lambda d: d["thresholds"][0].update(min=0), "thresholds[0].min"),
    (lambda d: d["thresholds"][0].update(tag="高意向"), "thresholds[0].tag"),
    (lambda d: d["thresholds"].append({"min": 60, "tag": "high_intent"}), "thresholds[1].tag"),
    (lambda d: d.update(thresholds="high"), "thresholds"),
]


@pytest.mark.parametrize(("change", "path"), BAD)
def test_a_bad_model_document_names_the_bad_path(change: Any, path: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse_model(_bad(change))
    assert [e.path for e in raised.value.errors] == [path]


@pytest.mark.parametrize("junk", [None, [], "intent", 42, {"rules": None}])
def test_a_document_that_is_not_a_model_is_refused(junk: object) -> None:
    with pytest.raises(ValidationFailed):
        parse_model(junk)


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
CAP = st.fixed_dictionaries(
    {"per": st.sampled_from(["day", "week", "month", "ever", "year"])},
    optional={"times": st.integers(-1, 3) | JSON, "points": st.integers(-1, 30) | JSON},
)
WHERE = st.lists(
    st.fixed_dictionaries(
        {
            "property": st.sampled_from(["path", "a.0.b", "", "a..b"]),
            "op": st.sampled_from(["eq", "in", "gte", "within_last", "exists", "nope"]),
        },
        optional={"value": JSON},
    ),
    max_size=2,
)
RULE = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["a", "b", ""]),
        "event": st.sampled_from(["A", "", 1, ["A", "B"]]),
        "points": st.integers(-3, 3) | JSON,
    },
    optional={"cap": CAP | JSON, "where": WHERE | JSON},
)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "code": st.sampled_from(["intent", "X", 3]),
            "name_en": st.just("x"),
            "rules": st.lists(RULE, max_size=3),
        },
        optional={"half_life_days": JSON, "thresholds": JSON},
    )
    | JSON
)
def test_parsing_junk_never_crashes_and_round_trips(doc: object) -> None:
    try:
        parsed = parse_model(doc)
    except ValidationFailed as exc:
        assert exc.errors and exc.errors[0].msg
        return
    assert parse_model(dict(parsed.document)) == parsed


# --- caps, negative points, filters, hostile values (both databases) ------------------------


def test_caps_per_day_follow_the_shanghai_calendar(
    session: Session, ctx: Context, units: Units
) -> None:
    doc = model(
        "visits",
        [
            {
                "id": "pricing",
                "event": "Page Viewed",
                "where": [{"property": "path", "op": "eq", "value": "/pricing"}],
                "points": 15,
                "cap": {"times": 2, "per": "day"},
            }
        ],
    )
    score_models.create_model(session, ctx, doc)
    events = Events(session)
    p = "pricing-fan"
    night = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai, 1 March
    for minutes in (0, 30, 45, 70):  # the last is 00:10 on 2 March in Shanghai
        seq = events.add(
            p, "Page Viewed", night + timedelta(minutes=minutes), units.north, {"path": "/pricing"}
        )
        scores.refresh(session, {p: [seq]}, (), at(night + 2 * HOUR))
    assert awards(session, p) == [("pricing", 1, 15), ("pricing", 2, 15), ("pricing", 4, 15)]
    assert value_of(session, p, "visits", night + 2 * HOUR, (units.group,)) == 45
    scores.refresh(session, {}, [p], at(night + 2 * HOUR))
    assert awards(session, p) == [("pricing", 1, 15), ("pricing", 2, 15), ("pricing", 4, 15)]


def test_negative_points_take_a_tag_away_and_a_cap_bounds_them(
    session: Session, ctx: Context, units: Units
) -> None:
    engaged = make_tag(session, units.group, "engaged")
    doc = model(
        "engagement",
        [
            {"id": "open", "event": "Email Opened", "points": 3},
            {
                "id": "unsubscribe",
                "event": "Unsubscribed",
                "points": -10,
                "cap": {"points": 10, "per": "ever"},
            },
        ],
        thresholds=[{"min": 5, "tag": "engaged"}],
    )
    score_models.create_model(session, ctx, doc)
    events = Events(session)
    p = "reader"
    opens = [events.add(p, "Email Opened", T0 + i * HOUR, units.south) for i in range(3)]
    assert scores.refresh(session, {p: opens}, (), at(T0 + 3 * HOUR)) == {p}
    assert engaged.id in held(session, p)
    gone = events.add(p, "Unsubscribed", T0 + 4 * HOUR, units.south)
    assert scores.refresh(session, {p: [gone]}, (), at(T0 + 4 * HOUR)) == {p}
    assert value_of(session, p, "engagement", T0 + 4 * HOUR, (units.group,)) == -1
    assert engaged.id not in held(session, p)
    again = events.add(p, "Unsubscribed", T0 + 5 * HOUR, units.south)
    assert scores.refresh(session, {p: [again]}, (), at(T0 + 5 * HOUR)) == set()
    assert awards(session, p)[-1] == ("unsubscribe", gone, -10)


FILTERED = model(
    "filtered",
    [
        {
            "id": "pricing",
            "event": "Page Viewed",
            "where": [{"property": "path", "op": "eq", "value": "/pricing"}],
            "points": 15,
        },
        {
            "id": "big_order",
            "event": "Order Completed",
            "where": [
                {"property": "revenue", "op": "gte", "value": 1000},
                {"property": "products.0.category", "op": "eq", "value": "robot"},
            ],
            "points": 30,
        },
        {
            "id": "campaign",
            "event": ["Ad Clicked", "Email Clicked"],
            "where": [{"property": "utm_source", "op": "in", "value": ["wechat", "baidu"]}],
            "points": 2,
        },
        {
            "id": "coupon",
            "event": "Form Submitted",
            "where": [{"property": "comment", "op": "contains", "value": "50%_off"}],
            "points": 1,
        },
        {
            "id": "injection",
            "event": "Page Viewed",
            "where": [
                {"property": "path", "op": "eq", "value": "'); DROP TABLE profiles_event; --"}
            ],
            "points": 4,
        },
        {
            "id": "vip",
            "event": "Identify",
            "where": [{"property": "vip", "op": "eq", "value": True}],
            "points": 5,
        },
    ],
)

# (event, properties, rule that must match or None)
FILTER_CASES: list[tuple[str, Any, str | None]] = [
    ("Page Viewed", {"path": "/pricing"}, "pricing"),
    ("Page Viewed", {"path": "/pricing?from=ad"}, None),
    ("Page Viewed", {"path": "/PRICING"}, None),
    ("Page Viewed", {"path": ["/pricing"]}, None),
    ("Page Viewed", {"path": {"eq": "/pricing"}}, None),
    ("Page Viewed", {"path": None}, None),
    ("Page Viewed", {}, None),
    ("Page Viewed", {"path": "/价格"}, None),
    ("Page Viewed", {"path": "'); DROP TABLE profiles_event; --"}, "injection"),
    ("Order Completed", {"revenue": 1000, "products": [{"category": "robot"}]}, "big_order"),
    ("Order Completed", {"revenue": 1e308, "products": [{"category": "robot"}]}, "big_order"),
    ("Order Completed", {"revenue": 999.99, "products": [{"category": "robot"}]}, None),
    ("Order Completed", {"revenue": "5000", "products": [{"category": "robot"}]}, None),
    ("Order Completed", {"revenue": "abc", "products": [{"category": "robot"}]}, None),
    ("Order Completed", {"revenue": True, "products": [{"category": "robot"}]}, None),
    ("Order Completed", {"revenue": {"$gt": 0}, "products": [{"category": "robot"}]}, None),
    (
        "Order Completed",
        {"revenue": 5000, "products": [{"category": "pump"}, {"category": "robot"}]},
        None,
    ),
    # a number in a path is a list position, never an object key named "0"
    ("Order Completed", {"revenue": 5000, "products": {"0": {"category": "robot"}}}, None),
    ("Order Completed", {"revenue": 5000, "products": "robot"}, None),
    ("Ad Clicked", {"utm_source": "wechat"}, "campaign"),
    ("Email Clicked", {"utm_source": "baidu"}, "campaign"),
    ("Email Clicked", {"utm_source": "WeChat"}, None),
    ("Email Opened", {"utm_source": "wechat"}, None),
    ("Form Submitted", {"comment": "get 50%_off today"}, "coupon"),
    ("Form Submitted", {"comment": "get 50 percent_off"}, None),  # % is not a wildcard
    ("Form Submitted", {"comment": "get 50%Xoff"}, None),  # nor is _
    ("Form Submitted", {"comment": 50}, None),
    ("Identify", {"vip": True}, "vip"),
    ("Identify", {"vip": "true"}, None),
    ("Identify", {"vip": 1}, None),
]


def test_property_filters_and_hostile_values_mean_the_same_incrementally_and_in_a_replay(
    session: Session, ctx: Context, units: Units
) -> None:
    score_models.create_model(session, ctx, FILTERED)
    events = Events(session)
    expected: dict[str, list[tuple[str, int]]] = {}
    for i, (name, properties, rule) in enumerate(FILTER_CASES):
        p = f"p{i % 4}"
        seq = events.add(p, name, T0 + i * HOUR, units.north, properties)
        scores.refresh(session, {p: [seq]}, (), at(T0 + i * HOUR))
        if rule is not None:
            expected.setdefault(p, []).append((rule, seq))
    incremental = {p: [(r, s) for r, s, _ in awards(session, p)] for p in ("p0", "p1", "p2", "p3")}
    assert {p: a for p, a in incremental.items() if a} == expected
    scores.refresh(session, {}, ["p0", "p1", "p2", "p3"], at(T0 + 100 * HOUR))
    replayed = {p: [(r, s) for r, s, _ in awards(session, p)] for p in ("p0", "p1", "p2", "p3")}
    assert replayed == incremental
    assert "profiles_event" in inspect(session.get_bind()).get_table_names()


# --- late events, redelivery, merges --------------------------------------------------------


def test_a_late_event_replays_the_profile_so_caps_go_to_the_earlier_event(
    session: Session, ctx: Context, units: Units
) -> None:
    doc = model(
        "daily", [{"id": "visit", "event": "Visit", "points": 5, "cap": {"times": 1, "per": "day"}}]
    )
    score_models.create_model(session, ctx, doc)
    events = Events(session)
    first = events.add("p", "Visit", T0 + 2 * HOUR, units.north)
    scores.refresh(session, {"p": [first]}, (), at(T0 + 3 * HOUR))
    late = events.add("p", "Visit", T0 + HOUR, units.north)  # arrives later, happened earlier
    scores.refresh(session, {"p": [late]}, (), at(T0 + 3 * HOUR))
    assert awards(session, "p") == [("visit", late, 5)]
    # the same batch delivered twice counts once
    assert scores.refresh(session, {"p": [late, first]}, (), at(T0 + 3 * HOUR)) == set()
    assert awards(session, "p") == [("visit", late, 5)]


def test_a_merge_replays_both_profiles(session: Session, ctx: Context, units: Units) -> None:
    tag = make_tag(session, units.group)
    score_models.create_model(session, ctx, INTENT_EXAMPLE)
    events = Events(session)
    a = [events.add("a", "Summit Checked In", T0, units.north)]
    b = [
        events.add("b", "Whitepaper Downloaded", T0, units.north),
        events.add("b", "Page Viewed", T0, units.north, {"path": "/pricing"}),
    ]
    scores.refresh(session, {"a": a, "b": b}, (), at(T0))
    assert tag.id not in held(session, "a") and tag.id not in held(session, "b")
    session.execute(
        update(ProfileEventRow).where(ProfileEventRow.profile_id == "b").values(profile_id="a")
    )
    assert scores.refresh(session, {}, ["a", "b"], at(T0)) == {"a", "b"}
    assert value_of(session, "a", "intent", T0, (units.group,)) == 45
    assert tag.id in held(session, "a")
    assert session.scalars(select(ScoreRow).where(ScoreRow.profile_id == "b")).all() == []
    assert (
        session.scalars(select(ScoreHistoryRow).where(ScoreHistoryRow.profile_id == "b")).all()
        == []
    )


@dataclass(frozen=True)
class Snapshot:
    values: dict[tuple[str, str], float]
    awards: dict[str, list[tuple[str, int | None, float]]]
    tags: dict[str, list[str]]

    def matches(self, other: Snapshot) -> bool:
        return (
            self.awards == other.awards
            and self.tags == other.tags
            and self.values == pytest.approx(other.values, abs=1e-6)
        )


def snapshot(session: Session, profiles: list[str], now: datetime, units: Units) -> Snapshot:
    scope = (units.north, units.south, units.group)
    return Snapshot(
        values={
            (p, s.code): s.value
            for p in profiles
            for s in scores.scores_of(session, p, scope, now=now)
        },
        awards={p: awards(session, p) for p in profiles},
        tags={p: sorted(held(session, p)) for p in profiles},
    )


def test_incremental_scoring_equals_a_replay_on_random_streams(
    session: Session, ctx: Context, units: Units
) -> None:
    make_tag(session, units.group, "warm")
    make_tag(session, units.group, "hot")
    mixed = model(
        "mixed",
        [
            {"id": "view", "event": "Page Viewed", "points": 1, "cap": {"points": 3, "per": "day"}},
            {
                "id": "pricing",
                "event": "Page Viewed",
                "where": [{"property": "path", "op": "eq", "value": "/pricing"}],
                "points": 7,
                "cap": {"times": 2, "per": "week"},
            },
            {
                "id": "order",
                "event": "Order Completed",
                "where": [{"property": "revenue", "op": "gt", "value": 100}],
                "points": 12.5,
                "cap": {"points": 30, "per": "month"},
            },
            {"id": "once", "event": "Signed Up", "points": 10, "cap": {"times": 1, "per": "ever"}},
            {"id": "unsubscribe", "event": "Unsubscribed", "points": -8},
        ],
        half_life_days=9,
        thresholds=[{"min": 10, "tag": "warm"}, {"min": 25, "tag": "hot"}],
    )
    score_models.create_model(session, ctx, mixed)
    north_only = model(
        "north_only", [{"id": "any", "event": ["Page Viewed", "Order Completed"], "points": 2}]
    )
    score_models.create_model(session, ctx, north_only, bu="north")
    rng = random.Random(20260302)
    events = Events(session)
    profiles = [f"r{i}" for i in range(5)]
    names = ["Page Viewed", "Order Completed", "Signed Up", "Unsubscribed", "Email Opened"]
    shapes = [{"path": "/pricing"}, {"path": "/"}, {"revenue": 150}, {"revenue": "150"}, {}]
    now = T0
    for _ in range(14):  # batches
        now += timedelta(hours=rng.randint(1, 60))
        batch: dict[str, list[int]] = {}
        for _ in range(rng.randint(1, 12)):
            p = rng.choice(profiles)
            # mostly as it happens, sometimes hours or days late
            happened = now - timedelta(minutes=rng.choice([0, 0, 5, 90, 600, 3000, 9000]))
            unit = rng.choice([units.north, units.south])
            seq = events.add(p, rng.choice(names), happened, unit, rng.choice(shapes))
            batch.setdefault(p, []).append(seq)
        scores.refresh(session, batch, (), at(now))
        if rng.random() < 0.4:
            scores.sweep(session, at(now))
    scores.sweep(session, at(now))
    incremental = snapshot(session, profiles, now, units)
    assert any(incremental.awards.values()) and any(incremental.tags.values())
    scores.refresh(session, {}, profiles, at(now))
    assert snapshot(session, profiles, now, units).matches(incremental)
    assert scores.recompute(session, ctx, when=at(now)) > 0
    assert snapshot(session, profiles, now, units).matches(incremental)


def test_a_batch_of_500_events_costs_a_few_queries_per_model(
    session: Session, ctx: Context, units: Units, engine: Engine
) -> None:
    make_tag(session, units.group)
    score_models.create_model(session, ctx, INTENT_EXAMPLE)
    score_models.create_model(session, ctx, FILTERED, bu="north")
    events = Events(session)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    for day in range(2):  # new score rows first, then updates of stored ones
        batch: dict[str, list[int]] = {}
        for i in range(500):
            p = f"q{i % 100}"
            moment = T0 + day * DAY + i * timedelta(seconds=10)
            seq = events.add(p, "Page Viewed", moment, units.north, {"path": "/pricing"})
            batch.setdefault(p, []).append(seq)
        statements.clear()
        tagged = len(session.scalars(select(ProfileTagRow)).all())
        event.listen(engine, "before_cursor_execute", count)
        try:
            changed = scores.refresh(session, batch, (), at(T0 + day * DAY + 2 * HOUR))
            session.flush()
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(changed) == 100
        # setting a tag looks it up and writes its history (tags.assign): per profile that
        # crosses a threshold, not per event
        newly_tagged = len(session.scalars(select(ProfileTagRow)).all()) - tagged
        assert newly_tagged == (100 if day else 0)
        assert len(statements) < 30 + 2 * newly_tagged, statements


# --- business-unit scope --------------------------------------------------------------------


@pytest.fixture
def north_ctx(ctx: Context, units: Units) -> Context:
    return Context(
        bu_id=units.north,  # type: ignore[arg-type]
        user_id="marketer",  # type: ignore[arg-type]
        permissions=frozenset({"profiles.read", "profiles.admin", "governance.bu.read"}),
        clock=ctx.clock,
    )


def test_a_units_model_counts_only_its_units_events_and_its_users_see_only_their_models(
    session: Session, ctx: Context, units: Units, north_ctx: Context
) -> None:
    group_tag = make_tag(session, units.group)
    north_tag = make_tag(session, units.north)  # the unit's own tag of the same code wins
    north = score_models.create_model(session, north_ctx, INTENT_EXAMPLE)
    south = score_models.create_model(
        session,
        ctx,
        model("intent", [{"id": "x", "event": "Page Viewed", "points": 1}]),
        bu="south",
    )
    group = score_models.create_model(
        session, ctx, model("engagement", [{"id": "x", "event": "Page Viewed", "points": 1}])
    )
    assert north.bu_id == units.north
    events = Events(session)
    p = "two-units"
    seqs = [
        events.add(p, "Summit Checked In", T0, units.north),
        events.add(p, "Whitepaper Downloaded", T0, units.south),
        events.add(p, "Page Viewed", T0, units.north, {"path": "/pricing"}),
        events.add(p, "Page Viewed", T0, units.south, {"path": "/pricing"}),
    ]
    scores.refresh(session, {p: seqs}, (), at(T0))
    seen = {
        (s.code, s.bu_id): s.value
        for s in scores.scores_of(session, p, (units.north, units.group), now=T0)
    }
    assert seen == {("intent", units.north): 35, ("engagement", units.group): 2}
    assert north_tag.id not in held(session, p)
    extra = events.add(p, "Whitepaper Downloaded", T0, units.north)
    scores.refresh(session, {p: [extra]}, (), at(T0))
    assert north_tag.id in held(session, p) and group_tag.id not in held(session, p)
    north_history = scores.history(session, p, bu_ids=(units.north, units.group))
    assert {h.model_id for h in north_history} == {north.id, group.id}
    assert south.id not in {h.model_id for h in north_history}
    assert {h.event for h in north_history if h.model_id == group.id} == {"Page Viewed", None}

    assert {m.id for m in score_models.list_models(session, north_ctx)} == {north.id, group.id}
    assert score_models.get_model(session, north_ctx, "intent").id == north.id
    with pytest.raises(NotFound):
        score_models.get_model(session, north_ctx, south.id)
    with pytest.raises(NotFound):
        score_models.update_model(
            session,
            north_ctx,
            group.id,
            model("engagement", [{"id": "y", "event": "Y", "points": 1}]),
        )
    with pytest.raises(NotFound):
        score_models.delete_model(session, north_ctx, south.id)
    with pytest.raises(NotFound):
        score_models.create_model(session, north_ctx, INTENT_EXAMPLE, bu="south")
    with pytest.raises(NotFound):
        scores.recompute(session, north_ctx, model="engagement")


def test_saving_a_model_checks_its_threshold_tags(
    session: Session, ctx: Context, units: Units
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        score_models.create_model(session, ctx, INTENT_EXAMPLE)
    assert [e.path for e in raised.value.errors] == ["thresholds[0].tag"]
    make_tag(session, units.south)  # another unit's tag is not the group's to use
    with pytest.raises(ValidationFailed):
        score_models.create_model(session, ctx, INTENT_EXAMPLE, bu="north")
    make_tag(session, units.north, "high_intent", kind="rule")
    with pytest.raises(ValidationFailed) as raised:
        score_models.create_model(session, ctx, INTENT_EXAMPLE, bu="north")
    assert "own rule" in raised.value.errors[0].msg


def test_changing_a_model_rescores_and_moves_its_tags(
    session: Session, ctx: Context, units: Units
) -> None:
    tag = make_tag(session, units.group)
    make_tag(session, units.group, "warm")
    events = Events(session)
    for name, props in [
        ("Summit Checked In", {}),
        ("Whitepaper Downloaded", {}),
        ("Page Viewed", {"path": "/pricing"}),
    ]:
        events.add("p", name, T0, units.north, props)
    made = score_models.create_model(session, ctx, INTENT_EXAMPLE, when=at(T0))
    assert tag.id in held(session, "p")
    doc = json.loads(json.dumps(INTENT_EXAMPLE))
    doc["rules"][2]["points"] = 5
    doc["thresholds"] = [{"min": 30, "tag": "warm"}]
    changed = score_models.update_model(session, ctx, made.id, doc, when=at(T0))
    assert changed.version == 2
    assert value_of(session, "p", "intent", T0, (units.group,)) == 35
    assert sorted(
        t.code for t in session.scalars(select(TagRow).where(TagRow.id.in_(held(session, "p"))))
    ) == ["warm"]
    with pytest.raises(ValidationFailed) as raised:
        score_models.update_model(session, ctx, made.id, {**doc, "code": "other"})
    assert raised.value.errors[0].path == "code"
    score_models.delete_model(session, ctx, "intent", when=at(T0))
    assert held(session, "p") == {}
    assert session.scalars(select(ScoreHistoryRow)).all() == []
    assert [e.action for e in audit.list_entries(session, ctx, object_id=made.id).items] == [
        "score_model.deleted",
        "score_model.updated",
        "score_model.created",
    ]


# --- the API and the CLI --------------------------------------------------------------------


# No decay in the API and CLI tests: they run on the system clock.
STEADY = {**INTENT_EXAMPLE, "half_life_days": None}


@pytest.fixture
def scored(session: Session, units: Units) -> Iterator[Units]:
    """The group with the high-intent tag, and one north visitor with the seed story's events."""
    make_tag(session, units.group)
    events = Events(session)
    for name, props in [
        ("Summit Registered", {}),
        ("Whitepaper Downloaded", {}),
        ("Page Viewed", {"path": "/pricing"}),
    ]:
        events.add("visitor", name, T0, units.north, props)
    session.commit()
    yield units


def test_the_api_creates_changes_recomputes_and_deletes_models(
    client: TestClient, session: Session, scored: Units
) -> None:
    base = "/api/v1/score-models"
    assert client.get(base).status_code == 401
    created = client.post(base, params={"bu": "north"}, json=STEADY, headers=ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["code"], body["version"], body["bu_id"]) == ("intent", 1, scored.north)
    session.rollback()  # a new transaction: see what the API committed
    assert value_of(session, "visitor", "intent", T0, (scored.north,)) == 45
    assert held(session, "visitor")
    assert client.post(base, params={"bu": "north"}, json=STEADY, headers=ADMIN).status_code == 409

    listed = client.get(base, params={"bu": "north"}, headers=ADMIN).json()["items"]
    assert [m["id"] for m in listed] == [body["id"]]
    assert (
        client.get(f"{base}/{body['id']}", headers=ADMIN).json()["definition"]["rules"][2]["id"]
        == "pricing_page"
    )
    missing = client.get(f"{base}/nope", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/not-found"

    doc = json.loads(json.dumps(STEADY))
    doc["rules"][2]["points"] = 25
    put = client.put(f"{base}/{body['id']}", json=doc, headers=ADMIN)
    assert put.status_code == 200 and put.json()["version"] == 2
    session.rollback()
    assert value_of(session, "visitor", "intent", T0, (scored.north,)) == 55
    again = client.post(f"{base}/{body['id']}/recompute", headers=ADMIN)
    assert again.json() == {"profiles": 1}

    deleted = client.delete(f"{base}/{body['id']}", headers=ADMIN)
    assert deleted.status_code == 204
    assert client.get(f"{base}/{body['id']}", headers=ADMIN).status_code == 404
    session.rollback()
    assert held(session, "visitor") == {}


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (_bad(lambda d: d["rules"][2]["cap"].update(per="fortnight")), "rules[2].cap.per"),
        (_bad(lambda d: d["thresholds"][0].update(tag="no_such_tag")), "thresholds[0].tag"),
        (_bad(lambda d: d["rules"][0].update(points="lots")), "rules[0].points"),
    ],
)
def test_the_api_names_the_bad_field_of_a_model(
    client: TestClient, scored: Units, document: dict[str, Any], path: str
) -> None:
    answer = client.post("/api/v1/score-models", json=document, headers=ADMIN)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"] == "/problems/validation-failed"
    assert [e["path"] for e in problem["errors"]] == [path]
    not_an_object = client.post("/api/v1/score-models", json=[1, 2], headers=ADMIN)
    assert not_an_object.status_code == 422


@pytest.mark.parametrize("command", ["list", "show", "create", "update", "delete", "recompute"])
def test_every_scores_command_has_help_with_an_example(command: str) -> None:
    answer = CliRunner().invoke(app, ["scores", command, "--help"], env={"COLUMNS": "200"})
    assert answer.exit_code == 0
    assert "Example" in answer.output


def test_the_cli_creates_shows_recomputes_and_deletes_a_model(
    db_url: str, scored: Units, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, session: Session
) -> None:
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    runner = CliRunner()
    env = {"COLUMNS": "200"}
    good = tmp_path / "intent.json"
    good.write_text(json.dumps(STEADY, ensure_ascii=False), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "code: intent\nname_en: x\nrules:\n"
        "  - {id: a, event: A, points: 1, cap: {times: 1, per: fortnight}}\n",
        encoding="utf-8",
    )

    made = runner.invoke(app, ["scores", "create", "--file", str(good), "--bu", "north"], env=env)
    assert made.exit_code == 0, made.output
    assert "intent" in made.output
    failed = runner.invoke(app, ["scores", "create", "--file", str(bad)], env=env)
    assert failed.exit_code == 1
    assert "rules[0].cap.per" in failed.output
    listed = runner.invoke(app, ["scores", "list", "--bu", "north", "--json"], env=env)
    assert [m["code"] for m in json.loads(listed.output)] == ["intent"]
    shown = runner.invoke(app, ["scores", "show", "intent", "--bu", "north"], env=env)
    assert shown.exit_code == 0 and "pricing_page" in shown.output and "high_intent" in shown.output
    redone = runner.invoke(
        app, ["scores", "recompute", "--model", "intent", "--bu", "north"], env=env
    )
    assert redone.exit_code == 0, redone.output
    assert "1 profile scores rebuilt" in redone.output
    unknown = runner.invoke(app, ["scores", "recompute", "--model", "nope"], env=env)
    assert unknown.exit_code == 1 and "nope" in unknown.output
    session.rollback()
    assert value_of(session, "visitor", "intent", T0, (scored.north,)) == 45
    gone = runner.invoke(app, ["scores", "delete", "intent", "--bu", "north", "--yes"], env=env)
    assert gone.exit_code == 0, gone.output
    session.rollback()
    assert held(session, "visitor") == {}
