"""SLA clocks: deadlines over working time, the status at any instant, and policy configuration."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from oneloop.core.calendar import calendar_from_config, default_calendar, working_time_between
from oneloop.core.errors import ValidationFailed
from oneloop.core.sla import (
    SlaDeadlines,
    SlaPolicy,
    SlaPolicyConfig,
    SlaStatus,
    policy_from_config,
    sla_deadlines,
    sla_state,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
M = timedelta(minutes=1)
LEAD = SlaPolicy()  # the first-contact default: 1 h, warn 15 min before, escalate


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


# --- deadlines -----------------------------------------------------------------------------


def test_lead_created_friday_1730_is_due_monday_0930_and_warned_at_0915() -> None:
    deadlines = sla_deadlines(LEAD, default_calendar(), sh(2026, 1, 9, 17, 30))
    assert deadlines == SlaDeadlines(
        due_at=sh(2026, 1, 12, 9, 30), warn_at=sh(2026, 1, 12, 9, 15), reassign_at=None
    )
    assert deadlines.due_at.tzinfo is UTC


def test_warning_can_fall_before_the_weekend() -> None:
    deadlines = sla_deadlines(LEAD, default_calendar(), sh(2026, 1, 9, 17, 10))
    assert deadlines.warn_at == sh(2026, 1, 9, 17, 55)
    assert deadlines.due_at == sh(2026, 1, 12, 9, 10)


def test_lead_created_before_national_day_is_due_after_it() -> None:
    deadlines = sla_deadlines(LEAD, default_calendar(), sh(2026, 9, 30, 17, 30))
    assert deadlines.warn_at == sh(2026, 10, 8, 9, 15)
    assert deadlines.due_at == sh(2026, 10, 8, 9, 30)


def test_lead_created_on_a_makeup_saturday_runs_that_day() -> None:
    """调休: Saturday 2026-10-10 is a working day in the package's data."""
    deadlines = sla_deadlines(LEAD, default_calendar(), sh(2026, 10, 10, 10, 0))
    assert deadlines.due_at == sh(2026, 10, 10, 11, 0)


def test_lunch_break_pauses_the_clock() -> None:
    cal = calendar_from_config(
        {"week": {"mon": ["09:00-12:00", "13:30-18:00"]}, "public_holidays": None}
    )
    deadlines = sla_deadlines(LEAD, cal, sh(2026, 1, 12, 11, 30))
    assert deadlines.warn_at == sh(2026, 1, 12, 13, 45)
    assert deadlines.due_at == sh(2026, 1, 12, 14, 0)


def test_deadline_across_a_dst_change_keeps_local_hours() -> None:
    cal = calendar_from_config(
        {
            "time_zone": "Europe/Berlin",
            "week": {"fri": ["09:00-18:00"], "mon": ["09:00-18:00"]},
            "public_holidays": None,
        }
    )
    started = datetime(2026, 3, 27, 17, 30, tzinfo=BERLIN)  # CET; Monday is CEST
    deadlines = sla_deadlines(LEAD, cal, started)
    assert deadlines.due_at == datetime(2026, 3, 30, 9, 30, tzinfo=BERLIN)
    assert deadlines.due_at == datetime(2026, 3, 30, 7, 30, tzinfo=UTC)


def test_reassignment_counts_working_time_after_the_breach() -> None:
    policy = SlaPolicy(reassign_after_breach=2 * H)
    deadlines = sla_deadlines(policy, default_calendar(), sh(2026, 1, 9, 16, 0))
    assert deadlines.due_at == sh(2026, 1, 9, 17, 0)
    assert deadlines.reassign_at == sh(2026, 1, 12, 10, 0)


def test_deadlines_do_not_depend_on_the_input_zone() -> None:
    started = sh(2026, 1, 9, 17, 30)
    assert sla_deadlines(LEAD, default_calendar(), started.astimezone(BERLIN)) == sla_deadlines(
        LEAD, default_calendar(), started
    )


# --- state ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "status", "elapsed", "remaining"),
    [
        (sh(2026, 1, 9, 17, 30), SlaStatus.ON_TRACK, timedelta(0), H),
        (sh(2026, 1, 10, 12, 0), SlaStatus.ON_TRACK, 30 * M, 30 * M),  # the weekend is free
        (sh(2026, 1, 12, 9, 14), SlaStatus.ON_TRACK, 44 * M, 16 * M),
        (sh(2026, 1, 12, 9, 15), SlaStatus.WARNING, 45 * M, 15 * M),
        (sh(2026, 1, 12, 9, 29), SlaStatus.WARNING, 59 * M, M),
        (sh(2026, 1, 12, 9, 30), SlaStatus.BREACHED, H, timedelta(0)),
        (sh(2026, 1, 12, 11, 0), SlaStatus.BREACHED, 2.5 * H, timedelta(0)),
    ],
)
def test_state_of_a_running_clock(
    now: datetime, status: SlaStatus, elapsed: timedelta, remaining: timedelta
) -> None:
    state = sla_state(LEAD, default_calendar(), sh(2026, 1, 9, 17, 30), now)
    assert state.status is status
    assert state.elapsed_working == elapsed
    assert state.remaining_working == remaining
    assert state.overdue_working == max(elapsed - H, timedelta(0))
    assert state.due_at == sh(2026, 1, 12, 9, 30)
    assert state.warn_at == sh(2026, 1, 12, 9, 15)
    assert state.should_escalate == (status is SlaStatus.BREACHED)


def test_met_in_time_and_met_late() -> None:
    cal, started = default_calendar(), sh(2026, 1, 9, 17, 30)
    later = sh(2026, 2, 1, 0, 0)
    met = sla_state(LEAD, cal, started, later, met_at=sh(2026, 1, 12, 9, 20))
    assert met.status is SlaStatus.MET
    assert met.elapsed_working == 50 * M
    assert met.remaining_working == 10 * M
    assert not met.should_escalate
    late = sla_state(LEAD, cal, started, later, met_at=sh(2026, 1, 12, 9, 30))
    assert late.status is SlaStatus.MET_LATE
    assert late.overdue_working == timedelta(0)
    assert sla_state(LEAD, cal, started, later, met_at=sh(2026, 1, 12, 10, 0)).overdue_working == (
        30 * M
    )


def test_met_before_start_counts_as_met_with_nothing_elapsed() -> None:
    state = sla_state(
        LEAD, default_calendar(), sh(2026, 1, 12, 10, 0), sh(2026, 1, 12, 10, 5), sh(2026, 1, 12, 9)
    )
    assert state.status is SlaStatus.MET
    assert state.elapsed_working == timedelta(0)


def test_escalation_and_reassignment_follow_the_policy() -> None:
    cal, started = default_calendar(), sh(2026, 1, 12, 9, 0)
    quiet = SlaPolicy(escalate_on_breach=False, reassign_after_breach=30 * M)
    breached = sla_state(quiet, cal, started, sh(2026, 1, 12, 10, 10))
    assert breached.status is SlaStatus.BREACHED
    assert not breached.should_escalate
    assert not breached.should_reassign
    assert breached.reassign_at == sh(2026, 1, 12, 10, 30)
    assert sla_state(quiet, cal, started, sh(2026, 1, 12, 10, 30)).should_reassign
    met = sla_state(quiet, cal, started, sh(2026, 1, 12, 11), met_at=sh(2026, 1, 12, 10, 45))
    assert not met.should_reassign


def test_no_warning_window_goes_straight_to_breach() -> None:
    policy = SlaPolicy(warn_before=timedelta(0))
    cal, started = default_calendar(), sh(2026, 1, 12, 9, 0)
    assert sla_state(policy, cal, started, sh(2026, 1, 12, 9, 59)).status is SlaStatus.ON_TRACK
    assert sla_state(policy, cal, started, sh(2026, 1, 12, 10, 0)).status is SlaStatus.BREACHED


def test_naive_instants_are_refused() -> None:
    naive = datetime(2026, 1, 12, 10, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        sla_deadlines(LEAD, default_calendar(), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        sla_state(LEAD, default_calendar(), sh(2026, 1, 12, 9, 0), naive)


# --- policy --------------------------------------------------------------------------------


def test_policy_dataclass_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="target"):
        SlaPolicy(target=timedelta(0))
    with pytest.raises(ValueError, match="warn_before"):
        SlaPolicy(target=H, warn_before=2 * H)
    with pytest.raises(ValueError, match="warn_before"):
        SlaPolicy(warn_before=-M)
    with pytest.raises(ValueError, match="reassign_after_breach"):
        SlaPolicy(reassign_after_breach=timedelta(0))


def test_default_config_is_the_lead_first_contact_policy() -> None:
    assert policy_from_config(SlaPolicyConfig()) == LEAD
    assert policy_from_config({}) == LEAD


def test_config_with_every_option() -> None:
    policy = policy_from_config(
        {
            "target_minutes": 240,
            "warn_before_minutes": 30,
            "escalate_on_breach": False,
            "reassign_after_breach_minutes": 120,
        }
    )
    assert policy == SlaPolicy(4 * H, 30 * M, False, 2 * H)


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"target_minutes": 0}, "target_minutes"),
        ({"target_minutes": -5}, "target_minutes"),
        ({"target_minutes": "soon"}, "target_minutes"),
        ({"target_minutes": 10**9}, "target_minutes"),
        ({"warn_before_minutes": -1}, "warn_before_minutes"),
        ({"target_minutes": 10}, "warn_before_minutes"),  # the default warning is 15
        ({"target_minutes": 30, "warn_before_minutes": 30}, "warn_before_minutes"),
        ({"reassign_after_breach_minutes": 0}, "reassign_after_breach_minutes"),
        ({"target": 60}, "target"),
    ],
)
def test_bad_policy_config_names_the_field(config: dict[str, object], path: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        policy_from_config(config)
    assert [e.path for e in exc.value.errors] == [path]
    assert path in exc.value.detail


# --- properties ----------------------------------------------------------------------------

INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
)
POLICIES = st.builds(
    lambda target, warn, reassign: SlaPolicy(
        target=target * M,
        warn_before=min(warn, target) * M,
        reassign_after_breach=None if reassign is None else reassign * M,
    ),
    st.integers(min_value=1, max_value=5 * 9 * 60),
    st.integers(min_value=0, max_value=120),
    st.none() | st.integers(min_value=1, max_value=600),
)


@settings(max_examples=100, deadline=None)
@given(POLICIES, INSTANTS)
def test_deadlines_are_ordered_and_hold_the_promised_working_time(
    policy: SlaPolicy, started: datetime
) -> None:
    cal = default_calendar()
    deadlines = sla_deadlines(policy, cal, started)
    assert started <= deadlines.warn_at <= deadlines.due_at
    assert working_time_between(cal, started, deadlines.due_at) == policy.target
    assert working_time_between(cal, deadlines.warn_at, deadlines.due_at) == policy.warn_before
    if deadlines.reassign_at is not None:
        assert working_time_between(cal, deadlines.due_at, deadlines.reassign_at) == (
            policy.reassign_after_breach
        )


@settings(max_examples=100, deadline=None)
@given(POLICIES, INSTANTS, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)))
def test_state_is_consistent_with_the_deadlines(
    policy: SlaPolicy, started: datetime, later: timedelta
) -> None:
    cal, now = default_calendar(), started + later
    state = sla_state(policy, cal, started, now)
    expected = (
        SlaStatus.BREACHED
        if now >= state.due_at
        else SlaStatus.WARNING
        if now >= state.warn_at
        else SlaStatus.ON_TRACK
    )
    assert state.status is expected
    assert state.elapsed_working + state.remaining_working - state.overdue_working == policy.target
    met = sla_state(policy, cal, started, now + H, met_at=now)
    assert met.status is (SlaStatus.MET_LATE if now >= state.due_at else SlaStatus.MET)
    assert met.elapsed_working == state.elapsed_working


def test_documented_policy_is_valid() -> None:
    docs = Path(__file__).parents[2] / "docs" / "calendars.md"
    blocks = re.findall(r"```yaml\n(.*?)```", docs.read_text(encoding="utf-8"), re.S)
    (documented,) = [doc for doc in map(yaml.safe_load, blocks) if "target_minutes" in doc]
    assert policy_from_config(documented) == SlaPolicy(H, 15 * M, True, 2 * H)
