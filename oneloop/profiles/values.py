"""A stored value in its typed columns, so that rules compare numbers as numbers and times as
times with an index, whatever JSON scalar a trait holds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from oneloop.profiles.filters import parse_time
from oneloop.profiles.models import TEXT_LENGTH


@dataclass(frozen=True)
class Typed:
    """``num`` for numbers (booleans as 1 and 0), ``text`` for strings and booleans
    (``true``/``false``), ``at`` for times (a datetime, or a string that is an ISO time)."""

    value: object  # the JSON form stored in ``value``
    num: float | None = None
    text: str | None = None
    at: datetime | None = None


def typed(value: object) -> Typed:
    if isinstance(value, bool):
        return Typed(value, num=1.0 if value else 0.0, text="true" if value else "false")
    if isinstance(value, int | float):
        number = float(value)
        return Typed(value, num=number) if math.isfinite(number) else Typed(None)
    if isinstance(value, datetime):
        at = value.astimezone(UTC)
        return Typed(at.isoformat(), text=at.isoformat()[:TEXT_LENGTH], at=at)
    if isinstance(value, str):
        return Typed(value, text=value[:TEXT_LENGTH], at=parse_time(value))
    return Typed(value)
