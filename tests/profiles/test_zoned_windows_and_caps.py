"""Computed-trait windows and score caps count calendar days in the zone of the definition's
or the model's unit (issue 6). North is moved to Berlin, south stays in Shanghai; the same
definition in each unit, over the same events, gives each unit's own answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.profiles import score_models, scores, traits
from oneloop.profiles.filters import When, zone_of
from oneloop.profiles.models import TraitRow
from tests.factories import make_group, set_time_zone
from tests.profiles.conftest import World

PAGE = "Page Viewed"
NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # 13:00 on the 1st in Berlin, 20:00 on the 1st in SH
LATE = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # 18:00 on the 1st in Berlin, 01:00 on the 2nd in SH
EVENING = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)  # 21:00 on the 1st in Berlin, 04:00 on the 2nd
BERLIN_MIDNIGHT = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 00:30 on the 2nd, 07:30 in SH
SHANGHAI_MIDNIGHT = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # 00:30 on the 3rd in SH


def when(at: datetime) -> When:
    """The caller's zone is Shanghai's: each definition and model must use its unit's."""
    return When(now=at, zone=zone_of(None))


@pytest.fixture
def units(session: Session, ctx: Context, clock: FixedClock) -> World:
    clock.at = EVENING
    made = World(session, {u.code: u.id for u in make_group(session, ctx)})
    set_time_zone(session, ctx, "north", "Europe/Berlin")
    return made


def stored(session: Session, trait_id: str) -> dict[str, Any]:
    rows = session.execute(
        select(TraitRow.profile_id, traits.STORED_VALUE).where(TraitRow.key == trait_id)
    )
    return {p: v for p, v in rows}


# --- computed traits ------------------------------------------------------------------------


def test_a_trait_window_counts_days_in_its_units_zone(
    session: Session, ctx: Context, units: World
) -> None:
    for bu in ("north", "south"):
        units.event("noon", PAGE, NOON, bu)
        units.event("late", PAGE, LATE, bu)
    document = {"name": "pages_today", "event": PAGE, "aggregate": "count", "window": {"amount": 1}}
    north = traits.create_trait(session, ctx, document, "north").id
    south = traits.create_trait(session, ctx, document, "south").id
    # kept current event by event: both on the 1st in Berlin; only LATE is on the 2nd in SH
    assert traits.refresh(session, ["noon", "late"], when(EVENING)) == {"noon", "late"}
    assert stored(session, north) == {"noon": 1, "late": 1}
    assert stored(session, south) == {"late": 1}
    # a full recompute agrees
    assert traits.recompute(session, ctx, when=when(EVENING)) == 0
    # Berlin's midnight closes north's window; Shanghai's day is not over yet
    assert traits.sweep(session, when(BERLIN_MIDNIGHT), since=EVENING) == {"noon", "late"}
    assert stored(session, north) == {} and stored(session, south) == {"late": 1}
    assert traits.sweep(session, when(SHANGHAI_MIDNIGHT), since=BERLIN_MIDNIGHT) == {"late"}
    assert stored(session, south) == {}
    assert traits.recompute(session, ctx, when=when(SHANGHAI_MIDNIGHT)) == 0


def test_a_plain_date_in_a_trait_filter_is_the_units_local_day(
    session: Session, ctx: Context, units: World
) -> None:
    """A filter on the event's time property: ``2026-03-01`` is the whole 1st where the
    unit is."""
    for bu in ("north", "south"):
        units.event("late", PAGE, LATE, bu, sent_at="2026-03-01T17:00:00")
    document = {
        "name": "pages_on_the_first",
        "event": PAGE,
        "aggregate": "count",
        "where": [{"property": "sent_at", "op": "lte", "value": "2026-03-01"}],
    }
    north = traits.create_trait(session, ctx, document, "north").id
    south = traits.create_trait(session, ctx, document, "south").id
    traits.recompute(session, ctx, when=when(EVENING))
    assert stored(session, north) == {"late": 1}  # 18:00 on the 1st in Berlin
    assert stored(session, south) == {}  # 01:00 on the 2nd in Shanghai


# --- score caps -----------------------------------------------------------------------------


CAPPED = {
    "code": "daily_visit",
    "name_zh": "每日访问",
    "name_en": "Daily visit",
    "rules": [{"id": "visit", "event": PAGE, "points": 5, "cap": {"times": 1, "per": "day"}}],
}


def awarded(session: Session, profile: str, model_id: str) -> list[int]:
    return sorted(p.seq or 0 for p in scores.history(session, profile, model_id=model_id))


def test_a_cap_per_day_counts_the_models_units_calendar_day(
    session: Session, ctx: Context, units: World
) -> None:
    """Two visits an hour apart on either side of Berlin's midnight: two days in Berlin, one
    morning (the 2nd) in Shanghai."""
    north = score_models.create_model(session, ctx, CAPPED, bu="north", when=when(EVENING)).id
    south = score_models.create_model(session, ctx, CAPPED, bu="south", when=when(EVENING)).id
    before = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)  # 23:30 on the 1st in Berlin, 06:30 SH
    seqs: dict[str, list[int]] = {"north": [], "south": []}
    for moment in (before, BERLIN_MIDNIGHT):
        for bu in ("north", "south"):
            seq = units.event("visitor", PAGE, moment, bu)
            seqs[bu].append(seq)
            scores.refresh(session, {"visitor": [seq]}, (), when(BERLIN_MIDNIGHT))
    assert awarded(session, "visitor", north) == seqs["north"]  # one a day, two days
    assert awarded(session, "visitor", south) == seqs["south"][:1]  # the same day: capped
    # a replay (after a merge or split) counts the same days
    scores.refresh(session, {}, ["visitor"], when(BERLIN_MIDNIGHT))
    assert awarded(session, "visitor", north) == seqs["north"]
    assert awarded(session, "visitor", south) == seqs["south"][:1]
    values = {
        s.bu_id: s.value
        for s in scores.scores_of(
            session, "visitor", list(units.units.values()), now=BERLIN_MIDNIGHT
        )
    }
    assert values == {units.units["north"]: 10, units.units["south"]: 5}
