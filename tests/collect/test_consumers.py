"""The log's consumers: every event once, in commit order, even when writers commit out of order."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.collect import catalog, consumers, deadletters
from oneloop.collect.ingest import ingest
from oneloop.collect.log import LoggedEvent
from oneloop.collect.models import CursorRow, DeadLetterRow
from oneloop.collect.schemas import Source
from oneloop.collect.spec import parse_batch
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from tests.factories import make_group, make_source

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
SEEN = Table(
    "test_seen",
    MetaData(),
    Column("seq", Integer, primary_key=True),  # a second delivery would violate this
    Column("message_id", String(100)),
)


class Recorder:
    """A consumer whose effect is a row per event, written in the step's transaction."""

    def __init__(self, name: str = "test.recorder", poison: str | None = None) -> None:
        self.name = name
        self.poison = poison

    def handle(self, session: Session, events: Sequence[LoggedEvent]) -> None:
        for event in events:
            if event.message_id == self.poison:
                raise ValueError(f"cannot digest {event.message_id}")
        session.execute(insert(SEEN), [{"seq": e.seq, "message_id": e.message_id} for e in events])


@pytest.fixture
def seen(engine: Engine) -> Table:
    SEEN.create(engine)
    return SEEN


def store(session: Session, source: Source, ids: Sequence[str]) -> None:
    batch = [{"type": "track", "event": "Visit", "userId": "u", "messageId": m} for m in ids]
    messages, invalid = parse_batch({"batch": batch}, NOW)
    ingest(session, source, messages, invalid, received_at=NOW, origin="api", ref="test")


def seen_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(SEEN.c.message_id).order_by(SEEN.c.seq)))


def test_a_consumer_sees_each_event_once_and_resumes_from_its_cursor(
    engine: Engine, session: Session, ctx: Context, seen: Table
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    sessions = session_factory(engine)
    store(session, source, ["a", "b", "c"])
    session.commit()
    recorder = Recorder()
    assert consumers.step(sessions, recorder, batch=2).processed == 2
    assert consumers.step(sessions, recorder, batch=2).processed == 1
    assert consumers.step(sessions, recorder, batch=2).processed == 0
    store(session, source, ["d"])
    session.commit()
    consumers.drain(sessions, [recorder])
    assert seen_ids(engine) == ["a", "b", "c", "d"]


def test_a_crash_mid_step_loses_nothing_and_applies_nothing_twice(
    engine: Engine, session: Session, ctx: Context, seen: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    store(session, source, ["a", "b"])
    session.commit()
    sessions = session_factory(engine)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut between handling and moving the cursor")

    with monkeypatch.context() as m:
        m.setattr(consumers, "update", crash)
        with pytest.raises(RuntimeError):
            consumers.step(sessions, Recorder())
    assert seen_ids(engine) == []  # the handler's writes rolled back with the cursor
    consumers.drain(sessions, [Recorder()])
    assert seen_ids(engine) == ["a", "b"]


def test_a_poison_event_is_dead_lettered_and_replayed_after_the_fix(
    engine: Engine, session: Session, ctx: Context, seen: Table
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    store(session, source, ["a", "poison", "c"])
    session.commit()
    sessions = session_factory(engine)
    broken = Recorder(poison="poison")
    consumers.register(broken)
    try:
        totals = consumers.drain(sessions, [broken])
        assert (totals[broken.name].processed, totals[broken.name].failed) == (2, 1)
        assert seen_ids(engine) == ["a", "c"]
        letter = session.scalars(select(DeadLetterRow)).one()
        assert (letter.origin, letter.reason) == ("consumer", "consumer_failed")
        assert "cannot digest poison" in letter.detail
        cursor = session.get(CursorRow, broken.name)
        assert cursor is not None and (cursor.processed, cursor.failed) == (2, 1)

        still = deadletters.replay(session, ctx)
        assert still.still_refused == 1
        broken.poison = None  # the fix is deployed
        fixed = deadletters.replay(session, ctx)
        session.commit()
        assert (fixed.selected, fixed.replayed) == (1, 1)
        assert sorted(seen_ids(engine)) == ["a", "c", "poison"]
        assert deadletters.replay(session, ctx).selected == 0
    finally:
        consumers._REGISTRY.pop(broken.name)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_out_of_order_commits_on_postgresql_are_not_skipped(
    engine: Engine, session: Session, ctx: Context, seen: Table
) -> None:
    """Writer A takes the lower seq but commits after writer B; a reader that ran in between
    must neither skip A's event nor see B's twice."""
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    sessions = session_factory(engine)
    recorder = Recorder()
    slow = sessions()
    store(slow, source, ["early-seq-late-commit"])  # holds its seq, not committed
    with sessions() as fast:
        store(fast, source, ["late-seq-early-commit"])
        fast.commit()
    consumers.drain(sessions, [recorder])
    assert seen_ids(engine) == []  # B's row waits behind A's open transaction
    slow.commit()
    slow.close()
    consumers.drain(sessions, [recorder])
    assert sorted(seen_ids(engine)) == ["early-seq-late-commit", "late-seq-early-commit"]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_concurrent_writers_and_a_consumer_see_every_event_once(
    engine: Engine, session: Session, ctx: Context, seen: Table
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    sessions = session_factory(engine)
    writers, batches, per_batch = 4, 25, 8
    done = threading.Event()
    failures: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for b in range(batches):
                with sessions() as s:
                    store(s, source, [f"w{w}-b{b}-e{i}" for i in range(per_batch)])
                    s.commit()
        except BaseException as exc:  # reported to the test thread below
            failures.append(exc)

    def consume() -> None:
        try:
            while not done.is_set():
                consumers.step(sessions, Recorder(), batch=7)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    reader = threading.Thread(target=consume)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    assert failures == []
    consumers.drain(sessions, [Recorder()])
    got = seen_ids(engine)
    assert len(got) == len(set(got)) == writers * batches * per_batch


def test_the_catalog_lists_what_a_source_sends(
    engine: Engine, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    batch = [
        {"type": "track", "event": "Order Completed", "userId": "u", "properties": {"amount": 1}},
        {"type": "track", "event": "Order Completed", "userId": "v", "properties": {"sku": "x"}},
        {"type": "identify", "userId": "u", "traits": {"email": "a@b.cn"}},
    ]
    messages, invalid = parse_batch({"batch": batch}, NOW)
    ingest(session, source, messages, invalid, received_at=NOW, origin="api", ref="test")
    session.commit()
    consumers.drain(session_factory(engine), consumers.registered())
    entries = catalog.list_catalog(session, ctx, source.id)
    assert [(e.type, e.name, e.count, e.keys) for e in entries] == [
        ("track", "Order Completed", 2, ["amount", "sku"]),
        ("identify", "", 1, ["email"]),
    ]
    assert session.scalar(select(func.count()).select_from(CursorRow)) >= 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_oneloop_worker_once_catches_up_and_says_so(
    db_url: str, engine: Engine, session: Session, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    store(session, source, ["a", "b", "c"])
    session.commit()
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "collect.catalog: 3 processed, 0 failed" in result.output
    again = CliRunner().invoke(app, ["worker", "--once"])
    assert "collect.catalog: 0 processed" in again.output
