"""The one interface every channel implements, and the two ways a send can fail.

A channel turns a ``Notification`` into one outside delivery (an email, a group-robot post)
and says nothing on success. It never retries by itself: it tells the outbox
(``oneloop.channels.outbox``) whether trying again later could help (``TemporaryFailure``: the
server was down, busy or rate-limiting) or not (``PermanentFailure``: the address or the
message was refused). The outbox owns retries, back-off and the promise that a message is
sent at most once. The interface stays this small so that journeys can later send to
customers (SMS, WeChat) through the same outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from oneloop.core.clock import Clock, SystemClock
from oneloop.core.config import Settings


@dataclass(frozen=True)
class Notification:
    """One message to one recipient.

    ``recipient`` is what the channel understands: an email address for ``email``, the name of
    a configured robot for ``robot``. ``text`` is always required, because every channel can
    show plain text; ``html`` (email) and ``markdown`` (robots) are richer versions a channel
    uses when it can. ``dedupe_key`` is the caller's name for "this message", unique within
    ``bu_id`` (e.g. ``lead:01J…:sla-warning``): enqueuing it again is a no-op.
    """

    channel: str
    recipient: str
    subject: str
    text: str
    dedupe_key: str
    bu_id: str
    html: str | None = None
    markdown: str | None = None


class DeliveryFailure(Exception):
    """A send that did not happen. ``detail`` is stored on the outbox row, so it names the
    reason and never a secret (robot URLs carry their keys)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TemporaryFailure(DeliveryFailure):
    """Trying again later may work (connection refused, SMTP 4xx, HTTP 5xx, rate limit).
    ``retry_after`` (seconds) is the server's own hint, when it gave one."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PermanentFailure(DeliveryFailure):
    """Trying again cannot help (SMTP 5xx, unknown robot, refused URL): give up."""


class Channel(Protocol):
    """Delivers one notification or raises a ``DeliveryFailure``; anything else it raises is
    a bug, which the outbox records as a permanent failure and logs with its stack."""

    def send(self, message: Notification) -> None: ...


EMAIL = "email"
ROBOT = "robot"


def channels_from_settings(settings: Settings, clock: Clock | None = None) -> dict[str, Channel]:
    """The channels the settings configure, by the name notifications use: ``email`` when an
    SMTP host is set, ``robot`` when any webhook is. A bad webhook entry fails here, at
    start-up, with the setting named (``ValidationFailed``), not at the first send."""
    # The channel modules import this one for Notification and the failures.
    from oneloop.channels.email import EmailChannel
    from oneloop.channels.webhooks import RobotChannel

    clock = clock or SystemClock()
    channels: dict[str, Channel] = {}
    if settings.smtp_host:
        channels[EMAIL] = EmailChannel.from_settings(settings, clock)
    if settings.webhooks:
        channels[ROBOT] = RobotChannel.from_settings(settings, clock)
    return channels
