"""The Segment / RudderStack event spec: turning a received call into log entries or reasons.

Pure functions, no database: the HTTP API, the file importers and dead-letter replay all
validate through here, so an event means the same whichever door it came in by.

Validation is hand-written rather than a pydantic model per event because it runs for every
event on the hot path and must name the offending field by its path in the *request*
(``batch[3].properties``), with the batch's position, which is where a data engineer looks.

Timestamps follow Segment's documented rules: ``originalTimestamp`` is the client's clock when
the call was made; when the client also says when it sent the request (``sentAt``) and did not
set ``timestamp`` itself, the event time is corrected for the client's clock skew as
``receivedAt - (sentAt - originalTimestamp)``. A ``timestamp`` set explicitly (server-side
libraries, historical imports) is kept as given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from oneloop.core.errors import FieldError

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_LENGTH = 255

# Traits that carry an identifier of the person, as SDKs and forms commonly name them.
# Values are kept raw here; normalising them (E.164 phones, lower-cased emails) is identity's job.
IDENTIFIER_TRAITS = {
    "email": "email",
    "phone": "phone",
    "mobile": "phone",
    "wechat_unionid": "wechat_unionid",
    "unionid": "wechat_unionid",
    "wechat_openid": "wechat_openid",
    "openid": "wechat_openid",
    "crm_id": "crm_id",
    "member_no": "member_no",
    "memberNo": "member_no",
}

Json = dict[str, Any]
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Message:
    """One valid call, ready for the log."""

    message_id: str
    type: str
    event: str | None
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    previous_id: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    properties: Json | None
    traits: Json | None
    context: Json | None
    identifiers: list[list[str]]
    raw: Json = field(repr=False, compare=False)


@dataclass(frozen=True)
class Invalid:
    """A call that cannot be accepted: why (a reason code and field errors) and what it was."""

    reason: str
    errors: tuple[FieldError, ...]
    raw: object = field(repr=False)
    message_id: str | None = None

    @property
    def detail(self) -> str:
        return "; ".join(f"{e.path}: {e.msg}" if e.path else e.msg for e in self.errors)


def parse_call(
    call_type: str, body: Json, received_at: datetime
) -> tuple[list[Message], list[Invalid]]:
    """A single-event endpoint (``/v1/track`` …): the path names the type."""
    body = {**body, "type": call_type}
    body.pop("writeKey", None)
    result = parse_message(body, (), received_at)
    return ([result], []) if isinstance(result, Message) else ([], [result])


def parse_batch(body: Json, received_at: datetime) -> tuple[list[Message], list[Invalid]]:
    """``/v1/batch``: the batch's ``sentAt``, ``context`` and ``integrations`` apply to each
    item that does not set its own."""
    batch = body.get("batch")
    if not isinstance(batch, list):
        got = "missing" if batch is None else f"a {_kind(batch)}"
        error = FieldError(("batch",), f"must be a list of events; got {got}")
        return [], [Invalid("invalid_batch", (error,), body)]
    errors: list[FieldError] = []
    sent_at = _time(body, "sentAt", (), errors)
    shared: Json = {}
    for key in ("context", "integrations"):
        value = body.get(key)
        if isinstance(value, dict):
            shared[key] = value
        elif value is not None:
            errors.append(FieldError((key,), f"must be an object; got a {_kind(value)}"))
    if errors:
        return [], [Invalid("invalid_batch", tuple(errors), body)]
    messages: list[Message] = []
    invalid: list[Invalid] = []
    for index, item in enumerate(batch):
        loc: Loc = ("batch", index)
        if not isinstance(item, dict):
            error = FieldError(loc, f"must be an event object; got a {_kind(item)}")
            invalid.append(Invalid("invalid_event", (error,), item))
            continue
        for key, value in shared.items():
            own = item.get(key)
            item[key] = {**value, **own} if isinstance(own, dict) else own or value
        result = parse_message(item, loc, received_at, sent_at)
        if isinstance(result, Message):
            messages.append(result)
        else:
            invalid.append(result)
    return messages, invalid


def parse_message(
    raw: Json, loc: Loc, received_at: datetime, batch_sent_at: datetime | None = None
) -> Message | Invalid:
    """Validate one event object; every problem is reported, not only the first."""
    size = len(orjson.dumps(raw, default=str))
    if size > MAX_EVENT_BYTES:
        error = FieldError(loc, f"event is {size:,} bytes; the limit is 32 KB per event")
        return Invalid("too_large", (error,), raw, _opt_str(raw.get("messageId")))
    errors: list[FieldError] = []
    call_type = raw.get("type")
    if call_type not in CALL_TYPES:
        got = "missing" if call_type is None else repr(call_type)
        errors.append(
            FieldError(
                (*loc, "type"), f"unknown type {got}; expected one of {', '.join(CALL_TYPES)}"
            )
        )
    message_id = _id(raw, "messageId", loc, errors)
    user_id = _id(raw, "userId", loc, errors)
    anonymous_id = _id(raw, "anonymousId", loc, errors)
    group_id = _id(raw, "groupId", loc, errors)
    previous_id = _id(raw, "previousId", loc, errors)
    if call_type == "alias":
        if user_id is None:
            errors.append(FieldError((*loc, "userId"), "alias needs the userId to link to"))
        if previous_id is None:
            errors.append(FieldError((*loc, "previousId"), "alias needs the previousId to link"))
    elif call_type in CALL_TYPES and user_id is None and anonymous_id is None:
        errors.append(FieldError((*loc, "userId"), "either userId or anonymousId is required"))
    if call_type == "group" and group_id is None:
        errors.append(FieldError((*loc, "groupId"), "group needs a groupId"))
    event = _text(raw, "event", loc, errors)
    if call_type == "track" and not event:
        errors.append(FieldError((*loc, "event"), "track needs the event name"))
    name = _text(raw, "name", loc, errors)
    properties = _object(raw, "properties", loc, errors)
    traits = _object(raw, "traits", loc, errors)
    context = _object(raw, "context", loc, errors)
    _object(raw, "integrations", loc, errors)
    timestamp = _time(raw, "timestamp", loc, errors)
    original = _time(raw, "originalTimestamp", loc, errors)
    sent_at = _time(raw, "sentAt", loc, errors) or batch_sent_at
    if errors:
        return Invalid("invalid_event", tuple(errors), raw, message_id)
    original = original or timestamp
    if timestamp is None:
        if original is not None and sent_at is not None:
            timestamp = received_at - (sent_at - original)
        else:
            timestamp = original or received_at
    return Message(
        message_id=message_id or derived_message_id(raw),
        type=str(call_type),
        event=event,
        name=name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        group_id=group_id,
        previous_id=previous_id,
        timestamp=timestamp,
        original_timestamp=original,
        sent_at=sent_at,
        properties=properties,
        traits=traits,
        context=context,
        identifiers=identifiers_of(user_id, anonymous_id, previous_id, traits, context),
        raw=raw,
    )


def derived_message_id(raw: Json) -> str:
    """An id for a call that came without one: a hash of its content, so that resending the
    same call is still recognised as a duplicate."""
    digest = hashlib.sha256(orjson.dumps(raw, default=str, option=orjson.OPT_SORT_KEYS))
    return "ol-" + digest.hexdigest()[:40]


def identifiers_of(
    user_id: str | None,
    anonymous_id: str | None,
    previous_id: str | None,
    traits: Json | None,
    context: Json | None,
) -> list[list[str]]:
    """The person's identifiers an event carries, as ``[type, raw value]`` pairs.

    None at all when ``context.oneloop.subject`` says the event is about something else (a
    campaign's spend, an account): its ids must not become fake people (see the file importers)."""
    subject = (context or {}).get("oneloop")
    if isinstance(subject, dict) and subject.get("subject"):
        return []
    found: list[list[str]] = []
    if user_id:
        found.append(["user_id", user_id])
    if anonymous_id:
        found.append(["anonymous_id", anonymous_id])
    if previous_id:
        found.append(["previous_id", previous_id])
    context = context or {}
    device = context.get("device")
    if isinstance(device, dict) and isinstance(device.get("id"), str | int) and device["id"]:
        found.append(["device_id", str(device["id"])])
    for bag in (traits, context.get("traits")):
        if not isinstance(bag, dict):
            continue
        for key, kind in IDENTIFIER_TRAITS.items():
            value = bag.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                pair = [kind, str(value).strip()]
                if pair not in found:
                    found.append(pair)
    return found


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as SDKs send it (``Z`` or an offset; a bare time is taken as UTC)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _time(raw: Json, key: str, loc: Loc, errors: list[FieldError]) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        errors.append(
            FieldError(
                (*loc, key),
                f"must be an ISO 8601 time such as 2026-11-23T08:30:00Z; got {_show(value)}",
            )
        )
    return parsed


def _id(raw: Json, key: str, loc: Loc, errors: list[FieldError]) -> str | None:
    """Ids may be strings or numbers (SDKs send both); blank means absent."""
    value = raw.get(key)
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            errors.append(FieldError((*loc, key), "must be a string or a number; got a boolean"))
        return None
    if not isinstance(value, str | int | float):
        errors.append(
            FieldError((*loc, key), f"must be a string or a number; got a {_kind(value)}")
        )
        return None
    text = (
        str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    ).strip()
    if len(text) > MAX_ID_LENGTH:
        errors.append(
            FieldError((*loc, key), f"is {len(text)} characters; the limit is {MAX_ID_LENGTH}")
        )
        return None
    return text or None


def _text(raw: Json, key: str, loc: Loc, errors: list[FieldError]) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError((*loc, key), f"must be a string; got a {_kind(value)}"))
        return None
    if len(value) > MAX_ID_LENGTH:
        errors.append(
            FieldError((*loc, key), f"is {len(value)} characters; the limit is {MAX_ID_LENGTH}")
        )
        return None
    return value.strip() or None


def _object(raw: Json, key: str, loc: Loc, errors: list[FieldError]) -> Json | None:
    value = raw.get(key)
    if value is None or isinstance(value, dict):
        return value
    errors.append(FieldError((*loc, key), f"must be an object; got a {_kind(value)}"))
    return None


def _opt_str(value: object) -> str | None:
    return str(value)[:MAX_ID_LENGTH] if isinstance(value, str | int) else None


def _kind(value: object) -> str:
    return {
        list: "list",
        dict: "object",
        str: "string",
        int: "number",
        float: "number",
        bool: "boolean",
    }.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
