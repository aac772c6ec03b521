"""Consent registry (issue 7, part 4): the consent in force per profile × purpose × channel,
and the append-only history of every decision.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
ID = sa.String(length=26)


def upgrade() -> None:
    op.create_table(
        "governance_consent",
        sa.Column("profile_id", ID, nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("legal_basis", sa.String(length=32), nullable=False),
        sa.Column("given_at", WHEN, nullable=False),
        sa.Column("history_seq", LOG_POSITION, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint(
            "profile_id", "purpose", "channel", name=op.f("pk_governance_consent")
        ),
    )
    op.create_table(
        "governance_consent_history",
        sa.Column("seq", LOG_POSITION, autoincrement=True, nullable=False),
        sa.Column("profile_id", ID, nullable=False),
        sa.Column("recorded_profile_id", ID, nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("legal_basis", sa.String(length=32), nullable=False),
        sa.Column("given_at", WHEN, nullable=False),
        sa.Column("recorded_at", WHEN, nullable=False),
        sa.Column("bu_id", ID, nullable=True),
        sa.Column("source", ID, nullable=False),
        sa.Column("event_seq", LOG_POSITION, nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("proof", sa.String(length=500), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_governance_consent_history")),
        sa.UniqueConstraint(
            "event_seq",
            "purpose",
            "channel",
            name=op.f("uq_governance_consent_history_event_seq_purpose_channel"),
        ),
    )
    with op.batch_alter_table("governance_consent_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_governance_consent_history_profile_id_given_at",
            ["profile_id", "given_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("governance_consent_history", schema=None) as batch_op:
        batch_op.drop_index("ix_governance_consent_history_profile_id_given_at")
    op.drop_table("governance_consent_history")
    op.drop_table("governance_consent")
