"""Alembic's entry point: runs migrations on the engine ``oneloop.migrations`` hands over."""

from __future__ import annotations

from alembic import context
from alembic.autogenerate.api import AutogenContext

from oneloop.core.db import JsonScalar, UTCDateTime
from oneloop.migrations import target_metadata

config = context.config
engine = config.attributes["engine"]


def render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | bool:
    """Migrations name plain SQL types, so they never depend on code that may change later."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, JsonScalar):
        return 'sa.Text().with_variant(postgresql.JSONB(), "postgresql")'
    return False


with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
        compare_server_default=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
