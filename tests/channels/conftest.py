"""Real servers for the channel tests: an aiosmtpd SMTP server (plain, STARTTLS, implicit
TLS, with or without login) and a local HTTP server standing in for WeChat Work's and
DingTalk's robot endpoints. Each runs on a free port of 127.0.0.1 for one test."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import free_port

USER, PASSWORD = "notifier", "s3cret-pass"


# --- SMTP ----------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it accepts. ``rcpt_reply`` / ``data_reply``
    (e.g. ``"451 4.3.0 busy"``) make it refuse instead, until set back to ``None``."""

    received: list[Envelope] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802  (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.data_reply:
            return self.data_reply
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(self.raw(e), policy=policy.default) for e in self.received]  # type: ignore[misc]

    @staticmethod
    def raw(envelope: Envelope) -> bytes:
        content = envelope.content or b""
        return content if isinstance(content, bytes) else content.encode()


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:  # Any: aiosmtpd hands LoginPassword for LOGIN and PLAIN
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 535 itself


@pytest.fixture
def run_smtp() -> Iterator[Callable[..., SmtpServer]]:
    """Start an SMTP server with aiosmtpd's options (``tls_context``, ``require_starttls``,
    ``ssl_context`` for implicit TLS, ``login=True``); every one is stopped after the test."""
    started: list[Controller] = []

    def run(login: bool = False, **options: Any) -> SmtpServer:  # Any: aiosmtpd options
        mailbox = Mailbox()
        if login:
            options |= {"authenticator": _authenticate, "auth_require_tls": False}
        controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        started.append(controller)
        return SmtpServer(controller.hostname, controller.port, mailbox)

    yield run
    for controller in started:
        controller.stop()


@pytest.fixture
def smtp(run_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    return run_smtp()


@dataclass
class Certificate:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, and a client context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory: Path = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return Certificate(server, client)


# --- robot webhooks ------------------------------------------------------------------------


@dataclass
class Posted:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # Any: the JSON the robot was sent


@dataclass
class RobotServer:
    """Stands in for qyapi.weixin.qq.com / oapi.dingtalk.com: records each POST and answers
    with the next queued ``(status, body)``, else ``200 {"errcode": 0}``."""

    url: str
    posted: list[Posted] = field(default_factory=list)
    answers: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)

    def answer(self, status: int, body: object, **headers: str) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers.append((status, raw, headers))


@pytest.fixture
def robot_server() -> Iterator[RobotServer]:
    robot = RobotServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            parts = urlsplit(self.path)
            robot.posted.append(
                Posted(parts.path, parse_qs(parts.query), dict(self.headers), json.loads(raw))
            )
            status, body, headers = (
                robot.answers.pop(0) if robot.answers else (200, b'{"errcode":0,"errmsg":"ok"}', {})
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # Any: logging's arguments
            pass  # the test reads ``posted``; request lines on stderr are noise

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    robot.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield robot
    httpd.shutdown()
    httpd.server_close()
