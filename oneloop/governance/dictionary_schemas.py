"""Shapes of the data dictionary (issue 7, parts 3 and 7) at the edges: an entry as written
(YAML file, PUT body), as read, and its versions.

An entry is a **field** (a golden-record field, a trait, an identifier type, an event
property) or a **metric** (revenue, orders, AOV, CSAT …). Where its values come from is its
``lineage``, which is also how personal data is recognised wherever it travels: a field's
``trait`` items name the golden-record fields it covers, its ``identifier`` items the
identifier types, its ``property`` items event properties (of one event, or of any).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from oneloop.core.errors import FieldError
from oneloop.governance.masking import PII_KINDS
from oneloop.governance.schemas import Name

EntryKind = Literal["field", "metric"]
Classification = Literal["public", "internal", "pii", "sensitive_pii"]
PiiKind = Literal[
    "name",
    "phone",
    "email",
    "address",
    "birth_date",
    "id_card",
    "passport",
    "bank_card",
    "wechat_id",
    "device_id",
    "other",
]
DataType = Literal[
    "string", "integer", "number", "boolean", "date", "datetime", "money", "percent", "object"
]
LineageKind = Literal["identifier", "trait", "property", "event", "source", "metric", "field"]

# What the console shows: value → (中文, English).
ENTRY_KINDS: dict[str, tuple[str, str]] = {"field": ("字段", "field"), "metric": ("指标", "metric")}
CLASSIFICATIONS: dict[str, tuple[str, str]] = {
    "public": ("公开", "public"),
    "internal": ("内部", "internal"),
    "pii": ("个人信息", "personal information"),
    "sensitive_pii": ("敏感个人信息", "sensitive personal information (PIPL art. 28)"),
}
PERSONAL = ("pii", "sensitive_pii")
SENSITIVE = "sensitive_pii"

DictionaryKey = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?$", max_length=100),
    Field(
        description="lower-case snake_case, optionally one dotted level (address.city)",
        examples=["phone", "revenue"],
    ),
]


@cache
def _currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def iso_currency(code: str) -> str:
    """An ISO 4217 code as the standard spells it: ``CNY``, not ``RMB`` or ``cny``."""
    if code not in _currencies():
        raise ValueError(f"unknown currency {code!r}; use an ISO 4217 code such as CNY or EUR")
    return code


Currency = Annotated[str, AfterValidator(iso_currency), Field(examples=["CNY"])]


class Label(BaseModel):
    zh: str
    en: str


def label(table: dict[str, tuple[str, str]], value: str | None) -> Label | None:
    if value is None:
        return None
    zh, en = table[value]
    return Label(zh=zh, en=en)


class LineageItem(BaseModel):
    """One thing that feeds an entry: ``{kind: property, event: Order Completed, name:
    total}``, ``{kind: identifier, name: phone}``, ``{kind: trait, name: mobile}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LineageKind
    name: str = Field(min_length=1, max_length=255)
    event: str | None = Field(
        None, min_length=1, max_length=255, description="for a property: its event; none: any"
    )
    note: str = Field("", max_length=500)


class EntryIn(BaseModel):
    """An entry as written: a new one, or the whole of a changed one (a new version)."""

    model_config = ConfigDict(extra="forbid")

    kind: EntryKind
    name_zh: Name = Field(examples=["手机号码"])
    name_en: Name = Field(examples=["Phone number"])
    description_zh: str = Field("", max_length=4000, description="含义")
    description_en: str = Field("", max_length=4000, description="meaning")
    data_type: DataType
    unit: str | None = Field(None, min_length=1, max_length=32, examples=["orders", "score 1-5"])
    currency: Currency | None = None
    includes_tax: bool | None = Field(None, description="for money: whether VAT is included")
    owner_bu: str | None = Field(
        None, max_length=32, description="the owning unit's code; none: the group (HQ)"
    )
    classification: Classification
    pii_kind: PiiKind | None = Field(
        None, description="how its values are masked; none for personal data: ***"
    )
    lineage: list[LineageItem] = Field(default_factory=list, max_length=100)
    note: str | None = Field(None, max_length=500, description="why it changed (kept with it)")

    def document(self) -> dict[str, Any]:  # Any: JSON values
        """The entry's content, as versions keep it (the note is the version's, not the
        entry's)."""
        return self.model_dump(mode="json", exclude={"note"})


def problems(entry: EntryIn) -> list[FieldError]:
    """What is inconsistent between an entry's fields, each named by its path: what a
    single field's type cannot say (pydantic checks those)."""
    found: list[FieldError] = []

    def bad(loc: tuple[str | int, ...], msg: str) -> None:
        found.append(FieldError(loc, msg))

    money = entry.data_type == "money"
    if money and entry.currency is None:
        bad(("currency",), "an amount of money needs its ISO 4217 currency, e.g. CNY")
    if not money and entry.currency is not None:
        bad(("currency",), "only an amount of money (data_type: money) has a currency")
    if money and entry.includes_tax is None:
        bad(("includes_tax",), "say whether the amount includes tax (VAT): true or false")
    if not money and entry.includes_tax is not None:
        bad(("includes_tax",), "only an amount of money (data_type: money) includes tax or not")
    if entry.pii_kind is not None and entry.classification not in PERSONAL:
        bad(("pii_kind",), "only personal data (classification pii or sensitive_pii) is masked")
    if entry.kind == "metric" and entry.classification in PERSONAL:
        bad(("classification",), "a metric is an aggregate over people, not personal data")
    for i, item in enumerate(entry.lineage):
        if item.event is not None and item.kind != "property":
            bad(("lineage", i, "event"), "only a property names the event it belongs to")
        if item.kind == "identifier" and entry.classification == SENSITIVE:
            bad(
                ("lineage", i, "kind"),
                "identifiers link people by their value, which sensitive data never keeps in "
                "clear: classify the field pii, or feed it from a trait",
            )
    return found


class Entry(BaseModel):
    """An entry as read: its newest version."""

    key: str
    kind: EntryKind
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    data_type: str
    unit: str | None
    currency: str | None
    includes_tax: bool | None
    owner_bu: str | None = Field(description="the owning unit's code; none: the group")
    classification: Classification
    pii_kind: str | None
    lineage: list[LineageItem]
    version: int
    updated_at: datetime
    updated_by: str
    kind_label: Label
    classification_label: Label
    pii_kind_label: Label | None


class EntryPage(BaseModel):
    items: list[Entry]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class EntryVersion(BaseModel):
    """An entry as it was at one version, and what that version changed."""

    key: str
    version: int
    change: Literal["installed", "edited"]
    changed: list[str] = Field(description="the fields this version changed")
    note: str | None
    changed_at: datetime
    changed_by: str
    entry: dict[str, Any]  # Any: the entry's fields as of this version (EntryIn's)


class MetricRef(BaseModel):
    """What a computed trait's numbers mean, from the dictionary's metric."""

    key: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    data_type: str
    unit: str | None
    currency: str | None
    includes_tax: bool | None
    version: int


class InstallReport(BaseModel):
    created: list[str]
    updated: list[str] = Field(description="defaults brought up to this release's")
    kept: list[str] = Field(description="changed by someone since: left as they are")
    unchanged: int


assert set(PII_KINDS) == set(PiiKind.__args__)  # type: ignore[attr-defined]
