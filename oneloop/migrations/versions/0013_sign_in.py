"""Users, roles and sign-in (issue 7): memberships replace the user's one unit and role;
custom roles, console sessions, API keys and login attempts.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)
ID = sa.String(length=26)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "governance_membership",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        _fk("governance_membership", "user_id", "governance_user"),
        _fk("governance_membership", "bu_id", "governance_business_unit"),
        sa.PrimaryKeyConstraint("user_id", "bu_id", name=op.f("pk_governance_membership")),
    )
    op.create_index(
        op.f("ix_governance_membership_bu_id"), "governance_membership", ["bu_id"], unique=False
    )
    # Each user's one unit and role becomes their first membership.
    op.execute(
        "INSERT INTO governance_membership (user_id, bu_id, role, created_at) "
        "SELECT id, bu_id, role, created_at FROM governance_user"
    )
    with op.batch_alter_table("governance_user") as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_user_bu_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_governance_user_bu_id_governance_business_unit"), type_="foreignkey"
        )
        batch_op.drop_column("bu_id")
        batch_op.drop_column("role")
        batch_op.add_column(sa.Column("last_login_at", WHEN, nullable=True))

    op.create_table(
        "governance_role",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("permissions", JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_governance_role")),
    )
    op.create_table(
        "governance_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_seen_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        _fk("governance_session", "user_id", "governance_user"),
        _fk("governance_session", "bu_id", "governance_business_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_session")),
    )
    op.create_index(
        op.f("ix_governance_session_user_id"), "governance_session", ["user_id"], unique=False
    )
    op.create_table(
        "governance_api_key",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("last_used_at", WHEN, nullable=True),
        sa.Column("revoked_at", WHEN, nullable=True),
        _fk("governance_api_key", "user_id", "governance_user"),
        _fk("governance_api_key", "bu_id", "governance_business_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_api_key")),
    )
    op.create_index(
        op.f("ix_governance_api_key_user_id"), "governance_api_key", ["user_id"], unique=False
    )
    op.create_table(
        "governance_login_attempt",
        sa.Column("id", LOG_POSITION, autoincrement=True, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_login_attempt")),
    )
    for column in ("at", "email", "ip"):
        op.create_index(
            op.f(f"ix_governance_login_attempt_{column}"),
            "governance_login_attempt",
            [column],
            unique=False,
        )


def downgrade() -> None:
    for column in ("at", "email", "ip"):
        op.drop_index(
            op.f(f"ix_governance_login_attempt_{column}"), table_name="governance_login_attempt"
        )
    op.drop_table("governance_login_attempt")
    op.drop_index(op.f("ix_governance_api_key_user_id"), table_name="governance_api_key")
    op.drop_table("governance_api_key")
    op.drop_index(op.f("ix_governance_session_user_id"), table_name="governance_session")
    op.drop_table("governance_session")
    op.drop_table("governance_role")
    # Back to one unit and role per user: the earliest membership is kept.
    with op.batch_alter_table("governance_user") as batch_op:
        batch_op.drop_column("last_login_at")
        batch_op.add_column(sa.Column("bu_id", ID, nullable=True))
        batch_op.add_column(sa.Column("role", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE governance_user SET "
        "bu_id = (SELECT m.bu_id FROM governance_membership m WHERE m.user_id = governance_user.id "
        "ORDER BY m.created_at LIMIT 1), "
        "role = (SELECT m.role FROM governance_membership m WHERE m.user_id = governance_user.id "
        "ORDER BY m.created_at LIMIT 1)"
    )
    op.execute("DELETE FROM governance_user WHERE bu_id IS NULL")
    with op.batch_alter_table("governance_user") as batch_op:
        batch_op.alter_column("bu_id", existing_type=ID, nullable=False)
        batch_op.alter_column("role", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_governance_user_bu_id_governance_business_unit"),
            "governance_business_unit",
            ["bu_id"],
            ["id"],
        )
        batch_op.create_index(batch_op.f("ix_governance_user_bu_id"), ["bu_id"], unique=False)
    op.drop_index(op.f("ix_governance_membership_bu_id"), table_name="governance_membership")
    op.drop_table("governance_membership")
