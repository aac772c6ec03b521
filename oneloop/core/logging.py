"""Structured logging on the standard library: an event name plus fields.

``log.info("segment.refreshed", extra={"bu_id": bu, "members": n})`` becomes one JSON line in
production, or ``segment.refreshed bu_id=... members=...`` on a terminal. The request id and
BU of the current request ride on a context variable, so every line carries them without being
passed by hand. Log ids, never emails or phones.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

request_id_var: ContextVar[str | None] = ContextVar("oneloop_request_id", default=None)
bu_id_var: ContextVar[str | None] = ContextVar("oneloop_bu_id", default=None)

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is a field.
# uvicorn's ``color_message`` is the same text with terminal escapes: noise in a log line.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}

# Libraries whose INFO lines repeat on every request (Alembic's context set-up on /readyz).
QUIET_LOGGERS = ("alembic.runtime.migration",)


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {}
    if (rid := request_id_var.get()) is not None:
        fields["request_id"] = rid
    if (bu := bu_id_var.get()) is not None:
        fields["bu_id"] = bu
    fields.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{record.levelname.lower():<7} {record.getMessage()} {pairs}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(fmt: Literal["auto", "json", "text"] = "auto", level: str = "INFO") -> None:
    """Install one handler on the root logger; safe to call more than once."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
