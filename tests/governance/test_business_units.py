from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from oneloop.core.ids import BusinessUnitId, UserId
from oneloop.governance import service, users
from oneloop.governance.models import UserRow
from oneloop.governance.schemas import BusinessUnitIn, UserIn
from tests.factories import make_group


def test_group_then_units_form_a_tree(session: Session, ctx: Context) -> None:
    group, north, _south = make_group(session, ctx)
    assert group.kind == "group" and group.parent_id is None
    assert north.kind == "bu" and north.parent_id == group.id
    listed = service.list_business_units(session, ctx)
    assert [u.code for u in listed] == ["galaxy", "north", "south"]
    assert listed[0].created_at == ctx.clock.now()


def test_duplicate_code_conflicts(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    with pytest.raises(Conflict, match="north"):
        service.create_business_unit(
            session, ctx, BusinessUnitIn(code="north", name_zh="北", name_en="N", parent="galaxy")
        )


def test_second_group_conflicts(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    with pytest.raises(Conflict, match="group already exists"):
        service.create_business_unit(
            session, ctx, BusinessUnitIn(code="other", name_zh="另一集团", name_en="Other")
        )


def test_unknown_parent_is_not_found(session: Session, ctx: Context) -> None:
    with pytest.raises(NotFound, match="nope"):
        service.create_business_unit(
            session, ctx, BusinessUnitIn(code="x1", name_zh="x", name_en="x", parent="nope")
        )


@pytest.mark.parametrize("code", ["", "A", "Upper", "has space", "x" * 40, "1abc", "a_b"])
def test_bad_codes_are_refused_naming_the_field(code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        BusinessUnitIn(code=code, name_zh="x", name_en="x")
    assert caught.value.errors()[0]["loc"] == ("code",)


def test_bu_user_lists_only_their_own_unit(session: Session, ctx: Context) -> None:
    _, north, _ = make_group(session, ctx)
    north_user = Context(
        bu_id=BusinessUnitId(north.id),
        user_id=UserId("u1"),
        permissions=frozenset({"governance.bu.read"}),
    )
    assert [u.code for u in service.list_business_units(session, north_user)] == ["north"]
    assert service.get_business_unit(session, north_user, "north").id == north.id
    with pytest.raises(NotFound) as caught:
        service.get_business_unit(session, north_user, "south")
    missing = service_error_text(caught.value)
    with pytest.raises(NotFound) as caught:
        service.get_business_unit(session, north_user, "no-such-unit")
    assert service_error_text(caught.value) == missing.replace("south", "no-such-unit")


def service_error_text(exc: NotFound) -> str:
    """What the caller learns: another BU's unit reads exactly like one that does not exist."""
    return exc.detail


def test_creating_units_needs_the_permission(session: Session) -> None:
    reader = Context(
        bu_id=None, user_id=UserId("u1"), permissions=frozenset({"governance.bu.read"})
    )
    with pytest.raises(Forbidden):
        service.create_business_unit(
            session, reader, BusinessUnitIn(code="x1", name_zh="x", name_en="x")
        )


def test_users_have_hashed_passwords_and_normalised_emails(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    user = users.create_user(
        session,
        ctx,
        UserIn(
            email=" Li.Lei@Galaxy.Example.COM ",
            display_name="李雷",
            password="correct horse battery",
            bu="north",
            role="marketer",
        ),
    )
    assert user.email == "li.lei@galaxy.example.com"
    row = session.get_one(UserRow, user.id)
    assert row.password_hash.startswith("$argon2id$")
    assert users.password_matches(row, "correct horse battery")
    assert not users.password_matches(row, "wrong password!!")
    assert [(m.bu_code, m.role) for m in user.memberships] == [("north", "marketer")]
    with pytest.raises(Conflict):
        users.create_user(
            session,
            ctx,
            UserIn(
                email="li.lei@galaxy.example.com",
                display_name="x",
                password="another password",
                bu="north",
                role="marketer",
            ),
        )


def test_bad_user_email_names_the_field(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    with pytest.raises(ValidationFailed) as caught:
        users.create_user(
            session,
            ctx,
            UserIn(
                email="not-an-email",
                display_name="x",
                password="long enough pw",
                bu="north",
                role="analyst",
            ),
        )
    assert caught.value.errors[0].path == "email"
