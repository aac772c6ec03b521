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
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from oneloop.collect.models import EventRow
from oneloop.core.db import in_chunks
from oneloop.identity.models import EventProfileRow, IdentifierRow
from oneloop.identity.rules import Rules

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


@dataclass
class Truth:
    """The ground truth: each record's identifiers (as written) and person."""

    identifiers: dict[str, list[tuple[str, str]]]
    person: dict[str, str]
    source: dict[str, str]


def read_truth(path: Path) -> Truth:
    truth = Truth({}, {}, {})
    for row in _read(path):
        name = f"{row['source']}\t{row['record_key']}"
        truth.identifiers.setdefault(name, []).append(
            (row["identifier_type"], row["identifier_value"])
        )
        truth.person[name] = row["person_id"]
        truth.source[name] = row["source"]
    return truth


def predict(
    truth: Truth,
    by_message: dict[str, str],
    by_identifier: dict[tuple[str, str], str],
    rules: Rules,
) -> dict[str, str]:
    """Each record's cluster: its event's (events, by messageId), else its strongest
    identifier's; a record with neither is a cluster of its own."""
    predicted: dict[str, str] = {}
    for name, identifiers in truth.identifiers.items():
        source, key = name.split("\t", 1)
        cluster = by_message.get(key) if source.startswith("events/") else None
        if cluster is None:
            found = [by_identifier.get(k) for k in record_keys(source, key, identifiers, rules)]
            cluster = next((c for c in found if c), None)
        predicted[name] = cluster or f"unresolved:{name}"
    return predicted


def resolved(session: Session, truth: Truth, rules: Rules) -> dict[str, str]:
    """Each record's profile, as our resolver stored it."""
    messages = [n.split("\t", 1)[1] for n in truth.identifiers if n.startswith("events/")]
    keys = {
        k
        for name, ids in truth.identifiers.items()
        for k in record_keys(*name.split("\t", 1), ids, rules)
    }
    by_identifier = _identifier_profiles(session, keys)
    return predict(truth, _event_profiles(session, messages), by_identifier, rules)


def scores(predicted: dict[str, str], person: dict[str, str]) -> Scores:
    """Pairwise scores over the records of ``person`` (a subset of the truth may be given)."""
    precision, recall, f1 = pairwise(predicted, person)
    return Scores(
        precision=precision,
        recall=recall,
        f1=f1,
        records=len(person),
        persons=len(set(person.values())),
        profiles=len({predicted[r] for r in person}),
        unresolved=sum(1 for r in person if predicted[r].startswith("unresolved:")),
    )


def _read(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def record_keys(
    source: str, key: str, identifiers: list[tuple[str, str]], rules: Rules
) -> list[tuple[str, str]]:
    """A record's identifiers, normalised as the resolver reads them, strongest first."""
    found: list[tuple[str, str]] = []
    unit = source.removeprefix("events/").removesuffix(".jsonl")  # event files: by their unit
    prefix = RECORD_ANONYMOUS_ID.get(source)
    raw = [*identifiers, *([("anonymous_id", prefix + key)] if prefix else [])]
    for kind, value in raw:
        if kind in TRUTH_TYPES:
            kind, lead = TRUTH_TYPES[kind]
            value = lead + value
        rule = rules.types.get(kind)
        if rule is None or not rule.links:
            continue
        normal = rules.read(kind, value, unit=unit)
        if normal.ok and normal.value:
            found.append((kind, normal.value))
    return sorted(found, key=lambda k: rules.priority(k[0]))


def _event_profiles(session: Session, message_ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    ids = list(set(message_ids))
    for part in in_chunks(ids):
        rows = session.execute(
            select(EventRow.message_id, EventProfileRow.profile_id)
            .join(EventProfileRow, EventProfileRow.seq == EventRow.seq)
            .where(EventRow.message_id.in_(part))
        )
        for message_id, profile_id in rows:
            if profile_id:
                found[message_id] = profile_id
    return found


def _identifier_profiles(
    session: Session, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Profiles of identifiers that link (a shared one is nobody's in particular)."""
    found: dict[tuple[str, str], str] = {}
    wanted = list(keys)
    for part in in_chunks(wanted):
        rows = session.execute(
            select(IdentifierRow.type, IdentifierRow.value, IdentifierRow.profile_id).where(
                tuple_(IdentifierRow.type, IdentifierRow.value).in_(part),
                IdentifierRow.shared_reason.is_(None),
            )
        )
        for kind, value, profile_id in rows:
            found[(kind, value)] = profile_id
    return found
