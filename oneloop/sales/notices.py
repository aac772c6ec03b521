"""The messages sales sends its own people: a lead assigned, an SLA about to be missed, a
breach escalated to the team's manager. Queued in the channels outbox in the lead's
transaction (so a rolled-back assignment sends nothing), each under a key that makes a retry
a no-op: nobody gets the same notice twice.

The unit's ``notify_channel`` says how: ``email`` to each person's address, or
``robot:NAME`` to a configured WeChat Work / DingTalk group robot.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from oneloop.channels import outbox
from oneloop.channels.notify import Notification
from oneloop.core.clock import FixedClock
from oneloop.core.context import system_context
from oneloop.core.db import memo
from oneloop.governance import users
from oneloop.sales import config
from oneloop.sales.models import LeadRow


def assigned(session: Session, lead: LeadRow, now: datetime) -> None:
    due = _local(session, lead, lead.sla_due_at)
    _send(
        session,
        lead,
        lead.owner_user_id,
        f"assigned:{lead.owner_user_id}:{now.isoformat()}",
        "新线索 · New lead",
        f"您有一条新线索（来源 {lead.source}），请在 {due} 前首次联系。\n"
        f"A new lead ({lead.source}) is yours: first contact is due by {due}.",
        now,
    )


def warning(session: Session, lead: LeadRow, now: datetime) -> None:
    due = _local(session, lead, lead.sla_due_at)
    _send(
        session,
        lead,
        lead.owner_user_id,
        "sla-warning",
        "线索即将超时 · Lead SLA about to be missed",
        f"线索 {lead.id} 尚未联系，将于 {due} 超时。\n"
        f"Lead {lead.id} has not been contacted; its first-contact SLA ends at {due}.",
        now,
    )


def breached(session: Session, lead: LeadRow, manager_id: str | None, now: datetime) -> None:
    owner = _email(session, lead.owner_user_id) or "-"
    _send(
        session,
        lead,
        manager_id,
        "sla-breach",
        "线索超时升级 · Lead SLA breached",
        f"线索 {lead.id} 超过首次联系时限仍未联系（负责人 {owner}）。\n"
        f"Lead {lead.id} missed its first-contact SLA (owner: {owner}).",
        now,
    )


def _send(
    session: Session,
    lead: LeadRow,
    user_id: str | None,
    key: str,
    subject: str,
    text: str,
    now: datetime,
) -> None:
    if user_id is None:
        return
    channel = config.settings_of(session, lead.bu_id).notify_channel
    if channel.startswith("robot:"):
        kind, recipient = "robot", channel.removeprefix("robot:")
    else:
        kind, recipient = "email", _email(session, user_id)
    if not recipient:
        return
    ctx = system_context(FixedClock(now), bu_id=lead.bu_id)  # queued as of the lead's step
    outbox.enqueue(
        session,
        ctx,
        Notification(
            channel=kind,
            recipient=recipient,
            subject=subject,
            text=text,
            dedupe_key=f"lead:{lead.id}:{key}",
            bu_id=lead.bu_id,
        ),
    )


def _email(session: Session, user_id: str | None) -> str:
    if user_id is None:
        return ""
    return memo(session, ("user.email", user_id), lambda: users.user_of(session, user_id).email)


def _local(session: Session, lead: LeadRow, at: datetime | None) -> str:
    """A deadline in the unit's working calendar's zone, as the rep reads it."""
    if at is None:
        return "-"
    zone = config.calendar_of(config.settings_of(session, lead.bu_id)).zone
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
