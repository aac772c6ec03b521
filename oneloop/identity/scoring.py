"""How right resolution is, against a ground truth of which person each record belongs to.

The demo ships ``truth/identities.csv``: per source record (an event's messageId, a CRM
contact, an order, a ticket) the identifiers it carried and the person behind it. A record's
predicted profile is its event's profile (events) or its strongest identifier's (file
records); scores are pairwise over records, the field's convention: precision is the share of
record pairs we put together that are one person, recall the share of one person's pairs we
put together.

Scored over every record, the truth asks for the impossible: a record with no identifier in
common with any other record of its person (one anonymous visit from a fresh cookie, an openid
never seen with anything else) cannot be placed by any resolver. ``planted_groups`` derives
from the data and the truth alone, not from any resolver, which of one person's records the
evidence can join: two records are joined when they carry the same normalised identifier,
unless that identifier is also carried by a record of another person (a switchboard, a family
computer: evidence of nothing). ``reachable`` scores against those groups.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
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


Key = tuple[str, str]  # a normalised identifier: (type, value)


def _pairs(sizes: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


class Components:
    """Connected components of identifiers (union-find with path compression)."""

    def __init__(self) -> None:
        self.parent: dict[Key, Key] = {}

    def find(self, key: Key) -> Key:
        parent = self.parent
        root = key
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[key] != root:
            parent[key], key = root, parent[key]
        return root

    def join(self, keys: Sequence[Key]) -> None:
        """Put ``keys`` (at least one) in one component."""
        root = self.find(keys[0])
        for key in keys[1:]:
            other = self.find(key)
            if other != root:
                self.parent[other] = root


def pairwise(predicted: dict[str, str], truth: dict[str, str]) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of a clustering (record → cluster) against the truth,
    by counting pairs per cluster instead of listing them."""
    both = _pairs(Counter((predicted[r], truth[r]) for r in truth).values())
    predicted_pairs = _pairs(Counter(predicted[r] for r in truth).values())
    true_pairs = _pairs(Counter(truth.values()).values())
    precision = both / predicted_pairs if predicted_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    return precision, recall, _f1(precision, recall)


@dataclass(frozen=True)
class Reachable:
    """Scores against the planted groups (``planted_groups``): recall over the pairs of one
    group, precision over every predicted pair among records of a group of two or more."""

    precision: float
    recall: float
    f1: float
    records: int  # records in a planted group of two or more: the ones scored
    groups: int  # such groups
    pairs: int  # reachable true pairs


def planted_groups(
    person: Mapping[str, str],
    keys: Mapping[str, Collection[Key]],
    evidence: Iterable[Collection[Key]] = (),
) -> dict[str, str]:
    """Each record's planted identity group: the connected component of its person's records,
    two records joined when they carry the same normalised identifier (``keys``, as the
    resolver's ``extract`` reads them).

    An identifier carried by the records of more than one person is evidence of nothing and
    joins no one. ``evidence`` are the identifiers of the data's other records, whose person
    the truth does not name (the truth lists an event only where an identifier first shows):
    such a record joins the identifiers it carries when the truth gives each to one and the
    same person, and is ignored otherwise; an identifier the truth gives to nobody joins
    nothing. A group never spans two persons. A record no evidence joins to another is a
    group of its own, ``"alone\t<record>"``; the others are ``"<person>\t<identifier>"``."""
    owner: dict[Key, str | None] = {}  # None: carried by records of several persons
    for record, who in person.items():
        for key in keys.get(record, ()):
            owner[key] = who if owner.get(key, who) == who else None
    components = Components()

    def join(carried: Iterable[Key]) -> None:
        own = [k for k in carried if owner.get(k) is not None]
        if len({owner[k] for k in own}) == 1:  # else nobody's, or against the truth
            components.join(own)

    for record in person:
        join(keys.get(record, ()))
    for carried in evidence:
        join(carried)
    groups: dict[str, str] = {}
    for record in person:
        own = [k for k in keys.get(record, ()) if owner.get(k) is not None]
        if own:
            root = components.find(own[0])
            groups[record] = f"{person[record]}\t{root[0]}:{root[1]}"
        else:
            groups[record] = f"alone\t{record}"
    sizes = Counter(groups.values())
    return {r: g if sizes[g] > 1 else f"alone\t{r}" for r, g in groups.items()}


def reachable(
    predicted: Mapping[str, str], person: Mapping[str, str], groups: Mapping[str, str]
) -> Reachable:
    """Pairwise scores against the planted groups: recall is the share of pairs within one
    group that ``predicted`` puts in one cluster; precision the share of pairs ``predicted``
    puts together, among records of groups of two or more, that are one person (two records
    of one person in different groups count as right). Records alone in their group, which no
    evidence links to anyone, are left out of both."""
    sizes = Counter(groups[r] for r in person)
    scored = [r for r in person if sizes[groups[r]] > 1]
    true_pairs = _pairs(n for n in sizes.values() if n > 1)
    found = _pairs(Counter((predicted[r], groups[r]) for r in scored).values())
    predicted_pairs = _pairs(Counter(predicted[r] for r in scored).values())
    right = _pairs(Counter((predicted[r], person[r]) for r in scored).values())
    precision = right / predicted_pairs if predicted_pairs else 1.0
    recall = found / true_pairs if true_pairs else 1.0
    return Reachable(
        precision=precision,
        recall=recall,
        f1=_f1(precision, recall),
        records=len(scored),
        groups=sum(1 for n in sizes.values() if n > 1),
        pairs=true_pairs,
    )


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
