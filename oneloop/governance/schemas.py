"""Shapes at the edges of governance: what the CLI and API accept and return."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

BuCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,31}$"),
    Field(description="lower-case letters, digits and dashes, 2-32 long, e.g. 'appliances'"),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

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


class BusinessUnit(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    name_zh: str
    name_en: str
    kind: Literal["group", "bu"]
    parent_id: str | None
    created_at: datetime


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
