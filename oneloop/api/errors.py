"""Every error leaves the API as RFC 9457 problem+json, mapped here once.

The shape is a tested contract: ``type`` (``/problems/<code>``), ``title``, ``status``,
``detail``, ``instance`` (the path), the error's context keywords, and for validation an
``errors`` list naming each bad field by path. A 500 carries the request id to quote to
support, never a stack trace. A temporary database failure is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from oneloop.core.db import as_unavailable, is_transient
from oneloop.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidPayload,
    NotFound,
    OneLoopError,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    RateLimited,
    Retryable,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from oneloop.core.logging import request_id_var

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TRACKING_PREFIX = "/v1/"

STATUS: dict[type[OneLoopError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidPayload: 400,
    ValidationFailed: 422,
    PayloadTooLarge: 413,
    PreconditionFailed: 412,
    PreconditionRequired: 428,
    Unauthenticated: 401,
    Forbidden: 403,
    RateLimited: 429,
    Unavailable: 503,
}

# Titles for errors raised by the framework itself (unknown route, wrong method, ...).
HTTP_CODES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    extra: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, object] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    if request.url.path.startswith(TRACKING_PREFIX):
        # Segment's and RudderStack's SDKs log ``code`` and ``message`` from an error body.
        body.setdefault("code", code)
        body.setdefault("message", detail)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(errors: Sequence[FieldError]) -> list[dict[str, object]]:
    return [{"loc": list(e.loc), "path": e.path, "msg": e.msg} for e in errors]


async def oneloop_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OneLoopError)
    status = next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), 500)
    extra: dict[str, object] = dict(exc.context)
    headers: dict[str, str] = {}
    if isinstance(exc, ValidationFailed):
        extra["errors"] = field_errors(exc.errors)
    if isinstance(exc, Retryable):
        headers["Retry-After"] = str(exc.retry_after)
    return problem_response(
        request,
        status=status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        extra=extra,
        headers=headers,
    )


async def request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
    named = ", ".join(e.path for e in errors[:5])
    return problem_response(
        request,
        status=422,
        code=ValidationFailed.code,
        title=ValidationFailed.title,
        detail=f"the request has {len(errors)} invalid field(s): {named}",
        extra={"errors": field_errors(errors)},
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = HTTP_CODES.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        headers=dict(exc.headers or {}),
    )


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if is_transient(exc):
        log.warning("db.unavailable", extra={"error": type(exc.orig).__name__})
        return await oneloop_error(request, as_unavailable(exc))
    return await unexpected_error(request, exc)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its stack on our side, a bare 500 with the request id on theirs."""
    request_id = getattr(request.state, "request_id", None) or request_id_var.get()
    log.error("request.failed", exc_info=exc, extra={"path": request.url.path})
    return problem_response(
        request,
        status=500,
        code="internal-error",
        title="Internal error",
        detail="something went wrong on our side; quote the request id when you report it",
        extra={"request_id": request_id},
        headers={"X-Request-ID": request_id} if request_id else None,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(OneLoopError, oneloop_error)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(Exception, unexpected_error)
