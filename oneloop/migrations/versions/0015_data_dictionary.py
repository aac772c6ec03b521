"""Data dictionary and PII classification (issue 7, parts 3 and 7): the entries and their
versions, the group's default dictionary, and the metric a computed trait computes.

The defaults are inserted here rather than on the first read, so that a new database
classifies (and masks, and protects) personal data from its first event on, with no write
hidden in a read and no race between processes installing them twice. They come from the
package's ``dictionary.yaml`` as this release ships it; only the columns this migration
creates are written, so a later release that adds columns backfills its own.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)
ID = sa.String(length=26)


def upgrade() -> None:
    entries = op.create_table(
        "governance_dictionary_entry",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("description_zh", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=False),
        sa.Column("data_type", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("includes_tax", sa.Boolean(), nullable=True),
        sa.Column("owner_bu_id", ID, nullable=True),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("pii_kind", sa.String(length=16), nullable=True),
        sa.Column("lineage", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_bu_id"],
            ["governance_business_unit.id"],
            name=op.f("fk_governance_dictionary_entry_owner_bu_id_governance_business_unit"),
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_governance_dictionary_entry")),
    )
    op.create_index(
        op.f("ix_governance_dictionary_entry_classification"),
        "governance_dictionary_entry",
        ["classification"],
        unique=False,
    )
    versions = op.create_table(
        "governance_dictionary_version",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("changed", JSON, nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("changed_at", WHEN, nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["key"],
            ["governance_dictionary_entry.key"],
            name=op.f("fk_governance_dictionary_version_key_governance_dictionary_entry"),
        ),
        sa.PrimaryKeyConstraint("key", "version", name=op.f("pk_governance_dictionary_version")),
    )
    with op.batch_alter_table("profiles_trait_def", schema=None) as batch_op:
        batch_op.add_column(sa.Column("metric", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_profiles_trait_def_metric"), ["metric"], unique=False)
    _install_defaults(entries, versions)


def _install_defaults(entries: sa.Table, versions: sa.Table) -> None:
    from oneloop.governance.dictionary import default_rows

    entry_rows, version_rows = default_rows(datetime.now(UTC), "system")
    op.bulk_insert(entries, [_known(entries, r) for r in entry_rows])
    op.bulk_insert(versions, [_known(versions, r) for r in version_rows])


def _known(table: sa.Table, row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k in table.c}


def downgrade() -> None:
    with op.batch_alter_table("profiles_trait_def", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_trait_def_metric"))
        batch_op.drop_column("metric")
    op.drop_table("governance_dictionary_version")
    op.drop_index(
        op.f("ix_governance_dictionary_entry_classification"),
        table_name="governance_dictionary_entry",
    )
    op.drop_table("governance_dictionary_entry")
