"""Checking a batch against its source's tracking plan: the part of tracking plans on the
ingest path (management and the plan document are in collect/plans.py).

``check`` runs inside ``ingest`` only for sources with a plan; it costs one primary-key query
per batch (the plan's version, so a saved change applies from the next batch in every process)
and compiles validators once per (plan id, version) per process. An event breaks the plan when
its track ``properties`` or identify ``traits`` fail the plan's JSON Schema, or when it is a
track event the plan does not name (``unplanned``). Other calls (page, screen, group, alias)
are not checked. ``record_violations`` adds a batch's counts to the per-source counters in one
upsert, after the insert, so a retried duplicate is not counted twice.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaFailure
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from sqlalchemy import Table, case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from oneloop.collect.models import PlanViolationRow, TrackingPlanRow
from oneloop.collect.plan_schemas import JsonSchema, PlanMode
from oneloop.collect.schemas import Source
from oneloop.collect.spec import Invalid, Message
from oneloop.core.errors import FieldError

log = logging.getLogger(__name__)

PLANS: Table = TrackingPlanRow.__table__  # type: ignore[assignment]  # a mapped class's Table
VIOLATIONS: Table = PlanViolationRow.__table__  # type: ignore[assignment]
PLAN_VIOLATION = "plan_violation"
UNPLANNED = "unplanned"
CACHE_SIZE = 256
MAX_PATH = 300  # collect_plan_violation.path

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One way an event broke its plan: where (from the event's root), what, and the kind
    counted (a JSON Schema keyword such as ``type`` or ``required``, or ``unplanned``)."""

    loc: Loc
    msg: str
    kind: str

    @property
    def counter_path(self) -> str:
        """The path with array indices folded (``properties.products[].price``), so one bad
        field of a list counts once, whatever its index."""
        out = ""
        for part in self.loc:
            out += "[]" if isinstance(part, int) else (f".{part}" if out else part)
        return out


@dataclass(frozen=True)
class Flagged:
    message: Message
    problems: tuple[Problem, ...]
    is_blocked: bool


@dataclass
class PlanVerdict:
    """``kept`` go on to the log (with or without violations); ``blocked`` become dead letters
    with reason ``plan_violation``; ``flagged`` are all the events with problems, either way."""

    kept: list[Message]
    blocked: list[Invalid] = field(default_factory=list)
    flagged: list[Flagged] = field(default_factory=list)

    @property
    def violations(self) -> int:
        """Events kept although they broke the plan (allow mode)."""
        return sum(1 for f in self.flagged if not f.is_blocked)


@dataclass(frozen=True)
class CompiledPlan:
    mode: PlanMode
    unplanned: PlanMode
    events: Mapping[str, Validator | None]  # None: planned, any properties
    traits: Validator | None

    def judge(self, message: Message) -> tuple[Problem, ...]:
        if message.type == "track":
            event = message.event or ""
            if event not in self.events:
                return (Problem(("event",), f"{event!r} is not in the tracking plan", UNPLANNED),)
            validator = self.events[event]
            if validator is None:
                return ()
            return _problems(validator, message.properties or {}, ("properties",))
        if message.type == "identify" and self.traits is not None:
            return _problems(self.traits, message.traits or {}, ("traits",))
        return ()

    def blocks(self, problems: tuple[Problem, ...]) -> bool:
        if problems and problems[0].kind == UNPLANNED:
            return self.unplanned == "block"
        return bool(problems) and self.mode == "block"


def check(session: Session, source: Source, messages: Sequence[Message]) -> PlanVerdict:
    """Judge a batch against the source's plan. Reads the plan's version (one primary-key
    lookup); validators are compiled once per (plan, version) and cached for the process."""
    plan_id = source.tracking_plan_id
    plan = _load(session, source, plan_id) if plan_id is not None else None
    if plan is None:
        return PlanVerdict(kept=list(messages))
    verdict = PlanVerdict(kept=[])
    for message in messages:
        problems = plan.judge(message)
        if not problems:
            verdict.kept.append(message)
            continue
        blocked = plan.blocks(problems)
        verdict.flagged.append(Flagged(message, problems, blocked))
        if blocked:
            errors = tuple(FieldError(p.loc, p.msg) for p in problems)
            verdict.blocked.append(Invalid(PLAN_VIOLATION, errors, message.raw, message.message_id))
        else:
            verdict.kept.append(message)
    return verdict


def record_violations(
    session: Session,
    source: Source,
    verdict: PlanVerdict,
    *,
    accepted: Collection[str],
    at: datetime,
    include_blocked: bool = True,
) -> int:
    """Add the batch's violations to the source's counters, in one upsert; returns how many
    kept events broke the plan (the ledger's ``violations``).

    A kept event counts only if it was stored now (its id is in ``accepted``): a retried
    duplicate was counted the first time. Blocked events count unless ``include_blocked`` is
    false, which replay uses: those dead letters were counted when they first came. Each event
    counts once per (path, kind), so a list with three bad prices is one event, not three.
    """
    tally: dict[tuple[str, str, str], list[Any]] = {}
    kept = 0
    for flagged in verdict.flagged:
        if flagged.is_blocked and not include_blocked:
            continue
        if not flagged.is_blocked:
            if flagged.message.message_id not in accepted:
                continue
            kept += 1
        message = flagged.message
        event = (message.event or "") if message.type == "track" else ""
        for key in {(event, p.counter_path[:MAX_PATH], p.kind) for p in flagged.problems}:
            tally.setdefault(key, [0, message.message_id])[0] += 1
    if tally:
        rows = [
            {
                "source_id": source.id,
                "event": event,
                "path": path,
                "kind": kind,
                "bu_id": source.bu_id,
                "count": count,
                "first_seen_at": at,
                "last_seen_at": at,
                "example_message_id": example,
            }
            # Sorted, so concurrent batches lock the counter rows in one order (no deadlock).
            for (event, path, kind), (count, example) in sorted(tally.items())
        ]
        session.execute(_upsert(session), rows)
    return kept


def _upsert(session: Session) -> Any:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(VIOLATIONS)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["source_id", "event", "path", "kind"],
        set_={
            "count": VIOLATIONS.c.count + new.count,
            "last_seen_at": case(
                (new.last_seen_at > VIOLATIONS.c.last_seen_at, new.last_seen_at),
                else_=VIOLATIONS.c.last_seen_at,
            ),
            "example_message_id": new.example_message_id,
        },
    )


class _PlanCache:
    """Compiled plans by (id, version), least recently used out first. Shared by the request
    threads of a process; compiling twice in a race is harmless, so the lock guards only the
    dictionary."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[tuple[str, int], CompiledPlan] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: tuple[str, int]) -> CompiledPlan | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, int], plan: CompiledPlan) -> None:
        with self._lock:
            self._items[key] = plan
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_cache = _PlanCache(CACHE_SIZE)


def _load(session: Session, source: Source, plan_id: str) -> CompiledPlan | None:
    mine = (PLANS.c.id == plan_id, PLANS.c.bu_id == source.bu_id)
    version = session.scalar(select(PLANS.c.version).where(*mine))
    if version is None:
        # Only a delete racing an attach can get here (delete_plan refuses plans in use).
        log.warning("plan.missing", extra={"source_id": source.id, "plan_id": plan_id})
        return None
    cached = _cache.get((plan_id, version))
    if cached is not None:
        return cached
    row = session.execute(
        select(PLANS.c.version, PLANS.c.mode, PLANS.c.document).where(*mine)
    ).one()
    plan = compile_plan(row.mode, row.document)
    _cache.put((plan_id, row.version), plan)
    return plan


def compile_plan(mode: str, document: Mapping[str, Any]) -> CompiledPlan:
    """Validators for a stored plan document (checked when it was saved)."""
    events = {
        event: None if spec.get("properties") in ({}, True) else compile_schema(spec["properties"])
        for event, spec in document.get("events", {}).items()
    }
    traits = document.get("traits")
    return CompiledPlan(
        mode="block" if mode == "block" else "allow",
        unplanned="block" if document.get("unplanned") == "block" else "allow",
        events=events,
        traits=None if traits is None else compile_schema(traits),
    )


def compile_schema(schema: JsonSchema) -> Validator:
    # An empty registry: no remote $ref is ever fetched (jsonschema's default would).
    return Draft202012Validator(
        schema, registry=Registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _problems(validator: Validator, instance: object, prefix: Loc) -> tuple[Problem, ...]:
    found: dict[tuple[Loc, str], Problem] = {}
    try:
        failures = list(validator.iter_errors(instance))
    except Unresolvable:
        # check_schemas resolves every $ref on save; a $ref under a nested $id may still slip by.
        log.exception("plan.unresolvable_ref")
        return (Problem(prefix, "the plan's schema has a $ref that does not resolve", "$ref"),)
    for failure in failures:
        for problem in _explain(failure, prefix):
            found.setdefault((problem.loc, problem.kind), problem)
    return tuple(found.values())


def _explain(failure: SchemaFailure, prefix: Loc) -> Iterator[Problem]:
    """Our words for a schema failure, naming the property (not its parent) when one is
    missing or unplanned, and never echoing the value: event data is personal data."""
    loc: Loc = (*prefix, *failure.absolute_path)
    keyword = str(failure.validator) if failure.validator is not None else "false"
    value, instance = failure.validator_value, failure.instance
    if keyword == "required" and isinstance(instance, dict):
        for name in value:
            if name not in instance:
                yield Problem((*loc, name), "is required", keyword)
        return
    if keyword == "additionalProperties" and isinstance(instance, dict):
        schema = failure.schema if isinstance(failure.schema, dict) else {}
        planned = schema.get("properties", {})
        patterns = list(schema.get("patternProperties", {}))
        for name in instance:
            if name not in planned and not any(_matches(p, name) for p in patterns):
                yield Problem((*loc, name), "is not in the plan", keyword)
        return
    yield Problem(loc, _describe(keyword, value, instance), keyword)


def _matches(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None


TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _describe(keyword: str, value: Any, instance: object) -> str:  # value: the keyword's JSON
    match keyword:
        case "type":
            wanted = value if isinstance(value, list) else [value]
            names = " or ".join(TYPE_NAMES.get(t, t) for t in wanted)
            return f"must be {names}; got {json_kind(instance)}"
        case "enum":
            shown = ", ".join(_show(v) for v in value[:10]) + (", …" if len(value) > 10 else "")
            return f"must be one of {shown}"
        case "const":
            return f"must be {_show(value)}"
        case "format":
            return f"must be a valid {value}"
        case "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf":
            words = {
                "minimum": "at least",
                "maximum": "at most",
                "exclusiveMinimum": "greater than",
                "exclusiveMaximum": "less than",
                "multipleOf": "a multiple of",
            }
            return f"must be {words[keyword]} {value}"
        case "minLength" | "maxLength":
            return (
                f"must be {'at least' if keyword == 'minLength' else 'at most'} {value} characters"
            )
        case "minItems" | "maxItems":
            return f"must have {'at least' if keyword == 'minItems' else 'at most'} {value} items"
        case "pattern":
            return f"must match the pattern {value}"
        case "anyOf":
            return "matches none of the shapes the plan allows"
        case "oneOf":
            return "must match exactly one of the shapes the plan allows"
        case "false" | "not":
            return "is not allowed by the plan"
        case _:
            return f"does not satisfy {keyword}: {_show(value)}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def schema_refs(node: object, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every ``$ref`` and ``$dynamicRef`` in a schema, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield (*loc, key), value
            else:
                yield from schema_refs(value, (*loc, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schema_refs(value, (*loc, index))
