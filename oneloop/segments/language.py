"""The segment language: a rule is a JSON (or YAML) document, parsed here into frozen values.

A rule is data, never code: it is validated once, every problem is reported at the path of
the bad node (``rule.and[1].op``), and ``compile.py`` turns the parsed value into a SQLAlchemy
expression with bound literals. Nothing in a rule is evaluated, formatted into SQL or rendered
by a template, so ``"'); DROP TABLE"`` or ``{{7*7}}`` is only ever a string compared with.

Node types (exactly one of these keys per object)::

    {"and": [node, ...]}          every child holds (1 to 50 children)
    {"or":  [node, ...]}          at least one child holds
    {"not": node}                 the child does not hold

    {"trait": "orders_90d", "op": "gte", "value": 2}
        A computed trait (by name: the rule's business unit first, then the group) or else a
        golden-record field (``city``, ``birthday`` …). Operators are those of
        ``profiles.filters.OPS``: eq, ne, lt, lte, gt, gte, in, not_in, contains, starts_with,
        exists, not_exists, between, within_last, not_within_last. A profile without the trait
        is "not equal" (ne, not_in, not_exists hold) and matches nothing else.

    {"event": "Order Completed",                  a name, or a list of names
     "where": [{"property": "revenue", "op": "gte", "value": 100}],
     "did": true,                                 false: did not (includes zero such events)
     "count": {"op": "gte", "value": 3},          how many such events (eq ne lt lte gt gte
                                                  between); "lte" includes people with none
     "within": {"amount": 30, "unit": "days"},    or "between": ["2026-01-01", "2026-03-31"]
     "first": {"op": "within_last", "value": {"amount": 7, "unit": "days"}},
     "last":  {"op": "lt", "value": "2026-01-01"}}
        Events of the rule's business unit (a group-wide rule: of every unit). ``within`` counts
        whole days in the unit's zone including today (see ``filters.Relative``); ``between``
        takes dates (whole local days, both ends included) or times with a zone. ``first`` and
        ``last`` compare the time of the first or last such event and say "when" themselves, so
        they do not combine with ``within``/``between``. ``did: false`` negates the node.

    {"tag": "high_intent"}                        carries the tag (by code, unit then group)
    {"score": "intent", "op": "gte", "value": 40} a score model's value (by code): eq ne lt
                                                  lte gt gte between; a missing score is "ne"
    {"segment": "vip"}                            a member of another segment (no cycles)

Limits: 8 levels of nesting, 50 nodes, 5,000 listed values in all, so that a rule compiles to
a statement both databases accept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from oneloop.profiles.filters import (
    Comparison,
    EventFilter,
    Path,
    Relative,
    expect_mapping,
    invalid,
    local_midnight,
    only_keys,
    parse_comparison,
    parse_event_filter,
    parse_relative,
    parse_time,
)

MAX_DEPTH = 8
MAX_NODES = 50
MAX_VALUES = 5_000
KINDS = ("and", "or", "not", "trait", "event", "tag", "score", "segment")
NAME = re.compile(r"[A-Za-z0-9_.]{1,64}")
CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
COUNT_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "between")
SCORE_OPS = COUNT_OPS
TIME_OPS = ("lt", "lte", "gt", "gte", "between", "within_last", "not_within_last")
NEGATIVE_OPS = {"ne": "eq", "not_in": "in", "not_exists": "exists"}


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class TraitCondition:
    name: str
    comparison: Comparison
    path: Path


@dataclass(frozen=True)
class Window:
    """When the counted events happened: the last N days/hours (``relative``), or from
    ``start`` to ``end``; a bare date is a whole day in the business unit's zone."""

    relative: Relative | None = None
    start: date | datetime | None = None
    end: date | datetime | None = None

    def bounds(self, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime | None, bool]:
        """``(low, high, high_inclusive)`` in UTC; ``high`` None means open-ended."""
        if self.relative is not None:
            return self.relative.cutoff(now, zone), None, False
        assert self.start is not None and self.end is not None
        low = self.start if isinstance(self.start, datetime) else local_midnight(self.start, zone)
        if isinstance(self.end, datetime):
            return low, self.end, True
        return low, local_midnight(self.end + timedelta(days=1), zone), False


@dataclass(frozen=True)
class EventCondition:
    filter: EventFilter
    path: Path
    did: bool = True
    count: Comparison | None = None
    window: Window | None = None
    first: Comparison | None = None
    last: Comparison | None = None


@dataclass(frozen=True)
class TagCondition:
    code: str
    path: Path


@dataclass(frozen=True)
class ScoreCondition:
    code: str
    comparison: Comparison
    path: Path


@dataclass(frozen=True)
class SegmentCondition:
    code: str
    path: Path


Leaf = TraitCondition | EventCondition | TagCondition | ScoreCondition | SegmentCondition
Node = AllOf | AnyOf | Not | Leaf


def parse_rule(rule: object, path: Path = ("rule",)) -> Node:
    """The rule, validated; ``ValidationFailed`` names the first bad node's path. Names (traits,
    tags, scores, segments) are resolved later, in a business unit's scope, by ``compile``."""
    budget = _Budget()
    return _parse(rule, path, 1, budget)


@dataclass
class _Budget:
    nodes: int = 0
    values: int = 0


def _parse(node: object, path: Path, depth: int, budget: _Budget) -> Node:
    if depth > MAX_DEPTH:
        raise invalid(path, f"nested deeper than {MAX_DEPTH} levels")
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise invalid(path, f"a rule has at most {MAX_NODES} nodes")
    node = expect_mapping(node, path)
    kinds = [k for k in KINDS if k in node]
    if len(kinds) != 1:
        found = f"found {', '.join(kinds)}" if kinds else "found none"
        raise invalid(path, f"a node has exactly one of {', '.join(KINDS)} ({found})")
    kind = kinds[0]
    if kind in ("and", "or"):
        only_keys(node, {kind}, path)
        children = node[kind]
        if not isinstance(children, list) or not children:
            raise invalid((*path, kind), f"{kind} needs a non-empty list of nodes")
        parsed = tuple(
            _parse(c, (*path, kind, i), depth + 1, budget) for i, c in enumerate(children)
        )
        return AllOf(parsed) if kind == "and" else AnyOf(parsed)
    if kind == "not":
        only_keys(node, {"not"}, path)
        return Not(_parse(node["not"], (*path, "not"), depth + 1, budget))
    leaf = _LEAVES[kind](node, path)
    budget.values += _values_in(leaf)
    if budget.values > MAX_VALUES:
        raise invalid(path, f"a rule lists at most {MAX_VALUES} values in all")
    return leaf


def _trait(node: Mapping[str, Any], path: Path) -> TraitCondition:
    only_keys(node, {"trait", "op", "value"}, path)
    name = node["trait"]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise invalid((*path, "trait"), "needs a trait name of 1 to 64 letters, digits, _ or .")
    return TraitCondition(name, parse_comparison(node, path), path)


def _event(node: Mapping[str, Any], path: Path) -> EventCondition:
    only_keys(node, {"event", "where", "did", "count", "within", "between", "first", "last"}, path)
    did = node.get("did", True)
    if not isinstance(did, bool):
        raise invalid((*path, "did"), "needs true or false")
    count = None
    if "count" in node:
        if not did:
            raise invalid(
                (*path, "count"), "did: false takes no count; write count {op: lt, value: N}"
            )
        count = _count(node["count"], (*path, "count"))
    if "within" in node and "between" in node:
        raise invalid((*path, "between"), "give within or between, not both")
    window = None
    if "within" in node:
        window = Window(relative=parse_relative(node["within"], (*path, "within")))
    elif "between" in node:
        window = _between(node["between"], (*path, "between"))
    ends = {}
    for end in ("first", "last"):
        if end in node:
            if window is not None:
                raise invalid(
                    (*path, end), f"{end} says when by itself; drop within/between or {end}"
                )
            ends[end] = _time_comparison(node[end], (*path, end))
    return EventCondition(
        parse_event_filter(node, path),
        path,
        did=did,
        count=count,
        window=window,
        first=ends.get("first"),
        last=ends.get("last"),
    )


def _count(node: object, path: Path) -> Comparison:
    node = expect_mapping(node, path)
    only_keys(node, {"op", "value"}, path)
    if node.get("op") not in COUNT_OPS:
        raise invalid((*path, "op"), f"a count compares with one of {', '.join(COUNT_OPS)}")
    cmp = parse_comparison(node, path)
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    if not all(_is_count(v) for v in values):
        raise invalid((*path, "value"), "a count is a whole number from 0 to 1000000")
    return cmp


def _is_count(value: object) -> bool:
    return (
        isinstance(value, float)
        and math.isfinite(value)
        and value.is_integer()
        and 0 <= value <= 1_000_000
    )


def _between(node: object, path: Path) -> Window:
    if not isinstance(node, list) or len(node) != 2:
        raise invalid(path, "between needs [start, end]: dates or times with a zone")
    start, end = (_date_or_time(v, (*path, i)) for i, v in enumerate(node))
    if _as_time(start) > _as_time(end):
        raise invalid(path, "between needs start ≤ end")
    return Window(start=start, end=end)


def _date_or_time(value: object, path: Path) -> date | datetime:
    if isinstance(value, str):
        if len(value) == 10:
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        else:
            parsed = parse_time(value)
            if parsed is not None:
                return parsed
    raise invalid(path, "expected a date (2026-03-01) or a time with a zone")


def _as_time(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time(), tzinfo=UTC)


def _time_comparison(node: object, path: Path) -> Comparison:
    node = expect_mapping(node, path)
    only_keys(node, {"op", "value"}, path)
    if node.get("op") not in TIME_OPS:
        raise invalid((*path, "op"), f"a time compares with one of {', '.join(TIME_OPS)}")
    cmp = parse_comparison(node, path)
    if not cmp.is_temporal:
        raise invalid((*path, "value"), "expected a date, a time with a zone, or {amount, unit}")
    return cmp


def _tag(node: Mapping[str, Any], path: Path) -> TagCondition:
    only_keys(node, {"tag"}, path)
    return TagCondition(_code(node["tag"], (*path, "tag"), "tag"), path)


def _score(node: Mapping[str, Any], path: Path) -> ScoreCondition:
    only_keys(node, {"score", "op", "value"}, path)
    code = _code(node["score"], (*path, "score"), "score model")
    if node.get("op") not in SCORE_OPS:
        raise invalid((*path, "op"), f"a score compares with one of {', '.join(SCORE_OPS)}")
    cmp = parse_comparison(node, path)
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    if not all(isinstance(v, float) for v in values):
        raise invalid((*path, "value"), "a score is compared with numbers")
    return ScoreCondition(code, cmp, path)


def _segment(node: Mapping[str, Any], path: Path) -> SegmentCondition:
    only_keys(node, {"segment"}, path)
    return SegmentCondition(_code(node["segment"], (*path, "segment"), "segment"), path)


def _code(value: object, path: Path, what: str) -> str:
    if not isinstance(value, str) or not CODE.fullmatch(value):
        raise invalid(path, f"needs a {what} code of 1 to 64 letters, digits, _ . or -")
    return value


_LEAVES = {
    "trait": _trait,
    "event": _event,
    "tag": _tag,
    "score": _score,
    "segment": _segment,
}


def _values_in(leaf: Leaf) -> int:
    if isinstance(leaf, TraitCondition | ScoreCondition):
        return _count_values(leaf.comparison)
    if isinstance(leaf, EventCondition):
        where = sum(_count_values(c.comparison) for c in leaf.filter.where)
        return len(leaf.filter.names) + where
    return 1


def _count_values(cmp: Comparison) -> int:
    return len(cmp.value) if isinstance(cmp.value, tuple) else 1


# --- reading a parsed rule ------------------------------------------------------------------


def leaves(node: Node) -> Iterator[Leaf]:
    """Every condition of the rule, in document order."""
    if isinstance(node, AllOf | AnyOf):
        for child in node.children:
            yield from leaves(child)
    elif isinstance(node, Not):
        yield from leaves(node.child)
    else:
        yield node


def is_temporal(node: Node) -> bool:
    """True when the rule's answer changes with the passing of time alone (a relative window
    somewhere), so that a periodic sweep must re-evaluate it."""
    for leaf in leaves(node):
        if isinstance(leaf, TraitCondition) and _relative(leaf.comparison):
            return True
        if isinstance(leaf, EventCondition):
            if leaf.window is not None and leaf.window.relative is not None:
                return True
            ends = (leaf.first, leaf.last, *(c.comparison for c in leaf.filter.where))
            if any(_relative(c) for c in ends if c is not None):
                return True
    return False


def _relative(cmp: Comparison) -> bool:
    return cmp.op in ("within_last", "not_within_last")
