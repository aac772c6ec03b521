"""Cursor paging for the console: "next" and "previous" links over the services' cursors.

A service pages forward only (``next_cursor``). Going back needs the cursors of the pages
before, so each link carries them in ``trail`` (oldest first, ``~`` for the first page, which
has no cursor), capped so a URL stays short: past the cap, the oldest pages are reached with
"first" instead. The cursors stay opaque and are checked by the service when they come back.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import URL, QueryParams

CURSOR = "cursor"
TRAIL = "trail"
FIRST = "~"
SEPARATOR = "."
MAX_TRAIL = 30


@dataclass(frozen=True)
class Pager:
    """Links for the pagination macro; ``*_fragment`` are the same pages as htmx fragments."""

    next_url: str | None
    prev_url: str | None
    first_url: str | None
    next_fragment: str | None = None
    prev_fragment: str | None = None
    first_fragment: str | None = None


def _relative(url: URL) -> str:
    return f"{url.path}?{url.query}" if url.query else url.path


def _at(url: URL, cursor: str | None, trail: list[str]) -> URL:
    url = url.remove_query_params([CURSOR, TRAIL])
    params: dict[str, str] = {}
    if cursor is not None:
        params[CURSOR] = cursor
    if trail:
        params[TRAIL] = SEPARATOR.join(trail[-MAX_TRAIL:])
    return url.include_query_params(**params) if params else url


def cursor_pager(
    url: URL,
    next_cursor: str | int | None,
    *,
    page_path: str | None = None,
    fragment_path: str | None = None,
) -> Pager:
    """The links around the page ``url`` shows. When the list is also served as an htmx
    fragment, ``page_path`` and ``fragment_path`` name the full page and the fragment (the
    same query), whichever of them ``url`` is."""
    query = QueryParams(url.query)
    current = query.get(CURSOR) or None
    raw_trail = query.get(TRAIL, "")
    trail = [t for t in raw_trail.split(SEPARATOR) if t] if raw_trail else []
    nxt = prev = first = None
    if next_cursor is not None:
        nxt = _at(url, str(next_cursor), [*trail, current or FIRST])
    if current is not None:
        back = trail[-1] if trail else FIRST
        prev = _at(url, None if back == FIRST else back, trail[:-1])
        first = _at(url, None, [])

    def page(at: URL | None) -> str | None:
        if at is None:
            return None
        return _relative(at.replace(path=page_path) if page_path else at)

    def fragment(at: URL | None) -> str | None:
        if at is None or fragment_path is None:
            return None
        return _relative(at.replace(path=fragment_path))

    return Pager(
        next_url=page(nxt),
        prev_url=page(prev),
        first_url=page(first),
        next_fragment=fragment(nxt),
        prev_fragment=fragment(prev),
        first_fragment=fragment(first),
    )
