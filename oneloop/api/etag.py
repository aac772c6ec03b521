"""ETag and If-Match on configuration objects (issue 8; RFC 9110 §8.8.3, §13.1.1): two admins
who read a segment and both save it no longer lose the first one's change without a word.

The validator is a hash of the object's canonical JSON, as the API shows it, so no table
needs a version column. Fields that move on their own (a segment's size, a user's last
sign-in) are left out of the hash: they are not what an edit is made against, and a live
segment would otherwise refuse every edit while events flow.

Routes read the object (``get_x``) in the same transaction as the update, check ``If-Match``
against it, then change it and answer the new ETag:

- ``If-Match`` naming the current ETag, or ``*``: the change proceeds;
- another ETag (someone changed it since): 412 problem+json, nothing changes;
- no ``If-Match``: the change proceeds (last writer wins) unless ``ONELOOP_REQUIRE_IF_MATCH``
  is on, then 428.

Two changes of one object must not both pass the check. On SQLite a writer holds the
database's lock from its first write, so the check and the update cannot interleave with
another writer. On PostgreSQL (read committed) two requests could both read the old version
in the instant before either writes; so a request that sends ``If-Match`` first takes a
transaction-level advisory lock on the object (its address: ``/api/v1/segments/ID`` for
every route under it), held until its transaction ends. The second waits, then reads what
the first wrote, and gets its 412.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, TypeVar

import orjson
from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import text

from oneloop.api.deps import SessionDep, StateDep
from oneloop.core.errors import PreconditionFailed, PreconditionRequired

ETAG = "ETag"
IF_MATCH = "If-Match"

Tagged = BaseModel | Mapping[str, object]
T = TypeVar("T", bound=Tagged)


def etag_of(current: Tagged, volatile: Collection[str] = ()) -> str:
    """A strong validator: equal exactly when the (non-volatile) JSON is equal."""
    document = (
        current.model_dump(mode="json", exclude=set(volatile))
        if isinstance(current, BaseModel)
        else {k: v for k, v in current.items() if k not in volatile}
    )
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return f'"{hashlib.sha256(canonical).hexdigest()[:32]}"'


def tag(response: Response, current: T, volatile: Collection[str] = ()) -> T:
    """Put the object's ETag on the answer and hand the object back for the route to return."""
    response.headers[ETAG] = etag_of(current, volatile)
    return current


def _tags(raw: str) -> list[str]:
    """The entity tags of an If-Match list; a weak one (``W/"…"``) never matches here, since
    If-Match compares strongly."""
    return [part.strip() for part in raw.split(",") if part.strip()]


@dataclass(frozen=True)
class Precondition:
    if_match: str | None
    is_required: bool

    def check(self, current: Tagged | None, volatile: Collection[str] = ()) -> None:
        """Raise unless a change to ``current`` (None: it does not exist yet) may proceed."""
        if self.if_match is None:
            if self.is_required:
                raise PreconditionRequired(
                    f"send {IF_MATCH} with the ETag you read (GET the object first), or "
                    f"{IF_MATCH}: * to change it whatever it holds now",
                    header=IF_MATCH,
                )
            return
        tags = _tags(self.if_match)
        if current is not None and ("*" in tags or etag_of(current, volatile) in tags):
            return
        raise PreconditionFailed(
            "it was changed since you read it: read it again (its ETag changed) and redo your "
            "change on what it holds now"
            if current is not None
            else "it does not exist, and If-Match asked for a version of it",
            header=IF_MATCH,
        )


OBJECT_PATH_PARTS = 5  # "", "api", "v1", the collection, the object's id


def object_key(path: str) -> str:
    """The object a route's path changes: the collection and id, not the sub-resource, so
    that every route changing one object takes the same lock."""
    return "/".join(path.split("/")[:OBJECT_PATH_PARTS])


def precondition(
    state: StateDep,
    request: Request,
    session: SessionDep,
    if_match: Annotated[
        str | None,
        Header(
            alias=IF_MATCH,
            max_length=1000,
            description=(
                "the ETag you read, to change only that version (412 if it changed since); "
                "* for any version"
            ),
        ),
    ] = None,
) -> Precondition:
    if if_match is not None and session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"etag:{object_key(request.url.path)}"},
        )
    return Precondition(if_match, state.settings.require_if_match)


IfMatch = Annotated[Precondition, Depends(precondition)]
