"""The worker's sales tasks: turning fired triggers into leads, and moving the clocks (SLA
steps, recall to the pool).

Triggers follow three feeds other domains keep in commit order — projected events, segment
entries, score awards — each with its own durable cursor, moved in the same transaction as
the leads it made: a crash makes the same hits come again, and a hit that comes again only
enriches the open lead it made the first time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.collect.consumers import advance, lock_cursor, register_task
from oneloop.core.clock import Clock
from oneloop.governance import service as governance
from oneloop.profiles import scores
from oneloop.profiles import service as profiles
from oneloop.sales import leads, outcomes
from oneloop.sales.models import UnitSettingsRow
from oneloop.sales.schemas import SalesSettings, Trigger
from oneloop.segments import service as segments

BATCH = 500
EVENTS = "sales.triggers.events"
SEGMENTS = "sales.triggers.segments"
SCORES = "sales.triggers.scores"


@dataclass
class Triggers:
    """Every unit's triggers, by what they watch."""

    events: dict[str, list[tuple[str, Trigger]]] = field(default_factory=lambda: defaultdict(list))
    segments: dict[str, list[tuple[str, Trigger]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    scores: dict[str, list[tuple[str, Trigger]]] = field(default_factory=lambda: defaultdict(list))


def load_triggers(session: Session) -> Triggers:
    found = Triggers()
    for row in session.scalars(select(UnitSettingsRow)):
        for trigger in SalesSettings.model_validate(row.document).triggers:
            if trigger.kind == "event":
                found.events[trigger.event or ""].append((row.bu_id, trigger))
            elif trigger.kind == "segment_entered":
                found.segments[trigger.segment or ""].append((row.bu_id, trigger))
            else:
                found.scores[trigger.score or ""].append((row.bu_id, trigger))
    return found


@dataclass
class LeadTriggers:
    name: str = "sales.triggers"

    def run(self, session: Session, clock: Clock) -> int:
        triggers = load_triggers(session)
        with outcomes.batched(session, clock.now()):
            done = _events(session, triggers, clock)
            done += _segments(session, triggers, clock)
            return done + _scores(session, triggers, clock)


def _events(session: Session, triggers: Triggers, clock: Clock) -> int:
    position = lock_cursor(session, EVENTS, clock)
    found, upto = profiles.events_named_after(session, position.seq, list(triggers.events), BATCH)
    if upto == position.seq:
        return 0
    for event in found:
        for bu_id, trigger in triggers.events.get(event.name, ()):
            if bu_id != event.bu_id:
                continue
            hit = leads.Hit(
                bu_id=bu_id,
                profile_id=event.profile_id,
                source=trigger.label,
                at=event.at,
                detail={"event": event.name, "seq": event.seq},
                campaign=_campaign(event.properties),
            )
            leads.open_lead(session, hit, clock.now())
    advance(session, EVENTS, seq=upto, processed=len(found), now=clock.now())
    return len(found) or 1


def _segments(session: Session, triggers: Triggers, clock: Clock) -> int:
    position = lock_cursor(session, SEGMENTS, clock)
    changes = segments.changes_after(session, position.seq, BATCH)
    if not changes:
        return 0
    if triggers.segments:
        codes = segments.codes_of(session, [c.segment_id for c in changes])
        group = governance.group_id(session)
        for change in changes:
            owner, code = codes.get(change.segment_id, ("", ""))
            if change.kind != "enter":
                continue
            for bu_id, trigger in triggers.segments.get(code, ()):
                if owner not in (bu_id, group) or not _touched(session, change.profile_id, bu_id):
                    continue
                hit = leads.Hit(
                    bu_id, change.profile_id, trigger.label, change.at,
                    {"segment": code, "cause": change.cause},
                )  # fmt: skip
                leads.open_lead(session, hit, clock.now())
    advance(session, SEGMENTS, seq=changes[-1].seq, processed=len(changes), now=clock.now())
    return len(changes)


def _scores(session: Session, triggers: Triggers, clock: Clock) -> int:
    position = lock_cursor(session, SCORES, clock)
    awards = scores.awards_after(session, position.seq, BATCH)
    if not awards:
        return 0
    if triggers.scores:
        group = governance.group_id(session)
        for award in awards:
            for bu_id, trigger in triggers.scores.get(award.code, ()):
                threshold = trigger.at_least or 0.0
                crossed = award.value_after >= threshold > award.value_after - award.points
                if not crossed or award.bu_id not in (bu_id, group):
                    continue
                if not _touched(session, award.profile_id, bu_id):
                    continue
                hit = leads.Hit(
                    bu_id, award.profile_id, trigger.label, award.at,
                    {"score": award.code, "value": award.value_after},
                )  # fmt: skip
                leads.open_lead(session, hit, clock.now())
    advance(session, SCORES, seq=awards[-1].id, processed=len(awards), now=clock.now())
    return len(awards)


def _touched(session: Session, profile_id: str, bu_id: str) -> bool:
    return profiles.first_seen_in(session, profile_id, bu_id) is not None


def _campaign(properties: dict[str, Any]) -> str | None:  # Any: JSON
    for key in ("campaign", "utm_campaign", "campaign_name"):
        value = properties.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


@dataclass
class LeadClocks:
    """SLA warnings, breaches and re-routing; recall of untouched leads to the pool."""

    name: str = "sales.clocks"

    def run(self, session: Session, clock: Clock) -> int:
        now = clock.now()
        with outcomes.batched(session, now):
            return leads.sla_due(session, now) + leads.recall_due(session, now)


register_task(LeadTriggers())
register_task(LeadClocks())
