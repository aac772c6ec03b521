"""Shapes at the edges of governance: what the CLI and API accept and return."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from oneloop.governance.models import DEFAULT_TIME_ZONE

BuCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,31}$"),
    Field(description="lower-case letters, digits and dashes, 2-32 long, e.g. 'appliances'"),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# Names the zone database knows but that are not places: ``localtime`` is whatever the
# server's clock is set to, so a unit's days would move with the machine it runs on.
NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_PLACES


def known_time_zone(name: str) -> str:
    """An IANA zone name exactly as the zone database spells it (``Europe/Berlin``), so
    that what is stored loads on every server."""
    if name not in _known_zones():
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai or Europe/Berlin"
        )
    return name


TimeZone = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(known_time_zone),
    Field(
        description="IANA time zone the unit's rules count calendar days in",
        examples=[DEFAULT_TIME_ZONE, "Europe/Berlin"],
    ),
]

RoleCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$"),
    Field(
        description="a built-in role (group_admin, bu_admin, marketer, sales_manager, sales_rep, "
        "service_agent, analyst, compliance_officer) or a custom role's code",
        examples=["marketer"],
    ),
]
Password = Annotated[str, StringConstraints(min_length=12, max_length=1024)]


class BusinessUnitIn(BaseModel):
    code: BuCode
    name_zh: Name
    name_en: Name
    parent: BuCode | None = Field(default=None, description="code of the parent; None for HQ")
    time_zone: TimeZone | None = Field(
        default=None,
        description=(
            "IANA time zone the unit's rules count calendar days in; "
            f"default: the parent's, and {DEFAULT_TIME_ZONE} for the group"
        ),
    )


class BusinessUnitPatch(BaseModel):
    """What may change after creation; a field left out keeps its value. The code and the
    parent do not change: other records and links name them."""

    model_config = ConfigDict(extra="forbid")

    name_zh: Name | None = None
    name_en: Name | None = None
    time_zone: TimeZone | None = None


class BusinessUnit(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    name_zh: str
    name_en: str
    kind: Literal["group", "bu"]
    parent_id: str | None
    time_zone: str
    created_at: datetime
    updated_at: datetime


class UserIn(BaseModel):
    """A new user and their first membership: the role ``role`` in the unit ``bu``."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(examples=["li.lei@galaxy.example.com"])
    display_name: Name
    password: Password = Field(description="at least 12 characters")
    bu: BuCode
    role: RoleCode


class UserPatch(BaseModel):
    """A field left out stays. Deactivating a user ends their sessions; their API keys stop
    working with them."""

    model_config = ConfigDict(extra="forbid")

    display_name: Name | None = None
    is_active: bool | None = None
    password: Password | None = None


class MembershipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: RoleCode


class Membership(BaseModel):
    bu_id: str
    bu_code: str
    role: str


class User(BaseModel):
    id: str
    email: str
    display_name: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
    memberships: list[Membership] = Field(description="the user's roles, one per unit")


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: RoleCode
    name_zh: Name
    name_en: Name
    permissions: list[str] = Field(
        min_length=1, examples=[["profiles.read", "segments.read", "consent.read"]]
    )


class RolePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name_zh: Name | None = None
    name_en: Name | None = None
    permissions: list[str] | None = Field(default=None, min_length=1)


class RoleOut(BaseModel):
    code: str
    name_zh: str
    name_en: str
    permissions: list[str] = Field(description="'*' is every permission")
    builtin: bool
    group_only: bool = Field(description="granted in the group (HQ) only")


class Permission(BaseModel):
    name: str
    description_zh: str
    description_en: str


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    bu: BuCode | None = Field(
        default=None, description="the unit to act in; default: the user's first membership"
    )


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bu: BuCode


class Whoami(BaseModel):
    """Who the caller is and what they may do where they act now."""

    user: User | None = Field(description="None for the bootstrap admin token")
    bu_id: str | None
    bu_code: str | None
    role: str | None
    is_group_wide: bool
    permissions: list[str]
    via: Literal["session", "api_key", "admin_token"]
    csrf_token: str | None = Field(
        default=None,
        description="for a console session: send it as X-CSRF-Token on every POST, PUT, "
        "PATCH and DELETE",
    )
    expires_at: datetime | None = None


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    scopes: list[str] = Field(
        min_length=1,
        description="permissions the key may use: at most its user's in that unit",
        examples=[["profiles.read", "segments.read"]],
    )
    expires_in_days: int = Field(default=90, ge=1, le=366)
    user: str | None = Field(
        default=None,
        description="email of the user the key acts as (admins); default: the caller",
    )
    bu: BuCode | None = Field(
        default=None, description="the unit the key acts in; default: the caller's"
    )


class ApiKey(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    user_id: str
    bu_id: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyMade(ApiKey):
    token: str = Field(
        description="shown once: send as 'Authorization: Bearer <token>'; only a hash is kept"
    )


class AuditEntry(BaseModel):
    """One entry of the audit log, as stored: ``hash`` lets a reader re-check it."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: datetime
    actor: str
    bu_id: str | None
    action: str = Field(description="what was done, e.g. segment.exported, identity.unmerged")
    object_type: str
    object_id: str | None
    origin: str | None = Field(description="where from: cli, 'api <ip>', worker")
    outcome: Literal["ok", "denied", "failed"]
    detail: dict[str, object] | None = Field(description="ids and counts, never PII values")
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: int | None = Field(None, description="pass as ?cursor= for the next page")


class VerifyResult(BaseModel):
    """``is_intact`` or else the first entry where the chain breaks, and why."""

    is_intact: bool
    entries: int = Field(description="entries checked")
    bad_seq: int | None = None
    reason: str | None = None


Resource = Literal["traits", "tags", "scores", "events"]


class SharingPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str = Field(description="code of the unit whose data is shared", examples=["appliances"])
    reader: str = Field(description="code of the unit that may read it", examples=["service"])
    resource: Resource = Field(description="computed traits, tags, scores or events")
    names: list[str] = Field(
        min_length=1,
        description="trait names, tag codes, score model codes or event names; ['*'] for all",
        examples=[["orders_90d", "revenue_90d"]],
    )
    note: str = Field(default="", max_length=500)


class SharingPolicy(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner_bu_id: str
    reader_bu_id: str
    resource: str
    names: list[str]
    note: str
    created_at: datetime
    created_by: str
