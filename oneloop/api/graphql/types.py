"""The GraphQL types and their field resolvers.

Every resolver calls the service function the REST route calls (or its batch twin, through a
data loader), so checks, tenancy, sharing and masking are the services' and nothing here
decides who sees what. Values that may be personal pass through the request's ``PiiView``
(``GraphQLContext.view``), and the resolver says which profile it shows (``showing``) for
the audit entry written when the query is done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

import strawberry
from sqlalchemy.orm import Session
from strawberry.scalars import JSON

from oneloop.api.graphql.context import GraphQLContext, Origin
from oneloop.core.context import Context
from oneloop.core.cursor import write_cursor
from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.governance import consent_views
from oneloop.governance import service as governance
from oneloop.identity import schemas as identity_schemas
from oneloop.identity import service as identity
from oneloop.profiles import scores
from oneloop.profiles import service as profiles
from oneloop.profiles.schemas import ProfileSummary, Timeline
from oneloop.segments import schemas as segment_schemas
from oneloop.segments import service as segments

MAX_FIRST = 100
MAX_CURSOR = 200  # characters: every cursor we give out is far shorter

Info = strawberry.Info[GraphQLContext, None]
N = TypeVar("N")


def page_size(first: int, argument: str = "first") -> int:
    """Pages are bounded, so that the size of an answer follows from the query's text."""
    if not 1 <= first <= MAX_FIRST:
        raise ValidationFailed(
            "page size out of range",
            [FieldError((argument,), f"must be between 1 and {MAX_FIRST}, not {first}")],
        )
    return first


def cursor_arg(after: str | None) -> str | None:
    if after is not None and len(after) > MAX_CURSOR:
        raise ValidationFailed(
            "bad cursor", [FieldError(("after",), "not a cursor this API gave out")]
        )
    return after


# --- pages ----------------------------------------------------------------------------------


@strawberry.type(description="Relay's page information: pass endCursor as after for the next")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo


# --- what a profile holds ---------------------------------------------------------------------


@strawberry.type(description="A typed key of the person; masked without pii:read")
class Identifier:
    type: str
    value: str
    first_seen_at: datetime
    last_seen_at: datetime
    first_source_id: str
    shared_reason: str | None

    @classmethod
    def of(cls, i: identity_schemas.Identifier) -> Identifier:
        return cls(
            type=i.type,
            value=i.value,
            first_seen_at=i.first_seen_at,
            last_seen_at=i.last_seen_at,
            first_source_id=i.first_source_id,
            shared_reason=i.shared_reason,
        )


@strawberry.type(description="One value a field had, aggregated over the events that sent it")
class Observation:
    value: JSON
    count: int
    first_at: datetime
    last_at: datetime
    source_id: str
    source_name: str
    message_id: str


@strawberry.type(description="A golden-record field: the surviving value, where it came from")
class GoldenField:
    name: str
    value: JSON
    rule: str
    source_id: str
    source_name: str
    message_id: str
    observed_at: datetime
    history: list[Observation] = strawberry.field(description="every value seen, newest first")


@strawberry.type
class GoldenRecord:
    events_read: int
    fields: list[GoldenField]

    @classmethod
    def of(cls, record: identity_schemas.GoldenRecord) -> GoldenRecord:
        return cls(
            events_read=record.events_read,
            fields=[
                GoldenField(
                    name=name,
                    value=f.value,
                    rule=f.rule,
                    source_id=f.source_id,
                    source_name=f.source_name,
                    message_id=f.message_id,
                    observed_at=f.observed_at,
                    history=[Observation(**o.model_dump()) for o in f.history],
                )
                for name, f in record.fields.items()
            ],
        )


@strawberry.type(description="A merge or split that shaped the profile (identity lineage)")
class IdentityChange:
    id: strawberry.ID
    kind: str
    survivor_id: str
    absorbed_id: str
    rule: str
    created_at: datetime
    created_by: str
    undone_at: datetime | None


@strawberry.type
class Tag:
    tag_id: strawberry.ID
    code: str
    name_zh: str
    name_en: str
    category: str
    source: str
    set_by: str
    set_at: datetime
    reason: str
    expires_at: datetime | None


@strawberry.type
class Score:
    model_id: strawberry.ID
    bu_id: str
    code: str
    name_zh: str
    name_en: str
    value: float
    as_of: datetime | None


@strawberry.type(description="One award: which rule gave how many points, and the score after")
class ScorePoints:
    model_id: strawberry.ID
    model_code: str
    rule: str
    event: str | None
    points: float
    value_after: float
    at: datetime


@strawberry.type
class SegmentMembership:
    segment_id: strawberry.ID
    code: str
    name: str
    bu_id: str
    entered_at: datetime


@strawberry.type(description="Where one purpose × channel stands; allowed is may_contact's answer")
class ConsentDecision:
    purpose: str
    channel: str
    status: str | None
    legal_basis: str | None
    given_at: datetime | None
    is_default: bool
    allowed: bool
    decided_by: str


@strawberry.type(description="An event on the timeline; personal properties masked")
class TimelineEntry:
    seq: strawberry.ID
    at: datetime
    name: str
    type: str
    department: str
    bu_id: str
    source_id: str
    properties: JSON


# --- the profile ----------------------------------------------------------------------------


@strawberry.type(
    description="A OneID with what the platform knows of the person. A field your role may "
    "not read is null, with a FORBIDDEN error naming its path; the rest still answers."
)
class Profile:
    id: strawberry.ID
    origin: strawberry.Private[Origin]

    async def _summary(self, info: Info) -> ProfileSummary:
        return await info.context.loaders.summary.load(str(self.id))

    @strawberry.field
    async def first_seen_at(self, info: Info) -> datetime:
        return (await self._summary(info)).first_seen_at

    @strawberry.field
    async def last_seen_at(self, info: Info) -> datetime:
        return (await self._summary(info)).last_seen_at

    @strawberry.field
    async def events(self, info: Info) -> int:
        return (await self._summary(info)).events

    @strawberry.field(description="the units the person touched, of those you may see")
    async def business_units(self, info: Info) -> list[str]:
        return (await self._summary(info)).business_units

    @strawberry.field
    async def identifiers(self, info: Info) -> list[Identifier] | None:
        found = await info.context.loaders.identifiers.load(str(self.id))
        info.context.showing(self.origin, str(self.id))
        return [Identifier.of(i) for i in found]

    @strawberry.field(description="each field's surviving value, source, time and history")
    async def golden_record(self, info: Info) -> GoldenRecord | None:
        gql = info.context

        def read(session: Session, ctx: Context) -> identity_schemas.GoldenRecord:
            return identity.golden(session, ctx, str(self.id), view=gql.view(session, ctx))

        found = await gql.run(read)
        gql.showing(self.origin, str(self.id))
        return GoldenRecord.of(found)

    @strawberry.field(description="the merges and splits behind the profile, oldest first")
    async def identity_history(self, info: Info) -> list[IdentityChange] | None:
        gql = info.context

        def read(session: Session, ctx: Context) -> identity_schemas.IdentityExplanation:
            return identity.explain(session, ctx, str(self.id), view=gql.view(session, ctx))

        found = await gql.run(read)
        gql.showing(self.origin, str(self.id))
        return [
            IdentityChange(
                id=strawberry.ID(m.id),
                kind=m.kind,
                survivor_id=m.survivor_id,
                absorbed_id=m.absorbed_id,
                rule=m.rule,
                created_at=m.created_at,
                created_by=m.created_by,
                undone_at=m.undone_at,
            )
            for m in found.history
        ]

    @strawberry.field
    async def tags(self, info: Info) -> list[Tag] | None:
        found = await info.context.loaders.tags.load(str(self.id))
        return [Tag(**t.model_dump()) for t in found]

    @strawberry.field(description="the score in each model you may see, decay applied")
    async def scores(self, info: Info) -> list[Score] | None:
        found = await info.context.loaders.scores.load(str(self.id))
        return [
            Score(
                model_id=strawberry.ID(s.model_id),
                bu_id=s.bu_id,
                code=s.code,
                name_zh=s.name_zh,
                name_en=s.name_en,
                value=s.value,
                as_of=s.as_of,
            )
            for s in found
        ]

    @strawberry.field(description="the awards behind the scores, newest first")
    async def score_history(self, info: Info, first: int = 20) -> list[ScorePoints] | None:
        limit = page_size(first)

        def read(session: Session, ctx: Context) -> list[scores.Points]:
            current = profiles.visible_id(session, ctx, str(self.id))
            units = governance.scope_of(session, ctx)
            return scores.history(session, current, limit=limit, bu_ids=units)

        return [
            ScorePoints(
                model_id=strawberry.ID(p.model_id),
                model_code=p.model_code,
                rule=p.rule,
                event=p.event,
                points=p.points,
                value_after=p.value_after,
                at=p.at,
            )
            for p in await info.context.run(read)
        ]

    @strawberry.field(description="the segments the person is in now, of those you may see")
    async def segments(self, info: Info) -> list[SegmentMembership] | None:
        await info.context.loaders.visible.load(str(self.id))  # the batch below trusts us
        found = await info.context.loaders.segments.load(str(self.id))
        return [SegmentMembership(**m.model_dump()) for m in found]

    @strawberry.field(description="consent in force per purpose × channel, defaults filled in")
    async def consent(self, info: Info) -> list[ConsentDecision] | None:
        state = await info.context.run(consent_views.current_state, str(self.id))
        return [
            ConsentDecision(
                purpose=i.purpose,
                channel=i.channel,
                status=i.status,
                legal_basis=i.legal_basis,
                given_at=i.given_at,
                is_default=i.is_default,
                allowed=i.allowed,
                decided_by=i.decided_by,
            )
            for i in state.items
        ]

    @strawberry.field(description="what happened across marketing, sales and service, newest first")
    async def timeline(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[TimelineEntry] | None:
        gql = info.context
        limit, cursor = page_size(first), cursor_arg(after)

        def read(session: Session, ctx: Context) -> Timeline:
            view = gql.view(session, ctx)
            pid = str(self.id)
            return profiles.timeline(session, ctx, pid, cursor=cursor, limit=limit, view=view)

        found = await gql.run(read)
        gql.showing(self.origin, str(self.id))
        edges = [
            Edge(
                cursor=write_cursor(e.at, e.seq),
                node=TimelineEntry(
                    seq=strawberry.ID(str(e.seq)),
                    at=e.at,
                    name=e.name,
                    type=e.type,
                    department=e.department,
                    bu_id=e.bu_id,
                    source_id=e.source_id,
                    properties=e.properties,
                ),
            )
            for e in found.entries
        ]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=found.next_cursor is not None, end_cursor=found.next_cursor
            ),
        )


# --- segments -------------------------------------------------------------------------------


@strawberry.type
class MemberEdge:
    cursor: str
    entered_at: datetime
    node: Profile


@strawberry.type
class MemberConnection:
    edges: list[MemberEdge]
    page_info: PageInfo


@strawberry.type(description="A named rule over traits and events, and the profiles it holds")
class Segment:
    id: strawberry.ID
    bu_id: str
    code: str
    name: str
    description: str
    is_live: bool
    size: int
    version: int
    evaluated_at: datetime | None

    @classmethod
    def of(cls, s: segment_schemas.Segment) -> Segment:
        return cls(
            id=strawberry.ID(s.id),
            bu_id=s.bu_id,
            code=s.code,
            name=s.name,
            description=s.description,
            is_live=s.is_live,
            size=s.size,
            version=s.version,
            evaluated_at=s.evaluated_at,
        )

    @strawberry.field(description="members by profile id; their fields are batched")
    async def members(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> MemberConnection:
        limit, cursor = page_size(first), cursor_arg(after)
        found = await info.context.run(
            segments.list_members, str(self.id), cursor=cursor, limit=limit
        )
        origin = Origin("segment", str(self.id), self.bu_id)
        return MemberConnection(
            edges=[
                MemberEdge(
                    cursor=m.profile_id,
                    entered_at=m.entered_at,
                    node=Profile(id=strawberry.ID(m.profile_id), origin=origin),
                )
                for m in found.members
            ],
            page_info=PageInfo(
                has_next_page=found.next_cursor is not None, end_cursor=found.next_cursor
            ),
        )
