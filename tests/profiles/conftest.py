"""Profiles tests feed events the way the tracking API does (the ``feed`` fixture, shared with
the segments tests in ``tests/conftest.py``), or write projected events straight into the
profiles tables (``World``) when a case is about a few rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from oneloop.profiles.models import ProfileEventRow, ProfileRow, ProfileUnitRow


@dataclass
class World:
    """Profiles and their projected events, written straight into the profiles tables."""

    session: Session
    units: dict[str, str]
    seq: int = 0

    def event(
        self, profile: str, name: str, at: datetime, bu: str = "north", **properties: Any
    ) -> int:
        self.seq += 1
        unit = self.units[bu]
        if self.session.get(ProfileRow, profile) is None:
            self.session.add(
                ProfileRow(id=profile, first_seen_at=at, last_seen_at=at, events=0, updated_at=at)
            )
        if self.session.get(ProfileUnitRow, (profile, unit)) is None:
            self.session.add(
                ProfileUnitRow(profile_id=profile, bu_id=unit, first_at=at, last_at=at)
            )
        self.session.add(
            ProfileEventRow(
                seq=self.seq,
                profile_id=profile,
                bu_id=unit,
                source_id="src",
                type="track",
                name=name,
                department="marketing",
                at=at,
                properties=properties,
            )
        )
        self.session.flush()
        return self.seq
