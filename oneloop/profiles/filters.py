"""Comparisons and event filters: the part of the rule language that traits, scores and
segments share.

A comparison (``{"op": "gte", "value": 3}``) is data. It is parsed once into a frozen value,
with every problem reported at the path of the bad node, and then either compiled to a
SQLAlchemy expression (literals are always bound parameters: a value such as ``'); DROP
TABLE`` is only ever compared with) or evaluated in Python on one event. Both readings are in
this module, side by side, so that a filter cannot mean one thing in a segment and another in
a score rule.

Relative times are whole calendar days (or weeks) in the business unit's zone, counting today:
"within the last 7 days" is today and the six days before, from local midnight. Hours and
minutes are rolling. Times are stored in UTC; only the cut-off is computed in the zone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    false,
    func,
    not_,
    or_,
    true,
)
from sqlalchemy.ext.compiler import compiles

from oneloop.core.errors import FieldError, ValidationFailed

DEFAULT_ZONE = "Asia/Shanghai"  # the group's default (``governance.models.DEFAULT_TIME_ZONE``)
MAX_LIST = 1_000  # values of one ``in``
MAX_TEXT = 300  # characters of one literal
UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1)}
CALENDAR_UNITS = {"days": 1, "weeks": 7}

ORDERED = ("lt", "lte", "gt", "gte")
OPS = (
    "eq",
    "ne",
    *ORDERED,
    "in",
    "not_in",
    "contains",
    "starts_with",
    "exists",
    "not_exists",
    "between",
    "within_last",
    "not_within_last",
)
Path = tuple[str | int, ...]
Scalar = str | float | bool


@dataclass(frozen=True)
class Relative:
    """``{"amount": 30, "unit": "days"}``."""

    amount: int
    unit: str

    def cutoff(self, now: datetime, zone: ZoneInfo) -> datetime:
        if self.unit in UNITS:
            return now - self.amount * UNITS[self.unit]
        days = self.amount * CALENDAR_UNITS[self.unit] - 1
        today = now.astimezone(zone).date()
        return local_midnight(today - timedelta(days=days), zone)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Comparison:
    op: str
    value: Any = None  # Any: a Scalar, a tuple of them, a (low, high) pair, or a Relative

    @property
    def is_temporal(self) -> bool:
        if self.op in ("within_last", "not_within_last"):
            return True
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        return self.op in (*ORDERED, "between") and all(isinstance(v, date) for v in values)


@dataclass(frozen=True)
class When:
    """What "now" and "today" mean for one evaluation. A rule, a trait definition or a score
    model that belongs to a business unit is evaluated in that unit's zone (``in_zone``),
    whatever zone the caller's ``When`` carries."""

    now: datetime
    zone: ZoneInfo

    def in_zone(self, zone: ZoneInfo) -> When:
        return When(self.now, zone)


@dataclass(frozen=True)
class PropertyCondition:
    path: Path
    comparison: Comparison


@dataclass(frozen=True)
class EventFilter:
    """``{"event": "Page Viewed", "where": [{"property": "path", "op": "eq", "value": "/x"}]}``;
    ``event`` may be a list of names."""

    names: tuple[str, ...]
    where: tuple[PropertyCondition, ...] = ()


# --- parsing --------------------------------------------------------------------------------


def invalid(path: Path, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"{FieldError(path, message).path or 'rule'}: {message}", [FieldError(path, message)]
    )


def expect_mapping(node: object, path: Path) -> Mapping[str, Any]:
    if not isinstance(node, Mapping):
        raise invalid(path, f"expected an object, got {_kind(node)}")
    return node


def only_keys(node: Mapping[str, Any], allowed: set[str], path: Path) -> None:
    extra = sorted(set(node) - allowed)
    if extra:
        raise invalid((*path, extra[0]), f"unknown key; allowed here: {', '.join(sorted(allowed))}")


def parse_comparison(node: Mapping[str, Any], path: Path) -> Comparison:
    """``op`` and ``value`` of ``node`` (other keys are the caller's)."""
    op = node.get("op")
    if op not in OPS:
        raise invalid((*path, "op"), f"{op!r} is not an operator; use one of {', '.join(OPS)}")
    where = (*path, "value")
    value = node.get("value")
    if op in ("exists", "not_exists"):
        if "value" in node:
            raise invalid(where, f"{op} takes no value")
        return Comparison(op)
    if "value" not in node:
        raise invalid(where, f"{op} needs a value")
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise invalid(where, f"{op} needs a list of 1 to {MAX_LIST} values")
        return Comparison(op, tuple(_scalar(v, (*where, i)) for i, v in enumerate(value)))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise invalid(where, "between needs [low, high]")
        low, high = (_ordered(v, (*where, i)) for i, v in enumerate(value))
        if type(low) is not type(high):
            raise invalid(where, "between needs two numbers or two dates")
        if low > high:
            raise invalid(where, "between needs low ≤ high")
        return Comparison(op, (low, high))
    if op in ("within_last", "not_within_last"):
        return Comparison(op, parse_relative(value, where))
    if op in ORDERED:
        return Comparison(op, _ordered(value, where))
    if op in ("contains", "starts_with"):
        if not isinstance(value, str) or not value:
            raise invalid(where, f"{op} needs a non-empty string")
        return Comparison(op, _scalar(value, where))
    return Comparison(op, _scalar(value, where))


def parse_relative(node: object, path: Path) -> Relative:
    node = expect_mapping(node, path)
    only_keys(node, {"amount", "unit"}, path)
    amount, unit = node.get("amount"), node.get("unit", "days")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= 36_500:
        raise invalid((*path, "amount"), "needs a whole number from 1 to 36500")
    if unit not in UNITS and unit not in CALENDAR_UNITS:
        units = ", ".join([*UNITS, *CALENDAR_UNITS])
        raise invalid((*path, "unit"), f"{unit!r} is not a unit; use one of {units}")
    return Relative(amount, unit)


def parse_event_filter(node: Mapping[str, Any], path: Path) -> EventFilter:
    """``event`` and ``where`` of ``node`` (other keys are the caller's)."""
    names = node.get("event")
    if isinstance(names, str):
        names = [names]
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n.strip() and len(n) <= 255 for n in names)
    ):
        raise invalid((*path, "event"), "needs an event name or a list of names")
    where = node.get("where", [])
    if not isinstance(where, list):
        raise invalid((*path, "where"), "expected a list of property conditions")
    conditions = []
    for i, item in enumerate(where):
        at = (*path, "where", i)
        item = expect_mapping(item, at)
        only_keys(item, {"property", "op", "value"}, at)
        conditions.append(
            PropertyCondition(
                parse_path(item.get("property"), (*at, "property")), parse_comparison(item, at)
            )
        )
    return EventFilter(tuple(dict.fromkeys(names)), tuple(conditions))


def parse_path(raw: object, path: Path) -> Path:
    """``products.0.category`` → ``("products", 0, "category")``."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
        raise invalid(path, "needs a property name such as path or products.0.category")
    parts = raw.split(".")
    if any(not p for p in parts):
        raise invalid(path, f"{raw!r} has an empty part")
    if any(c in raw for c in '"\\[]$'):
        raise invalid(path, f'{raw!r}: a property name cannot contain " \\ [ ] or $')
    # a number is a list position (products.0), never an object key named "0"
    return tuple(int(p) if p.isascii() and p.isdigit() and len(p) < 10 else p for p in parts)


def _scalar(value: object, path: Path) -> Scalar:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise invalid(path, "needs a finite number")
        return float(value)
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise invalid(path, f"longer than {MAX_TEXT} characters")
        return value
    raise invalid(path, f"expected a string, number or boolean, got {_kind(value)}")


def _ordered(value: object, path: Path) -> float | date:
    """A number, a date (``2026-03-01``: a whole day in the unit's zone, see ``bounds``), or a
    time with a zone (``2026-03-01T08:00:00+08:00``)."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise invalid(path, "expected a number or an ISO date or time with a zone") from None
    if isinstance(value, str):
        parsed = parse_time(value)
        if parsed is None:
            raise invalid(path, "expected a number or an ISO date or time with a zone")
        return parsed
    scalar = _scalar(value, path)
    if isinstance(scalar, bool | str):
        raise invalid(path, "expected a number or an ISO date or time with a zone")
    return scalar


def parse_time(text: str) -> datetime | None:
    """An ISO date (midnight UTC) or a time that names its zone; anything else is not a time."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", type(None): "null"}.get(
        type(value), type(value).__name__
    )


# --- SQL ------------------------------------------------------------------------------------


def typed_sql(
    cmp: Comparison,
    *,
    num: ColumnElement[Any],
    text: ColumnElement[Any],
    at: ColumnElement[Any],
    when: When,
) -> ColumnElement[bool]:
    """The comparison over a stored value's typed columns (``num`` for numbers and booleans,
    ``text`` for strings, ``at`` for times). A row that lacks the value never matches, except
    through ``ne``/``not_in``/``not_exists``, which the caller answers with NOT EXISTS."""
    if cmp.op == "exists":
        return true()
    if cmp.is_temporal:
        return _ordered_sql(cmp, at, when)
    if cmp.op in (*ORDERED, "between"):
        return _ordered_sql(cmp, num, when)
    if cmp.op in ("contains", "starts_with"):
        return _text_sql(cmp, text)
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    parts: list[ColumnElement[bool]] = []
    numbers = [float(v) for v in values if not isinstance(v, str)]
    strings = [v for v in values if isinstance(v, str)]
    if numbers:
        parts.append(num.in_(numbers) if len(numbers) > 1 else num == numbers[0])
    if strings:
        parts.append(text.in_(strings) if len(strings) > 1 else text == strings[0])
    matched = or_(*parts) if len(parts) > 1 else parts[0]
    return not_(func.coalesce(matched, false())) if cmp.op in ("ne", "not_in") else matched


class JsonValue(ColumnElement[Any]):
    """A JSON value at a path, as a number, a string or a boolean, or NULL when it is another
    type: hostile input such as ``{"revenue": "abc"}`` is not a number and must not fail the
    query (PostgreSQL's cast would), it must simply not match. The path is a bound parameter."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any], path: Path, kind: str) -> None:
        self.column = column
        self.path = path
        self.kind = kind
        self.type = {"number": Float(), "text": String(), "bool": Boolean()}[kind]


@compiles(JsonValue, "sqlite")
def _json_value_sqlite(element: JsonValue, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f'."{p}"' for p in element.path)
    bound = compiler.process(bindparam(None, path, type_=String(), unique=True), **kw)
    kind = f"json_type({column}, {bound})"
    value = f"json_extract({column}, {bound})"
    if element.kind == "number":
        return f"(CASE WHEN {kind} IN ('integer', 'real') THEN {value} END)"
    if element.kind == "text":
        return f"(CASE WHEN {kind} = 'text' THEN {value} END)"
    return f"(CASE {kind} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"


@compiles(JsonValue, "postgresql")
def _json_value_postgresql(element: JsonValue, compiler: Any, **kw: Any) -> str:
    # a chain of -> steps: a number steps into an array only (-> int on an object is NULL),
    # as in SQLite's $[0] and in ``value_at``
    target = compiler.process(element.column, **kw)
    for part in element.path:
        kind_of = Integer() if isinstance(part, int) else Text()
        step = compiler.process(bindparam(None, part, type_=kind_of, unique=True), **kw)
        target = f"({target} -> {step})"
    kind = f"jsonb_typeof({target})"
    value = f"({target} #>> '{{}}')"
    if element.kind == "number":
        return f"(CASE WHEN {kind} = 'number' THEN {value}::double precision END)"
    if element.kind == "text":
        return f"(CASE WHEN {kind} = 'string' THEN {value} END)"
    return f"(CASE WHEN {kind} = 'boolean' THEN {value}::boolean END)"


def json_sql(
    cmp: Comparison, column: ColumnElement[Any], path: Path, when: When
) -> ColumnElement[bool]:
    """The comparison over the JSON value at ``path`` of ``column`` (an event property)."""
    number, text, flag = (JsonValue(column, path, k) for k in ("number", "text", "bool"))
    present = or_(number.is_not(None), text.is_not(None), flag.is_not(None))
    if cmp.op == "exists":
        return present
    if cmp.op == "not_exists":
        return not_(present)
    if cmp.is_temporal:
        return _ordered_sql(cmp, text, when, as_text=True)
    if cmp.op in (*ORDERED, "between"):
        return _ordered_sql(cmp, number, when)
    if cmp.op in ("contains", "starts_with"):
        return _text_sql(cmp, text)
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    parts: list[ColumnElement[bool]] = []
    for value in values:
        if isinstance(value, bool):
            parts.append(flag == value)
        elif isinstance(value, float):
            parts.append(number == value)
        else:
            parts.append(text == value)
    matched = or_(*parts) if len(parts) > 1 else parts[0]
    # NOT over NULL is NULL: a value of another type must count as "not equal", as in Python
    return not_(func.coalesce(matched, false())) if cmp.op in ("ne", "not_in") else matched


def event_filter_sql(
    f: EventFilter, *, name: ColumnElement[Any], properties: ColumnElement[Any], when: When
) -> ColumnElement[bool]:
    """``f`` over the columns of an event table (``properties`` is the JSON column)."""
    matched = name.in_(list(f.names)) if len(f.names) > 1 else name == f.names[0]
    conditions = [json_sql(c.comparison, properties, c.path, when) for c in f.where]
    return and_(matched, *conditions)


def bounds(cmp: Comparison, when: When) -> list[tuple[str, Any]]:  # Any: float or datetime
    """An ordered comparison as (op, bound) pairs that all hold, with relative windows and
    plain dates turned into times: a date is the whole local day in ``when.zone``, so
    ``lte 2026-03-01`` runs to the end of that day and ``between`` two dates includes both."""
    if cmp.op in ("within_last", "not_within_last"):
        cutoff = cmp.value.cutoff(when.now, when.zone)
        return [("gte" if cmp.op == "within_last" else "lt", cutoff)]
    if cmp.op == "between":
        low, high = cmp.value
        return [*bounds(Comparison("gte", low), when), *bounds(Comparison("lte", high), when)]
    value = cmp.value
    if isinstance(value, date) and not isinstance(value, datetime):
        start, end = local_midnight(value, when.zone), local_midnight(value + DAY, when.zone)
        return [{"lt": ("lt", start), "lte": ("lt", end), "gt": ("gte", end),
                 "gte": ("gte", start)}[cmp.op]]  # fmt: skip
    return [(cmp.op, value)]


DAY = timedelta(days=1)


def _ordered_sql(
    cmp: Comparison, column: ColumnElement[Any], when: When, *, as_text: bool = False
) -> ColumnElement[bool]:
    parts = []
    for op, bound in bounds(cmp, when):
        value = iso_text(bound) if as_text and isinstance(bound, datetime) else bound
        ops: dict[str, ColumnElement[bool]] = {
            "lt": column < value,
            "lte": column <= value,
            "gt": column > value,
            "gte": column >= value,
        }
        parts.append(ops[op])
    return and_(*parts) if len(parts) > 1 else parts[0]


def _text_sql(cmp: Comparison, column: ColumnElement[Any]) -> ColumnElement[bool]:
    # autoescape: % and _ in the value are literal characters, not wildcards
    if cmp.op == "contains":
        return column.contains(cmp.value, autoescape=True)
    return column.startswith(cmp.value, autoescape=True)


# --- Python ---------------------------------------------------------------------------------


def value_at(properties: Mapping[str, Any] | None, path: Path) -> Any:
    """The property at ``path``, or None."""
    value: Any = properties
    for part in path:
        if isinstance(part, int):
            if not isinstance(value, list) or not 0 <= part < len(value):
                return None
            value = value[part]
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return None
    return value


def holds(cmp: Comparison, value: object, when: When) -> bool:
    """The comparison on one JSON value, meaning what ``json_sql`` means."""
    present = isinstance(value, str | bool) or _number(value) is not None
    if cmp.op == "exists":
        return present
    if cmp.op == "not_exists":
        return not present
    if cmp.is_temporal:  # as ISO text, as the SQL reading compares it
        return isinstance(value, str) and _ordered_holds(cmp, value, when, text=True)
    if cmp.op in (*ORDERED, "between"):
        number = _number(value)
        return number is not None and _ordered_holds(cmp, number, when)
    if cmp.op in ("contains", "starts_with"):
        if not isinstance(value, str):
            return False
        return cmp.value in value if cmp.op == "contains" else value.startswith(cmp.value)
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    matched = any(_equal(value, v) for v in values)
    return not matched if cmp.op in ("ne", "not_in") else matched


def event_matches(
    f: EventFilter, name: str, properties: Mapping[str, Any] | None, when: When
) -> bool:
    return name in f.names and all(
        holds(c.comparison, value_at(properties, c.path), when) for c in f.where
    )


def _ordered_holds(cmp: Comparison, value: Any, when: When, *, text: bool = False) -> bool:
    for op, bound in bounds(cmp, when):
        b = iso_text(bound) if text and isinstance(bound, datetime) else bound
        ops = {"lt": value < b, "lte": value <= b, "gt": value > b, "gte": value >= b}
        if not ops[op]:
            return False
    return True


def iso_text(at: datetime) -> str:
    """A UTC time as the ISO text that event properties carry (``2026-03-01T08:00:00``):
    times inside properties are compared as text, which orders UTC ISO times correctly."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _number(value: object) -> float | None:
    """A JSON number (not a numeric string: ``"12"`` is text, in SQL and here alike)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _equal(value: object, literal: Scalar) -> bool:
    if isinstance(literal, bool):
        return value is literal
    if isinstance(literal, float):
        return _number(value) == literal
    return isinstance(value, str) and value == literal


def zone_of(name: str | None) -> ZoneInfo:
    return ZoneInfo(name or DEFAULT_ZONE)


def unique_names(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
