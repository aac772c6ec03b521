"""Personal data in the service layer's answers, and sensitive data at rest (issue 7, part 3).

What is personal is the data dictionary's say: an entry classified ``pii`` or
``sensitive_pii`` covers the golden-record fields, identifier types and event properties its
lineage names (``Classes``). No domain hard-codes field names; each asks here.

``view(session, ctx)`` is the one helper every domain's read goes through before a
profile's values leave its service: without ``pii:read`` values come back masked; with it
they come back as stored, and the view remembers which fields it showed so the read is
audited once per call (``PiiView.audit``: action ``pii.read``, the fields and a row count,
never the values). Sensitive personal information (PIPL's category) is shown masked to
everyone: only its masked form and a keyed hash are stored (``Protector``, applied where
events enter the log).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.db import PII_HASH_KEY_OPTION
from oneloop.governance import audit
from oneloop.governance.dictionary_schemas import PERSONAL, SENSITIVE
from oneloop.governance.masking import mask, protect, shown_sensitive
from oneloop.governance.models import DictionaryEntryRow
from oneloop.governance.roles import PII_READ

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Personal:
    """A dictionary entry that says its values are personal."""

    key: str
    classification: str
    kind: str | None

    @property
    def is_sensitive(self) -> bool:
        return self.classification == SENSITIVE


@dataclass(frozen=True)
class Classes:
    """Which names are personal, by what they name: golden-record fields and traits,
    identifier types, and event properties (of one event, or of any: event ``None``)."""

    traits: Mapping[str, Personal]
    identifiers: Mapping[str, Personal]
    properties: Mapping[tuple[str | None, str], Personal]

    def trait(self, name: str) -> Personal | None:
        """A golden-record field; ``address.city`` is personal when ``address`` is."""
        found = self.traits.get(name)
        if found is None and "." in name:
            return self.traits.get(name.partition(".")[0])
        return found

    def identifier(self, kind: str) -> Personal | None:
        return self.identifiers.get(kind)

    def property(self, event: str | None, path: str) -> Personal | None:
        """An event property by its dotted path (list positions left out)."""
        return self.properties.get((event, path)) or self.properties.get((None, path))


def classes(session: Session) -> Classes:
    """The personal entries in force, indexed by what their lineage names. An entry's own key
    is a trait name and an identifier type too (``phone`` is both)."""
    rows = session.execute(
        select(
            DictionaryEntryRow.key,
            DictionaryEntryRow.classification,
            DictionaryEntryRow.pii_kind,
            DictionaryEntryRow.lineage,
        ).where(
            DictionaryEntryRow.kind == "field",
            DictionaryEntryRow.classification.in_(PERSONAL),
        )
    )
    traits: dict[str, Personal] = {}
    identifiers: dict[str, Personal] = {}
    properties: dict[tuple[str | None, str], Personal] = {}
    for key, classification, kind, lineage in rows:
        personal = Personal(key, classification, kind)
        traits.setdefault(key, personal)
        identifiers.setdefault(key, personal)
        for item in lineage or []:
            name = item.get("name")
            if not isinstance(name, str):
                continue
            match item.get("kind"):
                case "trait":
                    traits[name] = personal
                case "identifier":
                    identifiers[name] = personal
                case "property":
                    properties[(item.get("event"), name)] = personal
    return Classes(traits, identifiers, properties)


@dataclass
class PiiView:
    """A caller's view of personal values for one call: masked without ``pii:read``; shown
    with it, remembering which fields were shown. Sensitive values: masked for everyone."""

    ctx: Context
    classes: Classes
    shown: set[str] = field(default_factory=set)

    @property
    def reveals(self) -> bool:
        return self.ctx.can(PII_READ)

    def value(self, personal: Personal | None, value: Any) -> Any:  # Any: a JSON value
        if personal is None or value is None:
            return value
        if personal.is_sensitive:
            return shown_sensitive(personal.kind, value)
        if self.reveals:
            self.shown.add(personal.key)
            return value
        return mask(personal.kind, value)

    def will_show_traits(self, names: Iterable[str]) -> None:
        """Note the golden-record fields a streamed answer will show after the call has
        audited its read (an export is read as the caller iterates)."""
        if self.reveals:
            for name in names:
                personal = self.classes.trait(name)
                if personal is not None and not personal.is_sensitive:
                    self.shown.add(personal.key)

    def trait(self, name: str, value: Any) -> Any:  # Any: a JSON value
        return self.value(self.classes.trait(name), value)

    def identifier(self, kind: str, value: Any) -> Any:  # Any: the stored identifier
        return self.value(self.classes.identifier(kind), value)

    def property(self, event: str | None, path: str, value: Any) -> Any:  # Any: a JSON value
        return self.value(self.classes.property(event, path), value)

    def properties(
        self, event: str | None, properties: Mapping[str, Any], prefix: str = ""
    ) -> dict[str, Any]:  # Any: JSON as the sender sent it
        """An event's properties with the personal ones masked, at any depth: a personal
        property is masked whole (an ``address`` object, leaf by leaf)."""
        return {k: self._walk(event, f"{prefix}{k}", v) for k, v in properties.items()}

    def _walk(self, event: str | None, path: str, value: Any) -> Any:  # Any: JSON
        personal = self.classes.property(event, path)
        if personal is not None:
            return self.value(personal, value)
        if isinstance(value, Mapping):
            return self.properties(event, value, f"{path}.")
        if isinstance(value, list):
            return [self._walk(event, path, v) for v in value]
        return value

    def audit(
        self,
        session: Session,
        object_type: str,
        object_id: str | None,
        *,
        rows: int | None = None,
        bu_id: str | None = None,
    ) -> None:
        """Record the call's unmasked read, once, if it showed any personal value: which
        fields (dictionary keys) and how many rows, never the values. Call it last."""
        if not self.shown:
            return
        detail: dict[str, audit.DetailValue] = {"fields": sorted(self.shown)}
        if rows is not None:
            detail["rows"] = rows
        audit.record(
            session, self.ctx, "pii.read", object_type, object_id, detail=detail, bu_id=bu_id
        )


def view(session: Session, ctx: Context) -> PiiView:
    """The helper a service calls before a profile's values leave it (see the module)."""
    return PiiView(ctx, classes(session))


# --- sensitive values at rest ----------------------------------------------------------------


def hash_key(session: Session) -> bytes | None:
    """``ONELOOP_PII_HASH_KEY``, as the engine was built with it (``create_db_engine``): the
    engine is the one thing every writer of the log (tracking API, importers, dead-letter
    replay, the demo, the consumers) reaches the database through, so none can forget it."""
    secret = session.get_bind().get_execution_options().get(PII_HASH_KEY_OPTION)
    if isinstance(secret, SecretStr) and secret.get_secret_value():
        return secret.get_secret_value().encode()
    _warn_unkeyed()
    return None


@cache
def _warn_unkeyed() -> None:
    log.warning(
        "pii.unkeyed",
        extra={
            "why": "ONELOOP_PII_HASH_KEY is unset: sensitive values are stored masked only, "
            "with no hash, so equal values from two sources are not recognised as equal"
        },
    )


@dataclass(frozen=True)
class Protector:
    """Replaces sensitive values by their protected form (masked, with a keyed hash)
    wherever they sit in a document: a trait, a property, a dead letter's raw call."""

    names: Mapping[str, str | None]  # a trait or property name → its masking kind
    key: bytes | None

    def document(self, value: Any) -> Any:  # Any: a JSON document
        """``value`` with every sensitive leaf protected; the same object when none is. Most
        events carry no sensitive name at all: a look for the names in the document's JSON
        (C speed) spares them the walk, which cost ingest some 13% (``oneloop bench ingest``)."""
        if not isinstance(value, Mapping | list) or not value:
            return value
        text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
        if not any(needle in text for needle in self._needles):
            return value
        return self._walk(value)

    @functools.cached_property
    def _needles(self) -> tuple[bytes, ...]:
        """Each name as it appears as a key in JSON: ``"id_card":``."""
        return tuple(orjson.dumps(name) + b":" for name in self.names)

    def _walk(self, value: Any) -> Any:  # Any: a JSON document
        if isinstance(value, Mapping):
            out: dict[str, Any] | None = None
            for k, v in value.items():
                if isinstance(k, str) and k in self.names and v is not None:
                    new = self._protect(self.names[k], v)
                else:
                    new = self._walk(v)
                if new is not v:
                    out = dict(value) if out is None else out
                    out[k] = new
            return value if out is None else out
        if isinstance(value, list):
            items = [self._walk(v) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        return value

    def _protect(self, kind: str | None, value: Any) -> Any:  # Any: JSON
        if isinstance(value, Mapping):
            return {k: self._protect(kind, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._protect(kind, v) for v in value]
        return protect(kind, value, self.key)


def protector(session: Session) -> Protector | None:
    """What protects this database's sensitive values, or None when no field is classified
    sensitive. One small indexed read: the log's writers call it once per batch."""
    rows = session.execute(
        select(
            DictionaryEntryRow.key, DictionaryEntryRow.pii_kind, DictionaryEntryRow.lineage
        ).where(DictionaryEntryRow.classification == SENSITIVE)
    ).all()
    if not rows:
        return None
    names: dict[str, str | None] = {}
    for key, kind, lineage in rows:
        for name in _names(key, lineage):
            names[name] = kind
    return Protector(names, hash_key(session))


def _names(key: str, lineage: Iterable[Mapping[str, Any]] | None) -> Iterable[str]:
    """The names a sensitive value travels under: the entry's key (its last part) and every
    trait and property its lineage names, whatever the event (over-protecting is safe)."""
    yield key.rpartition(".")[2]
    for item in lineage or []:
        name = item.get("name")
        if item.get("kind") in ("trait", "property") and isinstance(name, str):
            yield name.rpartition(".")[2]
