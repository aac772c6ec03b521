"""How right resolution is, against a ground truth of which person each record belongs to.

The demo ships ``truth/identities.csv``: per source record (an event's messageId, a CRM
contact, an order, a ticket) the identifiers it carried and the person behind it. A record's
predicted profile is its event's profile (events) or its strongest identifier's (file
records); scores are pairwise over records, the field's convention: precision is the share of
record pairs we put together that are one person, recall the share of one person's pairs we
put together.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from oneloop.collect.models import EventRow
from oneloop.identity.models import EventProfileRow, IdentifierRow
from oneloop.identity.normalize import normalize
from oneloop.identity.rules import Rules

CHUNK = 400
# File records carry no messageId in the truth; the demo mappings give each an anonymous id.
RECORD_ANONYMOUS_ID = {"pos/orders.csv": "order:", "service/tickets.csv": "ticket:"}
TRUTH_TYPES = {"ticket_no": ("anonymous_id", "ticket:")}


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    records: int
    persons: int
    profiles: int
    unresolved: int


def pairwise(predicted: dict[str, str], truth: dict[str, str]) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of a clustering (record → cluster) against the truth,
    by counting pairs per cluster instead of listing them."""

    def pairs(sizes: Iterable[int]) -> int:
        return sum(n * (n - 1) // 2 for n in sizes)

    both = pairs(Counter((predicted[r], truth[r]) for r in truth).values())
    predicted_pairs = pairs(Counter(predicted[r] for r in truth).values())
    true_pairs = pairs(Counter(truth.values()).values())
    precision = both / predicted_pairs if predicted_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(session: Session, truth_path: Path, rules: Rules) -> Scores:
    records: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    person: dict[str, str] = {}
    for row in _read(truth_path):
        key = (row["source"], row["record_key"])
        records[key].append((row["identifier_type"], row["identifier_value"]))
        person["\t".join(key)] = row["person_id"]
    predicted: dict[str, str] = {}
    by_event = _event_profiles(session, [k for k in records if k[0].startswith("events/")])
    file_keys = {k: _keys(k, ids, rules) for k, ids in records.items() if k not in by_event}
    found = _identifier_profiles(session, {key for keys in file_keys.values() for key in keys})
    unresolved = 0
    for key in records:
        name = "\t".join(key)
        profile = by_event.get(key)
        if profile is None:
            ranked = [found[k] for k in file_keys.get(key, []) if k in found]
            profile = ranked[0] if ranked else None
        if profile is None:
            unresolved += 1
            profile = f"unresolved:{name}"
        predicted[name] = profile
    precision, recall, f1 = pairwise(predicted, person)
    return Scores(
        precision=precision,
        recall=recall,
        f1=f1,
        records=len(person),
        persons=len(set(person.values())),
        profiles=len(set(predicted.values())),
        unresolved=unresolved,
    )


def _read(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _keys(
    record: tuple[str, str], identifiers: list[tuple[str, str]], rules: Rules
) -> list[tuple[str, str]]:
    """A file record's identifiers, normalised, strongest first."""
    found: list[tuple[str, str]] = []
    prefix = RECORD_ANONYMOUS_ID.get(record[0])
    raw = [*identifiers, *([("anonymous_id", prefix + record[1])] if prefix else [])]
    for kind, value in raw:
        if kind in TRUTH_TYPES:
            kind, lead = TRUTH_TYPES[kind]
            value = lead + value
        rule = rules.types.get(kind)
        if rule is None or not rule.links:
            continue
        normal = normalize(kind, value, options=rules.options, kind=rule.kind)
        if normal.ok and normal.value:
            found.append((kind, normal.value))
    return sorted(found, key=lambda k: rules.priority(k[0]))


def _event_profiles(session: Session, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    by_message = {message_id: key for key in keys for message_id in [key[1]]}
    found: dict[tuple[str, str], str] = {}
    ids = list(by_message)
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(EventRow.message_id, EventProfileRow.profile_id)
            .join(EventProfileRow, EventProfileRow.seq == EventRow.seq)
            .where(EventRow.message_id.in_(ids[start : start + CHUNK]))
        )
        for message_id, profile_id in rows:
            if profile_id:
                found[by_message[message_id]] = profile_id
    return found


def _identifier_profiles(
    session: Session, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Profiles of identifiers that link (a shared one is nobody's in particular)."""
    found: dict[tuple[str, str], str] = {}
    wanted = list(keys)
    for start in range(0, len(wanted), CHUNK):
        rows = session.execute(
            select(IdentifierRow.type, IdentifierRow.value, IdentifierRow.profile_id).where(
                tuple_(IdentifierRow.type, IdentifierRow.value).in_(wanted[start : start + CHUNK]),
                IdentifierRow.shared_reason.is_(None),
            )
        )
        for kind, value, profile_id in rows:
            found[(kind, value)] = profile_id
    return found
