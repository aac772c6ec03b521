"""``Idempotency-Key`` on every mutating call under ``/api/v1`` (issue 8; IETF draft
"The Idempotency-Key HTTP Header Field"): a client that retries after a lost answer gets the
first answer again instead of a second object.

How it works, and why here: an ASGI middleware, because it must see the whole answer (status,
headers, body) the route produced, which no FastAPI dependency can. Before the route runs it
resolves the caller exactly as ``oneloop.api.auth`` does and *claims* the key by inserting
its row; the unique constraint over (caller, key) is the lock, so of two concurrent requests
with one key only one runs the action, on SQLite and PostgreSQL alike. The other gets 409
while the first is in flight, and the first answer once it is stored.

- A key belongs to one caller: a console user in the unit they act in, one API key, or the
  admin token. Only a SHA-256 of that principal is kept, never the credential. A key is also
  bound to its method, path, query string and body (a salted SHA-256 fingerprint): the same
  key with anything else is a 422 naming the header, never somebody else's answer.
- 5xx, 429 and 408 answers are not kept: the key is released and a retry runs again.
- Answers that show a secret once (a write key, an API key's token, a privacy export) are
  never stored: the route declares ``openapi_extra=shown_once(...)``, the row keeps only the
  status and the new object's id, and a replay is a 409 that names the object.
- Sign-in, sign-out and unit switching (``/api/v1/auth/``) are left out: their answers set or
  carry session secrets. The tracking API (``/v1/``) de-duplicates by ``messageId`` instead.
- Keys live ``ONELOOP_IDEMPOTENCY_KEY_HOURS`` (24 h); expired rows are purged whenever a key is
  claimed. A request that crashed the process mid-action keeps its key "in flight" until it
  expires: whether the action happened is unknown, and a 409 is safer than running it twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio.to_thread
import orjson
from sqlalchemy import (
    Boolean,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oneloop.api import errors
from oneloop.api.auth import caller
from oneloop.api.deps import AppState
from oneloop.core.db import Base, Json, UTCDateTime
from oneloop.core.errors import (
    Conflict,
    FieldError,
    OneLoopError,
    PayloadTooLarge,
    ValidationFailed,
)
from oneloop.core.ids import new_id

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
SHOWN_ONCE = "x-shown-once"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/v1/"
EXCLUDED_PREFIXES = ("/api/v1/auth/",)
MAX_KEY_LENGTH = 200
# Printable ASCII without space, quote, backslash or comma: UUIDs, ULIDs, base64 all fit.
_KEY = re.compile(r"[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]+")
# The largest body any /api/v1 route accepts is a 20 MiB CSV; anything past it is refused
# there too, so holding it here to hash it costs nothing a route would not.
MAX_REQUEST_BYTES = 21 * 1024 * 1024
MAX_STORED_BODY = 1024 * 1024
KEPT_HEADERS = ("content-type", "location", "etag", "content-location")
NOT_KEPT_STATUSES = frozenset({408, 429})


class IdempotencyKeyRow(Base):
    """One claimed key. ``status`` is null while the first request runs ("in flight")."""

    __tablename__ = "api_idempotency_key"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(1000))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[dict[str, str] | None] = mapped_column(Json)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    is_withheld: Mapped[bool] = mapped_column(Boolean)
    object_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), index=True)


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency-key-reused"
    title = "Idempotency key reused"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency-key-in-flight"
    title = "Request with this idempotency key in progress"


class AlreadyDone(Conflict):
    code = "already-done"
    title = "Already done; its answer is shown only once"


def shown_once(id_path: str = "id", location: str | None = None) -> dict[str, object]:
    """``openapi_extra`` for a route whose answer holds a secret (or personal data) shown
    once: a replay under the same key is a 409 naming the object (``id_path`` is the dotted
    path of its id in the answer, ``location`` a template with ``{id}``) and no byte of the
    answer is stored. It also tells readers of the OpenAPI document."""
    marker: dict[str, str] = {"id": id_path}
    if location is not None:
        marker["location"] = location
    return {SHOWN_ONCE: marker}


def applies(method: str, path: str) -> bool:
    return (
        method in MUTATING
        and path.startswith(API_PREFIX)
        and not path.startswith(EXCLUDED_PREFIXES)
    )


def parse_key(raw: str) -> str:
    """The key as sent, or as an RFC 8941 string (``"…"``), which is what the draft specifies
    and what clients that follow it send."""
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    problem = None
    if not key:
        problem = "is empty"
    elif len(key) > MAX_KEY_LENGTH:
        problem = f"is longer than {MAX_KEY_LENGTH} characters"
    elif not _KEY.fullmatch(key):
        problem = "may hold printable ASCII only, without spaces, quotes, commas or backslashes"
    if problem is not None:
        raise ValidationFailed(
            f"the {HEADER} header {problem}; send e.g. a UUID",
            [FieldError(("header", HEADER), problem)],
            header=HEADER,
        )
    return key


def principal_of(request: Request, state: AppState) -> str | None:
    """A SHA-256 naming the caller, or None when the request is not authenticated (the route
    will refuse it the same way, and there is nothing to keep). A console session is its user
    in the unit it acts in, so switching units does not replay the other unit's answers."""
    try:
        found = caller(request, state)
    except OneLoopError:
        return None
    if found.via == "session":
        raw = f"session|{found.ctx.user_id}|{found.ctx.bu_id}"
    else:
        raw = f"{found.via}|{request.headers.get('Authorization', '').partition(' ')[2]}"
    return hashlib.sha256(raw.encode()).hexdigest()


def fingerprint(salt: str, query: bytes, body: bytes) -> str:
    """Salted with the row's id, so equal bodies never show as equal hashes across rows."""
    return hashlib.sha256(salt.encode() + b"\n" + query + b"\n" + body).hexdigest()


@dataclass(frozen=True)
class Attempt:
    principal: str
    key: str
    method: str
    path: str
    query: bytes
    body: bytes


@dataclass(frozen=True)
class Claimed:
    row_id: str


@dataclass(frozen=True)
class Stored:
    row: IdempotencyKeyRow


def claim(state: AppState, attempt: Attempt) -> Claimed | Stored:
    """Insert the key's row before the action runs; the unique constraint decides who runs.
    Purges expired rows first, which also frees this key if its old row has expired."""
    now = state.clock.now()
    for _ in range(3):  # a row found expired or released between insert and read: try again
        row_id = new_id()
        row = IdempotencyKeyRow(
            id=row_id,
            principal=attempt.principal,
            key=attempt.key,
            method=attempt.method,
            path=attempt.path,
            fingerprint=fingerprint(row_id, attempt.query, attempt.body),
            status=None,
            headers=None,
            body=None,
            is_withheld=False,
            object_id=None,
            created_at=now,
            expires_at=now + timedelta(hours=state.settings.idempotency_key_hours),
        )
        try:
            with state.writing(), state.sessions() as session, session.begin():
                session.execute(
                    delete(IdempotencyKeyRow).where(IdempotencyKeyRow.expires_at <= now)
                )
                session.add(row)
            return Claimed(row_id)
        except IntegrityError:
            pass  # taken: read who holds it
        with state.sessions() as session:
            held = session.execute(
                select(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.principal == attempt.principal,
                    IdempotencyKeyRow.key == attempt.key,
                    IdempotencyKeyRow.expires_at > now,
                )
            ).scalar_one_or_none()
        if held is not None:
            return Stored(held)
    raise IdempotencyKeyInFlight(
        f"another request with this {HEADER} is being handled; retry shortly", header=HEADER
    )


@dataclass
class Captured:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def _object_id(body: bytes, id_path: str) -> str | None:
    try:
        found: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    for part in id_path.split("."):
        found = found.get(part) if isinstance(found, Mapping) else None
    return found if isinstance(found, str) else None


def finish(
    state: AppState, row_id: str, answer: Captured, marker: Mapping[str, str] | None
) -> None:
    """Keep the answer for replays, or release the key when a retry should run again."""
    if answer.status >= 500 or answer.status in NOT_KEPT_STATUSES:
        release(state, row_id)
        return
    names = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in answer.headers}
    kept = {name: names[name] for name in KEPT_HEADERS if name in names}
    body: bytes | None = answer.body
    object_id = None
    shown_once = marker is not None and answer.status < 300
    withheld = shown_once or len(answer.body) > MAX_STORED_BODY
    if withheld:
        body, kept = None, {}
        if shown_once and marker is not None:
            object_id = _object_id(answer.body, marker.get("id", "id"))
            if object_id and "location" in marker:
                kept["location"] = marker["location"].replace("{id}", object_id)
    with state.writing(), state.sessions() as session, session.begin():
        session.execute(
            update(IdempotencyKeyRow)
            .where(IdempotencyKeyRow.id == row_id)
            .values(
                status=answer.status,
                headers=kept,
                body=body,
                is_withheld=withheld,
                object_id=object_id,
            )
        )


def release(state: AppState, row_id: str) -> None:
    with state.writing(), state.sessions() as session, session.begin():
        session.execute(delete(IdempotencyKeyRow).where(IdempotencyKeyRow.id == row_id))


def purge_expired(state: AppState) -> int:
    """Delete every expired key; claiming does it too, this is for a scheduled clean-up."""
    with state.writing(), state.sessions() as session, session.begin():
        done = session.execute(
            delete(IdempotencyKeyRow).where(IdempotencyKeyRow.expires_at <= state.clock.now())
        )
        return int(done.rowcount)  # type: ignore[attr-defined]  # CursorResult of a DELETE


def _answer(held: IdempotencyKeyRow, attempt: Attempt) -> Response | OneLoopError:
    """What a request gets when its key is already taken."""
    same = (
        held.method == attempt.method
        and held.path == attempt.path
        and held.fingerprint == fingerprint(held.id, attempt.query, attempt.body)
    )
    if not same:
        return IdempotencyKeyReused(
            f"this {HEADER} was used for another request ({held.method} {held.path} with "
            "another body or query); use a new key for a new request",
            [FieldError(("header", HEADER), "already used for a different request")],
            header=HEADER,
        )
    if held.status is None:
        return IdempotencyKeyInFlight(
            f"the first request with this {HEADER} is still being handled; retry shortly",
            header=HEADER,
        )
    headers = dict(held.headers or {})
    if held.is_withheld:
        where = headers.get("location")
        named = {"id": held.object_id, "location": where}
        return AlreadyDone(
            f"this request already ran under this {HEADER} (status {held.status}); its answer "
            "held a secret or personal data that is shown only once and was not kept"
            + (f": see {where}" if where else "")
            + ". Make a new request with a new key if you need it again.",
            header=HEADER,
            original_status=held.status,
            **{k: v for k, v in named.items() if v is not None},
        )
    headers[REPLAYED_HEADER] = "true"
    return Response(held.body or b"", status_code=held.status, headers=headers)


class IdempotencyMiddleware:
    """Pure ASGI, inside the request-id and security-header middlewares, so replays and its
    own problems carry those headers like any answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        raw = request.headers.get(HEADER)
        if raw is None:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(raw)
            body = await _read_body(request)
        except OneLoopError as exc:
            await (await errors.oneloop_error(request, exc))(scope, receive, send)
            return
        replay_receive = _replaying(body, receive)
        state: AppState = scope["app"].state.oneloop
        principal = await anyio.to_thread.run_sync(principal_of, request, state)
        if principal is None:
            await self.app(scope, replay_receive, send)
            return
        attempt = Attempt(
            principal, key, scope["method"], scope["path"], scope.get("query_string", b""), body
        )
        try:
            claimed = await anyio.to_thread.run_sync(claim, state, attempt)
        except OneLoopError as exc:
            await (await errors.oneloop_error(request, exc))(scope, receive, send)
            return
        if isinstance(claimed, Stored):
            answer = _answer(claimed.row, attempt)
            if isinstance(answer, OneLoopError):
                where = answer.context.get("location")
                answer = await errors.oneloop_error(request, answer)
                if isinstance(where, str):
                    answer.headers["Location"] = where
            await answer(scope, receive, send)
            return
        await self._run(scope, replay_receive, send, state, claimed.row_id)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, state: AppState, row_id: str
    ) -> None:
        """Run the route, keep its answer, then send it: a client that got an answer can
        count on a retry getting the same one."""
        captured = Captured()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured.chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            # An unhandled error becomes a 500 further out: the action rolled back, so a
            # retry must be free to run it again.
            await anyio.to_thread.run_sync(release, state, row_id)
            raise
        route = scope.get("route")
        extra = getattr(route, "openapi_extra", None) or {}
        marker = extra.get(SHOWN_ONCE)
        try:
            await anyio.to_thread.run_sync(finish, state, row_id, captured, marker)
        except Exception:
            # The action is done and its answer is here: hand it over. The key stays "in
            # flight" until it expires, so a retry gets a 409, never a second action.
            log.exception("idempotency.not_recorded", extra={"path": scope["path"]})
        await send(
            {"type": "http.response.start", "status": captured.status, "headers": captured.headers}
        )
        await send({"type": "http.response.body", "body": captured.body, "more_body": False})


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"a request body is at most {MAX_REQUEST_BYTES // 2**20} MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise PayloadTooLarge(f"a request body is at most {MAX_REQUEST_BYTES // 2**20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _replaying(body: bytes, wire: Receive) -> Receive:
    """The body read for the fingerprint, handed to the route as if it came off the wire;
    after it, the wire again (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await wire()

    return receive
