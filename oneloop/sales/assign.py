"""Which rep of a team gets a routed lead (issue 9): pure functions over a snapshot of reps.

The leads service loads the team's reps (open leads, capacity, duty) and the team's
round-robin cursor, calls `pick`, then stores the lead's owner and the new cursor in one
transaction. Nothing here reads a clock or a database, so every strategy is deterministic:
the same snapshot always gives the same rep, and every tie has a stated order.
A rep who is off duty, or at capacity (open_leads >= capacity), is never picked; when nobody
is left `pick` returns None and the lead goes to the shared pool (公海).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Literal, cast

Strategy = Literal["round_robin", "least_loaded", "capacity_weighted"]
STRATEGIES: tuple[Strategy, ...] = ("round_robin", "least_loaded", "capacity_weighted")


@dataclass(frozen=True)
class Rep:
    user_id: str
    open_leads: int
    capacity: int
    on_duty: bool
    weight: float = 1.0  # capacity_weighted: 2.0 takes twice the share of a 1.0 colleague
    last_assigned_at: datetime | None = None  # UTC; None: never assigned

    def __post_init__(self) -> None:
        if self.open_leads < 0 or self.capacity < 0:
            raise ValueError(f"rep {self.user_id}: open_leads and capacity cannot be negative")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"rep {self.user_id}: weight must be a positive number")

    @property
    def is_available(self) -> bool:
        return self.on_duty and self.open_leads < self.capacity


@dataclass(frozen=True)
class Pick:
    user_id: str
    strategy: Strategy
    reason: str  # for the lead's history: why this rep, in English


def pick(strategy: str, reps: Sequence[Rep], last_user_id: str | None = None) -> Pick | None:
    """The rep for the next lead, or None when every rep is off duty or full.

    `last_user_id` is the team's round-robin cursor (the rep picked last); the other
    strategies ignore it. Raises ValueError for a strategy not in STRATEGIES.
    """
    choose = _STRATEGIES.get(strategy)
    if choose is None:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    available = sorted((r for r in reps if r.is_available), key=lambda r: r.user_id)
    if not available:
        return None
    rep, why = choose(available, last_user_id)
    reason = f"{why} ({len(available)} of {len(reps)} reps available)"
    return Pick(rep.user_id, cast(Strategy, strategy), reason)


def _round_robin(available: list[Rep], last_user_id: str | None) -> tuple[Rep, str]:
    """The first rep after the cursor in user_id order, wrapping round. Comparing ids (not
    positions) keeps the turn fair when reps join, leave or fill up between leads."""
    if last_user_id is None:
        return available[0], "round robin: first rep in order"
    after = [r for r in available if r.user_id > last_user_id]
    if after:
        return after[0], f"round robin: next after {last_user_id}"
    return available[0], f"round robin: wrapped round after {last_user_id}"


def _least_loaded(available: list[Rep], last_user_id: str | None) -> tuple[Rep, str]:
    rep = min(available, key=_tie_order)
    return rep, f"least loaded: {rep.open_leads} open leads, the fewest"


def _capacity_weighted(available: list[Rep], last_user_id: str | None) -> tuple[Rep, str]:
    """Lowest load after taking this lead, relative to capacity × weight; exact fractions, so
    equal loads tie exactly and fall to the least-loaded order."""
    rep = min(available, key=lambda r: (_load_after(r), *_tie_order(r)))
    load = f"({rep.open_leads}+1)/({rep.capacity}×{rep.weight:g})"
    return rep, f"capacity weighted: load {load} = {float(_load_after(rep)):.2f}, the lowest"


def _load_after(rep: Rep) -> Fraction:
    return Fraction(rep.open_leads + 1) / (rep.capacity * Fraction(rep.weight))


def _tie_order(rep: Rep) -> tuple[int, int, float, str]:
    """Fewest open leads, then never assigned, then longest since the last lead, then id."""
    at = rep.last_assigned_at
    if at is None:
        return (rep.open_leads, 0, 0.0, rep.user_id)
    stamp = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    return (rep.open_leads, 1, stamp, rep.user_id)


_STRATEGIES: dict[str, Callable[[list[Rep], str | None], tuple[Rep, str]]] = {
    "round_robin": _round_robin,
    "least_loaded": _least_loaded,
    "capacity_weighted": _capacity_weighted,
}
