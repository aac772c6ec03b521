"""Identity rules as data: identifier types with their limits and priorities, blocked values,
normalisation options and golden-record survivorship, one document per group.

The document is YAML a data steward can read (``rules.yaml`` next to this module is the
default). It is validated with pydantic at the edge, so a bad document is refused with the
path of the bad key, and turned into a frozen ``Rules`` the resolver uses. Each stored version
is kept; the newest one is in force.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.identity.normalize import KINDS, Normalized, NormalizeOptions, normalize

DEFAULT_PATH = Path(__file__).with_name("rules.yaml")
UNRANKED = 1_000

Survivorship = Literal["most_recent", "most_trusted", "most_frequent", "first_seen"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TypeDoc(_Strict):
    kind: str
    limit: int | None = Field(default=None, ge=1)
    priority: int = Field(default=UNRANKED, ge=0)
    links: bool = True
    scope: Literal["group", "business_unit"] = "group"

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(sorted(KINDS))}")
        return kind


class NormalizeDoc(_Strict):
    default_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    email_gmail_dots: bool = False
    email_plus_tags: bool = False


class FieldRuleDoc(_Strict):
    rule: Survivorship
    sources: list[str] = Field(default_factory=list)


class GoldenDoc(_Strict):
    default: Survivorship = "most_recent"
    fields: dict[str, FieldRuleDoc] = Field(default_factory=dict)


class RulesDoc(_Strict):
    types: dict[str, TypeDoc] = Field(min_length=1)
    aliases: dict[str, str] = Field(default_factory=dict)
    blocked: dict[str, list[str]] = Field(default_factory=dict)
    blocked_patterns: dict[str, list[str]] = Field(default_factory=dict)
    normalize: NormalizeDoc = Field(default_factory=NormalizeDoc)
    golden: GoldenDoc = Field(default_factory=GoldenDoc)

    @field_validator("blocked_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: dict[str, list[str]]) -> dict[str, list[str]]:
        for kind, items in patterns.items():
            for pattern in items:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(
                        f"{kind}: {pattern!r} is not a regular expression: {exc}"
                    ) from None
        return patterns


@dataclass(frozen=True, slots=True)
class TypeRule:
    code: str
    kind: str
    limit: int | None
    priority: int
    links: bool
    scope: str = "group"  # business_unit: values are `<unit code>:<value>` (own account systems)


@dataclass(frozen=True, slots=True)
class FieldRule:
    rule: Survivorship
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rules:
    types: dict[str, TypeRule]
    aliases: dict[str, str]
    blocked: frozenset[tuple[str, str]]  # (type, raw value as written in the document)
    blocked_patterns: dict[str, tuple[re.Pattern[str], ...]]
    options: NormalizeOptions
    golden_default: FieldRule
    golden_fields: dict[str, FieldRule]
    version: str  # a hash of the document: the same rules have the same version

    def priority(self, kind: str) -> int:
        rule = self.types.get(kind)
        return rule.priority if rule else UNRANKED

    def limit(self, kind: str) -> int | None:
        rule = self.types.get(kind)
        return rule.limit if rule else None

    def count_key(self, kind: str, value: str) -> str:
        """What limits and shared-identifier degrees count by: the type, or for a type scoped
        per business unit the type in its unit (one ``user_id`` per unit, not per group)."""
        rule = self.types.get(kind)
        if rule is not None and rule.scope == "business_unit":
            return f"{kind}@{value.partition(':')[0]}"
        return kind

    def type_of(self, kind: str) -> str:
        return self.aliases.get(kind, kind)

    def read(
        self,
        kind: str,
        raw: object,
        *,
        unit: str | None = None,
        app: str | None = None,
        options: NormalizeOptions | None = None,
    ) -> Normalized:
        """An identifier as the graph stores it: normalised by its type's kind and, for a type
        scoped per business unit, prefixed with the unit's code (``appliances:79723943``).
        ``app`` is the WeChat app an openid belongs to; ``options`` overrides the rules' own
        (a sender's region). A refusal says why in ``reason``."""
        rule = self.types.get(kind)
        if rule is None:
            return Normalized(kind, None, "unknown_type", f"{kind!r} is no identifier type here")
        found = normalize(kind, raw, scope=app, options=options or self.options, kind=rule.kind)
        if rule.scope != "business_unit" or not found.ok:
            return found
        if not unit:
            return Normalized(kind, None, "no_business_unit", f"{kind} is kept per business unit")
        return dataclasses.replace(found, value=f"{unit}:{found.value}")

    def blocked_reason(self, kind: str, value: str) -> str | None:
        """Why a stored value is nobody's, or ``None``."""
        rule = self.types.get(kind)
        if rule is not None and rule.scope == "business_unit":
            value = value.partition(":")[2]  # the list names values, whichever unit saw them
        if (kind, value) in self.blocked:
            return "blocked value"
        for pattern in self.blocked_patterns.get(kind, ()):
            if pattern.search(value):
                return f"blocked pattern {pattern.pattern}"
        return None

    def golden_rule(self, name: str) -> FieldRule:
        return self.golden_fields.get(name, self.golden_default)


def parse(document: object) -> Rules:
    """A rules document (parsed YAML or JSON) → ``Rules``, or ``ValidationFailed`` naming the
    path of each bad key."""
    try:
        doc = RulesDoc.model_validate(document)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, "the identity rules are not valid") from None
    errors = [
        FieldError(("aliases", alias), f"names unknown type {target!r}")
        for alias, target in doc.aliases.items()
        if target not in doc.types
    ]
    if errors:
        raise ValidationFailed("the identity rules are not valid", errors)
    return _build(doc)


def _build(doc: RulesDoc) -> Rules:
    options = NormalizeOptions(**doc.normalize.model_dump())
    types = {
        code: TypeRule(code, t.kind, t.limit, t.priority, t.links, t.scope)
        for code, t in doc.types.items()
    }
    blocked: set[tuple[str, str]] = set()
    for kind, values in doc.blocked.items():
        for value in values:
            found = normalize(
                kind, value, options=options, kind=types[kind].kind if kind in types else None
            )
            blocked.add((kind, found.value if found.ok and found.value else value))
    return Rules(
        types=types,
        aliases=dict(doc.aliases),
        blocked=frozenset(blocked),
        blocked_patterns={
            kind: tuple(re.compile(p) for p in items)
            for kind, items in doc.blocked_patterns.items()
        },
        options=options,
        golden_default=FieldRule(doc.golden.default),
        golden_fields={
            name: FieldRule(rule.rule, tuple(rule.sources))
            for name, rule in doc.golden.fields.items()
        },
        version=version_of(doc.model_dump(mode="json")),
    )


def version_of(document: object) -> str:
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def load_yaml(text: str) -> Rules:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(
            "the identity rules are not valid YAML", [FieldError((), str(exc))]
        ) from None
    return parse(document)


def default_document() -> dict[str, object]:
    return yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


DEFAULT_RULES = parse(default_document())
