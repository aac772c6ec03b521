"""Privacy requests (issue 7, part 6): requests with deadlines, the suppression list of
erased identifiers (salted hashes), profiles kept out of profiling (objected or erased), and
the salt itself.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)
ID = sa.String(length=26)


def upgrade() -> None:
    op.create_table(
        "governance_privacy_request",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("profile_id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("completed_at", WHEN, nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_privacy_request")),
    )
    for column in ("profile_id", "bu_id", "status", "due_at"):
        op.create_index(
            op.f(f"ix_governance_privacy_request_{column}"),
            "governance_privacy_request",
            [column],
            unique=False,
        )
    op.create_table(
        "governance_suppression",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_governance_suppression")),
    )
    op.create_table(
        "governance_exclusion",
        sa.Column("profile_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("since", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_governance_exclusion")),
    )
    secret = op.create_table(
        "governance_secret",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_governance_secret")),
    )
    # Made here, once per database, so that every process hashes with the same salt.
    op.bulk_insert(
        secret,
        [
            {
                "name": "suppression_salt",
                "value": secrets.token_hex(32),
                "created_at": datetime.now(UTC),
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("governance_secret")
    op.drop_table("governance_exclusion")
    op.drop_table("governance_suppression")
    for column in ("profile_id", "bu_id", "status", "due_at"):
        op.drop_index(
            op.f(f"ix_governance_privacy_request_{column}"),
            table_name="governance_privacy_request",
        )
    op.drop_table("governance_privacy_request")
