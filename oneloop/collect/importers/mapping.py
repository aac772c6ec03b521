"""The mapping file: which columns of an export identify the person, which are traits, which
become an event. Data, not code (DESIGN.md: rules are data): a YAML document validated by the
pydantic models below, with every error named by its path in the document.

A shipped mapping is referred to by name (``demo-crm-contacts``); anything else is a path to a
YAML file. See README ("Importing files") for the format with examples.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic import ValidationError as PydanticValidationError

from oneloop.collect.spec import IDENTIFIER_TRAITS
from oneloop.core.errors import FieldError, NotFound, ValidationFailed

CallType = Literal["track", "identify", "group", "page", "screen"]
ValueType = Literal["string", "integer", "number", "boolean", "datetime", "date", "any"]
MappingName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", min_length=1, max_length=100)
]
SubjectKind = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", min_length=1, max_length=40)
]
Constant = str | int | float | bool
SHIPPED_PACKAGE = "oneloop.demo"
SHIPPED_FOLDER = "mappings"


class _Strict(BaseModel):
    # A misspelt key (``propertes:``) must fail loudly, not be ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueSpec(_Strict):
    """Where one value comes from: a column (``column:``, or the column name alone as
    shorthand) or a constant (``value:``), and how to type it."""

    column: str | None = None
    value: Constant | None = None
    type: ValueType = "string"
    required: bool = False
    format: str | None = Field(
        None, description="strptime format of a datetime or date column; ISO 8601 if absent"
    )
    timezone: str | None = Field(
        None, description="IANA zone of wall-clock times without an offset, e.g. Asia/Shanghai"
    )
    prefix: str = Field("", description="put before the value, e.g. 'ticket:'")
    sum: bool = Field(False, description="with lines: add the value up over the record's rows")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        return {"column": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _consistent(self) -> ValueSpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of column (a column name) or value (a constant)")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"unknown time zone {self.timezone!r}; use an IANA name such as Asia/Shanghai"
                ) from exc
        if self.type == "datetime" and self.timezone is None and "%z" not in (self.format or ""):
            # Guessing the zone of a wall-clock time is how times go wrong by eight hours.
            raise ValueError(
                "a datetime needs timezone: (e.g. Asia/Shanghai, or UTC) for times written "
                "without an offset"
            )
        if self.sum and self.type not in ("integer", "number"):
            raise ValueError("sum: true needs type: integer or number")
        return self


class Lines(_Strict):
    """Order-line style exports: adjacent rows sharing the mapping's ``key`` are one record,
    and each row becomes one object of the list ``properties.<into>``."""

    into: str = "products"
    fields: dict[str, ValueSpec]


class Subject(_Strict):
    """Rows about something that is not a person (a campaign's spend, an account): the call's
    ``anonymousId`` is ``<kind>:<id columns joined by '/'>`` and ``context.oneloop.subject``
    is the kind, which makes the event carry no person identifiers (see ``spec.identifiers_of``),
    so no fake people are made downstream."""

    kind: SubjectKind
    id: list[str] = Field(min_length=1)


class Mapping(_Strict):
    """One file format's mapping onto Segment-spec calls."""

    name: MappingName
    description: str = ""
    format: Literal["csv", "xlsx", "jsonl"] | None = None
    encoding: Literal["auto", "utf-8", "utf-8-sig", "gb18030"] = "auto"
    delimiter: str = Field(",", min_length=1, max_length=1)
    sheet: str | None = None
    call: CallType
    event: str | None = Field(None, description="the event (track) or page/screen name")
    key: list[str] = Field(
        default_factory=list,
        description="columns that make the record's stable message id; the row's content if empty",
    )
    timestamp: ValueSpec | None = None
    user_id: ValueSpec | None = None
    anonymous_id: ValueSpec | None = None
    group_id: ValueSpec | None = None
    identifiers: dict[str, ValueSpec] = Field(default_factory=dict)
    traits: dict[str, ValueSpec] = Field(default_factory=dict)
    properties: dict[str, ValueSpec] = Field(default_factory=dict)
    lines: Lines | None = None
    subject: Subject | None = None
    locale: ValueSpec | None = Field(
        None,
        description=(
            "where the records come from, as a browser says it (en-US, de-DE): a constant "
            "(value:) or a column. It goes into each call's context.locale, so identity reads "
            "a phone written the local way in that region (a US export's (646) 607-6472)"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _timestamp_is_a_datetime(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("timestamp") is not None:
            stamp = data["timestamp"]
            stamp = {"column": stamp} if isinstance(stamp, str) else stamp
            if isinstance(stamp, dict):
                data = {**data, "timestamp": {"type": "datetime", **stamp}}
        return data

    def columns(self) -> set[str]:
        """Every column the mapping reads, to check against a file's header up front."""
        specs = [
            self.timestamp,
            self.user_id,
            self.anonymous_id,
            self.group_id,
            self.locale,
            *self.identifiers.values(),
            *self.traits.values(),
            *self.properties.values(),
            *(self.lines.fields.values() if self.lines else ()),
        ]
        named = {s.column for s in specs if s is not None and s.column is not None}
        return named | set(self.key) | set(self.subject.id if self.subject else ())


def check_mapping(mapping: Mapping) -> list[FieldError]:
    """The rules across fields that pydantic's per-field checks cannot see."""
    errors: list[FieldError] = []
    if mapping.call == "track" and not mapping.event:
        errors.append(FieldError(("event",), "a track mapping needs the event name"))
    if mapping.timestamp is not None and mapping.timestamp.type != "datetime":
        errors.append(FieldError(("timestamp", "type"), "the timestamp must be a datetime"))
    if mapping.call == "group" and mapping.group_id is None:
        errors.append(FieldError(("group_id",), "a group mapping needs group_id"))
    if mapping.call == "identify" and (mapping.properties or mapping.lines):
        errors.append(
            FieldError(("properties",), "identify calls carry traits, not properties or lines")
        )
    for name in mapping.identifiers:
        if name not in IDENTIFIER_TRAITS:
            known = ", ".join(sorted(IDENTIFIER_TRAITS))
            errors.append(
                FieldError(("identifiers", name), f"not an identifier trait; use one of {known}")
            )
    if mapping.subject is None:
        for name in mapping.traits:
            if name in IDENTIFIER_TRAITS:
                errors.append(
                    FieldError(
                        ("traits", name),
                        "is an identifier trait: list it under identifiers, so it is "
                        "declared as one",
                    )
                )
    else:
        for what in ("identifiers", "user_id", "anonymous_id"):
            if getattr(mapping, what):
                errors.append(
                    FieldError(
                        (what,),
                        "a mapping with a subject describes no person: its anonymousId is "
                        "made from subject.id, and it has no identifiers",
                    )
                )
    if mapping.lines is not None and not mapping.key:
        errors.append(
            FieldError(("key",), "lines needs key: the columns that rows of one record share")
        )
    sums = [
        (where, name)
        for where, specs in (("traits", mapping.traits), ("properties", mapping.properties))
        for name, spec in specs.items()
        if spec.sum
    ]
    if mapping.lines is None:
        errors.extend(FieldError((w, n, "sum"), "sum: true needs lines") for w, n in sums)
    else:
        errors.extend(
            FieldError(("lines", "fields", name, "sum"), "sum applies to record fields only")
            for name, spec in mapping.lines.fields.items()
            if spec.sum
        )
    return errors


def parse_mapping(document: object, where: str) -> Mapping:
    """A mapping from a parsed YAML document; ``where`` names it in errors (a path or name)."""
    if not isinstance(document, dict):
        raise ValidationFailed(f"mapping {where} must be a YAML mapping (key: value lines)")
    try:
        mapping = Mapping.model_validate(document)
    except PydanticValidationError as exc:
        errors = [
            FieldError(tuple(p for p in e["loc"] if isinstance(p, str | int)), e["msg"])
            for e in exc.errors()
        ]
        raise _invalid(where, errors) from exc
    errors = check_mapping(mapping)
    if errors:
        raise _invalid(where, errors)
    return mapping


def load_mapping(ref: str | Path) -> Mapping:
    """A mapping by file path, or by the name of a shipped one (see ``shipped_mappings``)."""
    path = Path(ref)
    if isinstance(ref, Path) or path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise NotFound(f"no mapping file {ref}", mapping=str(ref))
        return _load_yaml(path.read_text(encoding="utf-8"), str(ref))
    shipped = shipped_mappings()
    if str(ref) not in shipped:
        names = ", ".join(sorted(shipped)) or "none"
        raise NotFound(
            f"no mapping file or shipped mapping named {ref!r}; shipped: {names}",
            mapping=str(ref),
        )
    return _load_yaml(shipped[str(ref)], str(ref))


def mapping_ref(ref: str | Path) -> str:
    """How a run records its mapping so a later replay can load it again: a shipped name as
    is, a file by its absolute path."""
    path = Path(ref)
    if isinstance(ref, Path) or path.suffix in (".yaml", ".yml") or path.exists():
        return str(path.resolve())
    return str(ref)


def shipped_mappings() -> dict[str, str]:
    """Name → YAML text of the mappings shipped in the package (the demo's, as examples)."""
    folder = resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_FOLDER)
    if not folder.is_dir():
        return {}
    return {
        entry.name.removesuffix(".yaml"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def _load_yaml(text: str, where: str) -> Mapping:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed(f"mapping {where} is not valid YAML{at}: {problem}") from exc
    return parse_mapping(document, where)


def _invalid(where: str, errors: list[FieldError]) -> ValidationFailed:
    first = errors[0]
    return ValidationFailed(
        f"mapping {where} is invalid: {first.path or '(top)'}: {first.msg}"
        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
        errors,
        mapping=where,
    )
