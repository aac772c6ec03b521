"""Keyset pagination for the REST lists (issue 8): one page shape, one cursor format, one query
rule, so every list pages the same way and none of them with OFFSET.

A page is asked for by a :class:`PageRequest`: a sort field (from the list's allow-list), a
direction, a limit and the cursor of the previous page. The query orders by the sort column
and then by the row's id, and continues strictly after the last row given out:
``WHERE (key, id) > (last_key, last_id)`` (``<`` when descending), written as
``key > k OR (key = k AND id > i)`` since SQLite and PostgreSQL both index that well. A
table keyed by several columns (a counter per source, type and reason) breaks ties on all of
them, in order. Rows inserted or deleted between two pages neither shift nor repeat the rows
after them, as they would with OFFSET.

The cursor is opaque to the caller: base64url of the list's name, the sort it was made for,
the last row's sort key and id, followed by a checksum. Reading it back checks all of them, so a
cursor that was edited, truncated, or made by another list or for another sort is a 422 naming
``cursor``, never a 500 and never a silently wrong page. It is not a secret: it only says where
to continue, tenancy is in the query, so a forged cursor shows nothing a caller could not page
to anyway.

The caller (the service) owns tenancy and filters; this module only adds the order, the
keyset condition and the limit. Sort columns must be NOT NULL: NULL does not compare.
A list that is not a query (the built-in roles, which live in code, with the custom ones) pages
the same way in memory with :func:`page_items`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from oneloop.core.errors import FieldError, ValidationFailed

T = TypeVar("T")
R = TypeVar("R")
SortValue = str | int | float | bool | datetime
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_CHECK_BYTES = 12
_CHECK_LABEL = b"oneloop.page-cursor.v1"


class Page(BaseModel, Generic[T]):
    """One page of a list. ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None = Field(
        None, description="pass as ?cursor= (with the same sort) for the next page"
    )

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:  # Any: pydantic's
        """``Page[Segment]`` is ``SegmentPage`` in the OpenAPI document, not ``Page_Segment_``."""
        (item,) = params
        name = getattr(item, "__name__", None)
        if not isinstance(name, str) or not name.isidentifier():
            return super().model_parametrized_name(params)
        return f"{name}Page"


@dataclass(frozen=True)
class PageRequest:
    """Which page of list ``scope``: ``sort`` is a field of that list's allow-list."""

    scope: str
    sort: str
    descending: bool = False
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @property
    def sort_token(self) -> str:
        return f"-{self.sort}" if self.descending else self.sort


def bad_cursor(reason: str) -> ValidationFailed:
    return ValidationFailed(
        f"bad cursor: {reason}; pass the next_cursor of the previous page unchanged",
        [FieldError(("query", "cursor"), reason)],
    )


def _check(payload: bytes) -> bytes:
    return hmac.new(_CHECK_LABEL, payload, hashlib.sha256).digest()[:_CHECK_BYTES]


def write_cursor(
    request: PageRequest, key: SortValue, row_id: SortValue, *more_ids: SortValue
) -> str:
    """The cursor of the page after the row whose sort key is ``key`` and whose id is
    ``row_id`` (``more_ids``: the rest of the id, for a table keyed by several columns)."""

    def typed(value: SortValue) -> list[str | int | float | bool]:
        if isinstance(value, datetime):
            return ["t", value.isoformat()]
        if isinstance(value, bool):
            return ["b", value]
        if isinstance(value, int):
            return ["i", value]
        if isinstance(value, float):
            return ["f", value]
        return ["s", value]

    values = [typed(v) for v in (key, row_id, *more_ids)]
    payload = orjson.dumps([request.scope, request.sort_token, *values])
    return base64.urlsafe_b64encode(payload + _check(payload)).decode().rstrip("=")


def read_cursor(request: PageRequest) -> tuple[SortValue, SortValue] | None:
    """The (sort key, id) the page continues after, or None for the first page."""
    position = read_position(request, ids=1)
    if position is None:
        return None
    key, row_id = position
    return key, row_id


def read_position(request: PageRequest, *, ids: int) -> tuple[SortValue, ...] | None:
    """The sort key and the ``ids`` id columns of the row the page continues after, or None
    for the first page."""
    if request.cursor is None:
        return None
    raw = request.cursor
    try:
        blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise bad_cursor("not a cursor this API gave out") from exc
    payload, check = blob[:-_CHECK_BYTES], blob[-_CHECK_BYTES:]
    if len(blob) <= _CHECK_BYTES or not hmac.compare_digest(check, _check(payload)):
        raise bad_cursor("not a cursor this API gave out")
    try:
        scope, sort_token, *values = orjson.loads(payload)
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise bad_cursor("not a cursor this API gave out") from exc
    if scope != request.scope:
        raise bad_cursor("this cursor belongs to another list")
    if sort_token != request.sort_token:
        raise bad_cursor(f"this cursor was made for sort={sort_token}; keep the same sort")
    if len(values) != 1 + ids:
        raise bad_cursor("not a cursor this API gave out")
    return tuple(_value(v) for v in values)


def _value(typed: object) -> SortValue:
    match typed:
        case ["t", str(text)]:
            try:
                at = datetime.fromisoformat(text)
            except ValueError as exc:
                raise bad_cursor("not a cursor this API gave out") from exc
            return at
        case ["b", bool(flag)]:
            return flag
        case ["i", int(number)] if not isinstance(number, bool):
            return number
        case ["f", float(number)]:
            return number
        case ["s", str(text)]:
            return text
    raise bad_cursor("not a cursor this API gave out")


Column = InstrumentedAttribute[SortValue]


def unknown_sort(request: PageRequest, allowed: Iterable[str]) -> ValidationFailed:
    names = ", ".join(sorted(allowed))
    return ValidationFailed(
        f"cannot sort by {request.sort!r}; sort by one of {names}",
        [FieldError(("query", "sort"), f"one of {names}")],
    )


def keyset(
    session: Session,
    query: Select[tuple[R]],
    request: PageRequest,
    sorts: Mapping[str, Column],
    tiebreak: Column | Sequence[Column],
) -> tuple[Sequence[R], str | None]:
    """The page's rows and the cursor of the next page (None on the last).

    ``query`` selects one ORM entity with tenancy and filters applied and no ORDER BY.
    ``sorts`` maps each allowed field to its column; ``tiebreak`` (the id, or the columns of
    a composite key, in order) makes the order total, so no two rows share a position and
    none is skipped or repeated.
    """
    column = sorts.get(request.sort)
    if column is None:  # the API checks first; a service caller gets the same 422
        raise unknown_sort(request, sorts)
    ids = [tiebreak] if isinstance(tiebreak, InstrumentedAttribute) else list(tiebreak)
    order = [column, *ids]
    after = read_position(request, ids=len(ids))
    if after is not None:
        if not all(_fits(c, v) for c, v in zip(order, after, strict=True)):
            raise bad_cursor("not a cursor this API gave out")
        query = query.where(_after(order, after, request.descending))
    query = query.order_by(*(c.desc() if request.descending else c.asc() for c in order))
    rows = list(session.scalars(query.limit(request.limit + 1)))
    page = rows[: request.limit]
    if len(rows) <= request.limit:
        return page, None
    last = page[-1]
    key, *last_ids = (getattr(last, c.key) for c in order)
    return page, write_cursor(request, key, *last_ids)


def _after(
    order: Sequence[Column], values: Sequence[SortValue], descending: bool
) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of the columns ``order``: for (a, b, c),
    ``a > x OR (a = x AND (b > y OR (b = y AND c > z)))`` (``<`` when descending)."""

    def beyond(column: Column, value: SortValue) -> ColumnElement[bool]:
        return column < value if descending else column > value

    *first, (last_column, last_value) = zip(order, values, strict=True)
    keep = beyond(last_column, last_value)
    for column, value in reversed(first):
        keep = or_(beyond(column, value), and_(column == value, keep))
    return keep


def _fits(column: Column, value: SortValue) -> bool:
    """A cursor's value has the column's Python type: a forged one cannot reach the database
    as a type it would reject (a 500) or compare oddly."""
    kind = getattr(column.type, "impl_instance", column.type)  # a TypeDecorator's base
    try:
        wanted = kind.python_type
    except NotImplementedError:
        return True
    if wanted is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    return isinstance(value, wanted)


def keyset_page(
    session: Session,
    query: Select[tuple[R]],
    request: PageRequest,
    sorts: Mapping[str, Column],
    tiebreak: Column | Sequence[Column],
    convert: Callable[[Sequence[R]], list[T]],
) -> Page[T]:
    """:func:`keyset`, with the rows turned into the list's public shape in one call
    (``convert`` takes them all, so it can fetch what they join to in one query)."""
    rows, next_cursor = keyset(session, query, request, sorts, tiebreak)
    return Page(items=convert(rows), next_cursor=next_cursor)


def page_items(
    items: Iterable[T],
    request: PageRequest,
    sorts: Mapping[str, Callable[[T], SortValue]],
    ident: Callable[[T], SortValue],
) -> Page[T]:
    """A page of a list held in memory, in the same cursor format and order rule as
    :func:`keyset`: for a short list that is not one query (built-in roles live in code).
    ``sorts`` maps each allowed field to the item's key; ``ident`` tells items apart."""
    key_of = sorts.get(request.sort)
    if key_of is None:
        raise unknown_sort(request, sorts)

    def position(item: T) -> tuple[SortValue, SortValue]:
        return key_of(item), ident(item)

    ordered = sorted(items, key=position, reverse=request.descending)
    after = read_cursor(request)
    if after is not None and ordered:
        kinds = tuple(type(v) for v in position(ordered[0]))
        if tuple(type(v) for v in after) != kinds:  # compares like the rows, or is forged
            raise bad_cursor("not a cursor this API gave out")
        if request.descending:
            ordered = [i for i in ordered if position(i) < after]
        else:
            ordered = [i for i in ordered if position(i) > after]
    page = ordered[: request.limit]
    if len(ordered) <= request.limit:
        return Page(items=page, next_cursor=None)
    return Page(items=page, next_cursor=write_cursor(request, *position(page[-1])))
