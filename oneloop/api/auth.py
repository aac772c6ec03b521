"""Who is calling: a console session (cookie), an API key, or the bootstrap admin token.

Every route that acts on data takes ``CallerDep``, the tenancy context the services check.
A console session must send its CSRF token back (``X-CSRF-Token``, or the form field
``csrf_token`` of a plain HTML form post) on every change: the cookie is sent by the browser
on its own, the token only by our own pages. A bearer
credential is not sent on its own, so it needs none. The bootstrap admin token
(``ONELOOP_ADMIN_TOKEN``) acts as the platform itself: group-wide, every permission,
attributed to the user ``system``; unset, it opens nothing.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Request

from oneloop.api.deps import StateDep
from oneloop.core.context import Context, system_context
from oneloop.core.errors import Forbidden, Unauthenticated
from oneloop.governance import signin

SESSION_COOKIE = "oneloop_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Via = Literal["session", "api_key", "admin_token"]


@dataclass(frozen=True)
class Caller:
    ctx: Context
    via: Via
    csrf_token: str | None = None
    expires_at: datetime | None = None


def origin_of(request: Request) -> str:
    return f"api {request.client.host}" if request.client else "api"


async def sent_csrf_token(request: Request) -> str | None:
    """The CSRF token a change sent: the header, else a form post's ``csrf_token`` field (the
    console's HTML forms post without script). Async, since the form must be read; Starlette
    keeps the parsed form, so the route reads it again for free."""
    if request.method in SAFE_METHODS or CSRF_HEADER in request.headers:
        return request.headers.get(CSRF_HEADER)
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def caller(
    request: Request,
    state: StateDep,
    csrf_sent: Annotated[str | None, Depends(sent_csrf_token)] = None,
) -> Caller:
    """Called directly (not as a dependency), only the header counts as the CSRF token."""
    origin = origin_of(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        if token.startswith(signin.KEY_PREFIX):
            ctx = state.keys.remembered(token, state.clock, origin)
            if ctx is None:
                with state.sessions() as session, session.begin():
                    ctx = state.keys.context(session, token, state.clock, origin)
            found = Caller(ctx, "api_key")
        else:
            found = Caller(_admin(state, token, origin), "admin_token")
    elif cookie := request.cookies.get(SESSION_COOKIE):
        with state.sessions() as session, session.begin():
            ctx, row = signin.session_context(session, state.settings, cookie, state.clock, origin)
            csrf, expires = row.csrf_token, row.expires_at
        if request.method not in SAFE_METHODS:
            sent = csrf_sent or request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise Forbidden(
                    "the CSRF token is missing or wrong: send the session's token as "
                    f"{CSRF_HEADER} (or the form field {CSRF_FIELD})"
                )
        found = Caller(ctx, "session", csrf, expires)
    else:
        raise Unauthenticated(
            "sign in (POST /api/v1/auth/login) or send an API key as 'Authorization: Bearer <key>'"
        )
    rid = getattr(request.state, "request_id", None)
    return replace(found, ctx=replace(found.ctx, request_id=rid)) if rid else found


def _admin(state: StateDep, token: str, origin: str) -> Context:
    configured = state.settings.admin_token
    if configured is None or not hmac.compare_digest(
        token.encode(), configured.get_secret_value().encode()
    ):
        raise Unauthenticated("the bearer token is not a valid API key or admin token")
    return replace(system_context(state.clock), origin=origin)


async def caller_context(found: Annotated[Caller, Depends(caller)]) -> Context:
    return found.ctx


CallerDep = Annotated[Context, Depends(caller_context)]
