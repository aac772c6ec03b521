"""Working-hours calendars: the default Shanghai calendar, configuration errors, DST, and
properties checked against a minute-by-minute oracle on short spans."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from oneloop.core.calendar import (
    DAY,
    CalendarConfig,
    NoWorkingTime,
    Window,
    WorkCalendar,
    add_working_time,
    calendar_from_config,
    calendar_to_config,
    default_calendar,
    is_working,
    next_working_moment,
    working_time_between,
)
from oneloop.core.errors import ValidationFailed

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
M = timedelta(minutes=1)


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def plain(
    week: dict[str, list[str]], time_zone: str = "Asia/Shanghai", **extra: object
) -> WorkCalendar:
    """A calendar without public holidays, so a test controls every day off."""
    return calendar_from_config(
        {"time_zone": time_zone, "week": week, "public_holidays": None, **extra}
    )


WEEKDAYS_9_18 = {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
LUNCH = plain({d: ["09:00-12:00", "13:30-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")})
BERLIN_EVERY_DAY = plain(
    {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    "Europe/Berlin",
)
BERLIN_ALWAYS = plain(
    {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    "Europe/Berlin",
)


# --- the default calendar ------------------------------------------------------------------


def test_default_calendar_is_shanghai_office_hours_with_cn_holidays() -> None:
    cal = default_calendar()
    assert cal.time_zone == "Asia/Shanghai"
    assert cal.public_holidays == "CN"
    assert [len(day) for day in cal.week] == [1, 1, 1, 1, 1, 0, 0]
    assert str(cal.week[0][0]) == "09:00-18:00"


def test_friday_1730_plus_one_hour_is_monday_0930() -> None:
    due = add_working_time(default_calendar(), sh(2026, 1, 9, 17, 30), H)
    assert due == sh(2026, 1, 12, 9, 30)
    assert due.tzinfo is UTC


def test_created_on_saturday_is_due_monday_1000() -> None:
    assert add_working_time(default_calendar(), sh(2026, 1, 10, 11, 0), H) == sh(2026, 1, 12, 10, 0)


def test_boundaries_at_nine_and_eighteen() -> None:
    cal = default_calendar()
    assert is_working(cal, sh(2026, 1, 12, 9, 0))
    assert not is_working(cal, sh(2026, 1, 12, 8, 59, 59))
    assert is_working(cal, sh(2026, 1, 12, 17, 59, 59))
    assert not is_working(cal, sh(2026, 1, 12, 18, 0))
    assert next_working_moment(cal, sh(2026, 1, 12, 18, 0)) == sh(2026, 1, 13, 9, 0)
    assert next_working_moment(cal, sh(2026, 1, 12, 9, 0)) == sh(2026, 1, 12, 9, 0)
    # A duration used up exactly at 18:00 ends at 18:00, not on the next morning.
    assert add_working_time(cal, sh(2026, 1, 12, 17, 0), H) == sh(2026, 1, 12, 18, 0)
    assert add_working_time(cal, sh(2026, 1, 12, 8, 0), H) == sh(2026, 1, 12, 10, 0)
    assert working_time_between(cal, sh(2026, 1, 12, 9, 0), sh(2026, 1, 12, 18, 0)) == 9 * H


def test_weekend_is_skipped() -> None:
    cal = default_calendar()
    assert not is_working(cal, sh(2026, 1, 10, 10, 0))
    assert next_working_moment(cal, sh(2026, 1, 10, 10, 0)) == sh(2026, 1, 12, 9, 0)
    assert working_time_between(cal, sh(2026, 1, 9, 17, 0), sh(2026, 1, 12, 10, 0)) == 2 * H


def test_national_day_2026_is_skipped() -> None:
    """Oct 1–7 2026 are off in the package's data; the lead waits until Thursday Oct 8."""
    cal = default_calendar()
    for day in range(1, 8):
        assert not is_working(cal, sh(2026, 10, day, 10, 0)), day
    assert add_working_time(cal, sh(2026, 9, 30, 17, 30), H) == sh(2026, 10, 8, 9, 30)
    assert next_working_moment(cal, sh(2026, 10, 1, 0, 0)) == sh(2026, 10, 8, 9, 0)


def test_makeup_working_days_from_the_package_are_worked() -> None:
    """调休: Sunday 2026-09-20 and Saturday 2026-10-10 are worked for the National Day week."""
    cal = default_calendar()
    assert is_working(cal, sh(2026, 9, 20, 10, 0))
    assert is_working(cal, sh(2026, 10, 10, 9, 0))
    assert not is_working(cal, sh(2026, 10, 11, 10, 0))  # an ordinary Sunday
    assert add_working_time(cal, sh(2026, 9, 19, 10, 0), H) == sh(2026, 9, 20, 10, 0)


def test_makeup_day_before_its_holidays_year_is_worked() -> None:
    """2001-12-29 (a Saturday) was worked for New Year 2002: it lives in the 2002 table."""
    assert is_working(default_calendar(), sh(2001, 12, 29, 10, 0))


def test_two_years_of_default_calendar_match_the_package_working_days() -> None:
    cal = default_calendar()
    table = holidays.country_holidays("CN", years=range(2024, 2028))
    day, days = date(2025, 1, 1), 0
    while day < date(2027, 1, 1):
        days += table.is_working_day(day)
        day += DAY
    total = working_time_between(cal, sh(2025, 1, 1, 0, 0), sh(2027, 1, 1, 0, 0))
    assert total == days * 9 * H


def test_lunch_break_is_not_working_time() -> None:
    assert not is_working(LUNCH, sh(2026, 1, 12, 12, 0))
    assert is_working(LUNCH, sh(2026, 1, 12, 13, 30))
    assert add_working_time(LUNCH, sh(2026, 1, 12, 11, 30), H) == sh(2026, 1, 12, 14, 0)
    assert next_working_moment(LUNCH, sh(2026, 1, 12, 12, 15)) == sh(2026, 1, 12, 13, 30)
    assert working_time_between(LUNCH, sh(2026, 1, 12, 0, 0), sh(2026, 1, 13, 0, 0)) == 7.5 * H


# --- configuration -------------------------------------------------------------------------


def test_explicit_holiday_and_extra_working_day_override_the_week_and_the_package() -> None:
    cal = calendar_from_config(
        {
            "holidays": ["2026-01-13"],
            "extra_working_days": ["2026-01-17", "2026-10-02"],
            "makeup_windows": ["10:00-16:00"],
        }
    )
    assert not is_working(cal, sh(2026, 1, 13, 10, 0))
    assert not is_working(cal, sh(2026, 1, 17, 9, 30))
    assert is_working(cal, sh(2026, 1, 17, 10, 0))
    assert is_working(cal, sh(2026, 10, 2, 10, 0))  # a public holiday this unit works
    assert cal.is_holiday(date(2026, 1, 13))
    assert not cal.is_holiday(date(2026, 10, 2))
    assert cal.is_holiday(date(2026, 10, 1))


def test_extra_working_days_default_to_the_first_working_weekdays_windows() -> None:
    cal = plain({"tue": ["08:00-12:00"]}, extra_working_days=["2026-01-18"])
    assert cal.windows_on(date(2026, 1, 18)) == (Window(8 * H, 12 * H),)


def test_public_holidays_of_another_country_and_subdivision() -> None:
    cal = calendar_from_config(
        {
            "time_zone": "Europe/Berlin",
            "week": WEEKDAYS_9_18,
            "public_holidays": "de",
            "public_holidays_subdivision": "BY",
        }
    )
    assert cal.public_holidays == "DE"
    assert not is_working(cal, berlin(2026, 1, 6, 10, 0))  # Epiphany, Bavaria only
    assert is_working(cal, berlin(2026, 1, 7, 10, 0))


def test_config_round_trips() -> None:
    config = CalendarConfig.model_validate(
        {
            "week": {"mon": ["13:30-18:00", "09:00-12:00"], "sat": ["00:00-24:00"]},
            "holidays": ["2026-02-01"],
            "extra_working_days": ["2026-02-08"],
            "makeup_windows": ["09:00-17:00"],
        }
    )
    cal = calendar_from_config(config)
    assert calendar_from_config(calendar_to_config(cal)) == cal
    assert calendar_to_config(cal).week.mon == ["09:00-12:00", "13:30-18:00"]


def _paths(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.path for e in exc.value.errors]


@pytest.mark.parametrize(
    ("config", "path", "words"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "unknown time zone"),
        ({"time_zone": "../etc/passwd"}, "time_zone", "unknown time zone"),
        ({"time_zone": ""}, "time_zone", "unknown time zone"),
        ({"week": {"mon": ["18:00-09:00"]}}, "week.mon[0]", "ends before"),
        ({"week": {"mon": ["09:00-09:00"]}}, "week.mon[0]", "ends before"),
        ({"week": {"mon": ["25:00-26:00"]}}, "week.mon[0]", "outside"),
        ({"week": {"mon": ["09:60-10:00"]}}, "week.mon[0]", "outside"),
        ({"week": {"mon": ["24:30-24:45"]}}, "week.mon[0]", "outside"),
        ({"week": {"mon": ["9-18"]}}, "week.mon[0]", "not a window"),
        ({"week": {"tue": ["09:00-18:00", "12:00-13:00"]}}, "week.tue[1]", "overlaps"),
        ({"week": {"tue": ["09:00-18:00", "10:00-11:00", "12:00-13:00"]}}, "week.tue[2]", "overl"),
        ({"week": {}}, "week", "no working time"),
        ({"week": {"funday": ["09:00-10:00"]}}, "week.funday", "Extra"),
        ({"holidays": ["2026-02-30"]}, "holidays[0]", "date"),
        ({"extra_working_days": ["tomorrow"]}, "extra_working_days[0]", "date"),
        (
            {"holidays": ["2026-02-01"], "extra_working_days": ["2026-02-01"]},
            "extra_working_days[0]",
            "also listed",
        ),
        ({"public_holidays": "ZZ"}, "public_holidays", "no public holidays"),
        ({"public_holidays_subdivision": "XX"}, "public_holidays_subdivision", "XX"),
        (
            {"public_holidays": None, "public_holidays_subdivision": "BY"},
            "public_holidays_subdivision",
            "needs",
        ),
        ({"makeup_windows": []}, "makeup_windows", "at least one"),
        ({"makeup_windows": ["17:00-08:00"]}, "makeup_windows[0]", "ends before"),
        ({"timezone": "Asia/Shanghai"}, "timezone", "Extra"),
    ],
)
def test_bad_config_names_the_field(config: dict[str, object], path: str, words: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        calendar_from_config(config)
    assert path in _paths(exc)
    message = next(e.msg for e in exc.value.errors if e.path == path)
    assert words.lower() in message.lower()
    assert path in exc.value.detail


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ValidationFailed) as exc:
        calendar_from_config(
            {"time_zone": "Nowhere", "week": {"mon": ["x"], "tue": ["10:00-09:00"]}}
        )
    assert _paths(exc) == ["time_zone", "week.mon[0]", "week.tue[0]"]


def test_window_dataclass_refuses_bad_bounds() -> None:
    with pytest.raises(ValueError, match="start < end"):
        Window(10 * H, 9 * H)
    with pytest.raises(ValueError, match="start < end"):
        Window(timedelta(0), 25 * H)
    with pytest.raises(ValueError, match="sorted and disjoint"):
        WorkCalendar("UTC", ((Window(9 * H, 12 * H), Window(11 * H, 13 * H)), *[()] * 6))
    with pytest.raises(ValueError, match="7 days"):
        WorkCalendar("UTC", ((),))


# --- input checks and guards ---------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    cal = default_calendar()
    naive = datetime(2026, 1, 12, 10, 0)
    for call in (
        lambda: is_working(cal, naive),
        lambda: next_working_moment(cal, naive),
        lambda: add_working_time(cal, naive, H),
        lambda: working_time_between(cal, naive, sh(2026, 1, 13)),
        lambda: working_time_between(cal, sh(2026, 1, 11), naive),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


def test_negative_duration_is_refused_and_zero_gives_start() -> None:
    cal = default_calendar()
    with pytest.raises(ValueError, match="negative"):
        add_working_time(cal, sh(2026, 1, 12, 10, 0), -M)
    assert add_working_time(cal, sh(2026, 1, 10, 10, 0), timedelta(0)) == sh(2026, 1, 10, 10, 0)


def test_reversed_span_has_no_working_time() -> None:
    cal = default_calendar()
    assert working_time_between(cal, sh(2026, 1, 13, 10), sh(2026, 1, 12, 10)) == timedelta(0)


def test_a_calendar_that_never_works_raises_instead_of_looping() -> None:
    idle = WorkCalendar("Asia/Shanghai", ((),) * 7)
    with pytest.raises(NoWorkingTime, match="no working time"):
        next_working_moment(idle, sh(2026, 1, 1))
    with pytest.raises(NoWorkingTime):
        add_working_time(idle, sh(2026, 1, 1), H)
    assert not is_working(idle, sh(2026, 1, 1))
    assert working_time_between(idle, sh(2026, 1, 1), sh(2030, 1, 1)) == timedelta(0)


def test_working_time_resumes_after_a_long_but_finite_closure() -> None:
    closed = frozenset(date(2026, 1, 1) + i * DAY for i in range(400))
    cal = WorkCalendar("UTC", ((Window(9 * H, 18 * H),),) * 7, holidays=closed)
    assert next_working_moment(cal, datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2027, 2, 5, 9, tzinfo=UTC
    )


def test_other_input_zones_give_the_same_instant_in_utc() -> None:
    cal = default_calendar()
    start = sh(2026, 1, 9, 17, 30)
    assert add_working_time(cal, start.astimezone(BERLIN), H) == add_working_time(cal, start, H)


# --- daylight saving -----------------------------------------------------------------------


def test_window_stays_local_across_spring_forward() -> None:
    """Berlin moves from UTC+1 to UTC+2 on Sunday 2026-03-29: 09:00 local is 07:00 UTC."""
    cal = BERLIN_EVERY_DAY
    assert next_working_moment(cal, berlin(2026, 3, 28, 18, 0)) == datetime(
        2026, 3, 29, 7, 0, tzinfo=UTC
    )
    assert add_working_time(cal, berlin(2026, 3, 28, 17, 0), 2 * H) == berlin(2026, 3, 29, 10, 0)
    assert working_time_between(cal, berlin(2026, 3, 29, 0), berlin(2026, 3, 30, 0)) == 9 * H


def test_window_stays_local_across_fall_back() -> None:
    cal = BERLIN_EVERY_DAY
    assert next_working_moment(cal, berlin(2026, 10, 24, 18, 0)) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC
    )
    assert working_time_between(cal, berlin(2026, 10, 25, 0), berlin(2026, 10, 26, 0)) == 9 * H


def test_round_the_clock_day_is_23_or_25_hours_when_clocks_change() -> None:
    cal = BERLIN_ALWAYS
    assert working_time_between(cal, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * H
    assert working_time_between(cal, berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * H
    assert working_time_between(cal, berlin(2026, 1, 1), berlin(2027, 1, 1)) == 365 * 24 * H
    assert is_working(cal, datetime(2026, 3, 29, 1, 30, tzinfo=UTC))


def test_window_spanning_the_skipped_hour_holds_real_time_only() -> None:
    cal = plain({"sun": ["01:00-04:00"]}, "Europe/Berlin")
    # 01:00 CET is 00:00 UTC; 04:00 CEST is 02:00 UTC: two real hours that night.
    assert working_time_between(cal, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 2 * H
    assert working_time_between(cal, berlin(2026, 3, 22), berlin(2026, 3, 23)) == 3 * H


def test_windows_inside_the_skipped_hour_keep_their_order() -> None:
    cal = plain({"sun": ["02:00-02:30", "02:30-03:30"]}, "Europe/Berlin")
    start = berlin(2026, 3, 29, 0, 0)
    end = add_working_time(cal, start, 30 * M)
    assert working_time_between(cal, start, end) == 30 * M
    assert end > next_working_moment(cal, start)


# --- properties ----------------------------------------------------------------------------

CALENDARS = st.sampled_from([default_calendar(), LUNCH, BERLIN_EVERY_DAY, BERLIN_ALWAYS])
INSTANTS = st.datetimes(
    min_value=datetime(2024, 12, 1), max_value=datetime(2027, 1, 31), timezones=st.just(UTC)
)
DURATIONS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40))


@settings(max_examples=150, deadline=None)
@given(CALENDARS, INSTANTS, DURATIONS)
def test_working_time_between_inverts_add_working_time(
    cal: WorkCalendar, start: datetime, duration: timedelta
) -> None:
    end = add_working_time(cal, start, duration)
    assert end >= start
    assert working_time_between(cal, start, end) == duration


@settings(max_examples=150, deadline=None)
@given(CALENDARS, INSTANTS, DURATIONS, DURATIONS)
def test_add_working_time_is_monotonic(
    cal: WorkCalendar, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    low, high = sorted((d1, d2))
    assert add_working_time(cal, start, low) <= add_working_time(cal, start, high)


@settings(max_examples=150, deadline=None)
@given(CALENDARS, INSTANTS)
def test_next_working_moment_is_idempotent_and_working(cal: WorkCalendar, t: datetime) -> None:
    moment = next_working_moment(cal, t)
    assert moment >= t
    assert is_working(cal, moment)
    assert next_working_moment(cal, moment) == moment
    assert working_time_between(cal, t, moment) == timedelta(0)
    assert is_working(cal, t) == (moment == t)


@settings(max_examples=150, deadline=None)
@given(INSTANTS, st.timedeltas(min_value=M, max_value=timedelta(days=30)))
def test_results_never_fall_inside_a_holiday(start: datetime, duration: timedelta) -> None:
    cal = default_calendar()
    for result in (next_working_moment(cal, start), add_working_time(cal, start, duration)):
        local_day = result.astimezone(SHANGHAI).date()
        assert not cal.is_holiday(local_day), result
        assert cal.windows_on(local_day), result


def _oracle_between(cal: WorkCalendar, a: datetime, b: datetime) -> timedelta:
    """Minute by minute, for minute-aligned instants: slow, but obviously right."""
    total, t = timedelta(0), a
    while t < b:
        local = t.astimezone(cal.zone)
        offset = timedelta(hours=local.hour, minutes=local.minute)
        if any(w.start <= offset < w.end for w in cal.windows_on(local.date())):
            total += M
        t += M
    return total


MINUTE_INSTANTS = st.builds(
    lambda base, minutes: base + minutes * M,
    st.sampled_from(
        [
            datetime(2026, 3, 27, tzinfo=UTC),  # Berlin spring forward on the 29th
            datetime(2026, 10, 23, tzinfo=UTC),  # Berlin fall back on the 25th
            datetime(2026, 9, 29, tzinfo=UTC),  # National Day week
            datetime(2026, 1, 8, tzinfo=UTC),
        ]
    ),
    st.integers(min_value=0, max_value=4 * 24 * 60),
)


@settings(max_examples=60, deadline=None)
@given(CALENDARS, MINUTE_INSTANTS, st.integers(min_value=0, max_value=2 * 24 * 60))
def test_working_time_between_matches_a_minute_by_minute_count(
    cal: WorkCalendar, a: datetime, minutes: int
) -> None:
    b = a + minutes * M
    assert working_time_between(cal, a, b) == _oracle_between(cal, a, b)


# --- the documentation's examples ----------------------------------------------------------

DOCS = Path(__file__).parents[2] / "docs" / "calendars.md"


def doc_examples() -> list[dict[str, object]]:
    """Every YAML and JSON block of docs/calendars.md, parsed."""
    blocks = re.findall(r"```(yaml|json)\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    return [yaml.safe_load(body) if lang == "yaml" else json.loads(body) for lang, body in blocks]


def test_documented_calendars_are_valid() -> None:
    calendars = [calendar_from_config(doc) for doc in doc_examples() if "time_zone" in doc]
    assert len(calendars) == 2
    shanghai, berlin_desk = calendars
    assert shanghai.windows_on(date(2026, 12, 24)) == ()
    assert shanghai.week[4][-1] == Window(13.5 * H, 17 * H)
    assert working_time_between(berlin_desk, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * H


def test_documented_error_is_what_the_code_says() -> None:
    (documented,) = [doc for doc in doc_examples() if "errors" in doc]
    with pytest.raises(ValidationFailed) as exc:
        calendar_from_config(
            {"time_zone": "Asia/Shanghia", "week": {"tue": ["09:00-18:00", "12:00-13:00"]}}
        )
    assert exc.value.detail == documented["detail"]
    assert [{"loc": list(e.loc), "path": e.path, "msg": e.msg} for e in exc.value.errors] == (
        documented["errors"]
    )
    assert exc.value.title == documented["title"]
