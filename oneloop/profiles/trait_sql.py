"""Computed traits as SQL: one builder per aggregate, over the events a definition matches.

Each builder produces ``SELECT profile_id, <aggregate> FROM profiles_event WHERE <event filter>
[AND at >= cutoff] [AND bu_id = :unit] AND <which profiles> GROUP BY profile_id``; *which
profiles* is the caller's (``ids_in`` for a batch, ``id_range`` for a page of a full rebuild),
so the incremental and the full computation run the same query. Literals are bound
parameters, JSON paths too (``filters.JsonValue``).

What a value is:

- no row means no matching event (or none with a usable value): a count of 0 is not stored,
  so a million profiles cost nothing for a trait few of them have. Segment rules read a
  missing trait as ``not_exists`` (and ``orders_90d = 0`` as "does not exist").
- a number is a JSON number of at most ``MAX_NUMBER`` in size: larger ones, strings such as
  ``"12"`` or ``"'); DROP TABLE"``, lists and objects are not numbers and are skipped. The
  bound keeps a hostile sum from overflowing (PostgreSQL raises on float overflow, SQLite on
  integer overflow), which would stop the consumer.
- sums are kept to ``DECIMALS`` places, and an average is that sum over the count: the order
  in which a database adds floats differs between an index scan over a few profiles and a
  full one, and sums of amounts with up to five decimals then come out identical either way.
- first, last and most frequent take the events that carry the property as a scalar; ties go
  to the later event (time, then log position), never to a collation-dependent text order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    Subquery,
    and_,
    case,
    cast,
    distinct,
    func,
    or_,
    select,
)

from oneloop.core.db import Unindexed
from oneloop.profiles.filters import JsonValue, When, event_filter_sql
from oneloop.profiles.models import ProfileEventRow, TraitRow
from oneloop.profiles.trait_defs import AGGREGATES, NUMERIC, TraitDef, TraitSpec

MAX_NUMBER = 1e15
DECIMALS = 6

E = ProfileEventRow
# Which profiles a query covers: given the profile-id column of a table, the condition.
Restrict = Callable[[ColumnElement[str]], ColumnElement[bool]]


def ids_in(part: Sequence[str]) -> Restrict:
    return lambda column: column.in_(list(part))


def id_range(low: str | None, high: str | None) -> Restrict:
    """``low < id <= high``, open at either end: the pages of a recompute cover every id,
    including events of a profile the projection does not list."""

    def restrict(column: ColumnElement[str]) -> ColumnElement[bool]:
        bounds = []
        if low is not None:
            bounds.append(column > low)
        if high is not None:
            bounds.append(column <= high)
        return and_(*bounds) if bounds else column.is_not(None)

    return restrict


# The stored value, for reading (``core.db.JsonScalar`` reads bare numbers on SQLite).
STORED_VALUE = TraitRow.value.label("value")


# --- SQL: one builder per aggregate ---------------------------------------------------------


def aggregate_query(d: TraitDef, restrict: Restrict, when: When, group_id: str) -> Select[Any]:
    """``SELECT profile_id, value…`` for the profiles ``restrict`` admits. The value columns
    are one aggregate (a number or a time), or ``num, text, flag`` of the chosen event's
    property (one of them not NULL): see ``read_value``."""
    matched = _matched(d, restrict, when, group_id)
    return BUILDERS[d.spec.aggregate](d.spec, matched)


def _matched(d: TraitDef, restrict: Restrict, when: When, group_id: str) -> Subquery:
    """The matching events with the property's value as a number, a string and a boolean.
    Computed once here, so the aggregates group by plain columns (PostgreSQL will not match
    a GROUP BY expression with bound parameters to the same expression in the SELECT)."""
    spec = d.spec
    columns: list[ColumnElement[Any]] = [
        E.profile_id.label("profile_id"),
        E.seq.label("seq"),
        E.at.label("at"),
    ]
    # A trait is computed for a set or a range of profiles, so their own events are the plan;
    # SQLite, even with statistics, reads a common event's whole ``(name, at)`` range instead
    # (every order of the window: 2 s a trait at 10^6 people), unless told not to.
    conditions = [*event_conditions(d, when, group_id, name=Unindexed(E.name))]
    conditions.append(restrict(E.profile_id))
    if spec.window is not None:
        conditions.append(E.at >= spec.window.cutoff(when.now, when.zone))
    if spec.property is not None:
        raw = JsonValue(E.properties, spec.property, "number")
        # CAST: SQLite sums INTEGERs as integers, and raises on overflow
        num = case((func.abs(raw) <= MAX_NUMBER, cast(raw, Float)))
        columns.append(num.label("num"))
        if spec.aggregate in NUMERIC:
            conditions.append(num.is_not(None))
        else:
            text = JsonValue(E.properties, spec.property, "text")
            flag = JsonValue(E.properties, spec.property, "bool")
            columns += [text.label("text"), flag.label("flag")]
            conditions.append(or_(num.is_not(None), text.is_not(None), flag.is_not(None)))
    return select(*columns).where(*conditions).subquery("matched")


def event_conditions(
    d: TraitDef, when: When, group_id: str, name: ColumnElement[str] = E.name
) -> list[ColumnElement[bool]]:
    """The filter, and the unit: a unit's trait reads only that unit's events."""
    conditions = [event_filter_sql(d.spec.filter, name=name, properties=E.properties, when=when)]
    if d.bu_id != group_id:
        conditions.append(E.bu_id == d.bu_id)
    return conditions


def _per_profile(m: Subquery, value: ColumnElement[Any]) -> Select[Any]:
    return select(m.c.profile_id, value).group_by(m.c.profile_id)


def _count(spec: TraitSpec, m: Subquery) -> Select[Any]:
    return _per_profile(m, func.count())


def _sum(spec: TraitSpec, m: Subquery) -> Select[Any]:
    return _per_profile(m, func.sum(m.c.num))


def _avg(spec: TraitSpec, m: Subquery) -> Select[Any]:
    # the (rounded) sum over the count, in Python: the same sum gives the same average
    return _per_profile(m, func.sum(m.c.num)).add_columns(func.count(m.c.num))


def _min(spec: TraitSpec, m: Subquery) -> Select[Any]:
    return _per_profile(m, func.min(m.c.at if spec.property is None else m.c.num))


def _max(spec: TraitSpec, m: Subquery) -> Select[Any]:
    return _per_profile(m, func.max(m.c.at if spec.property is None else m.c.num))


def _first(spec: TraitSpec, m: Subquery) -> Select[Any]:
    if spec.property is None:
        return _per_profile(m, func.min(m.c.at))
    return _top(m, (m.c.at.asc(), m.c.seq.asc()))


def _last(spec: TraitSpec, m: Subquery) -> Select[Any]:
    if spec.property is None:
        return _per_profile(m, func.max(m.c.at))
    return _top(m, (m.c.at.desc(), m.c.seq.desc()))


def _distinct_count(spec: TraitSpec, m: Subquery) -> Select[Any]:
    # a value is a number, a string or a boolean: each kind's distinct values, added up
    return _per_profile(
        m,
        func.count(distinct(m.c.num))
        + func.count(distinct(m.c.text))
        + func.count(distinct(m.c.flag)),
    )


def _most_frequent(spec: TraitSpec, m: Subquery) -> Select[Any]:
    counted = (
        select(
            m.c.profile_id,
            m.c.num,
            m.c.text,
            m.c.flag,
            func.count().label("n"),
            func.max(m.c.at).label("latest_at"),
            func.max(m.c.seq).label("latest_seq"),
        )
        .group_by(m.c.profile_id, m.c.num, m.c.text, m.c.flag)
        .subquery("counted")
    )
    c = counted.c
    return _top(counted, (c.n.desc(), c.latest_at.desc(), c.latest_seq.desc()))


def _top(source: Subquery, order: Sequence[ColumnElement[Any]]) -> Select[Any]:
    """Per profile, the value of the first row in ``order`` (window functions: SQLite 3.25+)."""
    c = source.c
    rank = func.row_number().over(partition_by=c.profile_id, order_by=list(order))
    ranked = select(c.profile_id, c.num, c.text, c.flag, rank.label("rank")).subquery("ranked")
    r = ranked.c
    return select(r.profile_id, r.num, r.text, r.flag).where(r.rank == 1)


BUILDERS: dict[str, Callable[[TraitSpec, Subquery], Select[Any]]] = {
    "count": _count,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "avg": _avg,
    "first": _first,
    "last": _last,
    "distinct_count": _distinct_count,
    "most_frequent": _most_frequent,
}
assert set(BUILDERS) == set(AGGREGATES)


def read_value(spec: TraitSpec, row: Sequence[Any]) -> object | None:
    """A result row's value as JSON would hold it (a time as a datetime, for ``typed``)."""
    if spec.aggregate == "avg":
        total = _number(row[1], rounded=True)
        return None if total is None else _number(total / row[2], rounded=True)
    if len(row) == 2:
        value = row[1]
        if value is None or isinstance(value, datetime):
            return value
        return _number(value, rounded=spec.aggregate == "sum")
    num, text, flag = row[1:]
    if text is not None:
        return str(text)
    if num is not None:
        return _number(num, rounded=False)
    return None if flag is None else bool(flag)


def _number(value: Any, *, rounded: bool) -> int | float | None:  # Any: a driver's number
    number = float(value)
    if not math.isfinite(number):
        return None
    if rounded:
        number = round(number, DECIMALS)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number
