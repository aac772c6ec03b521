"""Governance tests make people through the tracking pipeline (``feed``), so that consent is
recorded against profiles as identity and the profiles domain made them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oneloop.collect import consumers
from oneloop.collect.consumers import Consumer, Task
from oneloop.collect.ingest import ingest
from oneloop.collect.schemas import Source
from oneloop.collect.spec import parse_batch
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.identity import service as identity
from tests.pipeline import Feed


def person(feed: Feed, session: Session, ctx: Context, user: str = "u1", **traits: object) -> str:
    """A profile in north made by an identify call (user id ``user``); returns its id."""
    feed({"type": "identify", "userId": user, "traits": {"phone": "13800138000", **traits}})
    return lookup(session, ctx, "user_id", f"north:{user}")


def lookup(session: Session, ctx: Context, kind: str, value: str) -> str:
    found = identity.find_profile(session, ctx, kind, value)
    assert found is not None, f"no profile with {kind} {value}"
    return found


def ticked(
    engine: Engine,
    session: Session,
    source: Source,
    clock: FixedClock,
    *calls: dict[str, object],
    consumers_: Sequence[Consumer],
    tasks: Sequence[Task] = (),
    prefix: str = "t",
) -> None:
    """Ingest ``calls`` and run only the given consumers and tasks (``feed`` runs them all)."""
    batch = [
        {"messageId": f"{prefix}{i}", "timestamp": clock.now().isoformat(), **c}
        for i, c in enumerate(calls)
    ]
    messages, invalid = parse_batch({"batch": batch}, clock.now())
    ingest(session, source, messages, invalid, received_at=clock.now(), origin="api", ref="t")
    session.commit()
    consumers.drain(session_factory(engine), consumers_, tasks=tasks, clock=clock)
    session.expire_all()
