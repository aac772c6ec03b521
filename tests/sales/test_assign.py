"""Assignment strategies: who in a team gets the next lead, and when nobody does."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oneloop.sales.assign import STRATEGIES, Pick, Rep, pick

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def rep(user_id: str, open_leads: int = 0, capacity: int = 10, **kw: object) -> Rep:
    return Rep(
        user_id=user_id,
        open_leads=open_leads,
        capacity=capacity,
        on_duty=bool(kw.pop("on_duty", True)),
        **kw,
    )  # type: ignore[arg-type]


def run(strategy: str, reps: list[Rep], n: int, cursor: str | None = None) -> list[str | None]:
    """N leads in a row, each pick's count and time written back as the leads service does."""
    out: list[str | None] = []
    team = {r.user_id: r for r in reps}
    for i in range(n):
        chosen = pick(strategy, list(team.values()), cursor)
        out.append(chosen.user_id if chosen else None)
        if chosen is not None:
            r = team[chosen.user_id]
            at = T0 + timedelta(minutes=i)
            team[r.user_id] = replace(r, open_leads=r.open_leads + 1, last_assigned_at=at)
            cursor = chosen.user_id
    return out


# --- round robin ------------------------------------------------------------------------------


def test_round_robin_takes_turns_in_user_id_order_and_wraps() -> None:
    reps = [rep("u3"), rep("u1"), rep("u2")]
    assert run("round_robin", reps, 5) == ["u1", "u2", "u3", "u1", "u2"]


def test_round_robin_continues_after_the_cursor() -> None:
    reps = [rep("u1"), rep("u2"), rep("u3")]
    assert pick("round_robin", reps, "u2") == Pick(
        "u3", "round_robin", "round robin: next after u2 (3 of 3 reps available)"
    )
    assert pick("round_robin", reps, "u3").user_id == "u1"  # type: ignore[union-attr]


def test_round_robin_cursor_of_a_rep_who_left_still_moves_on() -> None:
    reps = [rep("u1"), rep("u3")]
    assert pick("round_robin", reps, "u2").user_id == "u3"  # type: ignore[union-attr]


def test_round_robin_skips_off_duty_and_full_reps() -> None:
    reps = [rep("u1"), rep("u2", on_duty=False), rep("u3", open_leads=10), rep("u4")]
    assert run("round_robin", reps, 4, cursor="u1") == ["u4", "u1", "u4", "u1"]


@given(
    st.lists(st.booleans(), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=0, max_value=3),
)
def test_round_robin_is_fair_among_available_reps(duty: list[bool], n: int, start: int) -> None:
    reps = [rep(f"u{i:02d}", open_leads=start, capacity=100, on_duty=d) for i, d in enumerate(duty)]
    picks = run("round_robin", reps, n)
    available = [r.user_id for r in reps if r.on_duty]
    if not available:
        assert picks == [None] * n
        return
    counts = [picks.count(u) for u in available]
    assert max(counts) - min(counts) <= 1
    assert set(picks) <= set(available)


# --- least loaded and capacity weighted --------------------------------------------------------


def test_least_loaded_picks_fewest_open_leads() -> None:
    reps = [rep("u1", 5), rep("u2", 2), rep("u3", 3)]
    chosen = pick("least_loaded", reps)
    assert chosen is not None and chosen.user_id == "u2"
    assert chosen.reason == "least loaded: 2 open leads, the fewest (3 of 3 reps available)"


def test_least_loaded_ties_go_to_never_assigned_then_oldest_then_user_id() -> None:
    reps = [
        rep("u1", 2, last_assigned_at=T0),
        rep("u2", 2, last_assigned_at=T0 - timedelta(hours=1)),
        rep("u4", 2),
        rep("u3", 2),
    ]
    assert run("least_loaded", reps, 4) == ["u3", "u4", "u2", "u1"]


def test_least_loaded_reads_naive_times_as_utc() -> None:
    naive = datetime(2026, 3, 1, 8, 0)  # 08:00 UTC, earlier than T0
    reps = [rep("u1", 1, last_assigned_at=T0), rep("u2", 1, last_assigned_at=naive)]
    assert pick("least_loaded", reps).user_id == "u2"  # type: ignore[union-attr]


def test_capacity_weighted_shares_by_capacity_times_weight() -> None:
    reps = [
        rep("big", capacity=40),
        rep("small", capacity=20),
        rep("senior", capacity=20, weight=2),
    ]
    picks = run("capacity_weighted", reps, 20)
    assert (picks.count("big"), picks.count("small"), picks.count("senior")) == (8, 4, 8)


def test_weight_never_lifts_the_capacity() -> None:
    picks = run("capacity_weighted", [rep("senior", capacity=3, weight=5), rep("junior")], 12)
    assert picks.count("senior") == 3


def test_capacity_weighted_ties_as_least_loaded() -> None:
    reps = [
        rep("u2", 1, capacity=4),
        rep("u1", 1, capacity=4, last_assigned_at=T0),
        rep("u3", 0, 2),
    ]
    # u3: (0+1)/2 = 0.5 = u1 and u2's (1+1)/4; fewest open leads wins the tie.
    chosen = pick("capacity_weighted", reps)
    assert chosen is not None and chosen.user_id == "u3"
    assert chosen.reason.startswith("capacity weighted: load (0+1)/(2×1) = 0.50")
    assert pick("capacity_weighted", reps[:2]).user_id == "u2"  # type: ignore[union-attr]


# --- every strategy ----------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_capacity_is_never_exceeded_and_the_pool_takes_the_rest(strategy: str) -> None:
    reps = [rep("u1", 0, capacity=2), rep("u2", 1, capacity=3), rep("u3", 0, capacity=0)]
    picks = run(strategy, reps, 8)
    assert picks.count("u1") == 2 and picks.count("u2") == 2 and "u3" not in picks
    assert picks[4:] == [None] * 4


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_nobody_on_duty_means_the_pool(strategy: str) -> None:
    assert pick(strategy, [rep("u1", on_duty=False), rep("u2", on_duty=False)]) is None
    assert pick(strategy, []) is None


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_off_duty_reps_are_skipped_even_when_idle(strategy: str) -> None:
    reps = [rep("u1", 0, on_duty=False), rep("u2", 9)]
    chosen = pick(strategy, reps, "u0")
    assert chosen is not None and chosen.user_id == "u2" and chosen.strategy == strategy
    assert chosen.reason.endswith("(1 of 2 reps available)")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_picks_do_not_depend_on_the_order_reps_are_given(strategy: str) -> None:
    reps = [rep("u1", 1, last_assigned_at=T0), rep("u2", 1, last_assigned_at=T0), rep("u3", 1)]
    first = pick(strategy, reps, "u1")
    assert first == pick(strategy, list(reversed(reps)), "u1")


@given(
    st.sampled_from(STRATEGIES),
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.booleans(), st.floats(0.1, 5)),
        max_size=6,
    ),
    st.integers(0, 30),
)
def test_no_strategy_ever_overfills_or_picks_off_duty(
    strategy: str, specs: list[tuple[int, int, bool, float]], n: int
) -> None:
    reps = [
        Rep(f"u{i}", open_leads=o, capacity=c, on_duty=d, weight=w)
        for i, (o, c, d, w) in enumerate(specs)
    ]
    picks = run(strategy, reps, n)
    for r in reps:
        taken = picks.count(r.user_id)
        assert taken == 0 or r.on_duty
        assert taken == 0 or r.open_leads + taken <= r.capacity


def test_unknown_strategy_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="round_robin, least_loaded, capacity_weighted"):
        pick("random", [rep("u1")])


@pytest.mark.parametrize(
    "kw",
    [{"open_leads": -1}, {"capacity": -1}, {"weight": 0.0}, {"weight": float("nan")}],
)
def test_impossible_reps_are_refused(kw: dict[str, object]) -> None:
    fields: dict[str, object] = {"open_leads": 0, "capacity": 5, "on_duty": True} | kw
    with pytest.raises(ValueError, match="rep u1"):
        Rep("u1", **fields)  # type: ignore[arg-type]
