"""The outbox on SQLite and PostgreSQL: deduplicated enqueue, at-most-once delivery through
real channels (aiosmtpd, a local robot server), back-off, and business-unit isolation."""

from __future__ import annotations

import threading
from datetime import timedelta
from ipaddress import ip_network

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from oneloop.channels import outbox
from oneloop.channels.email import EmailChannel
from oneloop.channels.models import OutboxRow
from oneloop.channels.notify import EMAIL, ROBOT, Channel, Notification
from oneloop.channels.webhooks import RobotChannel, WeComRobot
from oneloop.collect.consumers import run_task
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.core.errors import NotFound, ValidationFailed
from oneloop.core.ids import BusinessUnitId, UserId
from oneloop.governance.schemas import BusinessUnit
from tests.channels.conftest import RobotServer, SmtpServer
from tests.factories import make_group

MS = timedelta(milliseconds=1)


@pytest.fixture
def units(session: Session, ctx: Context) -> dict[str, BusinessUnit]:
    return {unit.code: unit for unit in make_group(session, ctx)}


def unit_ctx(unit: BusinessUnit, clock: FixedClock) -> Context:
    return Context(bu_id=BusinessUnitId(unit.id), user_id=UserId("rep-1"), clock=clock)


def email(unit: BusinessUnit, key: str, to: str = "rep@example.com", **extra: str) -> Notification:
    return Notification(
        channel=EMAIL,
        recipient=to,
        subject=f"线索提醒 Lead notice {key}",
        text="请尽快跟进。Please follow up.",
        dedupe_key=key,
        bu_id=unit.id,
        **extra,
    )


def mail_channels(smtp: SmtpServer, clock: FixedClock) -> dict[str, Channel]:
    sender = EmailChannel(
        smtp.host, smtp.port, sender="noreply@oneloop.example", security="none", clock=clock
    )
    return {EMAIL: sender}


def subjects(smtp: SmtpServer) -> list[str]:
    return [str(m["Subject"]) for m in smtp.mailbox.messages()]


# --- enqueue -------------------------------------------------------------------------------


def test_enqueue_twice_with_one_dedupe_key_keeps_the_first(
    session: Session, ctx: Context, units: dict[str, BusinessUnit]
) -> None:
    first = outbox.enqueue(session, ctx, email(units["north"], "lead:1:assigned"))
    again = outbox.enqueue(
        session, ctx, email(units["north"], "lead:1:assigned", to="other@example.com")
    )
    session.commit()
    assert again == first
    assert again.recipient == "rep@example.com"
    assert session.scalar(select(func.count()).select_from(OutboxRow)) == 1


def test_the_same_dedupe_key_in_another_unit_is_another_message(
    session: Session, ctx: Context, units: dict[str, BusinessUnit]
) -> None:
    north = outbox.enqueue(session, ctx, email(units["north"], "lead:1:assigned"))
    south = outbox.enqueue(session, ctx, email(units["south"], "lead:1:assigned"))
    assert north.id != south.id


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"recipient": "not an address"}, "recipient"),
        ({"channel": "Email!"}, "channel"),
        ({"subject": "line\nbreak"}, "subject"),
        ({"text": "  "}, "text"),
        ({"dedupe_key": ""}, "dedupe_key"),
        ({"channel": ROBOT, "recipient": "x/y"}, "recipient"),
    ],
)
def test_a_bad_notification_is_refused_naming_the_field(
    session: Session,
    ctx: Context,
    units: dict[str, BusinessUnit],
    changes: dict[str, str],
    field: str,
) -> None:
    values = vars(email(units["north"], "k")) | changes
    with pytest.raises(ValidationFailed) as caught:
        outbox.enqueue(session, ctx, Notification(**values))
    assert [e.loc for e in caught.value.errors] == [(field,)]


def test_a_unit_cannot_enqueue_for_another_unit(
    session: Session, clock: FixedClock, units: dict[str, BusinessUnit]
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        outbox.enqueue(session, unit_ctx(units["north"], clock), email(units["south"], "k"))
    assert [e.loc for e in caught.value.errors] == [("bu_id",)]


# --- delivery ------------------------------------------------------------------------------


def test_due_items_are_sent_in_order_and_never_again(
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    for key in ("a", "b", "c"):
        outbox.enqueue(session, ctx, email(units["north"], key))
        clock.advance(MS)  # ids order by their millisecond; within one, arbitrarily
    session.commit()
    channels = mail_channels(smtp, clock)

    report = outbox.deliver_due(session, channels, clock.now())
    assert (report.claimed, report.sent) == (3, 3)
    assert subjects(smtp) == [f"线索提醒 Lead notice {k}" for k in ("a", "b", "c")]
    items = outbox.list_outbox(session, ctx)
    assert {(i.status, i.attempts, i.sent_at) for i in items} == {("sent", 1, clock.now())}

    clock.advance(timedelta(days=1))
    assert outbox.deliver_due(session, channels, clock.now()).claimed == 0
    assert len(smtp.mailbox.received) == 3


def test_limit_bounds_one_run(
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    for key in ("a", "b", "c"):
        outbox.enqueue(session, ctx, email(units["north"], key))
        clock.advance(MS)  # ids order by their millisecond; within one, arbitrarily
    session.commit()
    assert outbox.deliver_due(session, mail_channels(smtp, clock), clock.now(), limit=2).sent == 2
    assert [i.status for i in outbox.list_outbox(session, ctx)] == ["pending", "sent", "sent"]
    assert subjects(smtp) == [f"线索提醒 Lead notice {k}" for k in ("a", "b")]


def test_a_temporary_failure_is_retried_after_back_off(
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    item = outbox.enqueue(session, ctx, email(units["north"], "k"))
    session.commit()
    channels = mail_channels(smtp, clock)
    smtp.mailbox.rcpt_reply = "451 4.3.0 mailbox busy"

    report = outbox.deliver_due(session, channels, clock.now())
    assert (report.retrying, report.sent) == (1, 0)
    waiting = outbox.get_outbox_item(session, ctx, item.id)
    assert waiting.status == "pending"
    assert waiting.attempts == 1
    assert waiting.next_attempt_at == clock.now() + timedelta(seconds=60)
    assert waiting.last_error is not None and "451" in waiting.last_error

    smtp.mailbox.rcpt_reply = None
    assert outbox.deliver_due(session, channels, clock.now()).claimed == 0  # not yet due
    clock.advance(timedelta(seconds=60))
    assert outbox.deliver_due(session, channels, clock.now()).sent == 1
    done = outbox.get_outbox_item(session, ctx, item.id)
    assert (done.status, done.attempts, done.last_error) == ("sent", 2, None)
    assert len(smtp.mailbox.received) == 1


def test_back_off_doubles_up_to_its_cap() -> None:
    policy = outbox.RetryPolicy(base_seconds=60, max_seconds=600)
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [60, 120, 240, 480, 600]
    assert policy.delay(1, retry_after=300).total_seconds() == 300


def test_too_many_temporary_failures_give_up(
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    item = outbox.enqueue(session, ctx, email(units["north"], "k"))
    session.commit()
    smtp.mailbox.data_reply = "421 4.7.0 try later"
    policy = outbox.RetryPolicy(base_seconds=1, max_attempts=2)
    channels = mail_channels(smtp, clock)
    assert outbox.deliver_due(session, channels, clock.now(), policy=policy).retrying == 1
    clock.advance(timedelta(seconds=1))
    report = outbox.deliver_due(session, channels, clock.now(), policy=policy)
    assert report.failed_ids == [item.id]
    failed = outbox.get_outbox_item(session, ctx, item.id)
    assert (failed.status, failed.attempts) == ("failed", 2)


def test_a_permanent_failure_is_not_retried(
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    item = outbox.enqueue(session, ctx, email(units["north"], "k"))
    session.commit()
    smtp.mailbox.rcpt_reply = "550 5.1.1 no such user"
    channels = mail_channels(smtp, clock)
    assert outbox.deliver_due(session, channels, clock.now()).failed == 1
    smtp.mailbox.rcpt_reply = None
    clock.advance(timedelta(days=1))
    assert outbox.deliver_due(session, channels, clock.now()).claimed == 0
    failed = outbox.get_outbox_item(session, ctx, item.id)
    assert failed.status == "failed"
    assert failed.last_error is not None and "550" in failed.last_error
    assert smtp.mailbox.received == []


def test_a_claim_without_an_outcome_is_never_sent_again(
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    """A deliverer that died after its claim committed: it may have sent, so nobody
    sends again; after ``stale_after`` the row says so."""
    item = outbox.enqueue(session, ctx, email(units["north"], "k"))
    session.commit()
    claimed, _ = outbox.claim_due(session, [EMAIL], clock.now(), 10)
    session.commit()
    assert [c.id for c in claimed] == [item.id]

    channels = mail_channels(smtp, clock)
    clock.advance(timedelta(minutes=5))
    assert outbox.deliver_due(session, channels, clock.now()).claimed == 0
    assert outbox.get_outbox_item(session, ctx, item.id).status == "sending"

    clock.advance(outbox.DEFAULT_POLICY.stale_after)
    assert outbox.deliver_due(session, channels, clock.now()).interrupted == 1
    stuck = outbox.get_outbox_item(session, ctx, item.id)
    assert stuck.status == "unknown"
    assert stuck.last_error == outbox.INTERRUPTED
    assert smtp.mailbox.received == []


def test_two_deliverers_at_once_send_each_item_once(
    engine: Engine,
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    keys = [f"k{n}" for n in range(8)]
    for key in keys:
        outbox.enqueue(session, ctx, email(units["north"], key))
    session.commit()
    channels = mail_channels(smtp, clock)
    sessions = session_factory(engine)
    start = threading.Barrier(2)
    reports: list[outbox.DeliveryReport] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            with sessions() as own:
                start.wait()
                reports.append(outbox.deliver_due(own, channels, clock.now(), limit=3))
                reports.append(outbox.deliver_due(own, channels, clock.now(), limit=3))
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.sent for r in reports) == len(keys)
    assert sorted(subjects(smtp)) == sorted(f"线索提醒 Lead notice {k}" for k in keys)


def test_items_of_a_channel_not_configured_wait(
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    robot = Notification(
        channel=ROBOT,
        recipient="sales",
        subject="s",
        text="t",
        dedupe_key="robot",
        bu_id=units["north"].id,
    )
    outbox.enqueue(session, ctx, robot)
    session.commit()
    assert outbox.deliver_due(session, mail_channels(smtp, clock), clock.now()).claimed == 0
    assert [i.status for i in outbox.list_outbox(session, ctx)] == ["pending"]


def test_a_robot_notification_goes_through_the_outbox(
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    robot_server: RobotServer,
) -> None:
    north = units["north"]
    hook = WeComRobot(
        f"{robot_server.url}/send?key=k",
        label="sales",
        allowed_networks=[ip_network("127.0.0.1/32")],
    )
    channels: dict[str, Channel] = {ROBOT: RobotChannel({f"{north.id}/sales": hook})}
    note = Notification(
        channel=ROBOT,
        recipient="sales",
        subject="SLA 超时 SLA breached",
        text="线索「张三」已超时。",
        markdown="**SLA 超时**",
        dedupe_key="lead:1:breach",
        bu_id=north.id,
    )
    outbox.enqueue(session, ctx, note)
    session.commit()
    assert outbox.deliver_due(session, channels, clock.now()).sent == 1
    assert robot_server.posted[0].body == {
        "msgtype": "markdown",
        "markdown": {"content": "**SLA 超时**"},
    }


def test_the_worker_task_claims_then_sends_after_the_commit(
    engine: Engine,
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    item = outbox.enqueue(session, ctx, email(units["north"], "k"))
    session.commit()
    task = outbox.OutboxDelivery(mail_channels(smtp, clock))
    sessions = session_factory(engine)
    assert run_task(sessions, task, clock) == 1
    assert len(smtp.mailbox.received) == 1
    session.expire_all()
    assert outbox.get_outbox_item(session, ctx, item.id).status == "sent"
    assert run_task(sessions, task, clock) == 0
    assert len(smtp.mailbox.received) == 1


def test_the_worker_task_sends_nothing_when_its_transaction_rolls_back(
    engine: Engine,
    session: Session,
    ctx: Context,
    clock: FixedClock,
    units: dict[str, BusinessUnit],
    smtp: SmtpServer,
) -> None:
    item = outbox.enqueue(session, ctx, email(units["north"], "k"))
    session.commit()
    task = outbox.OutboxDelivery(mail_channels(smtp, clock))
    with session_factory(engine)() as worker:
        worker.begin()
        assert task.run(worker, clock) == 1
        worker.rollback()
    assert smtp.mailbox.received == []
    session.expire_all()
    assert outbox.get_outbox_item(session, ctx, item.id).status == "pending"


# --- reading, per business unit ------------------------------------------------------------


def test_listing_is_per_unit_unless_group_wide(
    session: Session, ctx: Context, clock: FixedClock, units: dict[str, BusinessUnit]
) -> None:
    north_item = outbox.enqueue(session, ctx, email(units["north"], "n"))
    south_item = outbox.enqueue(session, ctx, email(units["south"], "s"))
    session.commit()
    north, south = unit_ctx(units["north"], clock), unit_ctx(units["south"], clock)

    assert [i.id for i in outbox.list_outbox(session, north)] == [north_item.id]
    assert [i.id for i in outbox.list_outbox(session, south)] == [south_item.id]
    assert {i.id for i in outbox.list_outbox(session, ctx)} == {north_item.id, south_item.id}
    assert outbox.get_outbox_item(session, north, north_item.id) == north_item
    with pytest.raises(NotFound):
        outbox.get_outbox_item(session, south, north_item.id)


def test_listing_pages_newest_first_and_filters_by_status(
    session: Session, ctx: Context, clock: FixedClock, units: dict[str, BusinessUnit]
) -> None:
    made = []
    for n in range(3):
        made.append(outbox.enqueue(session, ctx, email(units["north"], f"k{n}")))
        clock.advance(MS)
    session.commit()
    first = outbox.list_outbox(session, ctx, limit=2)
    assert [i.id for i in first] == [made[2].id, made[1].id]
    rest = outbox.list_outbox(session, ctx, before=first[-1].id)
    assert [i.id for i in rest] == [made[0].id]
    assert outbox.list_outbox(session, ctx, status="sent") == []
    with pytest.raises(ValidationFailed) as caught:
        outbox.list_outbox(session, ctx, status="lost")
    assert [e.loc for e in caught.value.errors] == [("status",)]
