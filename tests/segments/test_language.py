"""The segment language as data: every node type parses, every bad node is named by path,
and junk never gets further than a validation error."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oneloop.core.errors import ValidationFailed
from oneloop.profiles.filters import Relative
from oneloop.segments.language import (
    MAX_DEPTH,
    MAX_NODES,
    AllOf,
    AnyOf,
    EventCondition,
    Not,
    ScoreCondition,
    SegmentCondition,
    TagCondition,
    TraitCondition,
    Window,
    is_temporal,
    leaves,
    parse_rule,
)
from tests.segments.conftest import SHANGHAI


def error_path(rule: object) -> str:
    with pytest.raises(ValidationFailed) as caught:
        parse_rule(rule)
    assert len(caught.value.errors) == 1
    assert caught.value.errors[0].path in caught.value.detail
    return caught.value.errors[0].path


def test_every_node_type_parses_into_frozen_values() -> None:
    rule = parse_rule(
        {
            "and": [
                {"trait": "orders_90d", "op": "gte", "value": 2},
                {
                    "or": [
                        {"tag": "high_intent"},
                        {"score": "intent", "op": "gte", "value": 40},
                    ]
                },
                {"not": {"segment": "vip"}},
                {
                    "event": "Order Completed",
                    "where": [{"property": "revenue", "op": "gte", "value": 100}],
                    "count": {"op": "gte", "value": 3},
                    "within": {"amount": 30, "unit": "days"},
                },
            ]
        }
    )
    assert isinstance(rule, AllOf)
    trait, either, negated, event = rule.children
    assert trait == TraitCondition("orders_90d", trait.comparison, ("rule", "and", 0))
    assert trait.comparison.op == "gte" and trait.comparison.value == 2.0
    assert isinstance(either, AnyOf)
    assert isinstance(either.children[0], TagCondition)
    assert isinstance(either.children[1], ScoreCondition)
    assert isinstance(negated, Not) and negated.child == SegmentCondition(
        "vip", ("rule", "and", 2, "not")
    )
    assert isinstance(event, EventCondition)
    assert event.filter.names == ("Order Completed",)
    assert event.count is not None and event.count.value == 3.0
    assert event.window == Window(relative=Relative(30, "days"))
    assert [type(x).__name__ for x in leaves(rule)] == [
        "TraitCondition",
        "TagCondition",
        "ScoreCondition",
        "SegmentCondition",
        "EventCondition",
    ]
    with pytest.raises(AttributeError):
        trait.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ("everyone", "rule"),
        ({}, "rule"),
        ({"trait": "a", "tag": "b"}, "rule"),
        ({"and": []}, "rule.and"),
        ({"and": {"tag": "x"}}, "rule.and"),
        ({"and": [{"tag": "x"}, {"trait": "t", "op": "bigger", "value": 1}]}, "rule.and[1].op"),
        ({"and": [{"tag": "x"}, {"trait": "t", "op": "gte"}]}, "rule.and[1].value"),
        ({"or": [{"not": {"trait": "t", "op": "in", "value": []}}]}, "rule.or[0].not.value"),
        ({"trait": "bad name!", "op": "eq", "value": 1}, "rule.trait"),
        ({"trait": "x" * 65, "op": "eq", "value": 1}, "rule.trait"),
        ({"trait": "t", "op": "eq", "value": {"$ne": 1}}, "rule.value"),
        ({"trait": "t", "op": "exists", "value": 1}, "rule.value"),
        ({"trait": "t", "op": "eq", "value": 1, "extra": 1}, "rule.extra"),
        ({"and": [{"tag": "a"}], "or": [{"tag": "b"}]}, "rule"),
        ({"tag": ""}, "rule.tag"),
        ({"tag": 7}, "rule.tag"),
        ({"segment": "a b"}, "rule.segment"),
        ({"score": "intent", "op": "contains", "value": "x"}, "rule.op"),
        ({"score": "intent", "op": "gte", "value": "high"}, "rule.value"),
        ({"event": ""}, "rule.event"),
        (
            {"event": "E", "where": [{"property": "", "op": "eq", "value": 1}]},
            "rule.where[0].property",
        ),
        ({"event": "E", "did": "no"}, "rule.did"),
        ({"event": "E", "did": False, "count": {"op": "gte", "value": 1}}, "rule.count"),
        ({"event": "E", "count": {"op": "contains", "value": 1}}, "rule.count.op"),
        ({"event": "E", "count": {"op": "gte", "value": 1.5}}, "rule.count.value"),
        ({"event": "E", "count": {"op": "gte", "value": -1}}, "rule.count.value"),
        ({"event": "E", "within": {"amount": 0}}, "rule.within.amount"),
        ({"event": "E", "within": {"amount": 3, "unit": "fortnights"}}, "rule.within.unit"),
        (
            {"event": "E", "within": {"amount": 3}, "between": ["2026-01-01", "2026-02-01"]},
            "rule.between",
        ),
        ({"event": "E", "between": ["2026-02-01", "2026-01-01"]}, "rule.between"),
        ({"event": "E", "between": ["2026-02-30", "2026-03-01"]}, "rule.between[0]"),
        ({"event": "E", "between": ["2026-01-01T08:00:00", "2026-03-01"]}, "rule.between[0]"),
        ({"event": "E", "first": {"op": "gte", "value": 3}}, "rule.first.value"),
        ({"event": "E", "last": {"op": "eq", "value": "2026-01-01"}}, "rule.last.op"),
        (
            {"event": "E", "within": {"amount": 3}, "first": {"op": "lt", "value": "2026-01-01"}},
            "rule.first",
        ),
    ],
)
def test_a_bad_node_is_named_by_its_path(rule: object, path: str) -> None:
    assert error_path(rule) == path


def test_hostile_values_are_plain_literals() -> None:
    for value in ["'); DROP TABLE profiles_profile; --", "{{7*7}}", "${jndi:ldap://x}"]:
        rule = parse_rule({"trait": "city", "op": "eq", "value": value})
        assert isinstance(rule, TraitCondition) and rule.comparison.value == value


def test_depth_and_size_are_limited() -> None:
    deep: dict[str, object] = {"tag": "x"}
    for _ in range(MAX_DEPTH):
        deep = {"not": deep}
    assert error_path(deep).count("not") == MAX_DEPTH
    parse_rule(deep["not"])  # one level less is fine
    wide = {"or": [{"tag": f"t{i}"} for i in range(MAX_NODES)]}
    assert error_path(wide) == f"rule.or[{MAX_NODES - 1}]"
    many = {"or": [{"trait": "t", "op": "in", "value": list(range(1000))}] * 6}
    assert error_path(many) == "rule.or[5]"


def test_between_takes_whole_local_days_or_exact_times() -> None:
    rule = parse_rule({"event": "E", "between": ["2026-03-01", "2026-03-02"]})
    assert isinstance(rule, EventCondition) and rule.window is not None
    assert rule.window.start == date(2026, 3, 1)
    now = datetime(2026, 3, 5, tzinfo=UTC)
    low, high, inclusive = rule.window.bounds(now, SHANGHAI)
    assert low == datetime(2026, 2, 28, 16, tzinfo=UTC)  # midnight in Shanghai
    assert high == datetime(2026, 3, 2, 16, tzinfo=UTC) and not inclusive  # the end day included
    exact = parse_rule(
        {"event": "E", "between": ["2026-03-01T08:00:00+08:00", "2026-03-01T09:00:00Z"]}
    )
    assert isinstance(exact, EventCondition) and exact.window is not None
    assert exact.window.bounds(now, SHANGHAI) == (
        datetime(2026, 3, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 9, tzinfo=UTC),
        True,
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"trait": "t", "op": "within_last", "value": {"amount": 3}}, True),
        ({"trait": "t", "op": "gte", "value": "2026-01-01"}, False),
        ({"event": "E", "within": {"amount": 3}}, True),
        ({"event": "E", "between": ["2026-01-01", "2026-02-01"]}, False),
        ({"event": "E", "last": {"op": "not_within_last", "value": {"amount": 3}}}, True),
        (
            {
                "event": "E",
                "where": [{"property": "at", "op": "within_last", "value": {"amount": 1}}],
            },
            True,
        ),
        (
            {"not": {"and": [{"tag": "x"}, {"event": "E", "count": {"op": "gte", "value": 2}}]}},
            False,
        ),
    ],
)
def test_a_rule_is_temporal_when_time_alone_changes_its_answer(
    rule: object, expected: bool
) -> None:
    assert is_temporal(parse_rule(rule)) is expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "and",
                    "or",
                    "not",
                    "trait",
                    "event",
                    "tag",
                    "score",
                    "segment",
                    "op",
                    "value",
                    "where",
                    "count",
                    "within",
                    "between",
                    "first",
                    "last",
                    "did",
                    "property",
                    "amount",
                    "unit",
                ]
            )
            | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_junk_is_refused_with_a_path_never_a_crash(junk: object) -> None:
    try:
        parse_rule(junk)
    except ValidationFailed as exc:
        assert exc.errors and exc.errors[0].loc[0] == "rule"


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "contains", "starts_with"]),
    st.one_of(st.text(min_size=1, max_size=30), st.integers(-(10**6), 10**6), st.booleans()),
)
def test_parsing_the_same_rule_twice_gives_the_same_value(op: str, value: object) -> None:
    rule = {"and": [{"trait": "t", "op": op, "value": value}, {"not": {"tag": "x"}}]}
    try:
        first = parse_rule(rule)
    except ValidationFailed:
        return
    assert parse_rule(rule) == first
