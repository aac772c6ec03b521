"""Who is calling the admin API.

Until users, sessions and API keys land (governance issue), the one admin credential is a
bootstrap bearer token from settings (``ONELOOP_ADMIN_TOKEN``). It acts as the platform itself:
group-wide, every permission, attributed to the user ``system``. Unset, every call is refused.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from oneloop.api.deps import StateDep
from oneloop.core.context import Context, system_context
from oneloop.core.errors import Unauthenticated


def admin_context(request: Request, state: StateDep) -> Context:
    configured = state.settings.admin_token
    if configured is None:
        raise Unauthenticated("the admin API is off: set ONELOOP_ADMIN_TOKEN to enable it")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send the admin token as 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
        raise Unauthenticated("the admin token is not valid")
    ctx = system_context()
    return Context(
        bu_id=ctx.bu_id,
        user_id=ctx.user_id,
        permissions=ctx.permissions,
        is_group_wide=True,
        request_id=getattr(request.state, "request_id", ctx.request_id),
        origin=f"api {request.client.host}" if request.client else "api",
    )


AdminDep = Annotated[Context, Depends(admin_context)]
