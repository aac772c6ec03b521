"""Who is looking at a console page: the signed-in user, the unit they act in, and their Context.

Pages take ``ViewerDep`` and hand ``viewer.ctx`` to the same service functions the REST API
calls, so business-unit isolation, permissions and masking stay the services' own. The
session, and for a change its CSRF token (header or form field), are checked by the API's own
``caller``; a page only adds what it shows about the user (name, units, time zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from oneloop.api.auth import Caller, caller
from oneloop.api.deps import SessionDep
from oneloop.core.context import Context
from oneloop.core.errors import Unauthenticated
from oneloop.governance import service as governance
from oneloop.governance import users
from oneloop.governance.schemas import User


@dataclass(frozen=True)
class Unit:
    id: str
    code: str
    name_zh: str
    name_en: str
    time_zone: str

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh-CN" else self.name_en


@dataclass(frozen=True)
class Viewer:
    ctx: Context
    csrf_token: str
    user: User
    role: str | None
    unit: Unit
    # Every unit the user holds a role in, for the unit switcher (the current one included).
    units: tuple[Unit, ...]

    def can(self, permission: str) -> bool:
        return self.ctx.can(permission)


def _unit(session: SessionDep, code: str) -> Unit:
    row = governance.unit_row(session, code)
    return Unit(row.id, row.code, row.name_zh, row.name_en, row.time_zone)


def viewer(found: Annotated[Caller, Depends(caller)], session: SessionDep) -> Viewer:
    """Only a console session views pages: an API key has no page to see."""
    if found.via != "session" or found.csrf_token is None:
        raise Unauthenticated("sign in to the console")
    user = users.user_of(session, found.ctx.user_id)
    units = tuple(_unit(session, m.bu_code) for m in user.memberships)
    here = next((u for u in units if u.id == found.ctx.bu_id), None)
    if here is None:  # the membership went between the session check and here
        raise Unauthenticated("this sign-in is no longer valid; sign in again")
    role = next((m.role for m in user.memberships if m.bu_id == here.id), None)
    return Viewer(found.ctx, found.csrf_token, user, role, here, units)


ViewerDep = Annotated[Viewer, Depends(viewer)]
