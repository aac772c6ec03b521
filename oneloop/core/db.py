"""Engine, sessions and the declarative base: one codebase over SQLite and PostgreSQL.

SQLite is the embedded default, tuned for durability first: WAL so readers do not block the
writer, ``synchronous=FULL`` because in WAL mode NORMAL does not fsync on commit (an
acknowledged event could vanish in a power cut; batching commits keeps FULL cheap),
``foreign_keys=ON`` because SQLite leaves them off, and a busy timeout so a writer waits for
the lock instead of failing at once. A lock still held after that is a temporary failure,
reported as ``Unavailable`` (HTTP 503 with Retry-After), never as a client error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Select,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.types import TypeDecorator

from oneloop.core.config import Settings
from oneloop.core.context import Context
from oneloop.core.errors import Unavailable

# Constraint names identical on both databases, so migrations can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Whole statements, chosen by the validated setting: no SQL is built from configuration text.
SQLITE_SYNCHRONOUS = {
    "OFF": "PRAGMA synchronous=OFF",
    "NORMAL": "PRAGMA synchronous=NORMAL",
    "FULL": "PRAGMA synchronous=FULL",
    "EXTRA": "PRAGMA synchronous=EXTRA",
}


# SQLite only makes INTEGER PRIMARY KEY the rowid (an append-only B-tree); PostgreSQL wants a
# 64-bit sequence for a log that outlives 2^31 events.
LogPosition = BigInteger().with_variant(Integer, "sqlite")
# JSONB on PostgreSQL: indexable, and compared by value rather than by text.
Json = JSON().with_variant(JSONB(), "postgresql")


class JsonScalar(TypeDecorator[Any]):  # Any: a JSON value
    """A column that may hold a bare JSON scalar (``30``, ``"上海"``, ``true``). SQLite gives a
    column declared JSON numeric affinity, so the JSON text ``30`` is stored as the integer 30,
    which a JSON reader then refuses; on SQLite this is TEXT holding JSON, on PostgreSQL JSONB."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(Text() if dialect.name == "sqlite" else JSONB())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and value is not None:
            return json_dumps(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and isinstance(value, str):
            return orjson.loads(value)
        return value


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out: SQLite stores naive text, PostgreSQL ``timestamptz``.

    A naive datetime is refused on the way in: guessing its zone is how times go wrong by eight
    hours in Asia/Shanghai.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_dumps(value: object) -> str:
    """JSON columns go through orjson: the event log writes several per event."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


# The engine carries the key that protects sensitive personal data at rest
# (``ONELOOP_PII_HASH_KEY``): every writer of the event log reaches the database through an
# engine built here, so none can forget the key (``oneloop.governance.pii.hash_key``).
PII_HASH_KEY_OPTION = "oneloop_pii_hash_key"


def create_db_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    json_args: dict[str, Any] = {  # Any: create_engine's keyword arguments
        "json_serializer": json_dumps,
        "json_deserializer": orjson.loads,
        "execution_options": {PII_HASH_KEY_OPTION: settings.pii_hash_key},
    }
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000}, **json_args
        )
        _tune_sqlite(engine, settings)
        return engine
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        pool_pre_ping=True,
        max_overflow=settings.db_pool_size,
        **json_args,
    )


def _tune_sqlite(engine: Engine, settings: Settings) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]  # DBAPI objects
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(SQLITE_SYNCHRONOUS[settings.sqlite_synchronous])
        cur.execute("PRAGMA foreign_keys=ON")
        # Reads come from memory: a connection's page cache of 64 MiB (SQLite's default is
        # 2 MiB) and the file mapped rather than copied through read() calls.
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA mmap_size=268435456")
        cur.close()


SelectT = TypeVar("SelectT", bound=Select[Any])  # Any: whatever row shape the select has


def in_tenancy(query: SelectT, bu_column: ColumnElement[str], ctx: Context) -> SelectT:
    """The caller's business unit only, unless the context is group-wide: tenancy is put into
    the query itself, so a forgotten check cannot leak another unit's rows."""
    return query if ctx.is_group_wide else query.where(bu_column == ctx.bu_id)


T = TypeVar("T")
IN_CHUNK = 400  # values per IN (...): far below SQLite's 32,766 and PostgreSQL's 65,535 params


def in_chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """Slices of ``items`` small enough for one ``IN (...)`` on either database."""
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


_MEMO = "oneloop.memo"


def memo(session: Session, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` once per transaction of ``session``: the small lookups every item of a
    batch reads (a unit's settings, the group's id), forgotten when the transaction ends, so
    another transaction's change is seen by the next one."""
    cache: dict[Hashable, Any] = session.info.setdefault(_MEMO, {})  # Any: each key's own
    if key not in cache:
        cache[key] = compute()
    return cache[key]  # type: ignore[no-any-return]  # stored by this function for this key


def forget(session: Session, key: Hashable) -> None:
    """Drop one memo now: the transaction itself just changed what it was computed from."""
    session.info.get(_MEMO, {}).pop(key, None)


def forget_all(session: Session, family: str) -> None:
    """Drop every memo whose key is ``family`` or a tuple starting with it."""
    cache = session.info.get(_MEMO, {})
    for key in [k for k in cache if k == family or (isinstance(k, tuple) and k[:1] == (family,))]:
        del cache[key]


@event.listens_for(Session, "after_transaction_end")
def _forget_memos(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_MEMO, None)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error.

    The caller of a service owns the transaction; services only flush.
    """
    with factory() as session, session.begin():
        yield session


def write_lock(session: Session) -> None:
    """On SQLite, take the database's write lock now, as the transaction's first statement,
    waiting for it up to the busy timeout. A worker's transaction reads, then writes; begun
    the default (deferred) way, its first write fails at once with "database is locked" when
    anyone committed since its first read (SQLite cannot move a read snapshot forward), and
    under steady ingest that is nearly every time. PostgreSQL needs nothing."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: a locked SQLite file, a lost or refused connection."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def as_unavailable(exc: DBAPIError) -> Unavailable:
    reason = "database is busy" if "locked" in str(exc.orig) else "database is unreachable"
    return Unavailable(f"{reason}; retry shortly", retry_after=1)


@contextmanager
def scratch_database(url: str, prefix: str, *, or_same: bool = False) -> Iterator[str]:
    """A new, empty PostgreSQL database next to ``url``'s, dropped on the way out.

    With ``or_same``, a role that may not create databases gets ``url`` itself instead of an
    error (the benches measure such a role too). Dropping never calls
    ``pg_terminate_backend`` on the whole database: an autovacuum worker counts as a
    superuser's process, which a plain role may not signal (PostgreSQL 15 refuses it), so
    only our own leftover client connections are ended and ``DROP DATABASE`` itself tells
    autovacuum to leave.
    """
    import psycopg
    from psycopg import errors, sql

    base = make_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except errors.InsufficientPrivilege:
            if not or_same:
                raise
            yield url
            return
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            _drop_database(admin, name)


def _drop_database(admin: Any, name: str) -> None:
    from psycopg import errors, sql

    for attempt in range(20):
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend'"
            " AND usename = current_user AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            return
        except errors.ObjectInUse:
            if attempt == 19:
                raise
            time.sleep(0.25)


class Unindexed(ColumnElement[Any]):
    """A column SQLite's planner must not pick an index for (rendered ``+column``, SQLite's
    documented way to say so); elsewhere the column itself. For the queries where SQLite,
    even with statistics, chooses a wide index range over a narrow one."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(Unindexed)
def _unindexed(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(Unindexed, "sqlite")
def _unindexed_sqlite(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.column, **kw)}"
