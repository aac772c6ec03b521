"""A lead's notices really arrive: assignment, SLA warning and the breach escalated to the
team's manager go through the outbox and the worker's delivery task to a real SMTP server
(aiosmtpd), once each."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oneloop.channels.email import EmailChannel
from oneloop.channels.outbox import OutboxDelivery
from oneloop.collect import consumers
from oneloop.core.clock import FixedClock
from oneloop.core.db import session_factory
from tests.channels.conftest import SmtpServer
from tests.sales.conftest import SalesUnit, demo_request


def test_assignment_warning_and_escalation_arrive_by_email(
    unit: SalesUnit, engine: Engine, session: Session, clock: FixedClock, smtp: SmtpServer
) -> None:
    sender = EmailChannel(
        smtp.host, smtp.port, sender="leads@oneloop.example", security="none", clock=clock
    )
    deliver = OutboxDelivery({"email": sender})
    sessions = session_factory(engine)
    # Friday 17:30 in Shanghai: first contact due Monday 09:30, warned at 09:15
    clock.at = datetime(2026, 3, 6, 9, 30, tzinfo=UTC)
    unit.feed(*demo_request("u1"))
    for moment in (
        datetime(2026, 3, 9, 1, 20, tzinfo=UTC),
        datetime(2026, 3, 9, 1, 31, tzinfo=UTC),
    ):
        clock.at = moment
        unit.feed()
    for _ in range(2):  # a second run sends nothing again
        while consumers.run_task(sessions, deliver, clock) > 0:
            pass
    got = {(m["To"], str(m["Subject"])) for m in smtp.mailbox.messages()}
    assert got == {
        (unit.rep1.email, "新线索 · New lead"),
        (unit.rep1.email, "线索即将超时 · Lead SLA about to be missed"),
        (unit.manager.email, "线索超时升级 · Lead SLA breached"),
    }
    assert len(smtp.mailbox.received) == 3
    body = next(m for m in smtp.mailbox.messages() if "breached" in str(m["Subject"]))
    assert unit.rep1.email in body.get_content()
