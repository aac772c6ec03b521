"""GraphQL errors as a contract, like REST's problem+json: every error carries
``extensions.code``, and none carries a stack trace.

A service's ``OneLoopError`` keeps its detail and its context keywords, under a code in
GraphQL's customary spelling (``NOT_FOUND``, ``FORBIDDEN``, ``BAD_USER_INPUT`` …); a bad
argument names it (``extensions.errors[].argument``) and says why. A refused document (too
deep, too many tokens or aliases, not valid against the schema) is
``GRAPHQL_VALIDATION_FAILED`` and runs nothing. Anything else is a bug: logged here with its
stack, answered as ``INTERNAL_SERVER_ERROR`` with the request id to quote.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext

from oneloop.core.db import as_unavailable, is_transient
from oneloop.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    OneLoopError,
    RateLimited,
    Retryable,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from oneloop.core.logging import request_id_var

log = logging.getLogger(__name__)

CODES: dict[type[OneLoopError], str] = {
    NotFound: "NOT_FOUND",
    Forbidden: "FORBIDDEN",
    Unauthenticated: "UNAUTHENTICATED",
    ValidationFailed: "BAD_USER_INPUT",
    Conflict: "CONFLICT",
    RateLimited: "RATE_LIMITED",
    Unavailable: "UNAVAILABLE",
}
INVALID = "GRAPHQL_VALIDATION_FAILED"
INTERNAL = "INTERNAL_SERVER_ERROR"


def coded(error: GraphQLError) -> GraphQLError:
    """``error`` with its code, and with nothing of an unexpected exception but the id."""
    cause = error.original_error
    if isinstance(cause, DBAPIError) and is_transient(cause):
        cause = as_unavailable(cause)
    if isinstance(cause, OneLoopError):
        return _with(error, _message(cause), _extensions(cause))
    if cause is None:
        return _with(error, error.message, {"code": INVALID, **(error.extensions or {})})
    return _with(
        error,
        "something went wrong on our side; quote the request id when you report it",
        {"code": INTERNAL, "request_id": request_id_var.get()},
    )


def _message(exc: OneLoopError) -> str:
    if isinstance(exc, ValidationFailed) and exc.errors:
        return f"{exc.detail}: " + "; ".join(f"{e.path}: {e.msg}" for e in exc.errors)
    return exc.detail


def _extensions(exc: OneLoopError) -> dict[str, object]:
    code = next((CODES[c] for c in type(exc).__mro__ if c in CODES), INTERNAL)
    out: dict[str, object] = {**exc.context, "code": code, "title": exc.title}
    if isinstance(exc, ValidationFailed):
        out["errors"] = [{"argument": e.path, "message": e.msg} for e in exc.errors]
    if isinstance(exc, Retryable):
        out["retry_after"] = exc.retry_after
    return out


def _with(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def is_expected(error: GraphQLError) -> bool:
    """A refused document or a domain error: the caller's to fix, not ours to log loudly."""
    cause = error.original_error
    return (
        cause is None
        or isinstance(cause, OneLoopError)
        or (isinstance(cause, DBAPIError) and is_transient(cause))
    )


def log_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Strawberry logs every error with its stack; we log bugs only, with theirs."""
    for error in errors:
        if not is_expected(error):
            log.error(
                "graphql.failed",
                exc_info=error.original_error,
                extra={"path": ".".join(str(p) for p in error.path or ())},
            )


class ErrorCodes(SchemaExtension):
    """Rewrites the operation's errors once it is done (parse, validation or execution)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [coded(e) for e in result.errors]
