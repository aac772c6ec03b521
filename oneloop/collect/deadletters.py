"""Dead letters: list, show, and replay once the plan, mapping or consumer is fixed.

Replay parses the kept payload again by the door it came in by (the tracking API's spec, a
file mapping, a log consumer) and hands the good ones to ``ingest``, whose per-source
``messageId`` de-duplication makes a replay exactly-once: replaying twice, or replaying an
event that a retry already delivered, stores nothing new. A letter that fails again stays
waiting, with the new reason and one more attempt.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from oneloop.collect import service
from oneloop.collect.ingest import ingest
from oneloop.collect.models import DeadLetterRow
from oneloop.collect.schemas import DeadLetter, DeadLetterPage, ReplayReport
from oneloop.collect.spec import Invalid, Message, parse_batch, parse_message
from oneloop.core.context import Context
from oneloop.core.db import in_tenancy
from oneloop.core.errors import FieldError, NotFound, ValidationFailed
from oneloop.core.paging import Column, Page, PageRequest, keyset_page

WAITING = "waiting"
REPLAYED = "replayed"
STATUSES = (WAITING, REPLAYED)
REPLAY_CHUNK = 500


@dataclass(frozen=True)
class Reparsed:
    """One dead letter parsed again: the message to store, or why it still cannot be."""

    message: Message | None
    refused: Invalid | None


# How a letter is parsed again, by the door it came in by. File importers and log consumers
# register theirs (``register_reparser``) so this module needs none of their code.
Reparser = Callable[[Session, DeadLetterRow], Reparsed]
_REPARSERS: dict[str, Reparser] = {}


# Letters whose event is in the log already (a consumer failed on it) are not parsed and
# stored again but handed back to whoever failed: ``None`` means it worked this time.
Redeliverer = Callable[[Session, DeadLetterRow], Invalid | None]
_REDELIVERERS: dict[str, Redeliverer] = {}


# The modules that register doors; imported before a replay, so none is missing whichever
# entry point (CLI, API, a test) asked for it.
DOORS = (
    "oneloop.collect.consumers",
    "oneloop.collect.importers.runs",
    "oneloop.governance.consent_tracking",
)


def register_reparser(origin: str, reparser: Reparser) -> None:
    _REPARSERS[origin] = reparser


def register_redeliverer(origin: str, redeliverer: Redeliverer) -> None:
    _REDELIVERERS[origin] = redeliverer


def list_dead_letters(
    session: Session,
    ctx: Context,
    *,
    source: str | None = None,
    reason: str | None = None,
    status: str | None = WAITING,
    limit: int = 50,
    cursor: str | None = None,
) -> DeadLetterPage:
    """Newest first; ``cursor`` is the last id of the previous page (ids are time-ordered)."""
    ctx.require("collect.source.read")
    _check_status(status)
    query = _scoped(ctx, source, reason, status).order_by(DeadLetterRow.id.desc()).limit(limit + 1)
    if cursor:
        query = query.where(DeadLetterRow.id < cursor)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return DeadLetterPage(
        items=[DeadLetter.model_validate(r) for r in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


DEAD_LETTER_SORTS: dict[str, Column] = {
    "received_at": DeadLetterRow.received_at,
    "reason": DeadLetterRow.reason,
}


def page_dead_letters(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    source: str | None = None,
    reason: str | None = None,
    status: str | None = WAITING,
) -> Page[DeadLetter]:
    """``list_dead_letters`` in the API's common page and cursor format (issue 8), any sort."""
    ctx.require("collect.source.read")
    _check_status(status)
    return keyset_page(
        session,
        _scoped(ctx, source, reason, status),
        page,
        DEAD_LETTER_SORTS,
        DeadLetterRow.id,
        lambda rows: [DeadLetter.model_validate(r) for r in rows],
    )


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise ValidationFailed(
            f"unknown status {status!r}; use {' or '.join(STATUSES)}",
            [FieldError(("status",), f"must be one of {', '.join(STATUSES)}")],
        )


def count_dead_letters(
    session: Session, ctx: Context, *, status: str = WAITING, source: str | None = None
) -> int:
    """How many of the caller's unit's dead letters (of one ``source``, or all) are in
    ``status`` (the dashboard's and the sources page's "waiting for a fix")."""
    ctx.require("collect.source.read")
    query = select(func.count()).select_from(_scoped(ctx, source, None, status).subquery())
    return session.scalar(query) or 0


def get_dead_letter(session: Session, ctx: Context, dead_letter_id: str) -> DeadLetter:
    ctx.require("collect.source.read")
    row = session.scalar(_scoped(ctx, None, None, None).where(DeadLetterRow.id == dead_letter_id))
    if row is None:
        raise NotFound(f"no dead letter with id {dead_letter_id!r}", dead_letter_id=dead_letter_id)
    return DeadLetter.model_validate(row)


def replay(
    session: Session,
    ctx: Context,
    *,
    source: str | None = None,
    reason: str | None = None,
    ids: Sequence[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Replay the waiting letters that match, oldest first; the caller commits."""
    ctx.require("collect.source.manage")
    for module in DOORS:
        importlib.import_module(module)
    query = _scoped(ctx, source, reason, WAITING).order_by(DeadLetterRow.id)
    if ids:
        query = query.where(DeadLetterRow.id.in_(list(ids)))
    letters = list(session.scalars(query))
    report = ReplayReport(selected=len(letters), replayed=0, already_stored=0, still_refused=0)
    now = ctx.clock.now()
    done = 0
    for start in range(0, len(letters), REPLAY_CHUNK):
        chunk = letters[start : start + REPLAY_CHUNK]
        by_source: dict[str, list[DeadLetterRow]] = {}
        for letter in chunk:
            by_source.setdefault(letter.source_id, []).append(letter)
        for source_id, group in by_source.items():
            _replay_group(session, ctx, source_id, group, report, now)
        done += len(chunk)
        if on_progress:
            on_progress(done, len(letters))
    session.flush()
    return report


def _replay_group(
    session: Session,
    ctx: Context,
    source_id: str,
    letters: list[DeadLetterRow],
    report: ReplayReport,
    now: datetime,
) -> None:
    source = service.get_source(session, ctx, source_id)
    pending: dict[str, DeadLetterRow] = {}
    redeliverable = [r for r in letters if r.origin in _REDELIVERERS]
    for letter in redeliverable:
        letter.attempts += 1
        refused = _REDELIVERERS[letter.origin](session, letter)
        if refused is None:
            _resolve(letter, now)
            report.replayed += 1
        else:
            _still_refused(letter, refused)
            report.still_refused += 1
    letters = [r for r in letters if r.origin not in _REDELIVERERS]
    messages: list[Message] = []
    for letter in letters:
        letter.attempts += 1
        again = _reparse(session, letter)
        if again.message is None:
            _still_refused(letter, again.refused)
            report.still_refused += 1
            continue
        if again.message.message_id in pending:  # the same event dead-lettered twice
            _resolve(letter, now)
            report.already_stored += 1
            continue
        pending[again.message.message_id] = letter
        messages.append(again.message)
    if not messages:
        return
    origin = letters[0].origin
    ref = f"replay of {len(messages)} dead letter(s)"
    result = ingest(
        session,
        source,
        messages,
        received_at=letters[0].received_at,
        origin=origin,
        ref=ref,
        keep_refused=False,
    )
    refused = {item.message_id: item for item in result.refused}
    for message_id, letter in pending.items():
        if message_id in refused:
            _still_refused(letter, refused[message_id])
            report.still_refused += 1
        else:
            _resolve(letter, now)
    report.replayed += result.accepted
    report.already_stored += len(pending) - len(refused) - result.accepted


def _reparse(session: Session, letter: DeadLetterRow) -> Reparsed:
    reparser = _REPARSERS.get(letter.origin, reparse_tracking_call)
    return reparser(session, letter)


def reparse_tracking_call(session: Session, letter: DeadLetterRow) -> Reparsed:
    """A call received by the tracking API (or a batch that was refused whole)."""
    try:
        document = orjson.loads(letter.payload)
    except orjson.JSONDecodeError as exc:
        return _refused(letter, "invalid_json", FieldError(("body",), f"not JSON: {exc}"))
    if not isinstance(document, dict):
        return _refused(letter, "invalid_json", FieldError((), "the body must be a JSON object"))
    if isinstance(document.get("batch"), list) and "type" not in document:
        messages, invalid = parse_batch(document, letter.received_at)
        if invalid or len(messages) != 1:
            if invalid:
                return Reparsed(None, invalid[0])
            return _refused(
                letter,
                "invalid_batch",
                FieldError(("batch",), "a whole batch cannot be replayed as one letter"),
            )
        return Reparsed(messages[0], None)
    result = parse_message(document, (), letter.received_at)
    if isinstance(result, Message):
        return Reparsed(result, None)
    return Reparsed(None, result)


def _refused(letter: DeadLetterRow, reason: str, error: FieldError) -> Reparsed:
    return Reparsed(None, Invalid(reason, (error,), letter.payload, letter.message_id))


def _still_refused(letter: DeadLetterRow, refused: Invalid | None) -> None:
    if refused is None:
        return
    letter.reason = refused.reason
    letter.detail = refused.detail[:4000]
    letter.errors = [{"path": e.path, "msg": e.msg} for e in refused.errors]


def _resolve(letter: DeadLetterRow, now: datetime) -> None:
    letter.status = REPLAYED
    letter.resolved_at = now


def _scoped(
    ctx: Context, source: str | None, reason: str | None, status: str | None
) -> Select[tuple[DeadLetterRow]]:
    query = in_tenancy(select(DeadLetterRow), DeadLetterRow.bu_id, ctx)
    if source:
        query = query.where(DeadLetterRow.source_id == source)
    if reason:
        query = query.where(DeadLetterRow.reason == reason)
    if status:
        query = query.where(DeadLetterRow.status == status)
    return query
