"""Consumers of the event log: identity, profiles and segments read the log through these.

Each consumer has a durable cursor (``collect_cursor``). One step reads the next events after
the cursor, lets the consumer handle them and moves the cursor, all in one transaction: a crash
anywhere in between rolls back both the consumer's writes and the cursor move, so the same
events come again and nothing is lost or applied twice (the consumer's writes and its cursor
commit together). On PostgreSQL the cursor row is locked for the step, so two workers running
the same consumer take turns instead of doing the work twice.

An event a consumer cannot handle (its code raises on it) is dead-lettered with the consumer's
name and the event's position, and the cursor moves past it: one poison event must not stop the
log. A temporary database failure is not the event's fault: it propagates, and the step is
retried. ``oneloop deadletters replay`` hands such letters back to the consumer.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from oneloop.collect import deadletters
from oneloop.collect.ingest import SourceKey, dead_letter
from oneloop.collect.log import START, LoggedEvent, Position, read_after, read_seqs
from oneloop.collect.models import CursorRow, DeadLetterRow
from oneloop.collect.spec import Invalid
from oneloop.core.clock import Clock, SystemClock
from oneloop.core.db import is_transient, write_lock
from oneloop.core.errors import FieldError

log = logging.getLogger(__name__)

BATCH = 500
ORIGIN = "consumer"
# Modules whose import registers their consumers; later domains add theirs here, so the set
# of consumers is declared in one place (as Datasette declares its default plugins).
BUILTIN_CONSUMERS: tuple[str, ...] = (
    "oneloop.collect.catalog",
    "oneloop.identity.resolver",
    "oneloop.identity.probabilistic",
    "oneloop.profiles.live",
    "oneloop.governance.consent_tracking",
    "oneloop.sales.tasks",
)


class Consumer(Protocol):
    """Handles events in log order. ``handle`` writes through ``session`` and must not commit."""

    name: str

    def handle(self, session: Session, events: Sequence[LoggedEvent]) -> None: ...


class Task(Protocol):
    """Work the log's new events do not drive: following another domain's feed (identity's
    merges and splits) or what the passing of time changes (windows, decay, expiry). ``run``
    does one bounded piece of work in the given transaction and returns how much it did
    (0: nothing to do now); it must not commit."""

    name: str

    def run(self, session: Session, clock: Clock) -> int: ...


_REGISTRY: dict[str, Consumer] = {}
_TASKS: dict[str, Task] = {}


def register(consumer: Consumer) -> Consumer:
    _REGISTRY[consumer.name] = consumer
    return consumer


def register_task(task: Task) -> Task:
    _TASKS[task.name] = task
    return task


def registered() -> list[Consumer]:
    _import_builtins()
    return list(_REGISTRY.values())  # in registration order: a consumer that reads another's
    # results (identity.match reads identity.resolve's) is registered after it


def registered_tasks() -> list[Task]:
    _import_builtins()
    return list(_TASKS.values())


def _import_builtins() -> None:
    for module in BUILTIN_CONSUMERS:
        importlib.import_module(module)


class Behind(Exception):
    """Raised by a consumer that reads another consumer's results when that one has not yet
    handled these events: the step ends without moving the cursor, to be tried again."""


@dataclass
class StepResult:
    processed: int = 0
    failed: int = 0


def step(
    sessions: sessionmaker[Session],
    consumer: Consumer,
    *,
    batch: int = BATCH,
    clock: Clock | None = None,
) -> StepResult:
    """Handle the next events after the consumer's cursor; one transaction."""
    clock = clock or SystemClock()
    with sessions() as session, session.begin():
        write_lock(session)
        position = lock_cursor(session, consumer.name, clock)
        events = read_after(session, position, batch)
        if not events:
            return StepResult()
        try:
            failed = _handle(session, consumer, events, clock)
        except Behind:
            return StepResult()
        last = events[-1].position
        advance(
            session,
            consumer.name,
            seq=last.seq,
            processed=len(events) - failed,
            now=clock.now(),
            tx=last.tx,
            failed=failed,
        )
        return StepResult(processed=len(events) - failed, failed=failed)


def advance(
    session: Session,
    name: str,
    *,
    seq: int,
    processed: int,
    now: datetime,
    tx: int | None = None,
    failed: int = 0,
) -> None:
    """Move cursor ``name`` past what was just handled, counting it, in the handler's
    transaction (so the work and the move commit together or not at all)."""
    values: dict[str, object] = {
        "seq": seq,
        "processed": CursorRow.processed + processed,
        "failed": CursorRow.failed + failed,
        "updated_at": now,
    }
    if tx is not None:
        values["tx"] = tx
    session.execute(update(CursorRow).where(CursorRow.name == name).values(**values))


def run_task(sessions: sessionmaker[Session], task: Task, clock: Clock | None = None) -> int:
    """One piece of a task's work, in its own transaction."""
    with sessions() as session, session.begin():
        write_lock(session)
        return task.run(session, clock or SystemClock())


def drain(
    sessions: sessionmaker[Session],
    consumers: Iterable[Consumer],
    *,
    tasks: Sequence[Task] = (),
    batch: int = BATCH,
    on_progress: Callable[[int, int], None] | None = None,
    clock: Clock | None = None,
) -> dict[str, StepResult]:
    """Run every consumer until it has caught up with the log, then every task until it has
    nothing left to do (``oneloop worker --once``); again while a task's work gave the
    consumers more (a merge's events to re-project)."""
    totals: dict[str, StepResult] = {}
    consumers = list(consumers)
    while True:
        for consumer in consumers:
            total = totals.setdefault(consumer.name, StepResult())
            while True:
                result = step(sessions, consumer, batch=batch, clock=clock)
                total.processed += result.processed
                total.failed += result.failed
                if on_progress:
                    on_progress(total.processed + total.failed, 0)
                if result.processed + result.failed == 0:
                    break
        done = 0
        for task in tasks:
            total = totals.setdefault(task.name, StepResult())
            while (work := run_task(sessions, task, clock)) > 0:
                total.processed += work
                done += work
        if done == 0:
            return totals


def run_forever(
    sessions: sessionmaker[Session],
    consumers: Sequence[Consumer],
    stop: threading.Event,
    *,
    tasks: Sequence[Task] = (),
    idle_wait_s: float = 0.5,
    batch: int = BATCH,
) -> None:
    """The worker loop: step each consumer; when none had work, wait a little (or until stop).

    A temporary database failure is logged and retried after a pause; anything else is a bug
    and ends the loop loudly, since looping on it would only repeat it.
    """
    while not stop.is_set():
        busy = False
        for consumer in consumers:
            try:
                result = step(sessions, consumer, batch=batch)
            except DBAPIError as exc:
                if not is_transient(exc):
                    raise
                log.warning(
                    "consumer.retry", extra={"consumer": consumer.name, "error": str(exc.orig)}
                )
                stop.wait(idle_wait_s * 4)
                continue
            busy = busy or (result.processed + result.failed) > 0
        for task in tasks:
            try:
                busy = run_task(sessions, task) > 0 or busy
            except DBAPIError as exc:
                if not is_transient(exc):
                    raise
                log.warning("task.retry", extra={"task": task.name, "error": str(exc.orig)})
        if not busy:
            stop.wait(idle_wait_s)


def lag(session: Session, consumer: Consumer) -> Position:
    """Where the consumer stands (``START`` when it never ran)."""
    row = session.get(CursorRow, consumer.name)
    return Position(row.tx, row.seq) if row else START


def lock_cursor(session: Session, name: str, clock: Clock) -> Position:
    """Take (creating it if needed) the consumer's cursor row: on PostgreSQL a row lock, which
    is also how a steward's change to what a consumer owns waits for the running step."""
    query = select(CursorRow.tx, CursorRow.seq).where(CursorRow.name == name)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.execute(query).one_or_none()
    if row is None:
        session.execute(
            insert(CursorRow).values(
                name=name, tx=0, seq=0, processed=0, failed=0, updated_at=clock.now()
            )
        )
        session.flush()
        row = session.execute(query).one()
    return Position(row.tx, row.seq)


def _attempt(
    session: Session, consumer: Consumer, events: Sequence[LoggedEvent]
) -> Exception | None:
    """Run the consumer in a savepoint; its failure is returned (and its writes undone), but a
    temporary database failure is raised: it is nobody's bug and the step will be retried."""
    try:
        with session.begin_nested():
            consumer.handle(session, events)
    except Behind:
        raise
    except Exception as exc:  # the consumer's bug: returned, logged by callers
        if isinstance(exc, DBAPIError) and is_transient(exc):
            raise
        return exc
    return None


def _handle(
    session: Session, consumer: Consumer, events: Sequence[LoggedEvent], clock: Clock
) -> int:
    """Handle the batch at once; if that fails, one by one, dead-lettering those that fail."""
    problem = _attempt(session, consumer, events)
    if problem is None:
        return 0
    log.warning(
        "consumer.batch_failed",
        extra={"consumer": consumer.name, "error": type(problem).__name__, "events": len(events)},
    )
    failed = 0
    for event in events:
        problem = _attempt(session, consumer, [event])
        if problem is not None:
            _dead_letter(session, consumer, event, problem, clock)
            failed += 1
    return failed


def _dead_letter(
    session: Session, consumer: Consumer, event: LoggedEvent, exc: Exception, clock: Clock
) -> None:
    log.error(
        "consumer.event_failed",
        exc_info=exc,
        extra={"consumer": consumer.name, "seq": event.seq},
    )
    payload = {"consumer": consumer.name, "seq": event.seq, "message_id": event.message_id}
    dead_letter(
        session,
        SourceKey(id=event.source_id, bu_id=event.bu_id),
        [_failure(consumer, exc, payload, event.message_id)],
        received_at=clock.now(),
        origin=ORIGIN,
        ref=f"consumer:{consumer.name}:seq {event.seq}",
    )


def redeliver(session: Session, letter: DeadLetterRow) -> Invalid | None:
    """Hand a consumer's failed event back to it; ``None`` when it succeeded this time."""
    payload = orjson.loads(letter.payload)
    consumer = {c.name: c for c in registered()}.get(payload.get("consumer"))
    if consumer is None:
        error = FieldError(("consumer",), f"no consumer named {payload.get('consumer')!r}")
        return Invalid("consumer_failed", (error,), payload, letter.message_id)
    problem = _attempt(session, consumer, read_seqs(session, [int(payload["seq"])]))
    return None if problem is None else _failure(consumer, problem, payload, letter.message_id)


def _failure(
    consumer: Consumer, exc: Exception, payload: dict[str, object], message_id: str | None
) -> Invalid:
    error = FieldError((), f"{consumer.name} failed: {type(exc).__name__}: {exc}"[:500])
    return Invalid("consumer_failed", (error,), payload, message_id)


deadletters.register_redeliverer(ORIGIN, redeliver)
