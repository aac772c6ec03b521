"""The demo's fixed calendar: every time is an integer of milliseconds since the Unix epoch.

No wall-clock time is read anywhere, so that a seed always yields the same bytes. Formatting
half a million timestamps through `datetime` costs seconds; these lookup tables turn an
integer into ISO-8601 text with three string concatenations.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

PERIOD_START = date(2026, 1, 1)
PERIOD_END = date(2026, 9, 30)  # inclusive: the data covers 2026-01-01..2026-09-30 UTC

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

START_MS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 1000
END_MS = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp()) * 1000  # exclusive
PERIOD_DAYS = (END_MS - START_MS) // DAY_MS

# Days either side of the period: skewed client clocks and Beijing-time conversions step a
# little outside it, forecast close dates of open opportunities up to half a year after.
_MARGIN_DAYS = 40
_DAYS_AFTER = 240
_FIRST_DAY = PERIOD_START - timedelta(days=_MARGIN_DAYS)
_FIRST_DAY_MS = START_MS - _MARGIN_DAYS * DAY_MS
_DAY_ISO: tuple[str, ...] = tuple(
    (_FIRST_DAY + timedelta(days=d)).isoformat()
    for d in range(_MARGIN_DAYS + PERIOD_DAYS + _DAYS_AFTER)
)
_DAY_INDEX = {day: i for i, day in enumerate(_DAY_ISO)}
_HMS: tuple[str, ...] = tuple(
    f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)
)
_MILLIS: tuple[str, ...] = tuple(f".{m:03d}Z" for m in range(1000))

BEIJING_OFFSET_MS = 8 * HOUR_MS


def iso_utc(ms: int) -> str:
    """`2026-03-05T06:22:10.123Z`, the form Segment's libraries send."""
    rel = ms - _FIRST_DAY_MS
    return _DAY_ISO[rel // DAY_MS] + "T" + _HMS[rel // 1000 % 86_400] + _MILLIS[rel % 1000]


def local_datetime(ms: int, sep: str = "-", seconds: bool = True) -> str:
    """Beijing wall time without an offset (`2026-03-05 14:22:10`), as Chinese CRM, POS and
    ticketing exports write it; `sep="/"` gives the `2026/03/05 14:22` style."""
    rel = ms + BEIJING_OFFSET_MS - _FIRST_DAY_MS
    day = _DAY_ISO[rel // DAY_MS]
    if sep != "-":
        day = day.replace("-", sep)
    hms = _HMS[rel // 1000 % 86_400]
    return day + " " + (hms if seconds else hms[:5])


def local_date(ms: int) -> str:
    """The Beijing calendar day of an instant, `2026-03-05`."""
    return _DAY_ISO[(ms + BEIJING_OFFSET_MS - _FIRST_DAY_MS) // DAY_MS]


def day_start_ms(iso_day: str) -> int:
    """Midnight UTC of an ISO date inside the table's range."""
    return _FIRST_DAY_MS + _DAY_INDEX[iso_day] * DAY_MS


def utc_date(ms: int) -> str:
    """The UTC calendar day of an instant, `2026-03-05`."""
    return _DAY_ISO[(ms - _FIRST_DAY_MS) // DAY_MS]


def period_days() -> tuple[str, ...]:
    """Every ISO day of the period, in order."""
    return _DAY_ISO[_MARGIN_DAYS : _MARGIN_DAYS + PERIOD_DAYS]
