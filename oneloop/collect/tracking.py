"""The tracking API's logic, free of HTTP: decode a request body, authenticate, store.

Wire-compatible with Segment's HTTP Tracking API and RudderStack's: the write key comes as the
HTTP Basic user name (empty password) or as ``writeKey`` in the body, the body may be gzipped,
and the limits are Segment's documented ones (32 KB per call, 500 KB per batch request).

A batch with some bad items still stores the good ones and dead-letters the bad ones in the same
transaction, then reports the bad items (HTTP 400): tracking SDKs drop a batch on a 4xx rather
than retry it, so what they were told was refused must already be kept, and nothing is lost.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy.orm import Session

from oneloop.collect import service
from oneloop.collect.ingest import IngestResult, ingest
from oneloop.collect.spec import (
    CALL_TYPES,
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    Invalid,
    Message,
    parse_batch,
    parse_call,
)
from oneloop.core.errors import FieldError, InvalidPayload, PayloadTooLarge, Unauthenticated

BATCH_PATHS = ("batch", "import")  # RudderStack and Segment both accept /v1/import for batches
ENDPOINTS = (*CALL_TYPES, *BATCH_PATHS)


@dataclass(frozen=True)
class Received:
    """A request as the HTTP layer hands it over: which endpoint, the raw body and headers."""

    endpoint: str
    body: bytes
    content_encoding: str | None
    basic_user: str | None
    received_at: datetime
    ref: str


def limit_for(endpoint: str) -> int:
    """The largest body an endpoint takes, uncompressed: one call, or one batch request."""
    return MAX_BATCH_BYTES if endpoint in BATCH_PATHS else MAX_EVENT_BYTES


def too_large(endpoint: str, size: int | None = None) -> PayloadTooLarge:
    if endpoint in BATCH_PATHS:
        what, limit = "a batch request", "500 KB per batch request"
    else:
        what, limit = "a single call", "32 KB per call"
    got = f" is {size:,} bytes" if size is not None else " is too large"
    return PayloadTooLarge(f"{what}{got}; the limit is {limit}", limit=limit_for(endpoint))


@dataclass
class Outcome:
    """What was stored, and, when some of the request was refused, the error to answer with
    *after* the commit (the refused events are dead letters in the same transaction)."""

    result: IngestResult
    refusal: InvalidPayload | None = None


@dataclass(frozen=True)
class Parsed:
    """A request decoded and validated, before any database work: what to store and the key."""

    write_key: str
    messages: list[Message]
    invalid: list[Invalid]
    received_at: datetime
    ref: str


def parse(request: Received) -> Parsed:
    """Decode and validate a request without touching the database, so that this CPU work runs
    outside the store's write lock. Raises when nothing can be kept (no key, too large, bad
    encoding); a body that is not a JSON object becomes a refused item to keep."""
    body = _decode(request)
    refused: Invalid | None = None
    document: object = None
    try:
        document = _parse_json(body)
    except InvalidPayload as exc:
        if not request.basic_user:
            raise  # no key to tell whose it is: nothing can be kept
        refused = Invalid("invalid_json", tuple(exc.errors), body)
    write_key = request.basic_user or _body_key(document)
    if not write_key:
        raise Unauthenticated(
            "send the write key as the HTTP Basic user name (empty password) "
            "or as writeKey in the body"
        )
    messages: list[Message] = []
    invalid: list[Invalid] = []
    if refused is None and not isinstance(document, dict):
        error = FieldError((), f"the body must be a JSON object; got {_kind(document)}")
        refused = Invalid("invalid_json", (error,), body)
    if refused is not None:
        invalid = [refused]
    elif isinstance(document, dict) and request.endpoint in BATCH_PATHS:
        messages, invalid = parse_batch(document, request.received_at)
    elif isinstance(document, dict):
        messages, invalid = parse_call(request.endpoint, document, request.received_at)
    return Parsed(write_key, messages, invalid, request.received_at, request.ref)


def store(session: Session, parsed: Parsed) -> Outcome:
    """Authenticate and store a parsed request; the caller commits, then answers.

    Unauthenticated means nothing was stored; a refusal in the outcome means the refused part is
    kept as dead letters and must be committed before the caller answers with it.
    """
    source = service.authenticate(session, parsed.write_key)
    result = ingest(
        session,
        source,
        parsed.messages,
        parsed.invalid,
        received_at=parsed.received_at,
        origin="api",
        ref=parsed.ref,
    )
    return Outcome(result, _refusal(result) if result.refused else None)


def receive(session: Session, request: Received) -> Outcome:
    """``parse`` then ``store``, for callers with no write lock to keep short."""
    return store(session, parse(request))


def _decode(request: Received) -> bytes:
    encoding = (request.content_encoding or "identity").strip().lower()
    limit = limit_for(request.endpoint)
    if encoding in ("identity", ""):
        body = request.body
    elif encoding in ("gzip", "x-gzip"):
        body = _gunzip(request.body, limit)
    else:
        raise InvalidPayload(
            f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding",
            [FieldError(("Content-Encoding",), "must be gzip or absent")],
        )
    if len(body) > limit:
        # An inflated body was cut off at limit + 1 bytes: its real size is unknown.
        raise too_large(request.endpoint, len(body) if body is request.body else None)
    return body


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate at most ``limit + 1`` bytes: a small gzip bomb must not fill the memory; the
    caller refuses anything past ``limit``."""
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidPayload(
            "the body is not valid gzip", [FieldError(("body",), f"gzip: {exc}")]
        ) from exc
    if not inflater.eof and not out:
        raise InvalidPayload(
            "the body is not valid gzip", [FieldError(("body",), "gzip stream is truncated")]
        )
    return out


def _parse_json(body: bytes) -> object:
    if not body.strip():
        raise InvalidPayload(
            "the body is empty; send a JSON object", [FieldError(("body",), "is empty")]
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(
            f"the body is not valid JSON: {exc}", [FieldError(("body",), f"not valid JSON: {exc}")]
        ) from exc


def _body_key(document: object) -> str | None:
    key = document.get("writeKey") if isinstance(document, dict) else None
    return key if isinstance(key, str) and key else None


def _refusal(result: IngestResult) -> InvalidPayload:
    errors = [e for item in result.refused for e in item.errors]
    first = f"{errors[0].path}: {errors[0].msg}" if errors[0].path else errors[0].msg
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidPayload(
        f"{len(result.refused)} event(s) refused and kept as dead letters: {first}{more}",
        errors,
        accepted=result.accepted,
        duplicates=result.duplicates,
        dead_lettered=result.dead_lettered,
    )


def _kind(value: object) -> str:
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"
