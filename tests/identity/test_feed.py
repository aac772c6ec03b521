"""Identity's changes on the bus (topic ``identity.profiles``): created, merged, in order."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oneloop.core.bus import LocalBus, feeds
from oneloop.core.db import session_factory
from oneloop.identity.feed import TOPIC
from tests.identity.conftest import ev, profile_of, run


def test_profiles_created_and_merged_are_published_in_order(
    session: Session, engine: Engine
) -> None:
    run(session, [ev(1, ("anonymous_id", "a1")), ev(2, ("user_id", "u1"))])
    run(session, [ev(3, ("anonymous_id", "a1"), ("user_id", "u1"))])
    session.commit()
    survivor = profile_of(session, "user_id", "u1")

    assert TOPIC in {f.topic for f in feeds()}
    bus = LocalBus(session_factory(engine))
    got = bus.read("crm-sync", TOPIC, limit=10)
    kinds = [m.body["kind"] for m in got]
    assert kinds == ["created", "created", "merged"]
    assert [m.seq for m in got] == sorted(m.seq for m in got)
    merged = got[-1]
    assert merged.key == survivor == merged.body["profile_id"]
    assert merged.body["other_id"] in {m.key for m in got[:2]} - {survivor}
