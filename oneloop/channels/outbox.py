"""The notification outbox: enqueue in the caller's transaction, deliver later, at most once.

``enqueue`` writes a row in the transaction that decided to notify (a lead assigned, an SLA
about to breach), so the notification exists exactly when that decision commits, and survives
a crash. Enqueuing the same ``(bu_id, dedupe_key)`` again is a no-op that returns the first
row: callers may retry their own work freely.

``deliver_due`` sends what is due in creation order (the order of the ULID ids: by
millisecond, and arbitrary within one). **At most once**: a row is claimed
(``pending`` → ``sending``, attempts + 1) and that claim is committed *before* the send; the
outcome is committed after it. A deliverer that dies between the two leaves the row in
``sending``; after ``RetryPolicy.stale_after`` it becomes ``unknown`` and is never sent
again, since it may already have gone out (DESIGN.md: a message is never sent twice to a
person; a missing reminder is visible in the outbox, a duplicate cannot be taken back).
The one remaining window is a channel that cannot tell "refused" from "reply lost" (a
timeout after the request went out): it reports a temporary failure and the row is retried;
email carries a stable Message-ID so receivers fold such a repeat into one message.

Claims are safe with several deliverers: on PostgreSQL the due rows are selected
``FOR UPDATE SKIP LOCKED`` (a second deliverer takes other rows or none), on SQLite the
claim runs under the database's single write lock (``BEGIN IMMEDIATE``); either way the
claim's ``UPDATE`` also requires ``status = 'pending'``, so a row is claimed once.

A temporary failure is retried with exponential back-off (``next_attempt_at``); a permanent
one, or the last allowed attempt, marks the row ``failed`` with its ``last_error``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from oneloop.channels.models import OutboxRow
from oneloop.channels.notify import (
    EMAIL,
    ROBOT,
    Channel,
    DeliveryFailure,
    Notification,
    PermanentFailure,
    TemporaryFailure,
    channels_from_settings,
)
from oneloop.channels.webhooks import ROBOT_NAME
from oneloop.core.clock import Clock
from oneloop.core.config import Settings
from oneloop.core.context import Context
from oneloop.core.db import in_tenancy, session_factory, write_lock
from oneloop.core.errors import FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id

log = logging.getLogger(__name__)

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
UNKNOWN = "unknown"
STATUSES = (PENDING, SENDING, SENT, FAILED, UNKNOWN)

CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_TEXT = 100_000
# Reads take the row as stored, not as an earlier read in the session left it: delivery
# writes with Core statements, and the app's sessions do not expire objects on commit.
FRESH = {"populate_existing": True}
INTERRUPTED = (
    "delivery was interrupted between claim and outcome: it may or may not have been sent, "
    "and is not sent again"
)


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off ``base * 2^(attempt-1)`` capped at ``max_seconds`` (60 s, 2 min, 4 min …, 1 h),
    or the server's own ``retry_after`` when longer; ``max_attempts`` in all. ``stale_after``
    must exceed the longest a deliverer can take over one batch (timeout × batch size)."""

    base_seconds: float = 60
    max_seconds: float = 3600
    max_attempts: int = 8
    stale_after: timedelta = timedelta(hours=1)

    def delay(self, attempts: int, retry_after: float | None = None) -> timedelta:
        seconds = min(self.base_seconds * 2 ** max(attempts - 1, 0), self.max_seconds)
        if retry_after is not None:
            seconds = max(seconds, min(retry_after, self.max_seconds))
        return timedelta(seconds=seconds)


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class OutboxItem:
    id: str
    bu_id: str
    dedupe_key: str
    channel: str
    recipient: str
    subject: str
    text: str
    html: str | None
    markdown: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    created_at: datetime
    created_by: str

    @property
    def notification(self) -> Notification:
        return Notification(
            channel=self.channel,
            recipient=self.recipient,
            subject=self.subject,
            text=self.text,
            dedupe_key=self.dedupe_key,
            bu_id=self.bu_id,
            html=self.html,
            markdown=self.markdown,
        )


@dataclass
class DeliveryReport:
    """What one ``deliver_due`` did: ``claimed`` = ``sent`` + ``retrying`` + ``failed``;
    ``interrupted`` rows were found stuck in ``sending`` and marked ``unknown``."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    interrupted: int = 0
    failed_ids: list[str] = field(default_factory=list)


# --- enqueue and read ----------------------------------------------------------------------


def enqueue(session: Session, ctx: Context, notification: Notification) -> OutboxItem:
    """Add a notification to the outbox in the caller's transaction (the caller commits).

    A second call with the same ``dedupe_key`` in the same business unit returns the first
    item unchanged, whatever the new content: the key names the message, not its text."""
    _validate(ctx, notification)
    now = ctx.clock.now()
    values = {
        "id": new_id(now),
        "bu_id": notification.bu_id,
        "dedupe_key": notification.dedupe_key,
        "channel": notification.channel,
        "recipient": notification.recipient,
        "subject": notification.subject,
        "text": notification.text,
        "html": notification.html,
        "markdown": notification.markdown,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "created_by": ctx.user_id,
        "updated_at": now,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(OutboxRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["bu_id", "dedupe_key"])
    )
    row = session.execute(
        select(OutboxRow)
        .where(
            OutboxRow.bu_id == notification.bu_id,
            OutboxRow.dedupe_key == notification.dedupe_key,
        )
        .execution_options(**FRESH)
    ).scalar_one()
    return _item(row)


def get_outbox_item(session: Session, ctx: Context, item_id: str) -> OutboxItem:
    query = in_tenancy(select(OutboxRow).where(OutboxRow.id == item_id), OutboxRow.bu_id, ctx)
    row = session.execute(query.execution_options(**FRESH)).scalar_one_or_none()
    if row is None:
        raise NotFound("no such outbox item", item_id=item_id)
    return _item(row)


def list_outbox(
    session: Session,
    ctx: Context,
    *,
    status: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[OutboxItem]:
    """Newest first, the caller's business unit only unless group-wide; page with
    ``before`` = the last id of the previous page."""
    if status is not None and status not in STATUSES:
        raise ValidationFailed(
            "unknown outbox status",
            [FieldError(("status",), f"expected one of {', '.join(STATUSES)}")],
        )
    query = in_tenancy(select(OutboxRow), OutboxRow.bu_id, ctx)
    if status is not None:
        query = query.where(OutboxRow.status == status)
    if before is not None:
        query = query.where(OutboxRow.id < before)
    query = query.order_by(OutboxRow.id.desc()).limit(max(1, min(limit, 500)))
    return [_item(row) for row in session.execute(query.execution_options(**FRESH)).scalars()]


def _validate(ctx: Context, n: Notification) -> None:
    errors: list[FieldError] = []
    if not ctx.is_group_wide and n.bu_id != ctx.bu_id:
        errors.append(FieldError(("bu_id",), "must be your own business unit"))
    if not CHANNEL_NAME.fullmatch(n.channel):
        errors.append(FieldError(("channel",), "expected a channel name such as email or robot"))
    if not n.recipient or len(n.recipient) > 320:
        errors.append(FieldError(("recipient",), "expected 1 to 320 characters"))
    elif n.channel == EMAIL:
        try:
            validate_email(n.recipient, check_deliverability=False)
        except EmailNotValidError as exc:
            errors.append(FieldError(("recipient",), f"not an email address: {exc}"))
    elif n.channel == ROBOT and not ROBOT_NAME.fullmatch(n.recipient):
        errors.append(FieldError(("recipient",), "expected a configured robot's name"))
    if len(n.subject) > 300 or "\r" in n.subject or "\n" in n.subject:
        errors.append(FieldError(("subject",), "expected one line of at most 300 characters"))
    for name, value in (("text", n.text), ("html", n.html), ("markdown", n.markdown)):
        if value is not None and len(value) > MAX_TEXT:
            errors.append(FieldError((name,), f"expected at most {MAX_TEXT:,} characters"))
    if not n.text.strip():
        errors.append(FieldError(("text",), "a plain-text body is required"))
    if not n.dedupe_key or len(n.dedupe_key) > 200:
        errors.append(FieldError(("dedupe_key",), "expected 1 to 200 characters"))
    if errors:
        raise ValidationFailed("the notification cannot be queued", errors)


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        bu_id=row.bu_id,
        dedupe_key=row.dedupe_key,
        channel=row.channel,
        recipient=row.recipient,
        subject=row.subject,
        text=row.text,
        html=row.html,
        markdown=row.markdown,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        claimed_at=row.claimed_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
        created_at=row.created_at,
        created_by=row.created_by,
    )


# --- delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: str
    notification: Notification
    attempts: int


def deliver_due(
    session: Session,
    channels: Mapping[str, Channel],
    now: datetime,
    limit: int = 100,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> DeliveryReport:
    """Send up to ``limit`` due items through ``channels`` and record each outcome.

    It commits, several times (module docstring): first whatever the session holds, then
    the claim, then each outcome; call it on a session with no work of the caller's pending.
    Items of a channel not in ``channels`` are left pending for a deliverer that has it."""
    if session.in_transaction():
        session.commit()
    write_lock(session)
    claimed, interrupted = claim_due(session, channels.keys(), now, limit, policy)
    session.commit()
    report = DeliveryReport(claimed=len(claimed), interrupted=interrupted)
    for item in claimed:
        error = send_one(channels, item)
        write_lock(session)
        record_outcome(session, item, error, now, policy, report)
        session.commit()
    return report


def claim_due(
    session: Session,
    channel_names: Collection[str],
    now: datetime,
    limit: int,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> tuple[list[Claimed], int]:
    """Mark stuck claims ``unknown``, then claim the due items, oldest first, in the
    session's transaction: the caller must commit before sending (and hold SQLite's write
    lock, ``write_lock``). Returns the claimed items and how many were marked unknown."""
    interrupted = session.execute(
        update(OutboxRow)
        .where(OutboxRow.status == SENDING, OutboxRow.claimed_at < now - policy.stale_after)
        .values(status=UNKNOWN, last_error=INTERRUPTED, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if interrupted:
        log.warning("channels.interrupted", extra={"items": interrupted})
    if not channel_names:
        return [], interrupted
    query = (
        select(OutboxRow)
        .where(
            OutboxRow.status == PENDING,
            OutboxRow.next_attempt_at <= now,
            OutboxRow.channel.in_(sorted(channel_names)),
        )
        .order_by(OutboxRow.id)
        .limit(limit)
        .execution_options(**FRESH)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = session.execute(query).scalars().all()
    claimed = [Claimed(row.id, _item(row).notification, row.attempts + 1) for row in rows]
    if claimed:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_([c.id for c in claimed]), OutboxRow.status == PENDING)
            .values(
                status=SENDING,
                attempts=OutboxRow.attempts + 1,
                claimed_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    # The rows were read into the identity map as pending; expire them so a later read in
    # this session sees what was written.
    for row in rows:
        session.expire(row)
    return claimed, interrupted


def send_one(channels: Mapping[str, Channel], item: Claimed) -> DeliveryFailure | None:
    """Send one claimed item; its failure, or ``None`` when it went out. A channel raising
    anything but a ``DeliveryFailure`` has a bug: logged with its stack and recorded as a
    permanent failure (it may have sent, so it is not retried)."""
    try:
        channels[item.notification.channel].send(item.notification)
    except DeliveryFailure as exc:
        return exc
    except Exception as exc:  # a channel's bug: logged, then recorded on the row
        log.error(
            "channels.channel_crashed",
            exc_info=exc,
            extra={"item_id": item.id, "channel": item.notification.channel},
        )
        return PermanentFailure(f"the {item.notification.channel} channel crashed: {exc!r}")
    return None


def record_outcome(
    session: Session,
    item: Claimed,
    error: DeliveryFailure | None,
    now: datetime,
    policy: RetryPolicy,
    report: DeliveryReport,
) -> None:
    """Write one send's outcome (the caller commits) and count it in ``report``."""
    extra = {"item_id": item.id, "channel": item.notification.channel, "attempts": item.attempts}
    if error is None:
        values: dict[str, object] = {"status": SENT, "sent_at": now, "last_error": None}
        report.sent += 1
        log.info("channels.sent", extra=extra)
    elif isinstance(error, TemporaryFailure) and item.attempts < policy.max_attempts:
        values = {
            "status": PENDING,
            "next_attempt_at": now + policy.delay(item.attempts, error.retry_after),
            "last_error": error.detail[:1000],
        }
        report.retrying += 1
        log.warning("channels.retrying", extra=extra)
    else:
        values = {"status": FAILED, "last_error": error.detail[:1000]}
        report.failed += 1
        report.failed_ids.append(item.id)
        log.warning("channels.failed", extra=extra)
    session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == item.id, OutboxRow.status == SENDING)
        .values(**values, updated_at=now)
        .execution_options(synchronize_session=False)
    )


# --- the worker's task ---------------------------------------------------------------------


class OutboxDelivery:
    """Delivery as a worker task (``oneloop.collect.consumers.Task``).

    A task runs inside the worker's transaction and must not commit, but a claim must be
    committed before anything is sent. So ``run`` only claims, and the sends happen once the
    worker has committed that claim (a one-off ``after_commit`` hook), each outcome recorded
    and committed in a session of its own. If the worker's transaction rolls back instead,
    nothing was claimed and nothing is sent."""

    name = "channels.outbox"

    def __init__(
        self,
        channels: Mapping[str, Channel],
        *,
        limit: int = 20,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.channels = dict(channels)
        self.limit = limit
        self.policy = policy

    def run(self, session: Session, clock: Clock) -> int:
        now = clock.now()
        claimed, interrupted = claim_due(
            session, self.channels.keys(), now, self.limit, self.policy
        )
        if claimed:
            bind = session.get_bind()
            assert isinstance(bind, Engine), "the worker's sessions are bound to an engine"

            def deliver(_: Session) -> None:
                self._deliver(bind, claimed, now)

            event.listen(session, "after_commit", deliver, once=True)
        return len(claimed) + interrupted

    def _deliver(self, engine: Engine, claimed: list[Claimed], now: datetime) -> DeliveryReport:
        report = DeliveryReport(claimed=len(claimed))
        with session_factory(engine)() as session:
            for item in claimed:
                error = send_one(self.channels, item)
                write_lock(session)
                record_outcome(session, item, error, now, self.policy, report)
                session.commit()
        return report


def delivery_tasks(settings: Settings, clock: Clock | None = None) -> list[OutboxDelivery]:
    """The delivery task for the channels the settings configure; none when there are none.
    Like ``bus_tasks``, callers add it to ``registered_tasks()``: a task registered at import
    could not be given the settings."""
    channels = channels_from_settings(settings, clock)
    return [OutboxDelivery(channels)] if channels else []
