"""Page cursors for lists ordered by a time and a tie-breaking sequence number: opaque to the
caller, checked when they come back, so a made-up cursor is a 422, never a 500."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from oneloop.core.errors import FieldError, ValidationFailed


def write_cursor(at: datetime, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{seq}".encode()).decode()


def read_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, seq = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, int(seq)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise ValidationFailed(
            "bad cursor", [FieldError(("cursor",), "not a cursor this API gave out")]
        ) from exc
