"""Alembic's entry point: runs migrations on the engine ``oneloop.migrations`` hands over."""

from __future__ import annotations

from alembic import context

from oneloop.migrations import target_metadata

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()
