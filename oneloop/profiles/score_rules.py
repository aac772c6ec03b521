"""Score models as data, and the engine that turns a profile's events into points.

A model (purchase intent, engagement …) is a JSON/YAML document: rules that give points for
events (with the same property filters as traits and segments), an optional cap per rule and
calendar period, an optional half-life, and thresholds that set tags. It is parsed once into
frozen values, every problem reported at the path of the bad node (``rules[2].cap.per``).

The engine is a pure function of a profile's events in time order (then log order): that is
what lets the incremental path (new events on top of the stored state) be checked against a
replay, and a merge or split simply replay. Relative windows (``within_last``) are refused in
a rule for the same reason: they would make a score depend on when it was computed rather than
on what happened; time enters a score only through the half-life.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from oneloop.profiles.filters import (
    EventFilter,
    Path,
    When,
    event_matches,
    expect_mapping,
    invalid,
    local_midnight,
    only_keys,
    parse_event_filter,
)

PERIODS = ("day", "week", "month", "ever")
MAX_RULES = 100
MAX_THRESHOLDS = 20
MAX_POINTS = 1_000_000.0
MAX_HALF_LIFE_DAYS = 36_500
MAX_TIMES = 1_000_000
CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
RULE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
TIME_RELATIVE = ("within_last", "not_within_last")
SECONDS_PER_DAY = 86_400.0
# A threshold holds when value ≥ min; decay and back again can leave 40 as 39.999999999.
TOLERANCE = 1e-9

# The seed example of the issue: a visitor who registered for the summit (or checked in),
# downloaded the whitepaper and viewed the pricing page reaches 45 and is tagged 高意向.
INTENT_EXAMPLE: dict[str, Any] = {  # Any: a JSON document
    "code": "intent",
    "name_zh": "购买意向",
    "name_en": "Purchase intent",
    "description": "Summit, whitepaper and pricing page: a visitor ready to talk to sales.",
    "half_life_days": 30,
    "rules": [
        {
            "id": "summit",
            "event": ["Summit Registered", "Summit Checked In"],
            "points": 20,
            "cap": {"points": 20, "per": "month"},
        },
        {
            "id": "whitepaper",
            "event": "Whitepaper Downloaded",
            "points": 10,
            "cap": {"points": 30, "per": "month"},
        },
        {
            "id": "pricing_page",
            "event": "Page Viewed",
            "where": [{"property": "path", "op": "eq", "value": "/pricing"}],
            "points": 15,
            "cap": {"times": 2, "per": "day"},
        },
    ],
    "thresholds": [{"min": 40, "tag": "high_intent"}],
}


# --- the document ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    """At most ``points`` (in magnitude) or ``times`` awards per rule and calendar period."""

    per: str
    points: float | None = None
    times: int | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    filter: EventFilter
    points: float
    cap: Cap | None = None


@dataclass(frozen=True)
class Threshold:
    min: float
    tag: str


@dataclass(frozen=True)
class ModelDoc:
    """A validated model; ``document`` is its canonical JSON form, as stored."""

    code: str
    name_zh: str
    name_en: str
    description: str
    half_life_days: float | None
    rules: tuple[Rule, ...]
    thresholds: tuple[Threshold, ...]
    document: Mapping[str, Any] = field(compare=False)  # Any: JSON

    @property
    def capped_periods(self) -> set[str]:
        return {r.cap.per for r in self.rules if r.cap is not None}


TOP_KEYS = {"code", "name_zh", "name_en", "description", "half_life_days", "rules", "thresholds"}


def parse_model(doc: object) -> ModelDoc:
    """The model in ``doc``, or ``ValidationFailed`` naming the first bad node's path."""
    node = expect_mapping(doc, ())
    only_keys(node, TOP_KEYS, ())
    code = node.get("code")
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise invalid(("code",), "needs lower-case letters, digits and _ (e.g. intent)")
    name_zh, name_en = _names(node)
    description = node.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        raise invalid(("description",), "needs text of at most 2000 characters")
    half_life = node.get("half_life_days")
    if half_life is not None:
        number = _number(half_life)
        if number is None or not 0 < number <= MAX_HALF_LIFE_DAYS:
            raise invalid(
                ("half_life_days",), f"needs days above 0, at most {MAX_HALF_LIFE_DAYS}, or null"
            )
        half_life = number
    rules = _rules(node.get("rules"))
    thresholds = _thresholds(node.get("thresholds", []))
    document = {
        "code": code,
        "name_zh": name_zh,
        "name_en": name_en,
        "description": description,
        "half_life_days": node.get("half_life_days"),
        "rules": [_rule_document(r, raw) for r, raw in zip(rules, node["rules"], strict=True)],
        "thresholds": [{"min": t["min"], "tag": t["tag"]} for t in node.get("thresholds", [])],
    }
    return ModelDoc(code, name_zh, name_en, description, half_life, rules, thresholds, document)


def _names(node: Mapping[str, Any]) -> tuple[str, str]:
    """Both names where given; one stands in for the other when only one is."""
    names: dict[str, str] = {}
    for key in ("name_zh", "name_en"):
        value = node.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise invalid((key,), "needs a name of 1 to 200 characters")
        names[key] = value.strip()
    if not names:
        raise invalid(("name_en",), "needs a name (name_zh, name_en or both)")
    fallback = names.get("name_zh") or names["name_en"]
    return names.get("name_zh", fallback), names.get("name_en", fallback)


def _rules(raw: object) -> tuple[Rule, ...]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_RULES:
        raise invalid(("rules",), f"needs a list of 1 to {MAX_RULES} rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        path: Path = ("rules", i)
        item = expect_mapping(item, path)
        only_keys(item, {"id", "event", "where", "points", "cap"}, path)
        rule_id = item.get("id")
        if not isinstance(rule_id, str) or not RULE_ID.fullmatch(rule_id):
            raise invalid(
                (*path, "id"), "needs an id of letters, digits, _ . - (e.g. pricing_page)"
            )
        if rule_id in seen:
            raise invalid((*path, "id"), f"{rule_id!r} is used by an earlier rule")
        seen.add(rule_id)
        event_filter = parse_event_filter(item, path)
        for j, condition in enumerate(event_filter.where):
            if condition.comparison.op in TIME_RELATIVE:
                raise invalid(
                    (*path, "where", j, "op"),
                    "a score counts what happened, not when it is computed; "
                    "use half_life_days to let points fade",
                )
        points = _number(item.get("points"))
        if points is None or points == 0 or abs(points) > MAX_POINTS:
            raise invalid(
                (*path, "points"), f"needs a number other than 0, at most {MAX_POINTS:g} either way"
            )
        cap = _cap(item["cap"], (*path, "cap")) if "cap" in item else None
        rules.append(Rule(rule_id, event_filter, points, cap))
    return tuple(rules)


def _cap(raw: object, path: Path) -> Cap:
    node = expect_mapping(raw, path)
    only_keys(node, {"points", "times", "per"}, path)
    per = node.get("per")
    if per not in PERIODS:
        raise invalid((*path, "per"), f"{per!r} is not a period; use one of {', '.join(PERIODS)}")
    if ("points" in node) == ("times" in node):
        raise invalid(path, "needs either points or times")
    if "points" in node:
        points = _number(node["points"])
        if points is None or not 0 < points <= MAX_POINTS:
            raise invalid((*path, "points"), f"needs a number above 0, at most {MAX_POINTS:g}")
        return Cap(per, points=points)
    times = node["times"]
    if not isinstance(times, int) or isinstance(times, bool) or not 1 <= times <= MAX_TIMES:
        raise invalid((*path, "times"), f"needs a whole number from 1 to {MAX_TIMES}")
    return Cap(per, times=times)


def _thresholds(raw: object) -> tuple[Threshold, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_THRESHOLDS:
        raise invalid(("thresholds",), f"needs a list of at most {MAX_THRESHOLDS} thresholds")
    found: list[Threshold] = []
    for i, item in enumerate(raw):
        path: Path = ("thresholds", i)
        item = expect_mapping(item, path)
        only_keys(item, {"min", "tag"}, path)
        minimum = _number(item.get("min"))
        if minimum is None or not 0 < minimum <= MAX_POINTS:
            # a profile without points has no score row: a threshold at or below 0 would mean
            # something different for people never scored and people scored down to 0
            raise invalid((*path, "min"), f"needs a number above 0, at most {MAX_POINTS:g}")
        tag = item.get("tag")
        if not isinstance(tag, str) or not CODE.fullmatch(tag):
            raise invalid((*path, "tag"), "needs a tag code (e.g. high_intent)")
        if any(t.tag == tag for t in found):
            raise invalid((*path, "tag"), f"{tag!r} is set by an earlier threshold")
        found.append(Threshold(minimum, tag))
    return tuple(found)


def _rule_document(rule: Rule, raw: Mapping[str, Any]) -> dict[str, Any]:  # Any: JSON
    out: dict[str, Any] = {  # Any: JSON
        "id": rule.id,
        "event": rule.filter.names[0] if len(rule.filter.names) == 1 else list(rule.filter.names),
    }
    if raw.get("where"):
        out["where"] = [dict(w) for w in raw["where"]]
    out["points"] = raw["points"]
    if "cap" in raw:
        out["cap"] = dict(raw["cap"])
    return out


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


# --- the engine -----------------------------------------------------------------------------


class ScoredEvent(Protocol):
    """What the engine reads of an event (a ``ProfileEventRow`` or a selected row)."""

    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def name(self) -> str: ...
    @property
    def properties(self) -> Any: ...  # Any: JSON as the sender sent it


@dataclass
class Use:
    """What one rule gave in one period: points in magnitude, and how many awards."""

    points: float = 0.0
    times: int = 0


@dataclass
class Running:
    """A profile's state in one model between events: ``value`` as of ``at``, the last award
    (time, seq) and what each capped rule has given per period."""

    value: float = 0.0
    at: datetime | None = None
    last: tuple[datetime, int] | None = None
    used: dict[tuple[str, object], Use] = field(default_factory=dict)


@dataclass(frozen=True)
class Award:
    rule: str
    seq: int
    points: float
    value_after: float
    at: datetime


def decayed(
    value: float, since: datetime | None, until: datetime, half_life: float | None
) -> float:
    """``value`` carried from ``since`` to ``until``: halved every ``half_life`` days. It also
    runs backwards, so a late event between the last award and ``since`` lands where a replay
    would put it."""
    if half_life is None or since is None or value == 0 or since == until:
        return value
    halvings = (until - since).total_seconds() / (half_life * SECONDS_PER_DAY)
    try:
        return value * 0.5**halvings
    except OverflowError:  # far back from a value decayed to almost nothing: 2^1024 and more
        return math.copysign(math.exp(math.log(abs(value)) - halvings * math.log(2)), value)


def period_of(at: datetime, per: str, zone: ZoneInfo) -> object:
    """The calendar period holding ``at`` in the unit's zone (weeks start on Monday)."""
    if per == "ever":
        return per
    day = at.astimezone(zone).date()
    if per == "day":
        return day
    if per == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_start(at: datetime, per: str, zone: ZoneInfo) -> datetime | None:
    """When the period holding ``at`` began (UTC); None for ``ever``."""
    start = period_of(at, per, zone)
    return local_midnight(start, zone) if isinstance(start, date) else None


def matching(model: ModelDoc, event: ScoredEvent, when: When) -> tuple[Rule, ...]:
    return tuple(
        r for r in model.rules if event_matches(r.filter, event.name, event.properties, when)
    )


def clip(points: float, cap: Cap | None, use: Use) -> float:
    """``points`` as far as the rule's cap for this period still allows."""
    if cap is None:
        return points
    if cap.times is not None:
        return points if use.times < cap.times else 0.0
    assert cap.points is not None  # parse_model: exactly one of the two
    room = max(cap.points - use.points, 0.0)
    return math.copysign(min(abs(points), room), points)


def apply(
    model: ModelDoc, state: Running, events: Iterable[ScoredEvent], when: When
) -> list[Award]:
    """Score ``events`` (in time order, then seq) on top of ``state``; the awards given. An
    event matching several rules earns each, in the rules' order; a capped-out rule gives
    nothing and leaves no history."""
    awards: list[Award] = []
    for event in events:
        for rule in matching(model, event, when):
            points = rule.points
            if rule.cap is not None:
                use = state.used.setdefault(
                    (rule.id, period_of(event.at, rule.cap.per, when.zone)), Use()
                )
                points = clip(points, rule.cap, use)
                if points == 0:
                    continue
                use.points += abs(points)
                use.times += 1
            state.value = decayed(state.value, state.at, event.at, model.half_life_days) + points
            state.at = event.at
            state.last = (event.at, event.seq)
            awards.append(Award(rule.id, event.seq, points, state.value, event.at))
    return awards


def count_use(
    model: ModelDoc, state: Running, given: Iterable[tuple[str, float, datetime]], zone: ZoneInfo
) -> None:
    """Fill ``state.used`` from past awards ``(rule, points, at)`` (the points history)."""
    caps = {r.id: r.cap for r in model.rules if r.cap is not None}
    for rule_id, points, at in given:
        cap = caps.get(rule_id)
        if cap is None:
            continue
        use = state.used.setdefault((rule_id, period_of(at, cap.per, zone)), Use())
        use.points += abs(points)
        use.times += 1


def value_now(
    value: float, as_of: datetime | None, now: datetime, half_life: float | None
) -> float:
    """The stored value read at ``now``; a value stamped in the future (a sender's clock) is
    not grown back to now."""
    if as_of is None or now <= as_of:
        return value
    return decayed(value, as_of, now, half_life)


def holds(value: float, threshold: Threshold) -> bool:
    return value >= threshold.min - TOLERANCE


def shown(value: float) -> str:
    """A value as a reason names it: ``45``, ``38.2``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def ordered(events: Sequence[ScoredEvent]) -> list[ScoredEvent]:
    return sorted(events, key=lambda e: (e.at, e.seq))
