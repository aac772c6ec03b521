"""Users and roles: who works in which unit with which role, the role matrix, new users,
granting and revoking a role, deactivating, and custom roles.

Everything goes through ``governance.users`` with the viewer's Context: a unit's admin sees
and manages the unit's people, the group everyone; nobody grants what they do not hold
(the service refuses, and the form says so beside the field). Built-in roles are read-only;
custom roles change only for viewers with ``governance.role.manage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.core.context import ALL_PERMISSIONS
from oneloop.core.errors import FieldError, NotFound, ValidationFailed
from oneloop.governance import service as governance
from oneloop.governance import users
from oneloop.governance.roles import PERMISSIONS
from oneloop.governance.schemas import RoleIn, RoleOut, RolePatch, User, UserIn, UserPatch
from oneloop.web.forms import FormErrors, parse_form
from oneloop.web.governance_pages import REFUSALS, Confirmation, confirm_page, refusal
from oneloop.web.nav import N_
from oneloop.web.templating import page_lang, render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

USER_FIELDS = {"email", "display_name", "password", "bu", "role"}
ROLE_FIELDS = {"code", "name_zh", "name_en", "permissions"}
# Service refusals that name a field, in the reader's language.
USER_MESSAGES = {
    "email": N_("A user with this email already exists."),
    "role": N_("You cannot grant a role with permissions you do not hold."),
}
ROLE_MESSAGES = {
    "code": N_("A role with this code already exists."),
    "permissions": N_("You cannot hand out permissions you do not hold."),
}
Short = Annotated[str, Form(max_length=400)]
Permissions = Annotated[list[str], Form(max_length=200)]


# --- the list and the role matrix ---------------------------------------------------------------


@dataclass(frozen=True)
class MatrixRow:
    permission: str
    description: str
    # One per role, in the roles' order: whether the role holds the permission.
    held: list[bool]


def _matrix(roles: list[RoleOut], lang: str) -> list[MatrixRow]:
    rows = []
    for name, (zh, en) in PERMISSIONS.items():
        held = [ALL_PERMISSIONS in r.permissions or name in r.permissions for r in roles]
        rows.append(MatrixRow(name, zh if lang == "zh-CN" else en, held))
    return rows


def _role_names(roles: list[RoleOut], lang: str) -> dict[str, str]:
    return {r.code: r.name_zh if lang == "zh-CN" else r.name_en for r in roles}


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    lang = page_lang(request)
    found = users.list_users(session, viewer.ctx)
    roles = users.list_roles(session, viewer.ctx)
    return render(
        request,
        "governance/users.html",
        {
            "users": found,
            "roles": roles,
            "role_names": _role_names(roles, lang),
            "matrix": _matrix(roles, lang),
            "may_manage": viewer.can(users.MANAGE),
            "may_manage_roles": viewer.can(users.MANAGE_ROLES),
        },
        viewer=viewer,
    )


# --- a new user ---------------------------------------------------------------------------------


def _unit_options(session: Session, viewer: Viewer, lang: str) -> list[tuple[str, str]]:
    """The units the viewer may give roles in: the group's admins every one, a unit's its own."""
    if viewer.can("governance.bu.read"):
        units = governance.list_business_units(session, viewer.ctx)
        return [(u.code, u.name_zh if lang == "zh-CN" else u.name_en) for u in units]
    return [(viewer.unit.code, viewer.unit.name(lang))]


def _role_options(session: Session, viewer: Viewer, lang: str) -> list[tuple[str, str]]:
    return list(_role_names(users.list_roles(session, viewer.ctx), lang).items())


def _new_user_form(
    request: Request,
    session: Session,
    viewer: Viewer,
    values: dict[str, str],
    errors: FormErrors,
    status_code: int,
) -> Response:
    viewer.ctx.require(users.MANAGE)
    lang = page_lang(request)
    return render(
        request,
        "governance/user_new.html",
        {
            "values": values,
            "errors": errors,
            "units": _unit_options(session, viewer, lang),
            "roles": _role_options(session, viewer, lang),
        },
        viewer=viewer,
        status_code=status_code,
    )


@router.get("/users/new", response_class=HTMLResponse)
def new_user(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    values = {"bu": viewer.unit.code, "role": ""}
    return _new_user_form(request, session, viewer, values, FormErrors(), 200)


@router.post("/users/new", response_class=HTMLResponse)
def create_user(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    email: Short = "",
    display_name: Short = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    bu: Short = "",
    role: Short = "",
) -> Response:
    viewer.ctx.require(users.MANAGE)
    shown = {"email": email, "display_name": display_name, "bu": bu, "role": role}
    try:
        data = _parse_user({**shown, "password": password})
        with session.begin_nested():
            made = users.create_user(session, viewer.ctx, data)
    except REFUSALS as exc:
        errors, status = refusal(exc, USER_FIELDS, messages=USER_MESSAGES)
        return _new_user_form(request, session, viewer, shown, errors, status)
    return RedirectResponse(f"/users/{made.id}", status_code=303)


def _parse_user(values: dict[str, str]) -> UserIn:
    """The form as ``UserIn``, with the service's email check run as well, so a bad address
    and a short password are both said at once rather than one after the other."""
    problems: list[FieldError] = []
    if values.get("email"):
        try:
            users.normalise_login_email(values["email"])
        except ValidationFailed as exc:
            problems = exc.errors
    try:
        data = parse_form(UserIn, values)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, [*problems, *exc.errors]) from exc
    if problems:
        raise ValidationFailed("the email address is not valid", problems)
    return data


# --- one user: roles, deactivation ----------------------------------------------------------------


def _user_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    user: User,
    errors: FormErrors,
    values: dict[str, str],
    status_code: int,
) -> Response:
    lang = page_lang(request)
    may_manage = viewer.can(users.MANAGE)
    return render(
        request,
        "governance/user.html",
        {
            "user": user,
            "role_names": _role_names(users.list_roles(session, viewer.ctx), lang),
            "may_manage": may_manage,
            "units": _unit_options(session, viewer, lang) if may_manage else [],
            "roles": _role_options(session, viewer, lang) if may_manage else [],
            "errors": errors,
            "values": values,
        },
        viewer=viewer,
        status_code=status_code,
    )


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user_id: str, viewer: ViewerDep, session: SessionDep) -> Response:
    user = users.get_user(session, viewer.ctx, user_id)
    values = {"bu": viewer.unit.code, "role": ""}
    return _user_page(request, session, viewer, user, FormErrors(), values, 200)


@router.post("/users/{user_id}/grant", response_class=HTMLResponse)
def grant(
    request: Request,
    user_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    bu: Short = "",
    role: Short = "",
) -> Response:
    """Replaces the role the user held in that unit, as the service does."""
    try:
        if not bu or not role:
            missing = [
                FieldError((name,), N_("This field is required."))
                for name, value in (("bu", bu), ("role", role))
                if not value
            ]
            raise ValidationFailed("the form has errors", missing)
        with session.begin_nested():
            users.grant(session, viewer.ctx, user_id, bu, role)
    except REFUSALS as exc:
        errors, status = refusal(exc, {"bu", "role"}, messages=USER_MESSAGES)
        user = users.get_user(session, viewer.ctx, user_id)
        values = {"bu": bu, "role": role}
        return _user_page(request, session, viewer, user, errors, values, status)
    return RedirectResponse(f"/users/{user_id}#memberships", status_code=303)


def _revoke_question(user: User, bu: str) -> Confirmation:
    return Confirmation(
        title=N_("Revoke a role"),
        message=N_("Take away the role of %(user)s in %(unit)s? Their sessions there end."),
        action=f"/users/{user.id}/memberships/{bu}/revoke",
        cancel=f"/users/{user.id}#memberships",
        button=N_("Revoke the role"),
        args={"user": user.email, "unit": bu},
    )


@router.get("/users/{user_id}/memberships/{bu}/revoke", response_class=HTMLResponse)
def confirm_revoke(
    request: Request, user_id: str, bu: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    viewer.ctx.require(users.MANAGE)
    user = users.get_user(session, viewer.ctx, user_id)
    if all(m.bu_code != bu for m in user.memberships):
        raise NotFound(f"the user holds no role in {bu!r}", bu=bu)
    return confirm_page(request, viewer, _revoke_question(user, bu))


@router.post("/users/{user_id}/memberships/{bu}/revoke", response_class=HTMLResponse)
def revoke(
    request: Request, user_id: str, bu: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    try:
        with session.begin_nested():
            users.revoke(session, viewer.ctx, user_id, bu)
    except REFUSALS as exc:
        errors, status = refusal(exc, set())
        user = users.get_user(session, viewer.ctx, user_id)
        return confirm_page(request, viewer, _revoke_question(user, bu), errors, status)
    return RedirectResponse(f"/users/{user_id}#memberships", status_code=303)


def _deactivate_question(user: User) -> Confirmation:
    return Confirmation(
        title=N_("Deactivate a user"),
        message=N_(
            "Deactivate %(user)s? They are signed out everywhere and cannot sign in again "
            "until reactivated; their API keys stop working."
        ),
        action=f"/users/{user.id}/deactivate",
        cancel=f"/users/{user.id}",
        button=N_("Deactivate"),
        args={"user": user.email},
    )


@router.get("/users/{user_id}/deactivate", response_class=HTMLResponse)
def confirm_deactivate(
    request: Request, user_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    viewer.ctx.require(users.MANAGE)
    user = users.get_user(session, viewer.ctx, user_id)
    return confirm_page(request, viewer, _deactivate_question(user))


@router.post("/users/{user_id}/deactivate", response_class=HTMLResponse)
def deactivate(request: Request, user_id: str, viewer: ViewerDep, session: SessionDep) -> Response:
    return _set_active(request, session, viewer, user_id, is_active=False)


@router.post("/users/{user_id}/activate", response_class=HTMLResponse)
def activate(request: Request, user_id: str, viewer: ViewerDep, session: SessionDep) -> Response:
    return _set_active(request, session, viewer, user_id, is_active=True)


def _set_active(
    request: Request, session: Session, viewer: Viewer, user_id: str, *, is_active: bool
) -> Response:
    try:
        with session.begin_nested():
            users.update_user(session, viewer.ctx, user_id, UserPatch(is_active=is_active))
    except REFUSALS as exc:
        errors, status = refusal(exc, set())
        user = users.get_user(session, viewer.ctx, user_id)
        return _user_page(request, session, viewer, user, errors, {}, status)
    return RedirectResponse(f"/users/{user_id}", status_code=303)


# --- custom roles -------------------------------------------------------------------------------


def _role_form(
    request: Request,
    viewer: Viewer,
    role: RoleOut | None,
    values: dict[str, Any],  # Any: the form's values, a list for the permissions
    errors: FormErrors,
    status_code: int,
) -> Response:
    viewer.ctx.require(users.MANAGE_ROLES)
    lang = page_lang(request)
    permissions = [(name, zh if lang == "zh-CN" else en) for name, (zh, en) in PERMISSIONS.items()]
    return render(
        request,
        "governance/role_form.html",
        {"role": role, "values": values, "errors": errors, "permissions": permissions},
        viewer=viewer,
        status_code=status_code,
    )


def _custom(session: Session, viewer: Viewer, code: str) -> RoleOut:
    role = users.get_role(session, viewer.ctx, code)
    if role.builtin:
        raise ValidationFailed(
            "built-in roles do not change", [FieldError(("code",), N_("Built-in roles are fixed."))]
        )
    return role


@router.get("/roles/new", response_class=HTMLResponse)
def new_role(request: Request, viewer: ViewerDep) -> Response:
    values: dict[str, Any] = {"permissions": []}  # Any: form values
    return _role_form(request, viewer, None, values, FormErrors(), 200)


@router.post("/roles/new", response_class=HTMLResponse)
def create_role(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    code: Short = "",
    name_zh: Short = "",
    name_en: Short = "",
    permissions: Permissions = [],  # noqa: B006  (FastAPI copies defaults per request)
) -> Response:
    values = _role_values(code, name_zh, name_en, permissions)
    try:
        data = parse_form(RoleIn, values)
        with session.begin_nested():
            users.create_role(session, viewer.ctx, data)
    except REFUSALS as exc:
        errors, status = refusal(exc, ROLE_FIELDS, messages=ROLE_MESSAGES)
        return _role_form(request, viewer, None, values, errors, status)
    return RedirectResponse("/users#role-matrix", status_code=303)


@router.get("/roles/{code}/edit", response_class=HTMLResponse)
def edit_role(request: Request, code: str, viewer: ViewerDep, session: SessionDep) -> Response:
    role = _custom(session, viewer, code)
    values: dict[str, Any] = role.model_dump()  # Any: form values
    return _role_form(request, viewer, role, values, FormErrors(), 200)


@router.post("/roles/{code}/edit", response_class=HTMLResponse)
def update_role(
    request: Request,
    code: str,
    viewer: ViewerDep,
    session: SessionDep,
    name_zh: Short = "",
    name_en: Short = "",
    permissions: Permissions = [],  # noqa: B006  (FastAPI copies defaults per request)
) -> Response:
    role = _custom(session, viewer, code)
    values = _role_values(None, name_zh, name_en, permissions)
    try:
        data = parse_form(RolePatch, values)
        with session.begin_nested():
            users.update_role(session, viewer.ctx, code, data)
    except REFUSALS as exc:
        errors, status = refusal(exc, ROLE_FIELDS, messages=ROLE_MESSAGES)
        return _role_form(request, viewer, role, {**values, "code": code}, errors, status)
    return RedirectResponse("/users#role-matrix", status_code=303)


def _role_values(
    code: str | None, name_zh: str, name_en: str, permissions: list[str]
) -> dict[str, Any]:  # Any: strings, and a list
    """The role form as the shapes take it; no permission ticked is left out, so the form
    says "required" beside the list rather than "too short"."""
    values: dict[str, Any] = {"name_zh": name_zh, "name_en": name_en}  # Any: form values
    if code is not None:
        values["code"] = code
    if permissions:
        values["permissions"] = permissions
    return values


def _delete_role_question(role: RoleOut) -> Confirmation:
    return Confirmation(
        title=N_("Delete a role"),
        message=N_("Delete the custom role %(role)s? Nobody may hold it any more."),
        action=f"/roles/{role.code}/delete",
        cancel="/users#role-matrix",
        button=N_("Delete the role"),
        args={"role": role.code},
    )


@router.get("/roles/{code}/delete", response_class=HTMLResponse)
def confirm_delete_role(
    request: Request, code: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    viewer.ctx.require(users.MANAGE_ROLES)
    return confirm_page(request, viewer, _delete_role_question(_custom(session, viewer, code)))


@router.post("/roles/{code}/delete", response_class=HTMLResponse)
def delete_role(request: Request, code: str, viewer: ViewerDep, session: SessionDep) -> Response:
    role = _custom(session, viewer, code)
    try:
        with session.begin_nested():
            users.delete_role(session, viewer.ctx, code)
    except REFUSALS as exc:
        errors, status = refusal(exc, set())
        return confirm_page(request, viewer, _delete_role_question(role), errors, status)
    return RedirectResponse("/users#role-matrix", status_code=303)
