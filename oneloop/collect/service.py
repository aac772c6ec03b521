"""Sources and write keys.

A write key is shown once, when made; only its SHA-256 and a short prefix (to tell keys apart
in a list) are kept. Rotation adds a key and leaves the old one working until it is revoked,
so a site can roll its SDK configuration over without losing events. The caller commits.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from oneloop.collect.models import SourceRow, WriteKeyRow
from oneloop.collect.schemas import NewWriteKey, Source, SourceIn, WriteKey
from oneloop.core.clock import SystemClock
from oneloop.core.context import Context
from oneloop.core.db import in_tenancy, memo
from oneloop.core.errors import Conflict, NotFound, Unauthenticated
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit
from oneloop.governance import service as governance

KEY_PREFIX = "olk_"
PREFIX_SHOWN = 12


def hash_key(write_key: str) -> str:
    return hashlib.sha256(write_key.encode("utf-8")).hexdigest()


def create_source(session: Session, ctx: Context, data: SourceIn) -> NewWriteKey:
    ctx.require("collect.source.manage")
    bu = governance.get_business_unit(session, ctx, data.bu)
    if session.scalar(
        select(SourceRow.id).where(SourceRow.bu_id == bu.id, SourceRow.name == data.name)
    ):
        raise Conflict(f"{data.bu} already has a source named {data.name!r}", field="name")
    now = ctx.clock.now()
    row = SourceRow(
        id=new_id(now),
        bu_id=bu.id,
        name=data.name,
        kind=data.kind,
        is_enabled=True,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    made = NewWriteKey(id=row.id, write_key=_add_key(session, ctx, row.id))
    audit.record(session, ctx, "source.created", "source", row.id, bu_id=row.bu_id)
    return made


def internal_source(session: Session, bu_id: str, name: str) -> Source:
    """The unit's source for events OneLoop itself writes (a lead's status, an opportunity
    won), made on first use. It has no write key: nothing outside may send as it."""

    def find_or_make() -> Source:
        row = session.scalar(
            select(SourceRow).where(
                SourceRow.bu_id == bu_id, SourceRow.name == name, SourceRow.kind == "internal"
            )
        )
        if row is None:
            now = SystemClock().now()
            row = SourceRow(
                id=new_id(now), bu_id=bu_id, name=name, kind="internal", is_enabled=True,
                created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(row)
            session.flush()
        return Source.model_validate(row)

    return memo(session, ("collect.internal_source", bu_id, name), find_or_make)


def list_sources(session: Session, ctx: Context) -> list[Source]:
    """The caller's BU's sources (all BUs' for group-wide roles), oldest first, with keys."""
    ctx.require("collect.source.read")
    query = in_tenancy(select(SourceRow).order_by(SourceRow.id), SourceRow.bu_id, ctx)
    return _with_keys(session, list(session.scalars(query)))


def get_source(session: Session, ctx: Context, source_id: str) -> Source:
    ctx.require("collect.source.read")
    return _with_keys(session, [_get_row(session, ctx, source_id)])[0]


def rotate_key(session: Session, ctx: Context, source_id: str, *, revoke_old: bool) -> NewWriteKey:
    """A new key for the source; the old ones keep working unless ``revoke_old``."""
    ctx.require("collect.source.manage")
    row = _get_row(session, ctx, source_id)
    revoked = _revoke(session, ctx, WriteKeyRow.source_id == row.id) if revoke_old else 0
    made = NewWriteKey(id=row.id, write_key=_add_key(session, ctx, row.id))
    detail: dict[str, audit.DetailValue] = {"revoked": revoked}
    audit.record(
        session, ctx, "source.key_rotated", "source", row.id, detail=detail, bu_id=row.bu_id
    )
    return made


def revoke_key(session: Session, ctx: Context, source_id: str, prefix: str) -> None:
    ctx.require("collect.source.manage")
    row = _get_row(session, ctx, source_id)
    if not _revoke(session, ctx, WriteKeyRow.source_id == row.id, WriteKeyRow.prefix == prefix):
        raise NotFound(f"source {source_id} has no active key {prefix!r}", prefix=prefix)
    audit.record(session, ctx, "source.key_revoked", "source", row.id, bu_id=row.bu_id)


def set_enabled(session: Session, ctx: Context, source_id: str, *, enabled: bool) -> Source:
    """A disabled source's keys are refused (401) until it is enabled again."""
    ctx.require("collect.source.manage")
    row = _get_row(session, ctx, source_id)
    row.is_enabled = enabled
    row.updated_at = ctx.clock.now()
    session.flush()
    action = "source.enabled" if enabled else "source.disabled"
    audit.record(session, ctx, action, "source", row.id, bu_id=row.bu_id)
    return get_source(session, ctx, source_id)


def authenticate(session: Session, write_key: str) -> Source:
    """The enabled source an active key belongs to; anything else is Unauthenticated, with one
    message for every case so a caller cannot probe which keys exist."""
    row = session.execute(
        select(SourceRow)
        .join(WriteKeyRow, WriteKeyRow.source_id == SourceRow.id)
        .where(
            WriteKeyRow.key_hash == hash_key(write_key),
            WriteKeyRow.revoked_at.is_(None),
            SourceRow.is_enabled.is_(True),
        )
    ).scalar_one_or_none()
    if row is None:
        raise Unauthenticated("unknown, revoked or disabled write key")
    return Source.model_validate(row)


def _with_keys(session: Session, rows: list[SourceRow]) -> list[Source]:
    """Sources with their keys (prefixes and dates only), in one query for all of them."""
    keys: dict[str, list[WriteKey]] = {r.id: [] for r in rows}
    for key in session.scalars(
        select(WriteKeyRow).where(WriteKeyRow.source_id.in_(keys)).order_by(WriteKeyRow.id)
    ):
        keys[key.source_id].append(WriteKey.model_validate(key))
    return [Source.model_validate(r).model_copy(update={"keys": keys[r.id]}) for r in rows]


def _get_row(session: Session, ctx: Context, source_id: str) -> SourceRow:
    query = select(SourceRow).where(SourceRow.id == source_id)
    row = session.scalar(in_tenancy(query, SourceRow.bu_id, ctx))
    if row is None:
        raise NotFound(f"no source with id {source_id!r}", source_id=source_id)
    return row


def _add_key(session: Session, ctx: Context, source_id: str) -> str:
    write_key = KEY_PREFIX + secrets.token_urlsafe(24)
    now = ctx.clock.now()
    session.add(
        WriteKeyRow(
            id=new_id(now),
            source_id=source_id,
            key_hash=hash_key(write_key),
            prefix=write_key[:PREFIX_SHOWN],
            created_at=now,
            revoked_at=None,
        )
    )
    session.flush()
    return write_key


def _revoke(session: Session, ctx: Context, *where: object) -> int:
    result = session.execute(
        update(WriteKeyRow)
        .where(WriteKeyRow.revoked_at.is_(None), *where)  # type: ignore[arg-type]  # SQL clauses
        .values(revoked_at=ctx.clock.now())
    )
    return result.rowcount  # type: ignore[attr-defined,no-any-return]  # a CursorResult


SOURCE_SORTS: dict[str, Column] = {
    "name": SourceRow.name,
    "created_at": SourceRow.created_at,
    "updated_at": SourceRow.updated_at,
}


def page_sources(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    kind: str | None = None,
    is_enabled: bool | None = None,
    q: str | None = None,
) -> Page[Source]:
    """``list_sources`` a keyset page at a time (issue 8); ``q`` matches the name."""
    ctx.require("collect.source.read")
    query = in_tenancy(select(SourceRow), SourceRow.bu_id, ctx)
    if kind is not None:
        query = query.where(SourceRow.kind == kind)
    if is_enabled is not None:
        query = query.where(SourceRow.is_enabled.is_(is_enabled))
    if q:
        query = query.where(SourceRow.name.icontains(q, autoescape=True))
    return keyset_page(
        session,
        query,
        page,
        SOURCE_SORTS,
        SourceRow.id,
        lambda rows: _with_keys(session, list(rows)),
    )
