"""The GraphQL schema (issue 8, part 2): queries over profiles and segments, with limits.

Read-only: no mutations (REST changes things, with its idempotency keys). Limits refuse a
document before anything runs, so a query's cost follows from its text: nesting depth
(``MAX_DEPTH``), size (``MAX_TOKENS``), aliases (``MAX_ALIASES``, each alias being another
copy of a field's work), and every page's ``first`` at most ``types.MAX_FIRST``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache

import strawberry
from graphql import GraphQLError, parse
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.types.execution import ExecutionContext

from oneloop.api.graphql import errors
from oneloop.api.graphql.context import GraphQLContext, Origin, graphql_context
from oneloop.api.graphql.types import (
    Connection,
    Edge,
    Info,
    PageInfo,
    Profile,
    Segment,
    cursor_arg,
    page_size,
)
from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.profiles import service as profiles
from oneloop.segments import service as segments

PATH = "/graphql"
MAX_DEPTH = 10
MAX_TOKENS = 2_000
MAX_ALIASES = 15
MAX_VALUE = 300  # characters of an identifier, as REST's lookup
CACHED_DOCUMENTS = 256  # parsed and validated query texts kept per process

# The limits' validation rules, made once: Strawberry's limiters build a new rule class per
# instance, and the validation cache is keyed by the rule classes, so per-request limiters
# would never hit it. Clients send the same few query texts again and again; parsing and
# validating one costs more than running it.
LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


_parse = lru_cache(maxsize=CACHED_DOCUMENTS)(parse)


class CachedParse(SchemaExtension):
    """Strawberry's ``ParserCache``, except that a document that fails to parse (too many
    tokens, bad syntax) is left to Strawberry's own parse, which answers it with the usual
    error: one raised from this hook would skip our error codes."""

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.query:
            with suppress(GraphQLError):
                ec.graphql_document = _parse(ec.query, **ec.parse_options)
        yield


async def _profile_at(gql: GraphQLContext, kind: str, value: str) -> Profile:
    if len(value) > MAX_VALUE:
        raise ValidationFailed(
            "value too long", [FieldError(("value",), f"at most {MAX_VALUE} characters")]
        )
    found = await gql.run(profiles.find_id, kind, value)
    return Profile(id=strawberry.ID(found), origin=Origin("profile", found))


@strawberry.type
class Query:
    @strawberry.field(description="A profile by its OneID (an absorbed profile's id redirects)")
    async def profile(self, info: Info, id: strawberry.ID) -> Profile | None:
        return await _profile_at(info.context, "oneid", str(id))

    @strawberry.field(
        description="A profile by any identifier, written as anywhere (138 0013 8000), "
        "normalised as the resolver reads it: phone, email, wechat_openid, user_id …"
    )
    async def profile_by_identifier(self, info: Info, type: str, value: str) -> Profile | None:
        return await _profile_at(info.context, type, value)

    @strawberry.field(description="A segment by id")
    async def segment(self, info: Info, id: strawberry.ID) -> Segment | None:
        return Segment.of(await info.context.run(segments.get_segment, str(id)))

    @strawberry.field(description="Your segments by code, a page at a time")
    async def segments(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[Segment] | None:
        limit, cursor = page_size(first), cursor_arg(after)
        listed = await info.context.run(segments.list_segments)
        start = 0
        if cursor is not None:
            ids = [s.id for s in listed]
            if cursor not in ids:
                raise ValidationFailed(
                    "bad cursor", [FieldError(("after",), "not a cursor this API gave out")]
                )
            start = ids.index(cursor) + 1
        page = listed[start : start + limit]
        more = start + limit < len(listed)
        return Connection(
            edges=[Edge(cursor=s.id, node=Segment.of(s)) for s in page],
            page_info=PageInfo(has_next_page=more, end_cursor=page[-1].id if page else None),
        )


class OneLoopSchema(strawberry.Schema):
    def process_errors(
        self, errors_: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        errors.log_errors(errors_, execution_context)


def make_schema() -> strawberry.Schema:
    return OneLoopSchema(
        query=Query,
        # Factories, not instances: an extension holds its request's execution context.
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),  # a parse option: first
            CachedParse,
            lambda: AddValidationRules(list(LIMIT_RULES)),
            lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
            errors.ErrorCodes,
        ],
    )


def make_router() -> GraphQLRouter[GraphQLContext, None]:
    """POST only, no GraphiQL: the console's content-security policy allows our own scripts
    only, and GraphiQL loads its own from a CDN (use any desktop GraphQL client instead)."""
    return GraphQLRouter(
        make_schema(),
        path=PATH,
        graphql_ide=None,
        allow_queries_via_get=False,
        context_getter=graphql_context,
        subscription_protocols=(),  # queries only: no websocket
        tags=["graphql"],
    )
