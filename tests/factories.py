"""Small factories: build what a test needs through the real service functions."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from oneloop.collect import service as collect
from oneloop.collect.schemas import Source, SourceIn
from oneloop.core.context import Context
from oneloop.governance import service as governance
from oneloop.governance import users
from oneloop.governance.schemas import BusinessUnit, BusinessUnitIn, BusinessUnitPatch, User, UserIn


def make_group(
    session: Session, ctx: Context, units: tuple[str, ...] = ("north", "south")
) -> list[BusinessUnit]:
    """The group ``galaxy`` and one unit per code, committed."""
    made = [
        governance.create_business_unit(
            session, ctx, BusinessUnitIn(code="galaxy", name_zh="星河集团", name_en="Galaxy Group")
        )
    ]
    for code in units:
        data = BusinessUnitIn(
            code=code, name_zh=f"{code}事业部", name_en=code.title(), parent="galaxy"
        )
        made.append(governance.create_business_unit(session, ctx, data))
    session.commit()
    return made


def set_time_zone(session: Session, ctx: Context, code: str, zone: str) -> BusinessUnit:
    """Move the unit ``code`` to ``zone`` (an IANA name), committed."""
    unit = governance.update_business_unit(session, ctx, code, BusinessUnitPatch(time_zone=zone))
    session.commit()
    return unit


def make_source(
    session: Session, ctx: Context, bu: str = "north", name: str = "官网 Web"
) -> tuple[Source, str]:
    """A committed HTTP source in ``bu`` and its write key."""
    new = collect.create_source(session, ctx, SourceIn(bu=bu, name=name))
    session.commit()
    return collect.get_source(session, ctx, new.id), new.write_key


PASSWORD = "correct horse battery staple"


def make_user(
    session: Session, ctx: Context, email: str, bu: str = "north", role: str = "marketer"
) -> User:
    """A user with ``role`` in unit ``bu`` and the password ``PASSWORD``, committed."""
    made = users.create_user(
        session,
        ctx,
        UserIn(email=email, display_name=email.split("@")[0], password=PASSWORD, bu=bu, role=role),
    )
    session.commit()
    return made


def signed_in(
    app: FastAPI, email: str, password: str = PASSWORD, bu: str | None = None
) -> TestClient:
    """A client signed in to the console as ``email``: it keeps the session cookie and sends
    the session's CSRF token on every request, as the console's pages do. HTTPS, since the
    cookie is Secure."""
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    answer = client.post(
        "/api/v1/auth/login", json={"email": email, "password": password, "bu": bu}
    )
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client
