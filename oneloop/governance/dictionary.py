"""The data dictionary (数据字典 / 指标口径, issue 7, parts 3 and 7): one place that says what
each field and metric means, in which unit and currency, with or without tax, who owns it,
how personal it is and where it comes from.

Every signed-in caller in the group reads every entry (a definition is not data about
anyone), so reads check no permission. Changes need ``dictionary.manage``; the group's
entries are HQ's to change, a unit's its own (as with every other definition). Each change is
a new version, kept with who, when, which fields and why; the newest version is what applies.

A new database gets the shipped defaults (``dictionary.yaml``) from its migration, so the
personal fields are classified, and masked, before the first event arrives; ``install``
brings a database up to a newer release's defaults without touching what someone edited.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit
from oneloop.governance.dictionary_schemas import (
    CLASSIFICATIONS,
    ENTRY_KINDS,
    DictionaryKey,
    Entry,
    EntryIn,
    EntryPage,
    EntryVersion,
    InstallReport,
    LineageItem,
    MetricRef,
    label,
    problems,
)
from oneloop.governance.masking import PII_KINDS
from oneloop.governance.models import (
    BusinessUnitRow,
    DictionaryEntryRow,
    DictionaryVersionRow,
)

log = logging.getLogger(__name__)

MANAGE = "dictionary.manage"
DEFAULTS_PATH = Path(__file__).with_name("dictionary.yaml")
DEFAULTS_NOTE = "OneLoop's default dictionary"
MAX_PAGE = 500
_KEY: TypeAdapter[str] = TypeAdapter(DictionaryKey)
# The columns an entry's content lives in (its key, version and stamps aside).
CONTENT = (
    "kind",
    "name_zh",
    "name_en",
    "description_zh",
    "description_en",
    "data_type",
    "unit",
    "currency",
    "includes_tax",
    "classification",
    "pii_kind",
)


# --- the shipped defaults ------------------------------------------------------------------


@cache
def default_entries() -> dict[str, EntryIn]:
    """The shipped dictionary, validated (a bad entry in it is a bug: tests load it)."""
    document = yaml.safe_load(DEFAULTS_PATH.read_text(encoding="utf-8"))
    entries: dict[str, EntryIn] = {}
    for key, body in document["entries"].items():
        entry = EntryIn.model_validate(body)
        if errors := problems(entry):
            raise ValueError(f"dictionary.yaml: {key}: {errors[0].path}: {errors[0].msg}")
        entries[key] = entry
    return entries


def default_rows(now: datetime, by: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The defaults as rows of ``governance_dictionary_entry`` and of its versions (each
    version 1, ``installed``): what the migration inserts. Owned by the group."""
    entries, versions = [], []
    for key, entry in default_entries().items():
        document = entry.document()
        entries.append(_row_values(key, entry, None, version=1, now=now, by=by))
        versions.append(_version_values(key, 1, document, list(document), "installed", now, by))
    return entries, versions


def _row_values(
    key: str, entry: EntryIn, owner_bu_id: str | None, *, version: int, now: datetime, by: str
) -> dict[str, Any]:  # Any: column values
    values: dict[str, Any] = {name: getattr(entry, name) for name in CONTENT}
    values.update(
        key=key,
        owner_bu_id=owner_bu_id,
        lineage=[item.model_dump(mode="json") for item in entry.lineage],
        version=version,
        updated_at=now,
        updated_by=by,
    )
    return values


def _version_values(
    key: str,
    version: int,
    document: dict[str, Any],  # Any: JSON values
    changed: list[str],
    change: str,
    now: datetime,
    by: str,
    note: str | None = DEFAULTS_NOTE,
) -> dict[str, Any]:  # Any: column values
    return {
        "key": key,
        "version": version,
        "document": document,
        "changed": changed,
        "change": change,
        "note": note,
        "changed_at": now,
        "changed_by": by,
    }


# --- reading: every caller in the group ------------------------------------------------------


def list_entries(
    session: Session,
    ctx: Context,
    *,
    kind: str | None = None,
    classification: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> EntryPage:
    """By key; ``cursor`` is the previous page's ``next_cursor`` (the last key it had)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(DictionaryEntryRow).order_by(DictionaryEntryRow.key).limit(limit + 1)
    if kind is not None:
        query = query.where(DictionaryEntryRow.kind == kind)
    if classification is not None:
        query = query.where(DictionaryEntryRow.classification == classification)
    if cursor:
        query = query.where(DictionaryEntryRow.key > cursor)
    rows = list(session.scalars(query))
    codes = _unit_codes(session)
    items = [_entry(row, codes) for row in rows[:limit]]
    return EntryPage(items=items, next_cursor=items[-1].key if len(rows) > limit else None)


ENTRY_SORTS: dict[str, Column] = {
    "key": DictionaryEntryRow.key,
    "name_en": DictionaryEntryRow.name_en,
    "updated_at": DictionaryEntryRow.updated_at,
}


def page_entries(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    kind: str | None = None,
    classification: str | None = None,
) -> Page[Entry]:
    """``list_entries`` in the API's common page and cursor format (issue 8), any sort."""
    query = select(DictionaryEntryRow)
    if kind is not None:
        query = query.where(DictionaryEntryRow.kind == kind)
    if classification is not None:
        query = query.where(DictionaryEntryRow.classification == classification)

    def entries(rows: Sequence[DictionaryEntryRow]) -> list[Entry]:
        codes = _unit_codes(session)
        return [_entry(row, codes) for row in rows]

    return keyset_page(session, query, page, ENTRY_SORTS, DictionaryEntryRow.key, entries)


def get_entry(session: Session, ctx: Context, key: str) -> Entry:
    return _entry(_row(session, key), _unit_codes(session))


def find_metric(session: Session, key: str) -> MetricRef | None:
    """The metric ``key`` as a computed trait shows it, or None when there is no such metric."""
    row = session.get(DictionaryEntryRow, key)
    if row is None or row.kind != "metric":
        return None
    return MetricRef(
        key=row.key,
        name_zh=row.name_zh,
        name_en=row.name_en,
        description_zh=row.description_zh,
        description_en=row.description_en,
        data_type=row.data_type,
        unit=row.unit,
        currency=row.currency,
        includes_tax=row.includes_tax,
        version=row.version,
    )


def list_versions(session: Session, ctx: Context, key: str) -> list[EntryVersion]:
    """Every version of an entry, newest first."""
    _row(session, key)
    rows = session.scalars(
        select(DictionaryVersionRow)
        .where(DictionaryVersionRow.key == key)
        .order_by(DictionaryVersionRow.version.desc())
    )
    return [
        EntryVersion(
            key=r.key,
            version=r.version,
            change=r.change,  # type: ignore[arg-type]  # written as one of the two
            changed=list(r.changed),
            note=r.note,
            changed_at=r.changed_at,
            changed_by=r.changed_by,
            entry=dict(r.document),
        )
        for r in rows
    ]


# --- changing: dictionary.manage ---------------------------------------------------------------


def parse_entry(document: object) -> EntryIn:
    """An entry file's content (``oneloop dictionary set --file``), or ValidationFailed
    naming each bad field."""
    try:
        return EntryIn.model_validate(document)
    except ValidationError as exc:
        errors = [FieldError(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        raise ValidationFailed(
            f"the entry has {len(errors)} invalid field(s): "
            + ", ".join(e.path or "(the entry)" for e in errors[:5]),
            errors,
        ) from None


def set_entry(session: Session, ctx: Context, key: str, data: EntryIn) -> Entry:
    """Create the entry, or change it as a new version; the same content again changes
    nothing (no version, no audit entry), so a PUT may be repeated."""
    ctx.require(MANAGE)
    _check_key(key)
    if errors := problems(data):
        raise ValidationFailed(f"the entry {key!r} is not consistent: {errors[0].msg}", errors)
    _check_lineage_metrics(session, key, data.lineage)
    row = session.get(DictionaryEntryRow, key, with_for_update=True)
    if row is not None and not _may_change(ctx, row.owner_bu_id):
        whose = "the group's: HQ" if row.owner_bu_id is None else "another unit's: that unit"
        raise Forbidden(f"the entry {key!r} is {whose} changes it", key=key)
    owner = _owner_id(session, ctx, data.owner_bu)
    codes = _unit_codes(session)
    document = _document(data, owner, codes)
    now = ctx.clock.now()
    if row is None:
        changed = list(document)
        row = DictionaryEntryRow(
            **_row_values(key, data, owner, version=1, now=now, by=ctx.user_id)
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(
                f"the entry {key!r} was created at the same time; retry", key=key
            ) from None
    else:
        before = _document_of(row, codes)
        changed = sorted(name for name in document if document[name] != before.get(name))
        if not changed:
            return _entry(row, codes)
        for name, value in _row_values(
            key, data, owner, version=row.version + 1, now=now, by=ctx.user_id
        ).items():
            setattr(row, name, value)
    session.add(
        DictionaryVersionRow(
            **_version_values(
                key, row.version, document, changed, "edited", now, ctx.user_id, data.note
            )
        )
    )
    session.flush()
    log.info("dictionary.changed", extra={"key": key, "version": row.version})
    detail: dict[str, audit.DetailValue] = {"version": row.version, "fields": changed}
    audit.record(
        session, ctx, "dictionary.changed", "dictionary_entry", key, detail=detail, bu_id=owner
    )
    return _entry(row, codes)


def install_defaults(session: Session, ctx: Context) -> InstallReport:
    """Install the shipped dictionary: entries missing are created; entries nobody has
    edited since they were installed are brought up to this release's; entries someone
    edited are kept as they are. Running it again changes nothing."""
    ctx.require(MANAGE)
    report = InstallReport(created=[], updated=[], kept=[], unchanged=0)
    rows = {r.key: r for r in session.scalars(select(DictionaryEntryRow))}
    change = dict(
        session.execute(
            select(DictionaryVersionRow.key, DictionaryVersionRow.change).join(
                DictionaryEntryRow,
                (DictionaryEntryRow.key == DictionaryVersionRow.key)
                & (DictionaryEntryRow.version == DictionaryVersionRow.version),
            )
        ).all()
    )
    codes = _unit_codes(session)
    now = ctx.clock.now()
    for key, entry in default_entries().items():
        document = entry.document()
        row = rows.get(key)
        if row is None:
            session.add(
                DictionaryEntryRow(
                    **_row_values(key, entry, None, version=1, now=now, by=ctx.user_id)
                )
            )
            session.flush()
            session.add(
                DictionaryVersionRow(
                    **_version_values(
                        key, 1, document, list(document), "installed", now, ctx.user_id
                    )
                )
            )
            report.created.append(key)
            continue
        before = _document_of(row, codes)
        changed = sorted(name for name in document if document[name] != before.get(name))
        if not changed:
            report.unchanged += 1
        elif change.get(key) == "edited":
            report.kept.append(key)
        else:
            for name, value in _row_values(
                key, entry, None, version=row.version + 1, now=now, by=ctx.user_id
            ).items():
                setattr(row, name, value)
            session.add(
                DictionaryVersionRow(
                    **_version_values(
                        key, row.version, document, changed, "installed", now, ctx.user_id
                    )
                )
            )
            report.updated.append(key)
    session.flush()
    if report.created or report.updated:
        detail: dict[str, audit.DetailValue] = {
            "created": report.created,
            "updated": report.updated,
        }
        audit.record(session, ctx, "dictionary.changed", "dictionary", None, detail=detail)
    return report


# --- helpers -----------------------------------------------------------------------------------


def _row(session: Session, key: str) -> DictionaryEntryRow:
    row = session.get(DictionaryEntryRow, key)
    if row is None:
        raise NotFound(f"the dictionary has no entry {key!r}", key=key)
    return row


def _check_key(key: str) -> None:
    try:
        _KEY.validate_python(key)
    except ValidationError:
        raise ValidationFailed(
            "bad dictionary key",
            [
                FieldError(
                    ("key",), "lower-case snake_case, at most one dot, e.g. phone or address.city"
                )
            ],
        ) from None


def _check_lineage_metrics(session: Session, key: str, lineage: list[LineageItem]) -> None:
    """A metric built from other metrics (AOV from revenue and orders) names ones that exist."""
    named = [(i, item.name) for i, item in enumerate(lineage) if item.kind == "metric"]
    for i, name in named:
        if name == key:
            raise ValidationFailed(
                "an entry cannot feed itself", [FieldError(("lineage", i, "name"), "is this entry")]
            )
        if find_metric(session, name) is None:
            raise ValidationFailed(
                "unknown metric in lineage",
                [FieldError(("lineage", i, "name"), f"the dictionary has no metric {name!r}")],
            )


def _may_change(ctx: Context, owner_bu_id: str | None) -> bool:
    """The group's entries are HQ's to change; a unit's its own users'."""
    return ctx.is_group_wide or (owner_bu_id is not None and owner_bu_id == ctx.bu_id)


def _owner_id(session: Session, ctx: Context, code: str | None) -> str | None:
    """The owning unit's id (None: the group). A unit's user owns what they define; another
    unit is unknown to them, exactly like one that does not exist."""
    if code is None:
        return None if ctx.is_group_wide else ctx.bu_id
    row = session.scalar(select(BusinessUnitRow).where(BusinessUnitRow.code == code))
    if row is None or not (ctx.is_group_wide or row.id == ctx.bu_id):
        raise ValidationFailed(
            "unknown owner", [FieldError(("owner_bu",), f"no business unit with code {code!r}")]
        )
    return None if row.parent_id is None else row.id


def _unit_codes(session: Session) -> dict[str | None, str]:
    """Unit id → code. The group is not in it: an entry owned by the group shows no code."""
    return {
        unit_id: code
        for unit_id, code in session.execute(
            select(BusinessUnitRow.id, BusinessUnitRow.code).where(
                BusinessUnitRow.parent_id.is_not(None)
            )
        )
    }


def _document(data: EntryIn, owner: str | None, codes: dict[str | None, str]) -> dict[str, Any]:
    document = data.document()
    document["owner_bu"] = codes.get(owner)
    return document


def _document_of(row: DictionaryEntryRow, codes: dict[str | None, str]) -> dict[str, Any]:
    """The stored entry as the document a version keeps."""
    document: dict[str, Any] = {name: getattr(row, name) for name in CONTENT}
    document["lineage"] = list(row.lineage)
    document["owner_bu"] = codes.get(row.owner_bu_id)
    return EntryIn.model_validate(document).document()


def _entry(row: DictionaryEntryRow, codes: dict[str | None, str]) -> Entry:
    return Entry(
        key=row.key,
        kind=row.kind,  # type: ignore[arg-type]  # validated when written
        name_zh=row.name_zh,
        name_en=row.name_en,
        description_zh=row.description_zh,
        description_en=row.description_en,
        data_type=row.data_type,
        unit=row.unit,
        currency=row.currency,
        includes_tax=row.includes_tax,
        owner_bu=codes.get(row.owner_bu_id),
        classification=row.classification,  # type: ignore[arg-type]  # validated when written
        pii_kind=row.pii_kind,
        lineage=[LineageItem.model_validate(i) for i in row.lineage],
        version=row.version,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        kind_label=label(ENTRY_KINDS, row.kind),  # type: ignore[arg-type]  # never None here
        classification_label=label(CLASSIFICATIONS, row.classification),  # type: ignore[arg-type]
        pii_kind_label=label(PII_KINDS, row.pii_kind),
    )
