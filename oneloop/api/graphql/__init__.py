"""GraphQL at /graphql (issue 8, part 2): profiles and segments over the same service
functions as REST, with REST's authentication, checks and masking. See docs/graphql.md."""

from oneloop.api.graphql.schema import PATH, make_router, make_schema

__all__ = ["PATH", "make_router", "make_schema"]
