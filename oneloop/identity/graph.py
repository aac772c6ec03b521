"""The identity graph's one decision: which identifiers are one person.

Identifiers are nodes; every event that carried two of them adds an edge. A profile is a
group of nodes joined by accepted edges. Naive connected components over-merge: a company
switchboard number typed in by fifty people would make them one customer. So the partition is
built like Kruskal's algorithm, strongest evidence first, and a union is refused when it would
give one profile more identifiers of a type than the rules allow (two ``user_id``s, six
phones) or join two nodes a steward pinned apart. A node that co-occurs with more values of a
limited type than one profile may hold (a phone seen with three ``crm_id``s) is *shared*: it
keeps its own profile and links nobody.

Everything here is a pure function of the final set of nodes, edges and pins, never of the
order events arrived in: replaying the log in another order, or in other batches, gives the
same partition. The resolver stores the result; this module never touches the database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from oneloop.identity.rules import Rules


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    type: str
    value: str


@dataclass(frozen=True, slots=True)
class Edge:
    """Evidence that two identifiers are one person: the earliest event that carried both."""

    id: str
    a: str
    b: str
    first_at: datetime
    is_cut: bool = False  # a steward unmerged along it: never used again
    kind: str = "event"  # event, match (probabilistic) or steward (a review accepted)


@dataclass(frozen=True)
class Partition:
    groups: list[frozenset[str]]
    accepted: frozenset[str]  # edge ids that joined two groups
    conflicts: dict[str, str]  # edge id → why it was refused
    shared: dict[str, str]  # node id → why it links nobody
    joins: dict[str, str] = field(default_factory=dict)  # edge id → the rule that allowed it


def shared_reason(node: Node, degree: Mapping[str, int], rules: Rules) -> str | None:
    """Why ``node`` must be a shared identifier: a value the rules block (added after it was
    seen), or how many distinct identifiers of a limited type it has been seen with; ``None``
    when it may link."""
    blocked = rules.blocked_reason(node.type, node.value)
    if blocked is not None:
        return blocked
    for key, count in sorted(degree.items()):
        kind = key.partition("@")[0]
        rule = rules.types.get(kind)
        if rule is None or rule.limit is None or kind == node.type:
            continue  # an identifier seen with others of its kind (aliased cookies) is normal
        if count > rule.limit:
            return f"seen with {count} different {key} values; a profile holds at most {rule.limit}"
    return None


def degrees(
    nodes: Mapping[str, Node], edges: Iterable[Edge], rules: Rules
) -> dict[str, Counter[str]]:
    """Distinct neighbours per type (``Rules.count_key``), counting every edge not cut."""
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for edge in edges:
        if edge.is_cut or edge.a not in nodes or edge.b not in nodes:
            continue
        a, b = nodes[edge.a], nodes[edge.b]
        found[edge.a][rules.count_key(b.type, b.value)] += 1
        found[edge.b][rules.count_key(a.type, a.value)] += 1
    return found


def rank(edge: Edge, nodes: Mapping[str, Node], rules: Rules) -> tuple[object, ...]:
    """Strongest first: what one event showed before what a model or a steward concluded;
    an event's edge is as strong as its weaker end (a ``user_id``–``crm_id`` edge before a
    ``phone``–cookie one); then the older evidence; then the values, so ties break the same
    way on every run."""
    a, b = nodes[edge.a], nodes[edge.b]
    pa, pb = rules.priority(a.type), rules.priority(b.type)
    inferred = edge.kind != "event"
    return (
        inferred,
        max(pa, pb),
        min(pa, pb),
        edge.first_at,
        min(a.value, b.value),
        max(a.value, b.value),
    )


def partition(
    nodes: Mapping[str, Node],
    edges: Iterable[Edge],
    rules: Rules,
    *,
    pins: Iterable[tuple[str, str]] = (),
    degree: Mapping[str, Mapping[str, int]] | None = None,
) -> Partition:
    """Group ``nodes``; ``degree`` (distinct neighbours per type, from the whole graph) may be
    given when ``edges`` is only the part of the graph around ``nodes``."""
    edges = [e for e in edges if e.a in nodes and e.b in nodes]
    degree = degree if degree is not None else degrees(nodes, edges, rules)
    shared = {
        node_id: reason
        for node_id, node in nodes.items()
        if (reason := shared_reason(node, degree.get(node_id, {}), rules)) is not None
    }
    parent = {node_id: node_id for node_id in nodes}
    counts = {
        node_id: Counter({rules.count_key(node.type, node.value): 1})
        for node_id, node in nodes.items()
    }
    members = {node_id: [node_id] for node_id in nodes}
    pinned: dict[str, set[str]] = defaultdict(set)
    for a, b in pins:
        pinned[a].add(b)
        pinned[b].add(a)

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    accepted: set[str] = set()
    conflicts: dict[str, str] = {}
    joins: dict[str, str] = {}
    for edge in sorted(edges, key=lambda e: rank(e, nodes, rules)):
        if edge.is_cut:
            conflicts[edge.id] = "cut by a steward (unmerge)"
            continue
        if edge.a in shared or edge.b in shared:
            conflicts[edge.id] = f"shared identifier: {shared.get(edge.a) or shared.get(edge.b)}"
            continue
        ra, rb = find(edge.a), find(edge.b)
        if ra == rb:
            accepted.add(edge.id)
            continue
        reason = _refusal(counts[ra], counts[rb], members[ra], members[rb], pinned, rules)
        if reason is not None:
            conflicts[edge.id] = reason
            continue
        if len(members[ra]) < len(members[rb]):
            ra, rb = rb, ra
        parent[rb] = ra
        counts[ra] += counts.pop(rb)
        members[ra].extend(members.pop(rb))
        accepted.add(edge.id)
        joins[edge.id] = _rule_name(edge, nodes[edge.a].type, nodes[edge.b].type)
    groups = sorted((frozenset(m) for m in members.values()), key=lambda g: min(g))
    return Partition(groups, frozenset(accepted), conflicts, shared, joins)


def _refusal(
    left: Counter[str],
    right: Counter[str],
    left_members: list[str],
    right_members: list[str],
    pinned: Mapping[str, set[str]],
    rules: Rules,
) -> str | None:
    for kind in sorted(set(left) | set(right)):
        limit = rules.limit(kind.partition("@")[0])
        total = left[kind] + right[kind]
        if limit is not None and total > limit:
            return f"limit: a profile holds at most {limit} {kind}; the merge would give {total}"
    if pinned:
        small, large = sorted((left_members, right_members), key=len)
        other = set(large)
        for node_id in small:
            if pinned.get(node_id, set()) & other:
                return "do-not-merge pinned by a steward"
    return None


def _rule_name(edge: Edge, a: str, b: str) -> str:
    if edge.kind == "match":
        return "probabilistic match"
    if edge.kind == "steward":
        return "accepted by a data steward"
    return f"seen together on one event ({' + '.join(sorted((a, b)))})"
