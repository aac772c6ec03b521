"""Group robots: WeChat Work (企业微信) and DingTalk (钉钉) custom-robot webhooks.

Both take one JSON POST per message and answer ``{"errcode": 0, "errmsg": "ok"}``; anything
but errcode 0 is a failure, temporary only for their rate limits and "system busy". DingTalk's
custom robots may require signing: ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256 over
``"{timestamp}\\n{secret}"`` keyed with the secret) added to the URL's query.

URL safety (DESIGN.md, non-negotiables): the server posts nowhere internal. The host is
resolved and every address checked: loopback, private, link-local, multicast, reserved and
other non-public addresses are refused, and so is plain http, unless the address is in
``ONELOOP_WEBHOOK_ALLOWED_NETWORKS``. The connection then goes to an address that was checked
(the host name only travels in ``Host`` and TLS SNI), so a name that resolves differently a
moment later (DNS rebinding) cannot redirect it; redirects are never followed.

A robot URL carries its key (``key=`` / ``access_token=``): it is a secret, never logged and
never put into an error, which names the robot and the host only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import re
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from oneloop.channels.notify import Notification, PermanentFailure, TemporaryFailure
from oneloop.core.clock import Clock, SystemClock
from oneloop.core.config import Settings
from oneloop.core.errors import FieldError, ValidationFailed

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
# (host, port) -> the addresses it resolves to; socket.getaddrinfo unless a test says otherwise.
Resolver = Callable[[str, int], Sequence[str]]

MAX_ANSWER_BYTES = 64 * 1024
# A robot name, optionally prefixed with the business unit that owns it: "<bu_id>/<name>".
ROBOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ROBOT_KEY = re.compile(rf"(?:[0-9A-Za-z]{{26}}/)?{ROBOT_NAME.pattern}")


# --- URL safety ----------------------------------------------------------------------------


class UnsafeUrl(ValidationFailed):
    """A URL the server refuses to post to: internal, or not https."""

    code = "unsafe-url"
    title = "URL refused"


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``addresses``, all allowed) and what to ask for."""

    scheme: Literal["http", "https"]
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def check_url(
    url: str,
    allowed: Sequence[Network] = (),
    *,
    resolve: Resolver | None = None,
    field: tuple[str | int, ...] = ("url",),
) -> Target:
    """Refuse (``UnsafeUrl``) a URL that is not http(s), names a user, is plain http, or
    resolves to any non-public address, unless every such address is in ``allowed``.
    A name that does not resolve raises ``socket.gaierror``: DNS may be back later."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise _unsafe(field, "expected an http(s) URL with a host")
    if parts.username or parts.password:
        raise _unsafe(field, "a URL with a user name or password is refused")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise _unsafe(field, "the port is not a number from 1 to 65535") from exc
    if scheme == "http" and not allowed:
        raise _unsafe(
            field, "only https URLs are allowed (http only to ONELOOP_WEBHOOK_ALLOWED_NETWORKS)"
        )
    addresses = tuple((resolve or _getaddrinfo)(parts.hostname, port))
    if not addresses:
        raise socket.gaierror(f"{parts.hostname} has no address")
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%")[0])
        if any(address in network for network in allowed):
            continue
        if scheme == "http":
            raise _unsafe(
                field,
                f"http to {address} is refused: only https, or an address in "
                "ONELOOP_WEBHOOK_ALLOWED_NETWORKS",
            )
        kind = internal_kind(address)
        if kind is not None:
            raise _unsafe(
                field,
                f"{parts.hostname} resolves to {address}, a {kind} address; the server posts "
                "only to public addresses unless ONELOOP_WEBHOOK_ALLOWED_NETWORKS allows it",
            )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target("https" if scheme == "https" else "http", parts.hostname, port, path, addresses)


def internal_kind(address: Address) -> str | None:
    """What makes ``address`` internal (loopback, private …), or ``None`` when it is public.
    An IPv4 address inside IPv6 (``::ffff:10.0.0.1``) is judged as the IPv4 one."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "unspecified", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-public"


def _getaddrinfo(host: str, port: int) -> list[str]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _unsafe(field: tuple[str | int, ...], reason: str) -> UnsafeUrl:
    return UnsafeUrl(f"webhook URL refused: {reason}", [FieldError(field, reason)])


# --- posting -------------------------------------------------------------------------------


def _connect_checked(addresses: Sequence[str], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first checked address that answers."""
    problem: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            problem = exc
    raise problem or OSError("no address to connect to")


class _CheckedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target
        self.wait = timeout

    def connect(self) -> None:
        self.sock = _connect_checked(self.target.addresses, self.target.port, self.wait)


class _CheckedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self.target = target
        self.wait = timeout
        self.tls = context

    def connect(self) -> None:
        sock = _connect_checked(self.target.addresses, self.target.port, self.wait)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.target.host)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: float | None


def post_json(
    target: Target, payload: object, *, timeout: float, context: ssl.SSLContext
) -> Answer:
    """One POST to a checked target; never follows a redirect. Connection trouble is
    ``OSError``/``http.client.HTTPException`` for the caller to classify."""
    conn: http.client.HTTPConnection = (
        _CheckedHTTPS(target, timeout, context)
        if target.scheme == "https"
        else _CheckedHTTP(target, timeout)
    )
    body = json.dumps(payload, ensure_ascii=False).encode()
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "OneLoop"},
        )
        response = conn.getresponse()
        return Answer(
            response.status,
            response.read(MAX_ANSWER_BYTES),
            _seconds(response.getheader("Retry-After")),
        )
    finally:
        conn.close()


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# --- robots --------------------------------------------------------------------------------


class _Robot:
    """One configured robot webhook: build the payload, post it, read ``errcode``.

    Subclasses say what their payload looks like, how the URL is signed (if at all) and which
    error codes mean "try later"."""

    kind: str
    temporary_errcodes: frozenset[int]

    def __init__(
        self,
        url: str,
        *,
        label: str,
        allowed_networks: Sequence[Network] = (),
        timeout: float = 10,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
        resolve: Resolver | None = None,
    ) -> None:
        self.url = url
        self.label = label
        self.allowed_networks = tuple(allowed_networks)
        self.timeout = timeout
        self.clock = clock or SystemClock()
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.resolve = resolve

    def payload(self, message: Notification) -> dict[str, Any]:  # Any: the robot's JSON
        raise NotImplementedError

    def signed_url(self) -> str:
        return self.url

    def send(self, message: Notification) -> None:
        where = f"{self.kind} robot {self.label!r}"
        try:
            target = check_url(self.signed_url(), self.allowed_networks, resolve=self.resolve)
        except UnsafeUrl as exc:
            raise PermanentFailure(f"{where}: {exc.detail}") from exc
        except OSError as exc:  # socket.gaierror: the name did not resolve
            raise TemporaryFailure(
                f"{where}: cannot resolve {urlsplit(self.url).hostname}"
            ) from exc
        try:
            answer = post_json(
                target, self.payload(message), timeout=self.timeout, context=self.ssl_context
            )
        except (OSError, http.client.HTTPException) as exc:
            raise TemporaryFailure(
                f"{where}: cannot reach {target.host}: {type(exc).__name__}"
            ) from exc
        self._check(where, answer)

    def _check(self, where: str, answer: Answer) -> None:
        if answer.status == 429 or answer.status >= 500:
            raise TemporaryFailure(f"{where}: HTTP {answer.status}", answer.retry_after)
        if answer.status >= 300:
            raise PermanentFailure(f"{where}: HTTP {answer.status} (redirects are not followed)")
        try:
            reply = json.loads(answer.body)
            errcode = int(reply["errcode"])
        except (ValueError, TypeError, KeyError) as exc:
            raise PermanentFailure(f"{where}: the answer is not the robot's JSON") from exc
        if errcode == 0:
            return
        detail = f"{where}: errcode {errcode} {str(reply.get('errmsg', ''))[:200]}"
        if errcode in self.temporary_errcodes:
            raise TemporaryFailure(detail)
        raise PermanentFailure(detail)


class WeComRobot(_Robot):
    """A WeChat Work group robot (群机器人): markdown when the notification has it, else text.
    Its documented limits are 4096 bytes of markdown and 2048 of text; longer is cut."""

    kind = "wecom"
    # 45009: over the robot's rate limit (20 messages a minute); -1: system busy.
    temporary_errcodes = frozenset({-1, 45009})

    def payload(self, message: Notification) -> dict[str, Any]:  # Any: the robot's JSON
        if message.markdown:
            return {"msgtype": "markdown", "markdown": {"content": clip(message.markdown, 4096)}}
        return {"msgtype": "text", "text": {"content": clip(plain(message), 2048)}}


class DingTalkRobot(_Robot):
    """A DingTalk custom robot (自定义机器人), signed when it has a secret (加签). Its other
    security settings (keywords, IP ranges) are set in DingTalk: a message without the
    keyword is refused with errcode 310000, a permanent failure."""

    kind = "dingtalk"
    # 130101: sending too fast; -1: system busy.
    temporary_errcodes = frozenset({-1, 130101})

    def __init__(self, url: str, *, secret: str | None = None, **options: Any) -> None:
        super().__init__(url, **options)  # Any: _Robot's keyword options
        self.secret = secret

    def payload(self, message: Notification) -> dict[str, Any]:  # Any: the robot's JSON
        if message.markdown:
            return {
                "msgtype": "markdown",
                "markdown": {"title": message.subject, "text": clip(message.markdown, 20000)},
            }
        return {"msgtype": "text", "text": {"content": clip(plain(message), 20000)}}

    def signed_url(self) -> str:
        if not self.secret:
            return self.url
        timestamp = str(int(self.clock.now().timestamp() * 1000))
        parts = urlsplit(self.url)
        query = [*parse_qsl(parts.query), *sign_dingtalk(self.secret, timestamp).items()]
        return parts._replace(query=urlencode(query)).geturl()


def sign_dingtalk(secret: str, timestamp: str) -> dict[str, str]:
    """DingTalk's signing: the query parameters ``timestamp`` and ``sign`` (not yet
    URL-encoded). DingTalk refuses a timestamp more than an hour from its own clock."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return {"timestamp": timestamp, "sign": base64.b64encode(digest).decode()}


def plain(message: Notification) -> str:
    return f"{message.subject}\n{message.text}" if message.subject else message.text


def clip(text: str, max_bytes: int) -> str:
    """At most ``max_bytes`` of UTF-8, cut on a character boundary, marked with an ellipsis."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - 3].decode("utf-8", "ignore") + "…"


Robot = WeComRobot | DingTalkRobot


class RobotChannel:
    """The ``robot`` channel: a notification's recipient names a configured robot.

    A name is looked up first as the notification's business unit's own
    (``"<bu_id>/<name>"``), then as a global one (``"<name>"``). A recipient cannot name
    another unit's robot: it may not contain ``/``."""

    def __init__(self, robots: Mapping[str, Robot]) -> None:
        self.robots = dict(robots)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> RobotChannel:
        robots: dict[str, Robot] = {}
        errors: list[FieldError] = []
        for name, hook in settings.webhooks.items():
            if not ROBOT_KEY.fullmatch(name):
                errors.append(FieldError(("webhooks", name), "expected <name> or <bu_id>/<name>"))
                continue
            url = hook.url.get_secret_value()
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                errors.append(FieldError(("webhooks", name, "url"), "expected an http(s) URL"))
                continue
            options: dict[str, Any] = {  # Any: _Robot's keyword options
                "label": name,
                "allowed_networks": settings.webhook_allowed_networks,
                "clock": clock,
            }
            if hook.kind == "wecom":
                if hook.secret is not None:
                    errors.append(
                        FieldError(("webhooks", name, "secret"), "WeChat Work robots are unsigned")
                    )
                    continue
                robots[name] = WeComRobot(url, **options)
            else:
                secret = hook.secret.get_secret_value() if hook.secret else None
                robots[name] = DingTalkRobot(url, secret=secret, **options)
        if errors:
            raise ValidationFailed("ONELOOP_WEBHOOKS has bad entries", errors)
        return cls(robots)

    def send(self, message: Notification) -> None:
        self.robot_for(message).send(message)

    def robot_for(self, message: Notification) -> Robot:
        name = message.recipient
        if not ROBOT_NAME.fullmatch(name):
            raise PermanentFailure(f"{name!r} is not a robot name")
        robot = self.robots.get(f"{message.bu_id}/{name}") or self.robots.get(name)
        if robot is None:
            raise PermanentFailure(f"no robot named {name!r} is configured")
        return robot
