"""HTTP for users, their roles per unit, custom roles, the permission catalogue and API keys.

A unit's admins see and manage their unit's people; another unit's user is a 404. Nobody
grants what they do not hold (403). An API key's token is in the answer that makes it, and
nowhere else, ever.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.etag import IfMatch, tag
from oneloop.api.idempotency import shown_once
from oneloop.api.paging import Page, PageRequest, list_query, search
from oneloop.governance import signin, users
from oneloop.governance.schemas import (
    ApiKey,
    ApiKeyIn,
    ApiKeyMade,
    MembershipIn,
    Permission,
    RoleIn,
    RoleOut,
    RolePatch,
    User,
    UserIn,
    UserPatch,
)

router = APIRouter(prefix="/api/v1", tags=["users and roles"])

UserId = Annotated[str, Path(description="the user's id", max_length=64)]
UnitCode = Annotated[str, Path(description="the unit's code", max_length=32)]
RoleCodePath = Annotated[str, Path(description="the role's code", max_length=32)]
USER_VOLATILE = ("last_login_at",)  # a sign-in is not an edit of the user


UserList = Annotated[PageRequest, Depends(list_query("users", users.USER_SORTS, default="email"))]
RoleList = Annotated[PageRequest, Depends(list_query("roles", users.ROLE_SORTS, default="code"))]
ApiKeyList = Annotated[
    PageRequest, Depends(list_query("api-keys", signin.API_KEY_SORTS, default="-created_at"))
]


@router.get("/users", summary="Users by email: a unit's people, or everyone for the group")
def list_users(
    session: SessionDep,
    ctx: CallerDep,
    page: UserList,
    q: Annotated[str | None, search("the email")] = None,
    role: Annotated[str | None, Query(max_length=32, description="holding this role")] = None,
    bu: Annotated[str | None, Query(max_length=32, description="in this unit (its code)")] = None,
) -> Page[User]:
    return users.page_users(session, ctx, page, q=q, role=role, bu=bu)


@router.post("/users", summary="Create a user with a role in one unit", status_code=201)
def create_user(
    data: Annotated[
        UserIn,
        Body(
            openapi_examples={
                "a marketer": {
                    "value": {
                        "email": "li.lei@galaxy.example.com",
                        "display_name": "李雷",
                        "password": "correct horse battery",
                        "bu": "appliances",
                        "role": "marketer",
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> User:
    return users.create_user(session, ctx, data)


@router.get("/users/{user_id}", summary="A user and their roles")
def get_user(user_id: UserId, session: SessionDep, ctx: CallerDep, response: Response) -> User:
    return tag(response, users.get_user(session, ctx, user_id), USER_VOLATILE)


@router.patch("/users/{user_id}", summary="Rename, (de)activate or set a new password")
def patch_user(
    user_id: UserId,
    data: Annotated[
        UserPatch, Body(openapi_examples={"deactivate": {"value": {"is_active": False}}})
    ],
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> User:
    if_match.check(users.get_user(session, ctx, user_id), USER_VOLATILE)
    return tag(response, users.update_user(session, ctx, user_id, data), USER_VOLATILE)


@router.put("/users/{user_id}/memberships/{bu}", summary="Grant a role in a unit")
def grant(
    user_id: UserId,
    bu: UnitCode,
    data: MembershipIn,
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> User:
    if_match.check(users.get_user(session, ctx, user_id), USER_VOLATILE)
    return tag(response, users.grant(session, ctx, user_id, bu, data.role), USER_VOLATILE)


@router.delete("/users/{user_id}/memberships/{bu}", summary="Revoke the user's role in a unit")
def revoke(
    user_id: UserId,
    bu: UnitCode,
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> User:
    if_match.check(users.get_user(session, ctx, user_id), USER_VOLATILE)
    return tag(response, users.revoke(session, ctx, user_id, bu), USER_VOLATILE)


@router.post(
    "/users/{user_id}/unlock", summary="End a lock-out after failed sign-ins", status_code=204
)
def unlock(user_id: UserId, session: SessionDep, ctx: CallerDep) -> Response:
    signin.unlock(session, ctx, user_id)
    return Response(status_code=204)


@router.get("/permissions", summary="Every permission a role can hold")
def list_permissions(ctx: CallerDep) -> list[Permission]:
    return users.list_permissions()


@router.get("/roles", summary="The built-in and the custom roles, by code")
def list_roles(
    session: SessionDep,
    ctx: CallerDep,
    page: RoleList,
    builtin: Annotated[
        bool | None, Query(description="only the built-in (true) or the custom (false) ones")
    ] = None,
) -> Page[RoleOut]:
    return users.page_roles(session, ctx, page, builtin=builtin)


@router.post("/roles", summary="Create a custom role", status_code=201)
def create_role(data: RoleIn, session: SessionDep, ctx: CallerDep) -> RoleOut:
    return users.create_role(session, ctx, data)


@router.get("/roles/{code}", summary="A role and its permissions")
def get_role(
    code: RoleCodePath, session: SessionDep, ctx: CallerDep, response: Response
) -> RoleOut:
    return tag(response, users.get_role(session, ctx, code))


@router.patch("/roles/{code}", summary="Change a custom role")
def patch_role(
    code: RoleCodePath,
    data: Annotated[
        RolePatch,
        Body(
            openapi_examples={
                "add a permission": {"value": {"permissions": ["segments.read", "profiles.read"]}}
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> RoleOut:
    if_match.check(users.get_role(session, ctx, code))
    return tag(response, users.update_role(session, ctx, code, data))


@router.delete("/roles/{code}", summary="Delete a custom role nobody holds", status_code=204)
def delete_role(code: RoleCodePath, session: SessionDep, ctx: CallerDep) -> Response:
    users.delete_role(session, ctx, code)
    return Response(status_code=204)


@router.get("/api-keys", summary="Your API keys, newest first; an admin's: the unit's")
def list_api_keys(session: SessionDep, ctx: CallerDep, page: ApiKeyList) -> Page[ApiKey]:
    return signin.page_api_keys(session, ctx, page)


@router.post(
    "/api-keys",
    summary="Make an API key; its token is shown once",
    status_code=201,
    openapi_extra=shown_once(),
)
def create_api_key(
    data: Annotated[
        ApiKeyIn,
        Body(
            openapi_examples={
                "a read-only key": {
                    "value": {
                        "name": "BI nightly",
                        "scopes": ["profiles.read", "segments.read"],
                        "expires_in_days": 90,
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> ApiKeyMade:
    return signin.create_api_key(session, ctx, data)


@router.delete("/api-keys/{key_id}", summary="Revoke an API key")
def revoke_api_key(
    key_id: Annotated[str, Path(max_length=64)], session: SessionDep, ctx: CallerDep
) -> ApiKey:
    return signin.revoke_api_key(session, ctx, key_id)
