"""Email over SMTP (smtplib): one connection per message, MIME built by the standard library.

Failures are sorted by what a retry could change. A refused connection, a timeout, a lost
connection or a 4xx reply is temporary; a 5xx reply to the message itself (sender, recipient
or data refused) is permanent. Whatever goes wrong before the message is offered (connect,
STARTTLS, login, including a 5xx such as 535 to a wrong password) is about our own
configuration, not this message, so it is temporary too: once the setting is fixed the queue
is delivered instead of having failed for good.

The Message-ID is derived from the notification's business unit and dedupe key, so the same
notification always carries the same id: a receiver that deduplicates on it (most do) shows
one message even if a reply was lost after the server had accepted it.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal

from email_validator import EmailNotValidError, validate_email

from oneloop.channels.notify import Notification, PermanentFailure, TemporaryFailure
from oneloop.core.clock import Clock, SystemClock
from oneloop.core.config import Settings
from oneloop.core.errors import FieldError, ValidationFailed

log = logging.getLogger(__name__)

Security = Literal["none", "starttls", "tls"]


class EmailChannel:
    """Sends each notification as one email to its recipient address.

    ``ssl_context`` defaults to the system's trusted certificates with host-name checking;
    tests pass one that trusts their own certificate."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.envelope_from = _sender_address(sender)
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.clock = clock or SystemClock()
        self.ssl_context = ssl_context or ssl.create_default_context()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> EmailChannel:
        if not settings.smtp_host:
            raise ValidationFailed(
                "no SMTP server is configured",
                [FieldError(("smtp_host",), "set ONELOOP_SMTP_HOST")],
            )
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_from,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout_seconds,
            clock=clock,
        )

    def send(self, message: Notification) -> None:
        recipient = _recipient_address(message.recipient)
        mail = self.compose(message, recipient)
        smtp = self._open()
        try:
            try:
                smtp.send_message(mail, from_addr=self.envelope_from, to_addrs=[recipient])
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()))
                raise _by_code(code, reply, "recipient refused") from exc
            except smtplib.SMTPResponseException as exc:
                raise _by_code(exc.smtp_code, exc.smtp_error, "message refused") from exc
            except smtplib.SMTPNotSupportedError as exc:
                # The address needs SMTPUTF8, which this server does not offer.
                raise PermanentFailure(f"SMTP server cannot take this address: {exc}") from exc
            except (smtplib.SMTPException, OSError) as exc:
                raise TemporaryFailure(f"SMTP connection failed while sending: {exc}") from exc
        finally:
            _quit(smtp)

    def compose(self, message: Notification, recipient: str) -> EmailMessage:
        """The MIME message: UTF-8 throughout (headers as RFC 2047 words, bodies as
        quoted-printable or base64), plain text first and HTML as the preferred alternative."""
        mail = EmailMessage()
        try:
            mail["Subject"] = message.subject
            mail["From"] = self.sender
            mail["To"] = recipient
        except ValueError as exc:  # a line break in a header: refused, never folded in
            raise PermanentFailure(f"cannot build the email headers: {exc}") from exc
        mail["Date"] = format_datetime(self.clock.now())
        mail["Message-ID"] = message_id(message, self.envelope_from)
        mail.set_content(message.text, charset="utf-8")
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html", charset="utf-8")
        return mail

    def _open(self) -> smtplib.SMTP:
        """A connection ready to send: TLS as configured, logged in when a user is set."""
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self.ssl_context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(
                f"cannot connect to the SMTP server {self.host}:{self.port}: {exc}"
            ) from exc
        try:
            if self.security == "starttls":
                smtp.ehlo()
                smtp.starttls(context=self.ssl_context)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
        # UnicodeError: smtplib sends the login in ASCII only.
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            _quit(smtp)
            raise TemporaryFailure(
                f"SMTP server {self.host}:{self.port} refused the session "
                f"({'STARTTLS' if self.security == 'starttls' else 'handshake'}"
                f"{' or login' if self.username else ''}): {exc}"
            ) from exc
        return smtp


def message_id(message: Notification, sender: str) -> str:
    """The same id for every attempt at one notification (see the module docstring)."""
    digest = hashlib.sha256(f"{message.bu_id}\0{message.dedupe_key}".encode()).hexdigest()
    domain = sender.rpartition("@")[2] or "oneloop.invalid"
    return f"<{digest[:32]}.oneloop@{domain}>"


def _recipient_address(raw: str) -> str:
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise PermanentFailure(f"recipient is not an email address: {exc}") from exc


def _sender_address(sender: str) -> str:
    address = parseaddr(sender)[1]
    if "@" not in address:
        raise ValidationFailed(
            "the From address of notification email is not an email address",
            [FieldError(("smtp_from",), "expected an address, e.g. OneLoop <noreply@example.com>")],
        )
    return address


def _by_code(code: int, reply: bytes | str, what: str) -> TemporaryFailure | PermanentFailure:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    detail = f"SMTP {what}: {code} {text}"
    if 500 <= code < 600:
        return PermanentFailure(detail)
    return TemporaryFailure(detail)


def _quit(smtp: smtplib.SMTP) -> None:
    """End the session politely; once the message is accepted, a failing QUIT must not turn
    into a failure (the outbox would send it again)."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError) as exc:
        log.info("email.quit_failed", extra={"error": type(exc).__name__})
        smtp.close()
