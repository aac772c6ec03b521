"""Running a file import: chunks through ``ingest``, the run's row, resuming after a crash.

Unlike most services, ``import_file`` commits, once per chunk: the commit *is* the resume point.
Each chunk's events, dead letters, ledger row and the run's ``last_row`` are written in one
transaction, so after a crash the run row says exactly which rows are in the log, and running
the same command again skips them. Re-running a finished import reads the file again and adds
nothing (every record's message id is stable; see ``mapper``): the counts say "duplicates".

A run is found again by (source, file SHA-256, mapping): the same bytes with the same mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.collect import deadletters
from oneloop.collect import service as collect
from oneloop.collect.importers.mapper import (
    UNMAPPABLE,
    NumberedRow,
    map_record,
    record_message_id,
    record_payload,
    remap_payload,
)
from oneloop.collect.importers.mapping import Mapping, load_mapping, mapping_ref
from oneloop.collect.importers.readers import (
    BadRow,
    FileInfo,
    Row,
    file_format,
    inspect_file,
    open_rows,
    xlsx_row_count,
)
from oneloop.collect.ingest import ingest
from oneloop.collect.models import DeadLetterRow, ImportRunRow
from oneloop.collect.schemas import Source
from oneloop.collect.spec import Invalid, Json, Message, parse_message
from oneloop.core.context import Context
from oneloop.core.errors import Conflict, FieldError, OneLoopError, ValidationFailed
from oneloop.core.ids import new_id

log = logging.getLogger(__name__)

CHUNK = 1000
ORIGIN = "import"
RUNNING = "running"
FINISHED = "finished"
# The mapping name for files of Segment-spec calls (one JSON call a line, as SDKs send them, or
# a Segment / RudderStack archive): each line is validated as the tracking API would.
SEGMENT = "segment"

Progress = Callable[[int, int], None]


class ImportReport(BaseModel):
    """One import run's counts. ``accepted``, ``duplicates`` and ``dead_lettered`` count calls
    (with ``lines``, one per record); ``rows_read`` counts the file's rows. A resumed run's
    counts include what the interrupted run had already committed."""

    run_id: str
    file: str
    mapping: str
    source_id: str
    status: Literal["finished", "skipped"]
    resumed_after_row: int | None = None
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


def import_file(
    session: Session,
    ctx: Context,
    source_id: str,
    path: Path,
    mapping: Mapping | str | Path,
    *,
    chunk_size: int = CHUNK,
    on_progress: Progress | None = None,
    skip_if_loaded: bool = False,
) -> ImportReport:
    """Import ``path`` into the source with ``mapping`` (a Mapping, a YAML path, a shipped
    mapping's name, or ``"segment"`` for a file of Segment-spec calls). Commits every chunk.

    ``skip_if_loaded`` returns at once when a run of the same file and mapping has finished
    (``demo load`` uses it so that ``make demo`` does not re-read half a million events); without
    it a finished file is read again and every record counts as a duplicate.
    """
    ctx.require("collect.source.manage")
    source = collect.get_source(session, ctx, source_id)
    if not source.is_enabled:
        raise Conflict(f"source {source.name!r} is disabled; enable it first", source_id=source.id)
    if isinstance(mapping, Mapping):
        chosen, ref = mapping, mapping.name
    elif str(mapping) == SEGMENT:
        chosen, ref = None, SEGMENT
    else:
        chosen, ref = load_mapping(mapping), mapping_ref(mapping)
    fmt = "jsonl" if chosen is None else file_format(path, chosen.format)
    info = inspect_file(path, fmt, "auto" if chosen is None else chosen.encoding)
    sheet = chosen.sheet if chosen else None
    delimiter = chosen.delimiter if chosen else ","
    with open_rows(info, delimiter=delimiter, sheet=sheet) as (header, rows):
        if header is not None and chosen is not None:
            _check_header(chosen, header, info.path)
        previous = session.scalars(
            select(ImportRunRow)
            .where(
                ImportRunRow.source_id == source.id,
                ImportRunRow.file_sha256 == info.sha256,
                ImportRunRow.mapping == ref[:200],
            )
            .order_by(ImportRunRow.id.desc())
        ).all()
        done = next((r for r in previous if r.status == FINISHED), None)
        if skip_if_loaded and done is not None:
            return ImportReport(
                run_id=done.id, file=str(path), mapping=ref, source_id=source.id, status="skipped"
            )
        run = next((r for r in previous if r.status == RUNNING), None)
        resumed = run.last_row if run is not None else None
        if run is None:
            run = _start_run(session, ctx, source, path, info, ref)
        total = xlsx_row_count(path, sheet) if info.format == "xlsx" else info.approx_rows
        try:
            _run(session, ctx, source, run, rows, chosen, chunk_size, on_progress, total)
        except BaseException:
            session.rollback()
            raise
    log.info(
        "import.finished",
        extra={"run_id": run.id, "source_id": source.id, "rows": run.rows_read,
               "accepted": run.accepted, "dead_lettered": run.dead_lettered},
    )  # fmt: skip
    return ImportReport(
        run_id=run.id,
        file=str(path),
        mapping=ref,
        source_id=source.id,
        status="finished",
        resumed_after_row=resumed,
        rows_read=run.rows_read,
        accepted=run.accepted,
        duplicates=run.duplicates,
        dead_lettered=run.dead_lettered,
    )


def _start_run(
    session: Session, ctx: Context, source: Source, path: Path, info: FileInfo, ref: str
) -> ImportRunRow:
    """A new run, committed before the first chunk so even an early crash leaves its trace."""
    now = ctx.clock.now()
    run = ImportRunRow(
        id=new_id(now),
        bu_id=source.bu_id,
        source_id=source.id,
        file_name=path.name[:500],
        file_sha256=info.sha256,
        mapping=ref[:200],
        status=RUNNING,
        rows_read=0,
        accepted=0,
        duplicates=0,
        dead_lettered=0,
        last_row=0,
        started_at=now,
        finished_at=None,
    )
    session.add(run)
    session.commit()
    return run


def _run(
    session: Session,
    ctx: Context,
    source: Source,
    run: ImportRunRow,
    rows: Iterator[tuple[int, Row | BadRow]],
    mapping: Mapping | None,
    chunk_size: int,
    on_progress: Progress | None,
    total: int,
) -> None:
    after = run.last_row
    pending = ((n, row) for n, row in rows if n > after)
    for chunk in _chunks(_records(pending, mapping), chunk_size):
        _store_chunk(session, ctx, source, run, mapping, chunk)
        session.commit()
        if on_progress is not None:
            on_progress(run.rows_read, max(total, run.rows_read))
    run.status = FINISHED
    run.finished_at = ctx.clock.now()
    session.commit()
    if on_progress is not None:
        on_progress(run.rows_read, run.rows_read)


def _store_chunk(
    session: Session,
    ctx: Context,
    source: Source,
    run: ImportRunRow,
    mapping: Mapping | None,
    chunk: Sequence[Sequence[tuple[int, Row | BadRow]]],
) -> None:
    received_at = ctx.clock.now()
    messages: list[Message] = []
    invalid: list[tuple[int, Invalid]] = []
    for record in chunk:
        number = record[0][0]
        result = _parse_record(record, mapping, received_at)
        if isinstance(result, Message):
            messages.append(result)
        else:
            invalid.append((number, result))
    first, last = chunk[0][0][0], chunk[-1][-1][0]
    result = ingest(
        session,
        source,
        messages,
        received_at=received_at,
        origin=ORIGIN,
        ref=f"import:{run.id}:rows {first}-{last}",
    )
    # One ingest call per refused record, so its dead letter's ref names its row; refusals are
    # rare, and the ledger stays exact (each call is a ledger row).
    for number, item in invalid:
        refused = ingest(
            session,
            source,
            [],
            [item],
            received_at=received_at,
            origin=ORIGIN,
            ref=f"import:{run.id}:row {number}",
        )
        run.dead_lettered += refused.dead_lettered
    run.rows_read += sum(len(record) for record in chunk)
    run.accepted += result.accepted
    run.duplicates += result.duplicates
    run.dead_lettered += result.dead_lettered
    run.last_row = last


def _parse_record(
    record: Sequence[tuple[int, Row | BadRow]], mapping: Mapping | None, received_at: datetime
) -> Message | Invalid:
    number, first = record[0]
    if isinstance(first, BadRow):
        error = FieldError(("row", number), first.reason)
        if mapping is None:
            return Invalid("invalid_json", (error,), first.text)
        payload = {"row": None, "text": first.text, "row_number": number, "mapping": mapping.name}
        return Invalid("unreadable_row", (error,), payload)
    if mapping is None:
        return parse_message(first, (), received_at)
    rows: list[NumberedRow] = [(n, row) for n, row in record if not isinstance(row, BadRow)]
    call = map_record(mapping, rows)
    if isinstance(call, Invalid):
        return call
    parsed = parse_message(call, (), received_at)
    if isinstance(parsed, Invalid):
        # Keep the row, not the call: a replay maps the row again with the fixed mapping.
        return Invalid(
            parsed.reason, parsed.errors, record_payload(mapping, rows), call["messageId"]
        )
    return parsed


def _records(
    rows: Iterable[tuple[int, Row | BadRow]], mapping: Mapping | None
) -> Iterator[list[tuple[int, Row | BadRow]]]:
    """Rows grouped into records: one row each, or with ``lines`` the adjacent rows sharing the
    key (an order's lines are written together, as exports do)."""
    if mapping is None or mapping.lines is None:
        for item in rows:
            yield [item]
        return
    current: list[tuple[int, Row | BadRow]] = []
    current_key: str | None = None
    for number, row in rows:
        key = None if isinstance(row, BadRow) else record_message_id(mapping, row, number)
        if current and (key is None or key != current_key):
            yield current
            current = []
        current.append((number, row))
        current_key = key
    if current:
        yield current


def _chunks(
    records: Iterable[list[tuple[int, Row | BadRow]]], size: int
) -> Iterator[list[list[tuple[int, Row | BadRow]]]]:
    chunk: list[list[tuple[int, Row | BadRow]]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_header(mapping: Mapping, header: list[str], path: Path) -> None:
    """Fail before reading rows when the mapping names a column the file lacks: usually the
    wrong mapping or a renamed export column, and every row would be dead-lettered."""
    missing = sorted(mapping.columns() - set(header))
    if missing:
        raise ValidationFailed(
            f"{path.name} has no column {', '.join(map(repr, missing))} that mapping "
            f"{mapping.name} reads; its columns are: {', '.join(header)}",
            [FieldError(("columns", name), "not in the file's header") for name in missing],
            mapping=mapping.name,
        )


def reparse_import(session: Session, letter: DeadLetterRow) -> deadletters.Reparsed:
    """Dead-letter replay for imports: a kept row is mapped again with the run's mapping as it
    is now (fixed since, one hopes); a kept call (a Segment-spec file's line, or a mapped event
    a tracking plan blocked) is parsed again as the tracking API would. Registered for the
    ``import`` origin."""
    run_id = letter.ref.split(":")[1] if letter.ref.startswith("import:") else ""
    run = session.get(ImportRunRow, run_id) if run_id else None
    if run is None:
        return _refused(letter, "import_run_not_found", f"no import run {run_id or letter.ref!r}")
    try:
        payload = orjson.loads(letter.payload)
    except orjson.JSONDecodeError:
        payload = None
    if run.mapping == SEGMENT or (isinstance(payload, dict) and "row_number" not in payload):
        return deadletters.reparse_tracking_call(session, letter)
    if not isinstance(payload, dict):
        return _refused(letter, UNMAPPABLE, "the dead letter's payload is not a kept row")
    try:
        mapping = load_mapping(run.mapping)
    except OneLoopError as exc:
        return _refused(letter, "mapping_unavailable", exc.detail)
    call = remap_payload(mapping, payload)
    if isinstance(call, Invalid):
        return deadletters.Reparsed(None, call)
    parsed = parse_message(call, (), letter.received_at)
    if isinstance(parsed, Invalid):
        return deadletters.Reparsed(None, parsed)
    return deadletters.Reparsed(parsed, None)


def remap_dead_letter(mapping: Mapping, payload: str) -> Json | Invalid:
    """The call a dead-lettered import record makes with ``mapping`` (payload as stored)."""
    document = orjson.loads(payload)
    if not isinstance(document, dict):
        error = FieldError((), "the dead letter's payload is not a kept row")
        return Invalid(UNMAPPABLE, (error,), payload)
    return remap_payload(mapping, document)


def _refused(letter: DeadLetterRow, reason: str, detail: str) -> deadletters.Reparsed:
    return deadletters.Reparsed(
        None, Invalid(reason, (FieldError((), detail),), letter.payload, letter.message_id)
    )


deadletters.register_reparser(ORIGIN, reparse_import)
