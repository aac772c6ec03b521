"""What a GraphQL request carries to its resolvers: the caller, one database session, one
view of personal data, and the data loaders.

The caller is REST's own (``CallerDep``: a session cookie with its CSRF token on POST, an API
key or the admin token), resolved before the query is even parsed, so a request without
credentials is a 401 problem+json and no resolver runs. Only POST is served: a GET would let
a page on another site make a signed-in browser read personal data, and each such read is
audited (a side effect); a GET is a 405 naming POST.

The session is SQLAlchemy's, which is synchronous and not for two threads at once, while
Strawberry runs resolvers concurrently on the event loop. ``GraphQLContext.run`` therefore
runs each database call in a worker thread, one at a time per request (an ``asyncio.Lock``):
the event loop stays free for other requests, and a data loader's batch is one call.

Personal values are masked and shown through one ``PiiView`` per request, and the read is
audited once when the query is done (``finish``), as REST audits once per call: one
``pii.read`` entry per profile asked for by id, and one per segment whose members were shown
(with how many), each listing the fields the request showed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from oneloop.api.auth import CallerDep
from oneloop.api.deps import StateDep
from oneloop.core.context import Context
from oneloop.core.errors import NotFound
from oneloop.governance import pii
from oneloop.identity import service as identity
from oneloop.identity.schemas import Identifier
from oneloop.profiles import scores
from oneloop.profiles import service as profiles
from oneloop.profiles.schemas import ProfileSummary, ProfileTag
from oneloop.segments import service as segments
from oneloop.segments.schemas import Membership

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Origin:
    """How a request came to a profile, which names its audit entry: asked for by id
    (``profile``), or as a member of a segment (``segment``, with the segment's unit)."""

    object_type: str
    object_id: str
    bu_id: str | None = None


class Loaders:
    """One data loader per thing a list of profiles asks for, each a batch service call:
    the number of statements does not grow with the number of profiles."""

    def __init__(self, gql: GraphQLContext) -> None:
        self.summary: DataLoader[str, ProfileSummary] = gql.loader(profiles.summaries)
        self.visible: DataLoader[str, bool] = gql.loader(profiles.visible_many)
        self.tags: DataLoader[str, list[ProfileTag]] = gql.loader(profiles.tags_of_many)
        self.scores: DataLoader[str, list[scores.Score]] = gql.loader(profiles.scores_of_many)
        self.segments: DataLoader[str, list[Membership]] = gql.loader(segments.memberships_of_many)
        self.identifiers: DataLoader[str, list[Identifier]] = gql.loader(gql.identifiers_of)


class GraphQLContext(BaseContext):
    def __init__(self, session: Session, ctx: Context) -> None:
        super().__init__()
        self.session = session
        self.ctx = ctx
        self._lock = asyncio.Lock()
        self._view: pii.PiiView | None = None
        self._shown: dict[Origin, set[str]] = {}
        self.loaders = Loaders(self)

    async def run(
        self, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:  # Any: a service function's own arguments
        """``fn(session, ctx, *args, **kwargs)`` in a worker thread, one at a time."""
        async with self._lock:
            return await run_in_threadpool(partial(fn, self.session, self.ctx, *args, **kwargs))

    def loader(
        self, batch: Callable[[Session, Context, list[str]], dict[str, T]]
    ) -> DataLoader[str, T]:
        """A loader over a batch service function that answers for the ids it lets the
        caller see and leaves the others out: those come back as NotFound."""

        async def load(keys: list[str]) -> list[T | BaseException]:
            found = await self.run(batch, keys)
            return [
                found[k] if k in found else NotFound(f"no profile {k}", profile_id=k) for k in keys
            ]

        return DataLoader(load_fn=load)

    def view(self, session: Session, ctx: Context) -> pii.PiiView:
        """The request's one view of personal data (made on first use, in a worker thread)."""
        if self._view is None:
            self._view = pii.view(session, ctx)
        return self._view

    def identifiers_of(
        self, session: Session, ctx: Context, profile_ids: list[str]
    ) -> dict[str, list[Identifier]]:
        return identity.identifiers_of(session, ctx, profile_ids, view=self.view(session, ctx))

    def showing(self, origin: Origin, profile_id: str) -> None:
        """A resolver passed this profile's values through the view."""
        self._shown.setdefault(origin, set()).add(profile_id)

    def finish(self) -> None:
        """Audit what the request showed (see the module); called once, after the query."""
        view = self._view
        if view is None or not view.shown:
            return
        for origin, shown in sorted(self._shown.items()):
            many = origin.object_type != "profile"
            view.audit(
                self.session,
                origin.object_type,
                origin.object_id,
                rows=len(shown) if many else None,
                bu_id=origin.bu_id,
            )


def graphql_context(request: Request, ctx: CallerDep, state: StateDep) -> Iterator[GraphQLContext]:
    """FastAPI resolves ``CallerDep`` first: no credentials, no query. The transaction
    commits when the query is done (with its audit entries), whatever errors some fields
    met: what was shown was read."""
    if request.method != "POST":
        raise HTTPException(405, headers={"Allow": "POST"})  # problem+json, by errors.py
    with state.sessions() as session, session.begin():
        gql = GraphQLContext(session, ctx)
        yield gql
        gql.finish()
