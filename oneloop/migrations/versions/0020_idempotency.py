"""Idempotency keys for mutating API calls (issue 8, part 1): one row per key a caller
claimed, holding the first answer for replays. Only hashes of the caller and of the request
are kept; answers that show a secret once are not kept at all.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.String(length=26)


def upgrade() -> None:
    op.create_table(
        "api_idempotency_key",
        sa.Column("id", ID, nullable=False),
        sa.Column("principal", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", JSON, nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("is_withheld", sa.Boolean(), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotency_key")),
        sa.UniqueConstraint("principal", "key", name=op.f("uq_api_idempotency_key_principal_key")),
    )
    op.create_index(
        op.f("ix_api_idempotency_key_expires_at"),
        "api_idempotency_key",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_api_idempotency_key_expires_at"), table_name="api_idempotency_key")
    op.drop_table("api_idempotency_key")
