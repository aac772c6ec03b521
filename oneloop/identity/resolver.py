"""Resolution: the log consumer that turns events' identifiers into profiles.

For a batch of events it normalises the identifiers, adds the nodes and edges that are new,
and re-partitions only the part of the graph they touch (the profiles of the touched nodes,
and every profile reachable from them over edges, refused ones included, since a new edge can
change which of two competing merges wins). Most events carry identifiers and pairs already
known and cost one lookup each. The partition itself is ``graph.partition``; this module loads
the neighbourhood, stores the result, explains each change (``identity_merge``) and moves the
events whose profile changed.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from oneloop.collect.consumers import register
from oneloop.collect.erasure import scrub_events
from oneloop.collect.log import LoggedEvent
from oneloop.core.clock import SystemClock
from oneloop.core.context import system_context
from oneloop.core.db import in_chunks
from oneloop.core.ids import new_id
from oneloop.governance import audit, suppression
from oneloop.governance import service as governance
from oneloop.governance.scrub import PiiValues
from oneloop.identity import graph
from oneloop.identity.models import (
    ChangeRow,
    EdgeRow,
    EventProfileRow,
    IdentifierRow,
    MergeRow,
    PinRow,
    ProfileRow,
    RejectionRow,
)
from oneloop.identity.normalize import BUILTIN_KINDS, Normalized, NormalizeOptions
from oneloop.identity.rules import Rules

log = logging.getLogger(__name__)

MAX_PER_EVENT = 12  # identifiers per event taken into the graph; more is a sender's bug
RESOLVER = "identity.resolve"  # the consumer's name: its cursor row is the graph's write lock
APP_ID_KEYS = ("wechat_appid", "wechat_app_id", "appid", "app_id")


@dataclass(frozen=True, slots=True)
class Key:
    type: str
    value: str


@dataclass
class Extracted:
    """What an event says about its person, after normalisation."""

    keys: list[Key]
    rejected: list[tuple[Normalized, str]]  # and the raw value, as an example to fix
    has_traits: bool


def extract(event: LoggedEvent, rules: Rules, units: Mapping[str, str]) -> Extracted:
    """``units`` maps business unit ids to codes, for types scoped per unit."""
    app = _app_id(event)
    keys: list[Key] = []
    rejected: list[tuple[Normalized, str]] = []
    for raw_type, raw_value in [*event.identifiers, *_custom_identifiers(event, rules)]:
        kind = rules.type_of(raw_type)
        rule = rules.types.get(kind)
        if rule is None or not rule.links:
            continue
        unit = units.get(event.bu_id, event.bu_id)
        region = _region(event, rules) if rule.kind == "phone" else None
        found = None
        if region is not None and _national(raw_value):
            # A Munich customer types her number as Germans do, trunk 0 first: read it in her
            # region before China's, where 0157 4189 4279 would also pass as +86 157….
            local = rules.read(kind, raw_value, unit=unit, options=region)
            found = local if local.ok else None
        if found is None:
            found = rules.read(kind, raw_value, unit=unit, app=app)
        if found.reason == "phone_invalid" and region is not None:
            # written some other way, and no number in China: perhaps one in her region
            again = rules.read(kind, raw_value, unit=unit, options=region)
            found = again if again.ok else found
        if not found.ok or found.value is None:
            rejected.append((found, str(raw_value)))
            continue
        if rules.blocked_reason(kind, found.value) is not None:
            continue
        key = Key(kind, found.value)
        if key not in keys and len(keys) < MAX_PER_EVENT:
            keys.append(key)
    has_traits = bool(event.traits) or bool((event.context or {}).get("traits"))
    return Extracted(keys, rejected, has_traits)


def _custom_identifiers(event: LoggedEvent, rules: Rules) -> list[tuple[str, str]]:
    """A group's own identifier types (a loyalty card, a dealer code) arrive as traits named
    after the type: the tracking spec only knows the common ones."""
    custom = [code for code in rules.types if code not in BUILTIN_KINDS]
    if not custom:
        return []
    found: list[tuple[str, str]] = []
    for bag in (event.traits, (event.context or {}).get("traits")):
        if isinstance(bag, dict):
            for code in custom:
                value = bag.get(code)
                if isinstance(value, str | int) and not isinstance(value, bool):
                    found.append((code, str(value)))
    return found


def _national(raw: object) -> bool:
    """Written as a national number with a trunk prefix (0…), not an international one (+…,
    00…): the sender's own country's way of writing it."""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        return False
    digits = _NOT_DIAL.sub("", unicodedata.normalize("NFKC", str(raw)))
    return digits.startswith("0") and not digits.startswith("00")


_NOT_DIAL = re.compile(r"[^0-9+]")


def _region(event: LoggedEvent, rules: Rules) -> NormalizeOptions | None:
    """The options to read a phone in the sender's own region (``context.locale`` de-DE →
    DE), when that is not the group's default."""
    locale = (event.context or {}).get("locale")
    if not isinstance(locale, str):
        return None
    region = locale.replace("_", "-").rpartition("-")[2].upper()
    if len(region) != 2 or not region.isalpha() or region == rules.options.default_region:
        return None
    return _options_for(rules.options, region)


@functools.lru_cache(maxsize=64)
def _options_for(options: NormalizeOptions, region: str) -> NormalizeOptions:
    return dataclasses.replace(options, default_region=region)


def _app_id(event: LoggedEvent) -> str | None:
    """The WeChat app an openid belongs to, wherever the sender put it."""
    context = event.context or {}
    for bag in (event.traits, context.get("traits"), event.properties, context.get("wechat")):
        if isinstance(bag, dict):
            for key in APP_ID_KEYS:
                value = bag.get(key)
                if isinstance(value, str) and value:
                    return value
    return None


@dataclass
class Changes:
    """What one resolution step did, for tests and progress."""

    events: int = 0
    new_identifiers: int = 0
    new_edges: int = 0
    merges: int = 0
    splits: int = 0
    new_profiles: int = 0
    rejected: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # source, type, why


class WorkingSet:
    """The rows of the graph one step reads and changes, loaded in bulk and written once."""

    def __init__(self, session: Session, rules: Rules, now: datetime, actor: str) -> None:
        self.session = session
        self.rules = rules
        self.now = now
        self.actor = actor
        self.by_key: dict[Key, IdentifierRow] = {}
        self.by_id: dict[str, IdentifierRow] = {}
        self.edges: dict[tuple[str, str], EdgeRow] = {}
        self.adjacent: dict[str, list[EdgeRow]] = defaultdict(list)
        self.edges_loaded_for: set[str] = set()
        self.changes = Changes()
        self._rejected_example: dict[tuple[str, str, str], tuple[str, str, datetime]] = {}

    # --- loading -----------------------------------------------------------------------

    def load_keys(self, keys: Iterable[Key]) -> None:
        wanted = [k for k in set(keys) if k not in self.by_key]
        for part in in_chunks(wanted):
            rows = self.session.scalars(
                select(IdentifierRow).where(
                    tuple_(IdentifierRow.type, IdentifierRow.value).in_(
                        [(k.type, k.value) for k in part]
                    )
                )
            )
            for row in rows:
                self._keep(row)

    def load_profiles(self, profile_ids: Iterable[str]) -> list[IdentifierRow]:
        found: list[IdentifierRow] = []
        for part in in_chunks(list(set(profile_ids))):
            for row in self.session.scalars(
                select(IdentifierRow).where(IdentifierRow.profile_id.in_(part))
            ):
                found.append(self._keep(row))
        return found

    def load_ids(self, ids: Iterable[str]) -> None:
        wanted = [i for i in set(ids) if i not in self.by_id]
        for part in in_chunks(wanted):
            for row in self.session.scalars(
                select(IdentifierRow).where(IdentifierRow.id.in_(part))
            ):
                self._keep(row)

    def load_edges_of(self, ids: Iterable[str]) -> None:
        wanted = [i for i in set(ids) if i not in self.edges_loaded_for]
        for row in edges_of(self.session, wanted):
            self._keep_edge(row)
        self.edges_loaded_for.update(wanted)

    def load_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        wanted = [p for p in set(pairs) if p not in self.edges]
        for part in in_chunks(wanted):
            for row in self.session.scalars(
                select(EdgeRow).where(tuple_(EdgeRow.a_id, EdgeRow.b_id).in_(part))
            ):
                self._keep_edge(row)

    def _keep_edge(self, row: EdgeRow) -> None:
        if (row.a_id, row.b_id) not in self.edges:
            self.edges[(row.a_id, row.b_id)] = row
            self.adjacent[row.a_id].append(row)
            self.adjacent[row.b_id].append(row)

    def _keep(self, row: IdentifierRow) -> IdentifierRow:
        kept = self.by_id.setdefault(row.id, row)
        self.by_key[Key(kept.type, kept.value)] = kept
        return kept

    # --- adding evidence -----------------------------------------------------------------

    def identifier(self, key: Key, event: LoggedEvent) -> IdentifierRow:
        row = self.by_key.get(key)
        if row is None:
            row = IdentifierRow(
                id=new_id(),
                type=key.type,
                value=key.value,
                profile_id="",  # assigned by the partition
                degree={},
                shared_reason=None,
                first_seen_at=event.timestamp,
                last_seen_at=event.timestamp,
                first_bu_id=event.bu_id,
                first_source_id=event.source_id,
                first_message_id=event.message_id,
            )
            self.session.add(row)
            self._keep(row)
            self.changes.new_identifiers += 1
        else:
            if event.timestamp > row.last_seen_at:
                row.last_seen_at = event.timestamp
            if event.timestamp < row.first_seen_at:
                row.first_seen_at = event.timestamp
        return row

    def evidence(self, a: IdentifierRow, b: IdentifierRow, event: LoggedEvent) -> bool:
        """Record that ``event`` carried both; True when that may change the partition."""
        pair = (a.id, b.id) if a.id < b.id else (b.id, a.id)
        row = self.edges.get(pair)
        if row is None:
            row = EdgeRow(
                id=new_id(),
                a_id=pair[0],
                b_id=pair[1],
                kind="event",
                match_weight=None,
                status="new",
                reason=None,
                first_at=event.timestamp,
                first_bu_id=event.bu_id,
                first_source_id=event.source_id,
                first_message_id=event.message_id,
                first_seq=event.seq,
                seen_count=1,
                updated_at=self.now,
            )
            self._add_edge(row, a, b)
            self.changes.new_edges += 1
            return True
        row.seen_count += 1
        if event.timestamp < row.first_at:  # older evidence arrived late: it ranks higher now
            row.first_at = event.timestamp
            row.first_bu_id, row.first_source_id = event.bu_id, event.source_id
            row.first_message_id, row.first_seq = event.message_id, event.seq
            return row.status != "cut"
        return False

    def reject(self, event: LoggedEvent, found: Normalized, raw: str) -> None:
        key = (event.source_id, found.type, found.reason or "invalid")
        self.changes.rejected[key] += 1
        self._rejected_example[key] = (event.bu_id, raw[:200], event.timestamp)

    def store_rejections(self) -> None:
        """Count what did not normalise per source, type and reason, with the latest example."""
        if not self.changes.rejected:
            return
        keys = list(self.changes.rejected)
        stored = {
            (r.source_id, r.type, r.reason): r
            for r in self.session.scalars(
                select(RejectionRow).where(
                    tuple_(RejectionRow.source_id, RejectionRow.type, RejectionRow.reason).in_(keys)
                )
            )
        }
        for key, count in self.changes.rejected.items():
            bu_id, example, at = self._rejected_example[key]
            row = stored.get(key)
            if row is None:
                self.session.add(
                    RejectionRow(
                        source_id=key[0],
                        type=key[1],
                        reason=key[2],
                        bu_id=bu_id,
                        count=count,
                        example=example,
                        last_seen_at=at,
                    )
                )
            else:
                row.count += count
                row.example = example
                row.last_seen_at = max(row.last_seen_at, at)

    def cut(self, edge: EdgeRow, reason: str) -> None:
        """Never use this edge again; it no longer counts towards either end's degree."""
        if edge.status == "cut":
            return
        a, b = self.by_id[edge.a_id], self.by_id[edge.b_id]
        _bump(a, self.rules.count_key(b.type, b.value), -1)
        _bump(b, self.rules.count_key(a.type, a.value), -1)
        edge.status, edge.reason, edge.updated_at = "cut", reason[:300], self.now

    def infer(
        self,
        a: IdentifierRow,
        b: IdentifierRow,
        *,
        kind: str,
        weight: float | None,
        why: str,
        ref: str,
    ) -> EdgeRow:
        """Evidence no event carried: the matcher's (``match``) or a steward's (``steward``).
        Ranked after every event's evidence, so limits and pins still decide."""
        pair = (a.id, b.id) if a.id < b.id else (b.id, a.id)
        row = self.edges.get(pair)
        if row is not None:
            return row
        row = EdgeRow(
            id=new_id(self.now),
            a_id=pair[0],
            b_id=pair[1],
            kind=kind,
            match_weight=weight,
            status="new",
            reason=why[:300],
            first_at=self.now,
            first_bu_id="",
            first_source_id="",
            first_message_id=ref[:255],
            first_seq=0,
            seen_count=1,
            updated_at=self.now,
        )
        self._add_edge(row, a, b)
        return row

    def _add_edge(self, row: EdgeRow, a: IdentifierRow, b: IdentifierRow) -> None:
        """A new edge counts towards both ends' degree (what decides a shared identifier)."""
        self.session.add(row)
        self._keep_edge(row)
        _bump(a, self.rules.count_key(b.type, b.value), 1)
        _bump(b, self.rules.count_key(a.type, a.value), 1)

    # --- re-partitioning --------------------------------------------------------------------

    def closure(self, dirty: Iterable[str]) -> set[str]:
        """Every node whose profile the dirty nodes can affect."""
        nodes: set[str] = set()
        profiles: set[str] = set()
        frontier = set(dirty)
        while frontier:
            nodes |= frontier
            new_profiles = {
                self.by_id[n].profile_id
                for n in frontier
                if self.by_id[n].profile_id and self.by_id[n].profile_id not in profiles
            }
            profiles |= new_profiles
            members = {row.id for row in self.load_profiles(new_profiles)} - nodes
            nodes |= members
            expand = [n for n in frontier | members if not self._is_shared(self.by_id[n])]
            self.load_edges_of(expand)
            reach: set[str] = set()
            for node_id in expand:
                reach.update(self._neighbours(node_id))
            self.load_ids(reach)
            frontier = reach - nodes
        return nodes

    def _neighbours(self, node_id: str) -> Iterator[str]:
        for edge in self.adjacent.get(node_id, ()):
            if edge.status != "cut":
                yield edge.b_id if edge.a_id == node_id else edge.a_id

    def _is_shared(self, row: IdentifierRow) -> bool:
        node = graph.Node(row.id, row.type, row.value)
        return graph.shared_reason(node, row.degree, self.rules) is not None

    def repartition(
        self, dirty: Iterable[str], *, revive: dict[str, str] | None = None, rule: str | None = None
    ) -> set[str]:
        """Partition the neighbourhood of ``dirty`` again and store what changed; returns the
        profiles whose events must be re-anchored one by one (they were split)."""
        ids = self.closure(dirty)
        rows = {i: self.by_id[i] for i in ids}
        nodes = {i: graph.Node(i, r.type, r.value) for i, r in rows.items()}
        edges = [
            graph.Edge(e.id, e.a_id, e.b_id, e.first_at, is_cut=e.status == "cut", kind=e.kind)
            for e in self._edges_within(ids)
        ]
        result = graph.partition(
            nodes,
            edges,
            self.rules,
            pins=self._pins(ids),
            degree={i: r.degree for i, r in rows.items()},
        )
        self._store_edges(ids, result)
        for node_id, row in rows.items():
            row.shared_reason = result.shared.get(node_id)
        return self._assign(rows, result, revive or {}, rule)

    def _edges_within(self, ids: set[str]) -> list[EdgeRow]:
        return [e for i in ids for e in self.adjacent.get(i, ()) if e.a_id == i and e.b_id in ids]

    def _pins(self, ids: set[str]) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for part in in_chunks(list(ids)):
            rows = self.session.execute(
                select(PinRow.a_id, PinRow.b_id).where(
                    or_(PinRow.a_id.in_(part), PinRow.b_id.in_(part))
                )
            )
            found.extend((a, b) for a, b in rows if a in ids and b in ids)
        return found

    def _store_edges(self, ids: set[str], result: graph.Partition) -> None:
        for edge in self._edges_within(ids):
            if edge.status == "cut":
                continue
            if edge.id in result.accepted:
                status, reason = "linked", result.joins.get(edge.id)
                if edge.kind != "event":  # keep the matcher's or the steward's own words
                    reason = edge.reason
            elif edge.id in result.conflicts:
                reason = result.conflicts[edge.id]
                status = "shared" if reason.startswith("shared") else "conflict"
            else:
                continue
            if (edge.status, edge.reason) != (status, reason or edge.reason):
                edge.status, edge.reason = status, reason or edge.reason
                edge.updated_at = self.now

    def _assign(
        self,
        rows: dict[str, IdentifierRow],
        result: graph.Partition,
        revive: dict[str, str],
        rule: str | None,
    ) -> set[str]:
        old = {node_id: row.profile_id for node_id, row in rows.items()}
        taken: dict[frozenset[str], str] = {}
        used: set[str] = set()
        for group in sorted(result.groups, key=lambda g: (-len(g), min(g))):
            hinted = Counter(revive[n] for n in group if n in revive)
            votes = hinted or Counter(old[n] for n in group if old[n])
            choice = next(
                (
                    pid
                    for pid, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
                    if pid not in used
                ),
                None,
            )
            if choice is None:
                choice = self._new_profile()
            elif choice in hinted:  # an unmerge gives the absorbed profile its id back
                self.session.execute(
                    update(ProfileRow)
                    .where(ProfileRow.id == choice)
                    .values(merged_into=None, updated_at=self.now)
                )
            used.add(choice)
            taken[group] = choice
        moved: dict[tuple[str, str], list[str]] = defaultdict(list)  # (from, into) → nodes
        for group, into in taken.items():
            for node_id in group:
                was = old[node_id]
                if was != into:
                    rows[node_id].profile_id = into
                    if was:
                        moved[(was, into)].append(node_id)
        targets: dict[str, list[str]] = defaultdict(list)
        for was, into in moved:
            targets[was].append(into)
        # A profile whose id no group kept is absorbed: into the group that took most of it.
        # Its events follow in one UPDATE when it went whole; else they are re-anchored.
        reanchor: set[str] = set()
        for was, intos in targets.items():
            survivor = max(intos, key=lambda i: (len(moved[(was, i)]), i))
            for into in sorted(intos):
                absorbed = was not in used and into == survivor
                self._record(
                    "merge" if absorbed else "split",
                    was,
                    into,
                    moved[(was, into)],
                    rows,
                    result,
                    rule,
                )
            if was in used:
                reanchor.add(was)
                self._change(was, "split", None)
                continue
            self.session.execute(
                update(ProfileRow)
                .where(ProfileRow.id == was)
                .values(merged_into=survivor, updated_at=self.now)
            )
            if len(intos) > 1:
                reanchor.add(was)
            else:
                self.session.execute(
                    update(EventProfileRow)
                    .where(EventProfileRow.profile_id == was)
                    .values(profile_id=survivor)
                )
        return reanchor

    def _new_profile(self) -> str:
        profile_id = new_id(self.now)
        self.session.add(
            ProfileRow(id=profile_id, created_at=self.now, updated_at=self.now, merged_into=None)
        )
        self._change(profile_id, "created", None)
        self.changes.new_profiles += 1
        return profile_id

    def _record(
        self,
        kind: str,
        was: str,
        into: str,
        nodes: list[str],
        rows: dict[str, IdentifierRow],
        result: graph.Partition,
        rule: str | None,
    ) -> None:
        """Explain a move: the accepted edge that tied the moved nodes to their new group, or
        why they left (a node became shared, an edge was cut)."""
        moved = set(nodes)
        edge = None
        if kind == "merge":
            candidates = [
                e
                for n in moved
                for e in self.adjacent.get(n, ())
                if e.id in result.joins and ((e.a_id in moved) != (e.b_id in moved))
            ]
            edge = min(candidates, key=lambda e: (e.first_at, e.id), default=None)
        why = rule or (
            (edge.reason if edge.kind != "event" else result.joins.get(edge.id))
            if edge is not None
            else None
        )
        if why is None:
            shared = [
                rows[n] for n in rows if n in result.shared and rows[n].profile_id in (was, into)
            ]
            why = (
                f"{shared[0].type} {shared[0].value} is shared: {result.shared[shared[0].id]}"
                if shared
                else "the rules ranked competing evidence differently"
            )
        self.session.add(
            MergeRow(
                id=new_id(self.now),
                kind=kind,
                survivor_id=into,
                absorbed_id=was,
                rule=why[:300],
                edge_id=edge.id if edge else None,
                match_weight=edge.match_weight if edge else None,
                bu_id=edge.first_bu_id if edge else None,
                source_id=edge.first_source_id if edge else None,
                message_id=edge.first_message_id if edge else None,
                evidence_at=edge.first_at if edge else None,
                identifiers=sorted(moved),
                created_at=self.now,
                created_by=self.actor,
                undone_at=None,
                undone_by=None,
                undo_reason=None,
            )
        )
        self._change(into, kind, was)
        if kind == "merge":
            self.changes.merges += 1
        else:
            self.changes.splits += 1

    def _change(self, profile_id: str, kind: str, other: str | None) -> None:
        self.session.add(ChangeRow(profile_id=profile_id, kind=kind, other_id=other, at=self.now))

    # --- events ------------------------------------------------------------------------------

    def anchor(self, identifier_ids: Sequence[str]) -> str | None:
        """An event belongs to its strongest identifier that is not shared; when all are shared
        (a page view from a family computer), to nobody: any one of them would be a guess."""
        rows = [
            self.by_id[i]
            for i in identifier_ids
            if i in self.by_id and self.by_id[i].shared_reason is None
        ]
        if not rows:
            return None
        ranked = sorted(
            rows, key=lambda r: (r.shared_reason is not None, self.rules.priority(r.type), r.value)
        )
        return ranked[0].profile_id or None

    def reanchor(self, profile_ids: Iterable[str]) -> None:
        """Events of split profiles go where their strongest identifier went."""
        for part in in_chunks(list(profile_ids)):
            events = list(
                self.session.scalars(
                    select(EventProfileRow).where(EventProfileRow.profile_id.in_(part))
                )
            )
            self.load_ids({i for e in events for i in e.identifiers})
            for event in events:
                target = self.anchor(event.identifiers)
                if target != event.profile_id:
                    event.profile_id = target


def resolve(
    session: Session,
    events: Sequence[LoggedEvent],
    rules: Rules,
    *,
    now: datetime,
    actor: str = "resolver",
) -> Changes:
    """Resolve a batch of log events (in log order) to profiles; idempotent per event."""
    done = _already_resolved(session, [e.seq for e in events])
    todo = [e for e in events if e.seq not in done]
    work = WorkingSet(session, rules, now, actor)
    units = unit_codes(session)
    extracted = [extract(e, rules, units) for e in todo]
    _suppress(session, todo, extracted)
    # Rows are read in bulk and written once at the end: flushing before every read would
    # write the same rows many times over.
    with session.no_autoflush:
        work.load_keys(k for x in extracted for k in x.keys)
        pairs = []
        for x in extracted:
            ids = sorted(work.by_key[k].id for k in x.keys if k in work.by_key)
            pairs.extend((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
        work.load_pairs(pairs)
        dirty: set[str] = set()
        carried: list[list[str]] = []
        for event, x in zip(todo, extracted, strict=True):
            rows = [work.identifier(k, event) for k in x.keys]
            carried.append([r.id for r in rows])
            for row in rows:
                if not row.profile_id:
                    dirty.add(row.id)
            for i, a in enumerate(rows):
                for b in rows[i + 1 :]:
                    if work.evidence(a, b, event):
                        dirty.update((a.id, b.id))
            for bad, raw in x.rejected:
                work.reject(event, bad, raw)
        split = work.repartition(dirty) if dirty else set()
        work.store_rejections()
    session.flush()
    if split:
        work.reanchor(split)
    if todo:
        session.execute(
            insert(EventProfileRow),
            [
                {
                    "seq": event.seq,
                    "profile_id": work.anchor(ids),
                    "bu_id": event.bu_id,
                    "identifiers": ids,
                    "has_traits": x.has_traits,
                }
                for event, x, ids in zip(todo, extracted, carried, strict=True)
            ],
        )
    work.changes.events = len(todo)
    session.flush()
    return work.changes


def _suppress(session: Session, events: Sequence[LoggedEvent], extracted: list[Extracted]) -> None:
    """An event carrying an erased person's identifier resolves to nobody, and what it says
    about them is taken out of the log at once: re-ingesting old data must not bring the
    person back (the suppression list, ``governance.suppression``)."""
    blocked = suppression.suppressed(
        session, {(k.type, k.value) for x in extracted for k in x.keys}
    )
    if not blocked:
        return
    hidden: list[int] = []
    pii = PiiValues()
    for event, x in zip(events, extracted, strict=True):
        if any((k.type, k.value) in blocked for k in x.keys):
            for key in x.keys:
                pii.add(key.value)
            x.keys, x.rejected, x.has_traits = [], [], False
            hidden.append(event.seq)
    for event in events:
        if event.seq in hidden:
            for _, value in event.identifiers:
                pii.add(value)
    scrub_events(session, hidden, pii)
    log.info("identity.suppressed", extra={"events": len(hidden)})


def edges_of(session: Session, ids: Sequence[str]) -> Iterator[EdgeRow]:
    """Every edge with an end among ``ids`` (an edge between two of them may come twice)."""
    for part in in_chunks(ids):
        yield from session.scalars(
            select(EdgeRow).where(or_(EdgeRow.a_id.in_(part), EdgeRow.b_id.in_(part)))
        )


def unit_codes(session: Session) -> dict[str, str]:
    """Business unit id → code (a handful of rows, read once per step)."""
    return governance.unit_codes(session)


def _already_resolved(session: Session, seqs: list[int]) -> set[int]:
    found: set[int] = set()
    for part in in_chunks(seqs):
        found.update(
            session.scalars(select(EventProfileRow.seq).where(EventProfileRow.seq.in_(part)))
        )
    return found


def _bump(row: IdentifierRow, kind: str, by: int) -> None:
    degree = dict(row.degree or {})
    degree[kind] = degree.get(kind, 0) + by
    row.degree = degree  # a new dict, so the ORM sees the JSON change


class ResolveConsumer:
    """Resolution as a consumer of the log: in order, once per event, in the step's
    transaction, so a crash between the graph writes and the cursor leaves neither."""

    name = RESOLVER

    def handle(self, session: Session, events: Sequence[LoggedEvent]) -> None:
        from oneloop.identity.service import active_rules  # service builds on this module

        changes = resolve(session, events, active_rules(session), now=SystemClock().now())
        if changes.merges or changes.splits:
            # One entry per step, not per merge: every audited act waits on one lock, and
            # the merges themselves are explained one by one in ``identity_merge``.
            ctx = dataclasses.replace(system_context(), origin="worker")
            detail: dict[str, audit.DetailValue] = {
                "merges": changes.merges,
                "splits": changes.splits,
                "first_seq": events[0].seq,
                "last_seq": events[-1].seq,
            }
            audit.record(session, ctx, "identity.merged", "identity", None, detail=detail)


register(ResolveConsumer())
