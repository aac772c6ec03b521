"""Signing in and out of the console, and switching the unit one acts in.

The same sign-in service as ``POST /api/v1/auth/login``, with the same rule: a failed sign-in
is committed before the form is shown again, so failures count towards the lock-out. The
sign-in form carries a token of its own (a cookie and a hidden field that must match), since
there is no session yet whose token it could carry: without it another site could sign a
visitor in under the other site's account (login CSRF).
"""

from __future__ import annotations

import hmac
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from oneloop.api.auth import SESSION_COOKIE, Caller, caller
from oneloop.api.deps import StateDep
from oneloop.core.errors import (
    OneLoopError,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from oneloop.governance import signin
from oneloop.governance.models import BusinessUnitRow
from oneloop.governance.schemas import LoginIn
from oneloop.web.forms import FormErrors, local_path, parse_form
from oneloop.web.nav import N_
from oneloop.web.templating import render
from oneloop.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "oneloop_login_csrf"
LOGIN_FIELDS = {"email", "password"}
WRONG = N_("The email or the password is wrong.")
NO_UNIT = N_("This user holds no role in any unit; ask an admin.")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, state: StateDep, next: str = "/") -> Response:
    if request.cookies.get(SESSION_COOKIE):
        try:
            with state.sessions() as session:
                signin.session_context(
                    session, state.settings, request.cookies[SESSION_COOKIE], state.clock, None
                )
            return RedirectResponse(local_path(next), status_code=303)
        except Unauthenticated:
            pass  # an ended session: sign in again
    return _login_form(request, state, next=next)


def _login_form(
    request: Request,
    state: StateDep,
    *,
    next: str,
    email: str = "",
    errors: FormErrors | None = None,
    wait_minutes: int | None = None,
    status_code: int = 200,
) -> Response:
    token = secrets.token_urlsafe(24)
    with state.sessions() as session:
        has_group = session.scalar(select(BusinessUnitRow.id).limit(1)) is not None
    response = render(
        request,
        "login.html",
        {
            "next": local_path(next),
            "email": email,
            "errors": errors or FormErrors(),
            "wait_minutes": wait_minutes,
            "login_csrf": token,
            "has_group": has_group,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        secure=state.settings.cookie_secure,
        samesite="strict",
        path="/login",
    )
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    state: StateDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    login_csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), login_csrf.encode()):
        errors = FormErrors(general=[N_("The sign-in form expired; please try again.")])
        return _login_form(request, state, next=next, email=email, errors=errors, status_code=403)
    ip = request.client.host if request.client else "unknown"
    with state.writing(), state.sessions() as session:
        try:
            data = parse_form(LoginIn, {"email": email, "password": password})
            signed = signin.login(
                session, state.settings, data.email, data.password, ip, state.clock
            )
        except ValidationFailed as exc:
            session.rollback()
            errors = FormErrors.of(exc, LOGIN_FIELDS)
            return _login_form(
                request, state, next=next, email=email, errors=errors, status_code=422
            )
        except RateLimited as exc:
            session.commit()
            wait = max(1, math.ceil(exc.retry_after / 60))
            return _login_form(
                request, state, next=next, email=email, wait_minutes=wait, status_code=429
            )
        except OneLoopError as exc:
            session.commit()
            errors = FormErrors(general=[_refusal(exc)])
            return _login_form(
                request, state, next=next, email=email, errors=errors, status_code=401
            )
        session.commit()
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=int(state.settings.session_hours * 3600),
        httponly=True,
        secure=state.settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _refusal(exc: OneLoopError) -> str:
    """What the form says, as a message id of ours: the service's texts are English."""
    if isinstance(exc, Unauthenticated) and exc.detail != signin.WRONG:
        return NO_UNIT
    return WRONG


@router.post("/logout")
def logout(
    request: Request, state: StateDep, found: Annotated[Caller, Depends(caller)]
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if found.via == "session" and token:
        with state.writing(), state.sessions() as session, session.begin():
            signin.logout(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/switch-unit")
def switch_unit(
    request: Request,
    state: StateDep,
    viewer: ViewerDep,
    bu: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """The same service as ``POST /api/v1/auth/switch``; a unit the user holds no role in is
    refused by it (422)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    with state.writing(), state.sessions() as session, session.begin():
        signin.switch_unit(session, token, bu, state.clock)
    return RedirectResponse(local_path(next), status_code=303)
