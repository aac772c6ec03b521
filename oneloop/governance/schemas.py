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

Role = Literal[
    "group_admin",
    "bu_admin",
    "marketer",
    "sales_manager",
    "sales_rep",
    "service_agent",
    "analyst",
    "compliance_officer",
]


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
    email: str
    display_name: Name
    password: Annotated[str, StringConstraints(min_length=12, max_length=1024)]
    bu: BuCode
    role: Role


class User(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    display_name: str
    bu_id: str
    role: Role
    is_active: bool
    created_at: datetime


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
