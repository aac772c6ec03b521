"""Users, their memberships (a role in a unit) and custom roles.

A unit's admins manage the people of their unit; the group's admins everyone. Nobody grants
more than they hold: a role whose permissions the granter lacks is refused, so a unit admin
cannot make someone a group admin, nor define a role that would. Another unit's user is
NotFound to a unit admin, as any other unit's object is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from oneloop.core.context import ALL_PERMISSIONS, Context
from oneloop.core.db import in_chunks
from oneloop.core.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, SortValue, keyset_page, page_items
from oneloop.governance import audit
from oneloop.governance.models import (
    BusinessUnitRow,
    MembershipRow,
    RoleRow,
    SessionRow,
    UserRow,
)
from oneloop.governance.roles import BUILTIN_ROLES, PERMISSIONS, expand, unknown_permissions
from oneloop.governance.schemas import (
    Membership,
    Permission,
    RoleIn,
    RoleOut,
    RolePatch,
    User,
    UserIn,
    UserPatch,
)
from oneloop.governance.service import group_id, unit_row

READ = "governance.user.read"
MANAGE = "governance.user.manage"
MANAGE_ROLES = "governance.role.manage"

_hasher = PasswordHasher()


def normalise_login_email(raw: str) -> str:
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(
            "the email address is not valid", [FieldError(("email",), str(exc))]
        ) from exc
    return info.normalized.lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(row: UserRow, password: str) -> bool:
    try:
        return _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def dummy_verify() -> None:
    """Spend what a real check spends, so that an unknown email takes as long as a wrong
    password and timing does not tell which accounts exist."""
    password_matches(_dummy(), "not the password")


@functools.cache
def _dummy() -> UserRow:
    """Made on the first unknown email, not at import: a hash costs ~0.1 s, and every CLI
    command imports this module."""
    return UserRow(password_hash=_hasher.hash("a password nobody has"))


# --- roles ---------------------------------------------------------------------------------


def role_permissions(session: Session, code: str) -> frozenset[str] | None:
    """The permissions of role ``code``, or None when no such role exists."""
    builtin = BUILTIN_ROLES.get(code)
    if builtin is not None:
        return builtin.permissions
    row = session.get(RoleRow, code)
    return None if row is None else frozenset(row.permissions)


def list_permissions() -> list[Permission]:
    return [
        Permission(name=name, description_zh=zh, description_en=en)
        for name, (zh, en) in PERMISSIONS.items()
    ]


def list_roles(session: Session, ctx: Context) -> list[RoleOut]:
    """The built-in roles, then the custom ones by code."""
    ctx.require(READ)
    made = [
        RoleOut(
            code=r.code,
            name_zh=r.name_zh,
            name_en=r.name_en,
            permissions=sorted(r.permissions),
            builtin=True,
            group_only=r.group_only,
        )
        for r in BUILTIN_ROLES.values()
    ]
    return made + [_role(r) for r in session.scalars(select(RoleRow).order_by(RoleRow.code))]


ROLE_SORTS: dict[str, Callable[[RoleOut], SortValue]] = {
    "code": lambda r: r.code,
    "name_en": lambda r: r.name_en,
}


def page_roles(
    session: Session, ctx: Context, page: PageRequest, *, builtin: bool | None = None
) -> Page[RoleOut]:
    """``list_roles`` a page at a time (issue 8), built-in and custom ones in one order;
    ``builtin`` keeps only one kind. Paged in memory: the built-in roles live in code, and
    the custom ones are a short list an admin keeps."""
    roles = list_roles(session, ctx)
    if builtin is not None:
        roles = [r for r in roles if r.builtin is builtin]
    return page_items(roles, page, ROLE_SORTS, lambda r: r.code)


def get_role(session: Session, ctx: Context, code: str) -> RoleOut:
    found = next((r for r in list_roles(session, ctx) if r.code == code), None)
    if found is None:
        raise NotFound(f"no role {code!r}", role=code)
    return found


def create_role(session: Session, ctx: Context, data: RoleIn) -> RoleOut:
    ctx.require(MANAGE_ROLES)
    if data.code in BUILTIN_ROLES or session.get(RoleRow, data.code) is not None:
        raise Conflict(f"a role with code {data.code!r} already exists", field="code")
    permissions = _checked_permissions(ctx, data.permissions)
    now = ctx.clock.now()
    row = RoleRow(
        code=data.code,
        name_zh=data.name_zh,
        name_en=data.name_en,
        permissions=permissions,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session, ctx, "role.created", "role", row.code, detail={"permissions": permissions}
    )
    return _role(row)


def update_role(session: Session, ctx: Context, code: str, data: RolePatch) -> RoleOut:
    ctx.require(MANAGE_ROLES)
    row = _custom_role(session, code)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "permissions" in changes:
        changes["permissions"] = _checked_permissions(ctx, changes["permissions"])
    for name, value in changes.items():
        setattr(row, name, value)
    if changes:
        row.updated_at = ctx.clock.now()
        session.flush()
        audit.record(
            session,
            ctx,
            "role.updated",
            "role",
            code,
            detail={"fields": sorted(changes), "permissions": row.permissions},
        )
    return _role(row)


def delete_role(session: Session, ctx: Context, code: str) -> None:
    """Refused while anyone holds the role: revoke it from them first."""
    ctx.require(MANAGE_ROLES)
    row = _custom_role(session, code)
    holders = session.scalar(
        select(MembershipRow.user_id).where(MembershipRow.role == code).limit(1)
    )
    if holders is not None:
        raise Conflict(f"role {code!r} is still granted; revoke it first", role=code)
    session.delete(row)
    session.flush()
    audit.record(session, ctx, "role.deleted", "role", code)


def _custom_role(session: Session, code: str) -> RoleRow:
    if code in BUILTIN_ROLES:
        raise Conflict(f"{code!r} is a built-in role and does not change", role=code)
    row = session.get(RoleRow, code)
    if row is None:
        raise NotFound(f"no role {code!r}", role=code)
    return row


def _checked_permissions(ctx: Context, names: list[str]) -> list[str]:
    wanted = set(names)
    unknown = unknown_permissions(wanted)
    if unknown:
        raise ValidationFailed(
            "unknown permissions",
            [FieldError(("permissions",), f"not a permission: {', '.join(unknown)}")],
        )
    _may_hand_out(ctx, frozenset(wanted), "permissions")
    return sorted(wanted)


def _may_hand_out(ctx: Context, permissions: frozenset[str], field: str) -> None:
    """Nobody hands out a permission they do not hold themselves."""
    if ALL_PERMISSIONS in ctx.permissions:
        return
    lacking = sorted(expand(permissions) - ctx.permissions)
    if lacking:
        raise Forbidden(
            f"you cannot grant permissions you do not hold: {', '.join(lacking)}", field=field
        )


def _role(row: RoleRow) -> RoleOut:
    return RoleOut(
        code=row.code,
        name_zh=row.name_zh,
        name_en=row.name_en,
        permissions=sorted(row.permissions),
        builtin=False,
        group_only=False,
    )


# --- users ---------------------------------------------------------------------------------


def create_user(session: Session, ctx: Context, data: UserIn) -> User:
    ctx.require(MANAGE)
    email = normalise_login_email(data.email)
    unit = _manageable_unit(session, ctx, data.bu)
    _check_grant(session, ctx, unit, data.role)
    if session.scalar(select(UserRow.id).where(UserRow.email == email)):
        raise Conflict("a user with this email already exists", field="email")
    now = ctx.clock.now()
    row = UserRow(
        id=new_id(now),
        email=email,
        display_name=data.display_name,
        password_hash=hash_password(data.password),
        is_active=True,
        created_at=now,
    )
    session.add(row)
    session.flush()  # the membership's foreign key needs the user first
    session.add(MembershipRow(user_id=row.id, bu_id=unit.id, role=data.role, created_at=now))
    session.flush()
    audit.record(
        session,
        ctx,
        "user.created",
        "user",
        row.id,
        detail={"role": data.role, "unit": unit.code},
    )
    return _users(session, ctx, [row])[0]


def user_exists(session: Session, ctx: Context, email: str) -> bool:
    ctx.require(READ)
    return session.scalar(select(UserRow.id).where(UserRow.email == email.lower())) is not None


def list_users(session: Session, ctx: Context) -> list[User]:
    """Users by email: a unit's people to a unit, everyone to the group."""
    ctx.require(READ)
    query = select(UserRow).order_by(UserRow.email)
    if not ctx.is_group_wide:
        members = select(MembershipRow.user_id).where(MembershipRow.bu_id == ctx.bu_id)
        query = query.where(UserRow.id.in_(members))
    return _users(session, ctx, session.scalars(query))


def get_user(session: Session, ctx: Context, user_id: str) -> User:
    ctx.require(READ)
    return _users(session, ctx, [_visible_user(session, ctx, user_id)])[0]


def user_of(session: Session, user_id: str) -> User:
    """A user as they see themselves: with every one of their memberships."""
    return _users(session, None, [session.get_one(UserRow, user_id)])[0]


def user_in_unit(session: Session, email: str, bu_id: str) -> User | None:
    """The active user ``email`` if they hold a role in the unit or the group: who may own
    the unit's work (a lead, later a ticket)."""
    row = session.scalar(
        select(UserRow)
        .join(MembershipRow, MembershipRow.user_id == UserRow.id)
        .where(
            UserRow.email == email.strip().lower(),
            UserRow.is_active.is_(True),
            MembershipRow.bu_id.in_([bu_id, group_id(session)]),
        )
        .limit(1)
    )
    return None if row is None else _users(session, None, [row])[0]


def find_user(session: Session, ctx: Context, email: str) -> User:
    ctx.require(READ)
    row = session.scalar(select(UserRow).where(UserRow.email == email.strip().lower()))
    if row is None or not _sees(session, ctx, row.id):
        raise NotFound(f"no user {email!r}", field="email")
    return _users(session, ctx, [row])[0]


def update_user(session: Session, ctx: Context, user_id: str, data: UserPatch) -> User:
    """A unit admin changes a user who belongs to their unit only; one who also belongs to
    another unit is the group's to change, since the change reaches there too."""
    ctx.require(MANAGE)
    row = _visible_user(session, ctx, user_id)
    if not ctx.is_group_wide:
        elsewhere = session.scalar(
            select(MembershipRow.bu_id).where(
                MembershipRow.user_id == row.id, MembershipRow.bu_id != ctx.bu_id
            )
        )
        if elsewhere is not None:
            raise Forbidden("this user also belongs to another unit: the group changes them")
    if data.display_name is not None:
        row.display_name = data.display_name
    if data.password is not None:
        row.password_hash = hash_password(data.password)
        end_sessions(session, row.id)
    if data.is_active is not None:
        row.is_active = data.is_active
        if not row.is_active:
            end_sessions(session, row.id)
    fields = sorted(data.model_dump(exclude_unset=True, exclude_none=True))
    if fields:
        session.flush()
        audit.record(session, ctx, "user.updated", "user", row.id, detail={"fields": fields})
    return _users(session, ctx, [row])[0]


def grant(session: Session, ctx: Context, user_id: str, bu_code: str, role: str) -> User:
    """Give the user role ``role`` in unit ``bu_code``, replacing the role they held there."""
    ctx.require(MANAGE)
    row = _visible_user(session, ctx, user_id)
    unit = _manageable_unit(session, ctx, bu_code)
    _check_grant(session, ctx, unit, role)
    held = session.get(MembershipRow, (row.id, unit.id))
    if held is None:
        session.add(
            MembershipRow(user_id=row.id, bu_id=unit.id, role=role, created_at=ctx.clock.now())
        )
    else:
        held.role = role
    session.flush()
    audit.record(
        session, ctx, "user.role_granted", "user", row.id, detail={"role": role, "unit": unit.code}
    )
    return _users(session, ctx, [row])[0]


def revoke(session: Session, ctx: Context, user_id: str, bu_code: str) -> User:
    """Take away the user's role in unit ``bu_code``; their sessions in it end."""
    ctx.require(MANAGE)
    row = _visible_user(session, ctx, user_id)
    unit = _manageable_unit(session, ctx, bu_code)
    held = session.get(MembershipRow, (row.id, unit.id))
    if held is None:
        raise NotFound(f"the user holds no role in {bu_code!r}", bu=bu_code)
    _may_hand_out(ctx, role_permissions(session, held.role) or frozenset(), "role")
    session.delete(held)
    session.execute(
        delete(SessionRow).where(SessionRow.user_id == row.id, SessionRow.bu_id == unit.id)
    )
    session.flush()
    audit.record(
        session,
        ctx,
        "user.role_revoked",
        "user",
        row.id,
        detail={"role": held.role, "unit": unit.code},
    )
    return _users(session, ctx, [row])[0]


def end_sessions(session: Session, user_id: str) -> None:
    session.execute(delete(SessionRow).where(SessionRow.user_id == user_id))


def touch_login(session: Session, user_id: str, when: object) -> None:
    session.execute(update(UserRow).where(UserRow.id == user_id).values(last_login_at=when))


def _check_grant(session: Session, ctx: Context, unit: BusinessUnitRow, role: str) -> None:
    permissions = role_permissions(session, role)
    if permissions is None:
        raise ValidationFailed("unknown role", [FieldError(("role",), f"no role {role!r}")])
    builtin = BUILTIN_ROLES.get(role)
    if builtin is not None and builtin.group_only and unit.parent_id is not None:
        raise ValidationFailed(
            "this role is granted in the group only",
            [FieldError(("role",), f"{role!r} is granted in the group (HQ), not in a unit")],
        )
    _may_hand_out(ctx, permissions, "role")


def _manageable_unit(session: Session, ctx: Context, code: str) -> BusinessUnitRow:
    unit = unit_row(session, code)
    if not ctx.is_group_wide and unit.id != ctx.bu_id:
        raise NotFound(f"no business unit with code {code!r}", code=code)
    return unit


def _sees(session: Session, ctx: Context, user_id: str) -> bool:
    if ctx.is_group_wide:
        return True
    return session.get(MembershipRow, (user_id, ctx.bu_id)) is not None


def _visible_user(session: Session, ctx: Context, user_id: str) -> UserRow:
    row = session.get(UserRow, user_id)
    if row is None or not _sees(session, ctx, user_id):
        raise NotFound(f"no user {user_id!r}", user_id=user_id)
    return row


def memberships(session: Session, user_id: str) -> list[Membership]:
    """The user's roles, the group's first, then by unit code."""
    return memberships_of(session, [user_id]).get(user_id, [])


def memberships_of(session: Session, user_ids: Sequence[str]) -> dict[str, list[Membership]]:
    """Several users' roles in one query per chunk (a list of users is not N+1 queries)."""
    found: dict[str, list[Membership]] = {}
    for part in in_chunks(user_ids):
        rows = session.execute(
            select(
                MembershipRow.user_id, MembershipRow.bu_id, BusinessUnitRow.code, MembershipRow.role
            )
            .join(BusinessUnitRow, BusinessUnitRow.id == MembershipRow.bu_id)
            .where(MembershipRow.user_id.in_(part))
            .order_by(BusinessUnitRow.parent_id.is_not(None), BusinessUnitRow.code)
        )
        for user, bu, code, role in rows:
            found.setdefault(user, []).append(Membership(bu_id=bu, bu_code=code, role=role))
    return found


def _users(session: Session, ctx: Context | None, rows: Iterable[UserRow]) -> list[User]:
    """A unit's admin sees a user's role in their own unit, not where else they work; with no
    ``ctx`` (the user themself), every membership."""
    listed = list(rows)
    held = memberships_of(session, [row.id for row in listed])
    return [
        User(
            id=row.id,
            email=row.email,
            display_name=row.display_name,
            is_active=row.is_active,
            created_at=row.created_at,
            last_login_at=row.last_login_at,
            memberships=[
                m
                for m in held.get(row.id, [])
                if ctx is None or ctx.is_group_wide or m.bu_id == ctx.bu_id
            ],
        )
        for row in listed
    ]


USER_SORTS: dict[str, Column] = {
    "email": UserRow.email,
    "display_name": UserRow.display_name,
    "created_at": UserRow.created_at,
}


def page_users(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    q: str | None = None,
    role: str | None = None,
    bu: str | None = None,
) -> Page[User]:
    """``list_users`` a keyset page at a time (issue 8). ``q`` matches the email; ``role``
    and ``bu`` (a unit's code) keep users holding that role, in that unit. A unit's caller
    filters within its own unit only: naming another unit finds nobody."""
    ctx.require(READ)
    query = select(UserRow)
    if not ctx.is_group_wide:
        members = select(MembershipRow.user_id).where(MembershipRow.bu_id == ctx.bu_id)
        query = query.where(UserRow.id.in_(members))
    if role is not None or bu is not None:
        held = select(MembershipRow.user_id)
        if not ctx.is_group_wide:
            held = held.where(MembershipRow.bu_id == ctx.bu_id)
        if role is not None:
            held = held.where(MembershipRow.role == role)
        if bu is not None:
            unit = select(BusinessUnitRow.id).where(BusinessUnitRow.code == bu)
            held = held.where(MembershipRow.bu_id.in_(unit))
        query = query.where(UserRow.id.in_(held))
    if q:
        query = query.where(UserRow.email.icontains(q, autoescape=True))
    return keyset_page(
        session, query, page, USER_SORTS, UserRow.id, lambda rows: _users(session, ctx, rows)
    )
