"""HTTP for signing in: ``/api/v1/auth`` (login, logout, who am I, switch unit).

A login answers the CSRF token in its body and sets the session cookie (HttpOnly, SameSite=Lax,
Secure unless ``ONELOOP_COOKIE_SECURE=false``). A failed login is committed before the error
is answered, so that failures count towards the lock-out however the request ends.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from sqlalchemy.orm import Session

from oneloop.api.auth import SESSION_COOKIE, Caller, caller
from oneloop.api.deps import SessionDep, StateDep
from oneloop.core.errors import FieldError, OneLoopError, ValidationFailed
from oneloop.governance import signin, users
from oneloop.governance.roles import expand
from oneloop.governance.schemas import LoginIn, SwitchIn, Whoami

router = APIRouter(prefix="/api/v1/auth", tags=["sign-in"])
CallerInfo = Annotated[Caller, Depends(caller)]


@router.post(
    "/login",
    summary="Sign in with email and password; sets the console's session cookie",
    responses={401: {"description": "wrong email or password"}, 429: {"description": "locked"}},
)
def login(
    data: Annotated[
        LoginIn,
        Body(
            openapi_examples={
                "marketer": {
                    "value": {"email": "marketer@appliances.demo.oneloop", "password": "…"}
                }
            }
        ),
    ],
    request: Request,
    response: Response,
    state: StateDep,
) -> Whoami:
    ip = request.client.host if request.client else "unknown"
    with state.writing(), state.sessions() as session:
        try:
            signed = signin.login(
                session, state.settings, data.email, data.password, ip, state.clock, data.bu
            )
        except ValidationFailed:
            session.rollback()
            raise
        except OneLoopError:
            session.commit()
            raise
        who = _whoami(
            session, Caller(signed.context, "session", signed.csrf_token, signed.expires_at)
        )
        session.commit()
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=int(state.settings.session_hours * 3600),
        httponly=True,
        secure=state.settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    return who


@router.post("/logout", summary="End the console session", status_code=204)
def logout(request: Request, found: CallerInfo, session: SessionDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if found.via == "session" and token:
        signin.logout(session, token)
    done = Response(status_code=204)
    done.delete_cookie(SESSION_COOKIE, path="/")
    return done


@router.get("/me", summary="Who the caller is, where they act and what they may do")
def me(found: CallerInfo, session: SessionDep) -> Whoami:
    return _whoami(session, found)


@router.post("/switch", summary="Act in another of your units, in the same session")
def switch(
    data: Annotated[SwitchIn, Body(openapi_examples={"service": {"value": {"bu": "service"}}})],
    request: Request,
    found: CallerInfo,
    state: StateDep,
) -> Whoami:
    token = request.cookies.get(SESSION_COOKIE)
    if found.via != "session" or not token:
        raise ValidationFailed(
            "only a console session switches units",
            [FieldError(("bu",), "an API key acts in the one unit it was made for")],
        )
    with state.writing(), state.sessions() as session, session.begin():
        ctx = signin.switch_unit(session, token, data.bu, state.clock)
        return _whoami(session, Caller(ctx, "session", found.csrf_token, found.expires_at))


def _whoami(session: Session, found: Caller) -> Whoami:
    ctx = found.ctx
    user = None
    role = bu_code = None
    if found.via != "admin_token":
        user = users.user_of(session, ctx.user_id)
        here = next((m for m in user.memberships if m.bu_id == ctx.bu_id), None)
        role, bu_code = (here.role, here.bu_code) if here else (None, None)
    return Whoami(
        user=user,
        bu_id=ctx.bu_id,
        bu_code=bu_code,
        role=role,
        is_group_wide=ctx.is_group_wide,
        permissions=sorted(expand(ctx.permissions)),
        via=found.via,
        csrf_token=found.csrf_token,
        expires_at=found.expires_at,
    )
