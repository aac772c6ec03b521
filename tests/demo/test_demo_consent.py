"""The demo carries consent (sign-up boxes, B2B form opt-ins, unsubscribes), every piece of it
valid for the registry, so that a loaded demo shows opt-in rates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any  # parsed JSON

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from oneloop.collect import consumers
from oneloop.collect.log import LoggedEvent
from oneloop.collect.models import DeadLetterRow
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.demo.generate import generate
from oneloop.demo.load import load_demo
from oneloop.governance import consent_views
from oneloop.governance.consent_tracking import parse
from oneloop.governance.models import ConsentHistoryRow


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, customers=200, seed=7)
    return out


def _messages(demo_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((demo_dir / "events").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def _as_logged(m: dict[str, Any]) -> LoggedEvent:
    return LoggedEvent(
        seq=1, tx=0, bu_id="b", source_id="s", message_id=m["messageId"], type=m["type"],
        event=m.get("event"), name=None, user_id=m.get("userId"),
        anonymous_id=m.get("anonymousId"), group_id=None, previous_id=None,
        timestamp=None, received_at=None, properties=m.get("properties"),  # type: ignore[arg-type]
        traits=m.get("traits"), context=None, identifiers=[],
    )  # fmt: skip


def test_the_demo_sends_consent_both_ways_and_all_of_it_is_valid(demo_dir: Path) -> None:
    messages = _messages(demo_dir)
    events = [m for m in messages if m["type"] == "track" and m["event"] == "Consent Updated"]
    traits = [m for m in messages if m["type"] == "identify" and "consent" in m["traits"]]
    assert events and traits
    statuses = {(m["properties"]["purpose"], m["properties"]["status"]) for m in events}
    assert {("marketing", "granted"), ("marketing", "withdrawn")} <= statuses
    for m in events + traits:
        entries, errors = parse(_as_logged(m))
        assert entries and errors == [], m
    manifest = json.loads((demo_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["journeys"]["consent_withdrawals"] > 0


def test_a_loaded_demo_has_opt_in_rates(
    engine: Engine, session: Session, ctx: Context, demo_dir: Path
) -> None:
    load_demo(session, ctx, demo_dir)
    session.commit()
    sessions = session_factory(engine)
    consumers.drain(sessions, consumers.registered(), tasks=consumers.registered_tasks())
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ConsentHistoryRow))
    refused = session.scalar(
        select(func.count()).select_from(DeadLetterRow).where(DeadLetterRow.origin == "consent")
    )
    assert refused == 0
    summary = consent_views.summary(session, ctx, "appliances")
    rates = {(i.purpose, i.channel): i for i in summary.items}
    assert summary.profiles > 0
    assert rates[("marketing", "sms")].allowed > 0 and rates[("analytics", "any")].allowed > 0
    assert 0 < rates[("marketing", "sms")].opt_in_rate < 1
