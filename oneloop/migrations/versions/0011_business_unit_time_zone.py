"""Each business unit's time zone (``governance_business_unit.time_zone``, an IANA name):
rules count calendar days in it. Existing units get Asia/Shanghai, the default.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("governance_business_unit", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "time_zone",
                sa.String(length=64),
                server_default="Asia/Shanghai",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("governance_business_unit", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
