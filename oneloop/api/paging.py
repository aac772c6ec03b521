"""The list convention of ``/api/v1`` (issue 8), declared once for every paged route.

A paged list answers ``Page[T]``: ``{"items": [...], "next_cursor": "..." | null}`` and takes

- ``limit``: 1 to 200 rows, 50 by default;
- ``sort``: one field of the route's allow-list, ``-field`` for descending; the route's own
  order by default. An unknown field is a 422 naming ``sort`` and listing the allowed ones;
- ``cursor``: the ``next_cursor`` of the previous page, opaque, sent back unchanged with the
  same ``sort`` (and filters). A tampered cursor, or one from another list or sort, is a 422
  naming ``cursor``.

Pages are keyset pages (``oneloop.core.paging``): walking them with any limit returns every
row once, in the asked order, even while rows are added.

A route declares its list query once (``ListQuery`` in issue 8's words) and hands the
resulting ``PageRequest`` to a service function that returns ``Page[T]``::

    SegmentList = Annotated[
        PageRequest, Depends(list_query("segments", service.SEGMENT_SORTS, default="code"))
    ]

    @router.get("")
    def list_segments(page: SegmentList, ...) -> Page[Segment]:
"""

from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Query

from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.core.paging import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Page", "PageRequest", "list_query"]

MAX_CURSOR_LENGTH = 1000


def list_query(scope: str, sorts: Iterable[str], *, default: str) -> Callable[..., PageRequest]:
    """The list-query dependency of list ``scope``: its ``limit``, ``cursor`` and ``sort``
    query parameters as a ``PageRequest``. Built per list so that each route's OpenAPI entry
    names its own allowed sorts."""
    allowed = tuple(t for s in sorts for t in (s, f"-{s}"))
    if default not in allowed:
        raise ValueError(f"default sort {default!r} is not one of {allowed}")
    choices = ", ".join(allowed)

    def page_request(
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description=f"rows per page, 1 to {MAX_LIMIT}")
        ] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=MAX_CURSOR_LENGTH,
                description="next_cursor of the previous page, unchanged (same sort)",
            ),
        ] = None,
        sort: Annotated[
            str | None,
            Query(
                max_length=64,
                description=f"one of {choices} (-field: descending); default {default}",
                examples=[default],
            ),
        ] = None,
    ) -> PageRequest:
        token = sort or default
        if token not in allowed:
            raise ValidationFailed(
                f"cannot sort by {token!r}; sort by one of {choices}",
                [FieldError(("query", "sort"), f"not one of {choices}")],
            )
        return PageRequest(
            scope=scope,
            sort=token.removeprefix("-"),
            descending=token.startswith("-"),
            limit=limit,
            cursor=cursor,
        )

    return page_request


def search(matches: str) -> object:
    """The ``q`` filter of a list: a case-insensitive substring of ``matches``."""
    return Query(min_length=1, max_length=100, description=f"a part of {matches}, any case")
