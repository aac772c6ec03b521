"""One record of an export → one Segment-spec call, or the reason it cannot be one.

Pure functions (no database, no clock), so that dead-letter replay can map a kept row again
after its mapping is fixed and get the very same call and message id.

The message id is what makes a re-import add nothing: a hash of the mapping's name and the
record's ``key`` columns (an order number, a contact id), or of the row's whole content when the
mapping declares no key. Never the row's position: a re-export with rows added or re-sorted must
still de-duplicate. The mapping's name is in the hash so that two mappings over one file (one
making identify calls, another track calls) never collide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import orjson

from oneloop import __version__
from oneloop.collect.importers.mapping import Mapping, ValueSpec
from oneloop.collect.importers.readers import Row
from oneloop.collect.spec import Invalid, Json
from oneloop.core.errors import FieldError

UNMAPPABLE = "unmappable_row"
LIBRARY = {"name": "oneloop-import", "version": __version__}
NumberedRow = tuple[int, Row]
_TRUE = {"true", "t", "yes", "y", "1", "是", "真"}
_FALSE = {"false", "f", "no", "n", "0", "否", "假"}
_MONEY_NOISE = str.maketrans("", "", ",_ ¥￥$€£")


def map_row(mapping: Mapping, row: Row, row_number: int) -> Json | Invalid:
    """Map one row: the call dict (not yet validated by ``spec.parse_message``), or an
    ``Invalid`` naming each column that could not be mapped, with the row kept as payload."""
    return map_record(mapping, [(row_number, row)])


def map_record(mapping: Mapping, rows: Sequence[NumberedRow]) -> Json | Invalid:
    """Map one record: a single row, or with ``lines`` the adjacent rows of one order."""
    number, first = rows[0]
    errors: list[FieldError] = []
    message_id = record_message_id(mapping, first, number, errors)
    call: Json = {"type": mapping.call}
    if message_id is not None:
        call["messageId"] = message_id
    if mapping.event:
        call["event" if mapping.call == "track" else "name"] = mapping.event
    if mapping.timestamp is not None:
        stamp = _value(mapping.timestamp, first, number, errors, "timestamp")
        if stamp is not None:
            call["timestamp"] = stamp
    identifiers = _bag(mapping.identifiers, first, number, errors)
    traits = _bag(mapping.traits, first, number, errors, rows, mapping)
    properties = _bag(mapping.properties, first, number, errors, rows, mapping)
    if mapping.lines is not None:
        properties[mapping.lines.into] = [
            _bag(mapping.lines.fields, row, n, errors) for n, row in rows
        ]
    context: Json = {"library": LIBRARY, "oneloop": {"mapping": mapping.name}}
    if mapping.locale is not None:
        locale = _value(mapping.locale, first, number, errors, "locale")
        if locale is not None:
            context["locale"] = str(locale)
    for what in ("user_id", "anonymous_id", "group_id"):
        spec: ValueSpec | None = getattr(mapping, what)
        if spec is not None:
            value = _value(spec, first, number, errors, what)
            if value is not None:
                call[_CAMEL[what]] = str(value)
    if mapping.subject is not None:
        parts = [_key_text(first.get(c)) for c in mapping.subject.id]
        for column, part in zip(mapping.subject.id, parts, strict=True):
            if not part:
                errors.append(FieldError(("row", number, column), "is empty; it names the subject"))
        call["anonymousId"] = f"{mapping.subject.kind}:{'/'.join(parts)}"
        context["oneloop"]["subject"] = mapping.subject.kind
    elif not (identifiers or "userId" in call or "anonymousId" in call):
        columns = [
            s.column
            for s in (mapping.user_id, mapping.anonymous_id, *mapping.identifiers.values())
            if s is not None and s.column is not None
        ]
        errors.append(
            FieldError(
                ("row", number),
                f"no identifier: {', '.join(columns) or 'the mapping names none'} "
                f"{'is' if len(columns) == 1 else 'are all'} empty",
            )
        )
    if errors:
        return Invalid(UNMAPPABLE, tuple(errors), record_payload(mapping, rows), message_id)
    if "userId" not in call and "anonymousId" not in call:
        # Segment's spec needs one of the two; the record's own id links nothing else, so the
        # person is found only by the identifiers the row carries.
        call["anonymousId"] = message_id
    who = {**identifiers, **traits}
    if mapping.call in ("identify", "group"):
        if mapping.call == "group":
            call["traits"] = traits
            if identifiers:
                context["traits"] = identifiers
        elif who:
            call["traits"] = who
    else:
        if who:
            context["traits"] = who
        call["properties"] = properties
    call["context"] = context
    return call


def record_message_id(
    mapping: Mapping, row: Row, number: int, errors: list[FieldError] | None = None
) -> str | None:
    """The record's stable message id; None (and an error) when a key column is empty."""
    if mapping.key:
        parts = [_key_text(row.get(column)) for column in mapping.key]
        missing = [c for c, p in zip(mapping.key, parts, strict=True) if not p]
        if missing:
            if errors is not None:
                errors.extend(
                    FieldError(("row", number, c), "is empty; it is part of the record's key")
                    for c in missing
                )
            return None
        material = orjson.dumps([mapping.name, parts])
    else:
        material = orjson.dumps([mapping.name, row], option=orjson.OPT_SORT_KEYS, default=str)
    return "imp-" + hashlib.sha256(material).hexdigest()[:40]


def record_payload(mapping: Mapping, rows: Sequence[NumberedRow]) -> Json:
    """What a dead letter keeps, to be mapped again by ``remap_payload``:
    ``{"row": {...}, "row_number": n, "mapping": name}``, plus ``rows`` (each line with its
    number) when the record spans several rows."""
    number, first = rows[0]
    payload: Json = {"row": first, "row_number": number, "mapping": mapping.name}
    if len(rows) > 1:
        payload["rows"] = [{"row_number": n, "row": row} for n, row in rows]
    return payload


def remap_payload(mapping: Mapping, payload: Json) -> Json | Invalid:
    """Map a dead letter's kept record again, with a (fixed) mapping."""
    if "rows" in payload and isinstance(payload["rows"], list):
        rows = [(int(r["row_number"]), r["row"]) for r in payload["rows"]]
    elif isinstance(payload.get("row"), dict):
        rows = [(int(payload.get("row_number") or 0), payload["row"])]
    else:
        error = FieldError((), "the dead letter keeps no row to map (it was not read as one)")
        return Invalid(UNMAPPABLE, (error,), payload)
    return map_record(mapping, rows)


_CAMEL = {"user_id": "userId", "anonymous_id": "anonymousId", "group_id": "groupId"}


def _bag(
    specs: dict[str, ValueSpec],
    row: Row,
    number: int,
    errors: list[FieldError],
    rows: Sequence[NumberedRow] = (),
    mapping: Mapping | None = None,
) -> Json:
    """The named values of one row; empty cells are left out (unknown, not null). A ``sum``
    field adds the value up over the record's rows."""
    bag: Json = {}
    for name, spec in specs.items():
        if spec.sum and len(rows) > 1:
            total = Decimal(0)
            for n, line in rows:
                part = _value(spec, line, n, errors, name)
                total += Decimal(str(part or 0))
            bag[name] = int(total) if spec.type == "integer" else float(total)
            continue
        value = _value(spec, row, number, errors, name)
        if value is not None:
            bag[name] = value
    return bag


def _value(
    spec: ValueSpec, row: Row, number: int, errors: list[FieldError], what: str
) -> object | None:
    raw = spec.value if spec.column is None else row.get(spec.column)
    where = ("row", number, spec.column or what)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if spec.required:
            errors.append(FieldError(where, "is empty; the mapping requires it"))
        return None
    try:
        value = _convert(spec, raw)
    except (ValueError, TypeError, InvalidOperation, OverflowError):
        errors.append(FieldError(where, _reason(spec, raw)))
        return None
    return f"{spec.prefix}{value}" if spec.prefix else value


def _convert(spec: ValueSpec, raw: object) -> object:
    match spec.type:
        case "any":
            return raw
        case "string":
            return _key_text(raw) if not isinstance(raw, str) else raw
        case "integer":
            number = _decimal(raw)
            if number != number.to_integral_value():
                raise ValueError("not a whole number")
            return int(number)
        case "number":
            return float(_decimal(raw))
        case "boolean":
            return _boolean(raw)
        case "datetime":
            return (
                _datetime(spec, raw)
                .astimezone(UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")
            )
        case "date":
            return _date(spec, raw).isoformat()
    raise ValueError(f"unknown type {spec.type}")  # pragma: no cover  # the Literal forbids it


def _decimal(raw: object) -> Decimal:
    if isinstance(raw, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(raw, int | float):
        number = Decimal(str(raw))  # a spreadsheet's NaN or inf arrives as a float
    elif isinstance(raw, str):
        number = Decimal(raw.translate(_MONEY_NOISE))
    else:
        raise ValueError(f"a {type(raw).__name__} is not a number")
    if not number.is_finite():
        raise ValueError("not a finite number")
    return number


def _boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a yes/no value")


def _datetime(spec: ValueSpec, raw: object) -> datetime:
    if isinstance(raw, datetime):
        parsed = raw
    elif isinstance(raw, date):
        parsed = datetime(raw.year, raw.month, raw.day)  # noqa: DTZ001  # zone attached below
    elif isinstance(raw, str):
        parsed = _parse_text(raw.strip(), spec.format)
    else:
        raise ValueError(f"a {type(raw).__name__} is not a time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(spec.timezone or "UTC"))
    return parsed


def _date(spec: ValueSpec, raw: object) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if not isinstance(raw, str):
        raise ValueError(f"a {type(raw).__name__} is not a date")
    text = raw.strip()
    if spec.format:
        try:
            return datetime.strptime(text, spec.format).date()  # noqa: DTZ007  # a day, no zone
        except ValueError:
            pass
    return date.fromisoformat(text[:10])


def _parse_text(text: str, fmt: str | None) -> datetime:
    """The declared format first; ISO 8601 as well, which is how a replayed XLSX time (kept as
    JSON text) comes back."""
    if fmt:
        try:
            return datetime.strptime(text, fmt)  # noqa: DTZ007  # the zone is attached after
        except ValueError:
            pass
    return datetime.fromisoformat(text)


def _reason(spec: ValueSpec, raw: object) -> str:
    shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
    expected = {
        "integer": "a whole number",
        "number": "a number",
        "boolean": "yes/no (true, false, 1, 0, 是, 否)",
        "datetime": f"a time like {spec.format or 'ISO 8601'}",
        "date": f"a date like {spec.format or 'YYYY-MM-DD'}",
    }.get(spec.type, spec.type)
    return f"{shown} is not {expected}"


def _key_text(raw: object) -> str:
    """A cell as text for ids and keys: Excel's 13800138000.0 is ``13800138000``."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, datetime):
        return raw.isoformat()
    return str(raw).strip()
