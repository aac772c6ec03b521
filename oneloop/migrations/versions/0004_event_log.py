"""The event log, dead letters, the ingest ledger, consumer cursors and import runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
LOG_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "collect_cursor",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("tx", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("processed", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_collect_cursor")),
    )
    op.create_table(
        "collect_dead_letter",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("source_id", sa.String(length=26), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("errors", JSON, nullable=False),
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collect_dead_letter")),
    )
    with op.batch_alter_table("collect_dead_letter") as batch_op:
        batch_op.create_index(batch_op.f("ix_collect_dead_letter_bu_id"), ["bu_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_collect_dead_letter_reason"), ["reason"], unique=False)
        batch_op.create_index(
            "ix_collect_dead_letter_source_id_status", ["source_id", "status"], unique=False
        )

    op.create_table(
        "collect_event",
        sa.Column("seq", LOG_POSITION, autoincrement=True, nullable=False),
        sa.Column("tx", sa.BigInteger(), nullable=False),
        sa.Column("dedupe_key", sa.BigInteger(), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("source_id", sa.String(length=26), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("anonymous_id", sa.String(length=255), nullable=True),
        sa.Column("group_id", sa.String(length=255), nullable=True),
        sa.Column("previous_id", sa.String(length=255), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("original_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("properties", JSON, nullable=True),
        sa.Column("traits", JSON, nullable=True),
        sa.Column("context", JSON, nullable=True),
        sa.Column("identifiers", JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_collect_event")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_collect_event_dedupe_key")),
    )
    with op.batch_alter_table("collect_event") as batch_op:
        batch_op.create_index("ix_collect_event_tx_seq", ["tx", "seq"], unique=False)

    op.create_table(
        "collect_ingest_batch",
        sa.Column("id", LOG_POSITION, autoincrement=True, nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("source_id", sa.String(length=26), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("dead_lettered", sa.Integer(), nullable=False),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collect_ingest_batch")),
    )
    with op.batch_alter_table("collect_ingest_batch") as batch_op:
        batch_op.create_index(
            "ix_collect_ingest_batch_source_id_at", ["source_id", "at"], unique=False
        )

    op.create_table(
        "collect_import_run",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("source_id", sa.String(length=26), nullable=False),
        sa.Column("file_name", sa.String(length=500), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("mapping", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("dead_lettered", sa.Integer(), nullable=False),
        sa.Column("last_row", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["collect_source.id"],
            name=op.f("fk_collect_import_run_source_id_collect_source"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collect_import_run")),
    )
    with op.batch_alter_table("collect_import_run") as batch_op:
        batch_op.create_index(
            "ix_collect_import_run_source_id_file_sha256",
            ["source_id", "file_sha256"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("collect_import_run") as batch_op:
        batch_op.drop_index("ix_collect_import_run_source_id_file_sha256")

    op.drop_table("collect_import_run")
    with op.batch_alter_table("collect_ingest_batch") as batch_op:
        batch_op.drop_index("ix_collect_ingest_batch_source_id_at")

    op.drop_table("collect_ingest_batch")
    with op.batch_alter_table("collect_event") as batch_op:
        batch_op.drop_index("ix_collect_event_tx_seq")

    op.drop_table("collect_event")
    with op.batch_alter_table("collect_dead_letter") as batch_op:
        batch_op.drop_index("ix_collect_dead_letter_source_id_status")
        batch_op.drop_index(batch_op.f("ix_collect_dead_letter_reason"))
        batch_op.drop_index(batch_op.f("ix_collect_dead_letter_bu_id"))

    op.drop_table("collect_dead_letter")
    op.drop_table("collect_cursor")
