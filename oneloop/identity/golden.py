"""The golden record: per field, the value that survives across sources, with its lineage.

Values are read from the profile's own events (identify traits, and traits sent in
``context.traits``), so the record follows merges and unmerges with nothing to rebuild, and
every value can name the source, the event or record and the time it came from. All values
ever seen stay in the field's history: a conflict is shown, never thrown away. Which value
survives is the rules' choice per field (``golden`` in the identity rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.collect.models import EventRow, SourceRow
from oneloop.core.context import Context
from oneloop.core.db import in_tenancy
from oneloop.identity.models import EventProfileRow
from oneloop.identity.rules import FieldRule, Rules
from oneloop.identity.schemas import GoldenField, GoldenRecord, Observation

MAX_EVENTS = 5_000  # the newest trait-bearing events read per profile
MAX_VALUE = 1_000  # characters; longer values are not attributes of a person
SKIP = frozenset({"wechat_appid", "wechat_app_id", "appid", "app_id"})


@dataclass
class Seen:
    """One value of one field, aggregated over the events that carried it."""

    value: Any  # Any: a JSON scalar as sent
    source_id: str
    count: int
    first_at: datetime
    last_at: datetime
    message_id: str


def observations(traits: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Scalar trait values by field name; one level of nesting becomes ``address.city``."""
    for key, value in traits.items():
        name = f"{prefix}{key}"
        if key in SKIP:
            continue
        if isinstance(value, dict) and not prefix:
            yield from observations(value, prefix=f"{name}.")
        elif isinstance(value, bool | int | float) or (
            isinstance(value, str) and value.strip() and len(value) <= MAX_VALUE
        ):
            yield name, value.strip() if isinstance(value, str) else value


def golden_record(session: Session, ctx: Context, profile_id: str, rules: Rules) -> GoldenRecord:
    """``profile_id`` must be current and visible to ``ctx`` (see ``service.get_profile_id``);
    a business unit's user sees the values its own unit's events carried."""
    query = (
        select(
            EventRow.type,
            EventRow.traits,
            EventRow.context,
            EventRow.timestamp,
            EventRow.source_id,
            EventRow.message_id,
        )
        .join(EventProfileRow, EventProfileRow.seq == EventRow.seq)
        .where(EventProfileRow.profile_id == profile_id, EventProfileRow.has_traits.is_(True))
        .order_by(EventRow.seq.desc())
        .limit(MAX_EVENTS)
    )
    rows = session.execute(in_tenancy(query, EventProfileRow.bu_id, ctx)).all()
    seen: dict[str, dict[bytes, Seen]] = {}
    for kind, traits, context, at, source_id, message_id in rows:
        bags = [traits] if kind == "identify" else []
        bags.append((context or {}).get("traits"))
        for bag in bags:
            if not isinstance(bag, dict):
                continue
            for name, value in observations(bag):
                key = orjson.dumps(value) + b"\0" + source_id.encode()
                one = seen.setdefault(name, {}).get(key)
                if one is None:
                    seen[name][key] = Seen(value, source_id, 1, at, at, message_id)
                    continue
                one.count += 1
                if at < one.first_at:
                    one.first_at = at
                if at > one.last_at:
                    one.last_at, one.message_id = at, message_id
    names = _source_names(
        session, {s.source_id for values in seen.values() for s in values.values()}
    )
    fields = {
        name: _field(list(values.values()), rules.golden_rule(name), names)
        for name, values in sorted(seen.items())
    }
    return GoldenRecord(profile_id=profile_id, fields=fields, events_read=len(rows))


def _field(values: list[Seen], rule: FieldRule, names: Mapping[str, str]) -> GoldenField:
    winner = survivor(values, rule, names)
    history = sorted(values, key=lambda s: (s.last_at, s.count), reverse=True)
    return GoldenField(
        value=winner.value,
        rule=rule.rule,
        source_id=winner.source_id,
        source_name=names.get(winner.source_id, ""),
        message_id=winner.message_id,
        observed_at=winner.last_at,
        history=[
            Observation(
                value=s.value,
                count=s.count,
                first_at=s.first_at,
                last_at=s.last_at,
                source_id=s.source_id,
                source_name=names.get(s.source_id, ""),
                message_id=s.message_id,
            )
            for s in history
        ],
    )


def survivor(values: list[Seen], rule: FieldRule, names: Mapping[str, str]) -> Seen:
    """The surviving value under ``rule``; every rule breaks ties by the most recent."""
    if rule.rule == "first_seen":
        return min(values, key=lambda s: (s.first_at, s.source_id))
    if rule.rule == "most_frequent":
        totals: dict[bytes, int] = {}
        for s in values:
            key = orjson.dumps(s.value)
            totals[key] = totals.get(key, 0) + s.count
        return max(values, key=lambda s: (totals[orjson.dumps(s.value)], s.last_at))
    if rule.rule == "most_trusted":
        return min(
            values, key=lambda s: (_trust(names.get(s.source_id, ""), rule), -s.last_at.timestamp())
        )
    return max(values, key=lambda s: (s.last_at, s.count))


def _trust(source_name: str, rule: FieldRule) -> int:
    for rank, pattern in enumerate(rule.sources):
        if fnmatchcase(source_name, pattern):
            return rank
    return len(rule.sources)


def _source_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return dict(
        session.execute(select(SourceRow.id, SourceRow.name).where(SourceRow.id.in_(ids))).all()
    )
