"""When each rep last got a team's lead, kept on the membership (routing read the rep's whole
lead history for it).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sales_team_member") as batch:
        batch.add_column(sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE sales_team_member SET last_assigned_at = (SELECT max(l.assigned_at) "
        "FROM sales_lead l WHERE l.owner_user_id = sales_team_member.user_id "
        "AND l.team_id = sales_team_member.team_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("sales_team_member") as batch:
        batch.drop_column("last_assigned_at")
