"""The SMTP channel against a real aiosmtpd server: MIME that keeps Chinese intact, TLS and
login, and which SMTP failures are worth a retry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest

from oneloop.channels.email import EmailChannel
from oneloop.channels.notify import (
    EMAIL,
    Notification,
    PermanentFailure,
    TemporaryFailure,
    channels_from_settings,
)
from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.errors import ValidationFailed
from tests.channels.conftest import PASSWORD, USER, Certificate, SmtpServer
from tests.servers import free_port

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def note(**changes: str | None) -> Notification:
    values: dict[str, str | None] = {
        "channel": EMAIL,
        "recipient": "wang.fang@example.com",
        "subject": "线索已分配 Lead assigned: 张三",
        "text": "您好，新线索「张三 / 上海星河科技」已分配给您。\nA new lead is yours.",
        "dedupe_key": "lead:01J0000000000000000000000L:assigned",
        "bu_id": "01J0000000000000000000000N",
        "html": None,
    }
    return Notification(**(values | changes))  # type: ignore[arg-type]


def channel(server: SmtpServer, **options: object) -> EmailChannel:
    defaults: dict[str, object] = {
        "sender": "OneLoop 通知 <noreply@oneloop.example>",
        "security": "none",
        "timeout": 5,
        "clock": FixedClock(AT),
    }
    return EmailChannel(server.host, server.port, **(defaults | options))  # type: ignore[arg-type]


def test_chinese_subject_and_bodies_arrive_intact(smtp: SmtpServer) -> None:
    html = "<p>新线索 <b>张三</b> 已分配给您。</p>"
    channel(smtp).send(note(html=html))

    (envelope,) = smtp.mailbox.received
    assert envelope.mail_from == "noreply@oneloop.example"
    assert envelope.rcpt_tos == ["wang.fang@example.com"]
    raw = smtp.mailbox.raw(envelope)
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()  # non-ASCII headers travel as RFC 2047 encoded words
    (mail,) = smtp.mailbox.messages()
    assert mail["Subject"] == "线索已分配 Lead assigned: 张三"
    assert mail["From"].addresses[0].display_name == "OneLoop 通知"
    assert mail["To"] == "wang.fang@example.com"
    assert parsedate_to_datetime(mail["Date"]) == AT
    assert mail["Message-ID"].endswith("@oneloop.example>")
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    assert text is not None and "「张三 / 上海星河科技」" in text.get_content()
    rich = mail.get_body(("html",))
    assert rich is not None and "<b>张三</b>" in rich.get_content()


def test_plain_text_only_when_there_is_no_html(smtp: SmtpServer) -> None:
    channel(smtp).send(note())
    (mail,) = smtp.mailbox.messages()
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"


def test_message_id_is_the_same_for_every_attempt_at_one_notification(smtp: SmtpServer) -> None:
    sender = channel(smtp)
    sender.send(note())
    sender.send(note())
    sender.send(note(dedupe_key="lead:01J0000000000000000000000L:sla-warning"))
    first, again, other = (m["Message-ID"] for m in smtp.mailbox.messages())
    assert first == again
    assert other != first


def test_starttls_with_login(run_smtp: Callable[..., SmtpServer], certificate: Certificate) -> None:
    server = run_smtp(login=True, tls_context=certificate.server, require_starttls=True)
    sender = channel(
        server,
        security="starttls",
        username=USER,
        password=PASSWORD,
        ssl_context=certificate.client,
    )
    sender.send(note())
    assert len(server.mailbox.received) == 1


def test_implicit_tls(run_smtp: Callable[..., SmtpServer], certificate: Certificate) -> None:
    server = run_smtp(ssl_context=certificate.server)
    channel(server, security="tls", ssl_context=certificate.client).send(note())
    assert len(server.mailbox.received) == 1


def test_starttls_refuses_a_certificate_it_does_not_trust(
    run_smtp: Callable[..., SmtpServer], certificate: Certificate
) -> None:
    server = run_smtp(tls_context=certificate.server, require_starttls=True)
    with pytest.raises(TemporaryFailure, match="STARTTLS"):
        channel(server, security="starttls").send(note())  # the system's trust store
    assert server.mailbox.received == []


def test_a_wrong_password_is_temporary_so_the_queue_survives_the_fix(
    run_smtp: Callable[..., SmtpServer],
) -> None:
    server = run_smtp(login=True)
    with pytest.raises(TemporaryFailure, match="535"):
        channel(server, username=USER, password="wrong").send(note())
    assert server.mailbox.received == []


@pytest.mark.parametrize("stage", ["rcpt_reply", "data_reply"])
def test_a_4xx_reply_is_temporary(smtp: SmtpServer, stage: str) -> None:
    setattr(smtp.mailbox, stage, "451 4.3.0 try again later")
    with pytest.raises(TemporaryFailure, match="451"):
        channel(smtp).send(note())


@pytest.mark.parametrize("stage", ["rcpt_reply", "data_reply"])
def test_a_5xx_reply_is_permanent(smtp: SmtpServer, stage: str) -> None:
    setattr(smtp.mailbox, stage, "550 5.1.1 no such user")
    with pytest.raises(PermanentFailure, match="550"):
        channel(smtp).send(note())


def test_nobody_listening_is_temporary() -> None:
    sender = EmailChannel("127.0.0.1", free_port(), sender="noreply@x.example", security="none")
    with pytest.raises(TemporaryFailure, match="cannot connect"):
        sender.send(note())


@pytest.mark.parametrize("recipient", ["not-an-address", "a@b.example, c@d.example"])
def test_a_bad_recipient_is_permanent(smtp: SmtpServer, recipient: str) -> None:
    with pytest.raises(PermanentFailure, match="not an email address"):
        channel(smtp).send(note(recipient=recipient))
    assert smtp.mailbox.received == []


def test_a_line_break_in_the_subject_is_refused_not_folded_into_headers(
    smtp: SmtpServer,
) -> None:
    with pytest.raises(PermanentFailure, match="headers"):
        channel(smtp).send(note(subject="hi\r\nBcc: victim@example.com"))
    assert smtp.mailbox.received == []


def test_settings_make_the_email_channel(smtp: SmtpServer) -> None:
    settings = Settings(
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_from="noreply@oneloop.example",
    )
    channels = channels_from_settings(settings, FixedClock(AT))
    channels[EMAIL].send(note())
    assert len(smtp.mailbox.received) == 1


def test_no_smtp_host_means_no_email_channel() -> None:
    assert EMAIL not in channels_from_settings(Settings())


def test_a_from_setting_without_an_address_is_refused_at_start() -> None:
    settings = Settings(smtp_host="127.0.0.1", smtp_from="OneLoop")
    with pytest.raises(ValidationFailed) as caught:
        channels_from_settings(settings)
    assert [e.loc for e in caught.value.errors] == [("smtp_from",)]
