"""SLA clocks over working time: when a clock warns, breaches and reassigns, and where it is now.

Shared by lead first contact (issue 9: by default one working hour from creation to
``contacted``) and, later, service tickets. Pure: the caller stores ``SlaDeadlines`` on its row
so a periodic scan finds what is due with an index (``WHERE due_at <= :now AND met_at IS
NULL``), and calls ``sla_state`` to show a clock or decide what to do.

Deadlines are half-open: ``due_at`` is the first instant at which the clock is late, so work
met at ``due_at`` is ``met_late`` and a scan at ``due_at`` finds the clock ``breached``. All
durations are working time on the business unit's ``WorkCalendar``, including the delay before
reassignment: a lead breached at Friday 18:00 with a two-hour reassignment delay is reassigned
on Monday at 11:00, when someone can pick it up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oneloop.core.calendar import WorkCalendar, add_working_time, working_time_between
from oneloop.core.errors import FieldError, ValidationFailed

# Longest configurable duration, in minutes: a year of wall-clock minutes is far more working
# time than any SLA needs, and bounds how far a deadline search walks.
MAX_MINUTES = 366 * 24 * 60


class SlaStatus(StrEnum):
    ON_TRACK = "on_track"
    WARNING = "warning"
    BREACHED = "breached"
    MET = "met"
    MET_LATE = "met_late"


@dataclass(frozen=True)
class SlaPolicy:
    """What a clock promises, in working time. The default is the lead first-contact SLA."""

    target: timedelta = timedelta(hours=1)
    warn_before: timedelta = timedelta(minutes=15)
    escalate_on_breach: bool = True
    reassign_after_breach: timedelta | None = None

    def __post_init__(self) -> None:
        if self.target <= timedelta(0):
            raise ValueError(f"target must be positive, got {self.target}")
        if not timedelta(0) <= self.warn_before <= self.target:
            raise ValueError(f"warn_before must be within 0..target, got {self.warn_before}")
        if self.reassign_after_breach is not None and self.reassign_after_breach <= timedelta(0):
            raise ValueError(
                f"reassign_after_breach must be positive, got {self.reassign_after_breach}"
            )


@dataclass(frozen=True)
class SlaDeadlines:
    """The instants a scan looks for, all UTC: warn at ``warn_at``, breach at ``due_at``."""

    due_at: datetime
    warn_at: datetime
    reassign_at: datetime | None


@dataclass(frozen=True)
class SlaState:
    """Where a clock stands at ``now`` (or stood when it was met).

    ``remaining_working`` is never negative; ``overdue_working`` is the working time past the
    target. ``should_escalate`` and ``should_reassign`` apply the policy to a running clock.
    """

    status: SlaStatus
    due_at: datetime
    warn_at: datetime
    reassign_at: datetime | None
    elapsed_working: timedelta
    remaining_working: timedelta
    overdue_working: timedelta
    should_escalate: bool
    should_reassign: bool


def sla_deadlines(policy: SlaPolicy, cal: WorkCalendar, started_at: datetime) -> SlaDeadlines:
    """The deadlines to store with the clock when it starts; they never move afterwards
    unless the calendar changes (then recompute them from ``started_at``)."""
    due_at = add_working_time(cal, started_at, policy.target)
    return SlaDeadlines(
        due_at=due_at,
        warn_at=add_working_time(cal, started_at, policy.target - policy.warn_before),
        reassign_at=None
        if policy.reassign_after_breach is None
        else add_working_time(cal, due_at, policy.reassign_after_breach),
    )


def sla_state(
    policy: SlaPolicy,
    cal: WorkCalendar,
    started_at: datetime,
    now: datetime,
    met_at: datetime | None = None,
) -> SlaState:
    """The clock at ``now``; once ``met_at`` is given the clock stopped there and ``now`` no
    longer matters. Work met before ``started_at`` (clock skew between systems) counts as met
    with no time elapsed."""
    deadlines = sla_deadlines(policy, cal, started_at)
    stopped_at = now if met_at is None else met_at
    elapsed = working_time_between(cal, started_at, stopped_at)
    if met_at is not None:
        status = SlaStatus.MET if met_at < deadlines.due_at else SlaStatus.MET_LATE
    elif now >= deadlines.due_at:
        status = SlaStatus.BREACHED
    elif now >= deadlines.warn_at:
        status = SlaStatus.WARNING
    else:
        status = SlaStatus.ON_TRACK
    breached = status is SlaStatus.BREACHED
    return SlaState(
        status=status,
        due_at=deadlines.due_at,
        warn_at=deadlines.warn_at,
        reassign_at=deadlines.reassign_at,
        elapsed_working=elapsed,
        remaining_working=max(policy.target - elapsed, timedelta(0)),
        overdue_working=max(elapsed - policy.target, timedelta(0)),
        should_escalate=breached and policy.escalate_on_breach,
        should_reassign=breached
        and deadlines.reassign_at is not None
        and now >= deadlines.reassign_at,
    )


class SlaPolicyConfig(BaseModel):
    """A policy as a business unit stores it and the API accepts it: whole working minutes."""

    model_config = ConfigDict(extra="forbid")

    target_minutes: int = Field(60, gt=0, le=MAX_MINUTES)
    warn_before_minutes: int = Field(15, ge=0, le=MAX_MINUTES)
    escalate_on_breach: bool = True
    reassign_after_breach_minutes: int | None = Field(None, gt=0, le=MAX_MINUTES)


def policy_from_config(config: SlaPolicyConfig | Mapping[str, object]) -> SlaPolicy:
    """A stored or submitted policy → ``SlaPolicy``, or ``ValidationFailed`` naming the field."""
    if not isinstance(config, SlaPolicyConfig):
        try:
            config = SlaPolicyConfig.model_validate(config)
        except ValidationError as exc:
            raise _invalid([FieldError(tuple(e["loc"]), e["msg"]) for e in exc.errors()]) from None
    if config.warn_before_minutes >= config.target_minutes:
        raise _invalid(
            [
                FieldError(
                    ("warn_before_minutes",),
                    f"must be less than target_minutes ({config.target_minutes})",
                )
            ]
        )
    return SlaPolicy(
        target=timedelta(minutes=config.target_minutes),
        warn_before=timedelta(minutes=config.warn_before_minutes),
        escalate_on_breach=config.escalate_on_breach,
        reassign_after_breach=None
        if config.reassign_after_breach_minutes is None
        else timedelta(minutes=config.reassign_after_breach_minutes),
    )


def _invalid(errors: list[FieldError]) -> ValidationFailed:
    detail = "; ".join(f"{e.path or '(root)'}: {e.msg}" for e in errors)
    return ValidationFailed(f"SLA policy is invalid: {detail}", errors=errors)
