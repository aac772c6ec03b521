"""Reading export files row by row: CSV (UTF-8, UTF-8 with a BOM, GB18030), XLSX, JSONL.

Chinese exports come in all three encodings: Excel needs the BOM to show UTF-8, while older
Windows tools and several domestic CRMs write GB18030. A BOM decides; otherwise the whole file
is checked as UTF-8 and, failing that, as GB18030. The whole file, not a sample: an export
whose first megabyte is ASCII can still have Chinese names further down. The check shares its
pass with the SHA-256 that identifies the file for resuming, so it costs one sequential read.

Rows are numbered as a spreadsheet numbers them (the header is row 1, the first record row 2);
JSONL rows by their line. That number is what a data engineer is shown in a dead letter.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from oneloop.core.errors import ValidationFailed

# A cell: text from CSV; text, numbers, datetimes, booleans or None from XLSX; any JSON value
# from JSONL. The mapper types each value as the mapping declares.
Row = dict[str, object]
BLOCK = 1 << 20
_SHOWN = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with a BOM", "gb18030": "GB18030"}
FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class BadRow:
    """A row that could not even be read as a row (a JSONL line that is not a JSON object):
    dead-lettered with its text, never dropped."""

    text: str
    reason: str


@dataclass(frozen=True)
class FileInfo:
    path: Path
    format: str
    encoding: str | None  # CSV only
    sha256: str
    size: int
    approx_rows: int  # from line ends; only for the progress bar (quoted cells may hold some)


def file_format(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationFailed(
            f"cannot tell the format of {path.name} from its suffix; set format: "
            "(csv, xlsx or jsonl) in the mapping",
            file=str(path),
        )
    return fmt


def inspect_file(path: Path, fmt: str, encoding: str = "auto") -> FileInfo:
    """Fingerprint the file and settle a CSV's encoding, in one read (a second only when a
    file without a BOM turns out not to be UTF-8)."""
    if not path.is_file():
        raise ValidationFailed(f"no file {path}", file=str(path))
    if fmt != "csv":
        candidates: list[str | None] = [None]
    elif encoding != "auto":
        candidates = [encoding]
    else:
        with path.open("rb") as f:
            has_bom = f.read(3) == codecs.BOM_UTF8
        candidates = ["utf-8-sig"] if has_bom else ["utf-8", "gb18030"]
    failed_at = 0
    for candidate in candidates:
        try:
            sha, size, rows = _read_pass(path, candidate)
        except UnicodeDecodeError as exc:
            failed_at = exc.start
            continue
        return FileInfo(
            path=path,
            format=fmt,
            encoding=candidate,
            sha256=sha,
            size=size,
            approx_rows=max(0, rows - (1 if fmt in ("csv", "xlsx") else 0)),
        )
    tried = " nor ".join(_SHOWN.get(c or "", c or "") for c in candidates)
    raise ValidationFailed(
        f"{path.name} is {'neither ' if len(candidates) > 1 else 'not valid '}{tried} "
        f"(byte {failed_at:,}); set encoding: in the mapping (utf-8, utf-8-sig or gb18030) "
        "or re-export the file",
        file=str(path),
    )


def _read_pass(path: Path, encoding: str | None) -> tuple[str, int, int]:
    """SHA-256, size and line count (a last line without a line end counts), decoding as we
    go when an encoding is given: a bad byte raises with its offset in the file."""
    sha = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)() if encoding else None
    size = lines = 0
    last = b"\n"
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            if decoder is not None:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    exc.start += size
                    raise
            sha.update(block)
            size += len(block)
            lines += block.count(b"\n")
            last = block[-1:]
        if decoder is not None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                exc.start = size
                raise
    return sha.hexdigest(), size, lines + (0 if last == b"\n" else 1)


@contextmanager
def open_rows(
    info: FileInfo, *, delimiter: str = ",", sheet: str | None = None
) -> Iterator[tuple[list[str] | None, Iterator[tuple[int, Row | BadRow]]]]:
    """Yield the header (None for JSONL) and an iterator of (row number, row)."""
    if info.format == "csv":
        with info.path.open(encoding=info.encoding, newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = _header(next(reader, []), info.path)
            yield header, _csv_rows(reader, header)
    elif info.format == "xlsx":
        from openpyxl import load_workbook

        book = load_workbook(info.path, read_only=True, data_only=True)
        try:
            if sheet is not None and sheet not in book.sheetnames:
                raise ValidationFailed(
                    f"{info.path.name} has no sheet {sheet!r}; it has {', '.join(book.sheetnames)}",
                    sheet=sheet,
                )
            ws = book[sheet] if sheet is not None else book.worksheets[0]
            cells = ws.iter_rows(values_only=True)
            first = next(cells, ())
            header = _header(["" if v is None else str(v) for v in first], info.path)
            yield header, _xlsx_rows(cells, header)
        finally:
            book.close()
    else:
        with info.path.open("rb") as f:
            yield None, _jsonl_rows(f)


def xlsx_row_count(path: Path, sheet: str | None) -> int:
    """Data rows an XLSX declares (its dimension), for the progress bar; 0 when unknown."""
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    try:
        ws = book[sheet] if sheet in book.sheetnames else book.worksheets[0]
        return max(0, (ws.max_row or 1) - 1)
    finally:
        book.close()


def _header(cells: list[str], path: Path) -> list[str]:
    header: list[str] = []
    for i, cell in enumerate(cells):
        # A BOM read as text (an explicit utf-8 on a BOM file) must not become part of a name.
        name = cell.replace("\ufeff", "").strip() or f"column {i + 1}"
        if name in header:
            raise ValidationFailed(
                f"{path.name} has two columns named {name!r}; rename one", column=name
            )
        header.append(name)
    return header


def _csv_rows(reader: Iterator[list[str]], header: list[str]) -> Iterator[tuple[int, Row | BadRow]]:
    number = 1
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field past the size limit: keep it, go on
            yield number, BadRow("", f"not readable as CSV: {exc}")
            continue
        if not cells or all(not c.strip() for c in cells):
            continue
        yield number, dict(zip(header, cells, strict=False))


def _xlsx_rows(cells: Iterator[tuple[object, ...]], header: list[str]) -> Iterator[tuple[int, Row]]:
    for number, values in enumerate(cells, start=2):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        yield number, dict(zip(header, values, strict=False))


def _jsonl_rows(f: Iterator[bytes]) -> Iterator[tuple[int, Row | BadRow]]:
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            yield number, BadRow(text, f"not JSON: {exc}")
            continue
        if isinstance(value, dict):
            yield number, value
        else:
            yield number, BadRow(line.decode().rstrip("\r\n"), "a line must be a JSON object")
