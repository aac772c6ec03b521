"""Identity: profiles (OneIDs), identifiers, edges, pins, merge history, events' profiles, the
change feed, identifier rejections, rule versions, match models, blocking keys and the review
queue.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
LOG_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "identity_change",
        sa.Column("seq", LOG_POSITION, autoincrement=True, nullable=False),
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("other_id", sa.String(length=26), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_identity_change")),
    )
    with op.batch_alter_table("identity_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_change_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "identity_edge",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("a_id", sa.String(length=26), nullable=False),
        sa.Column("b_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_bu_id", sa.String(length=26), nullable=False),
        sa.Column("first_source_id", sa.String(length=26), nullable=False),
        sa.Column("first_message_id", sa.String(length=255), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("seen_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_edge")),
        sa.UniqueConstraint("a_id", "b_id", name=op.f("uq_identity_edge_a_id_b_id")),
    )
    with op.batch_alter_table("identity_edge", schema=None) as batch_op:
        batch_op.create_index("ix_identity_edge_b_id", ["b_id"], unique=False)

    op.create_table(
        "identity_event",
        sa.Column("seq", LOG_POSITION, autoincrement=False, nullable=False),
        sa.Column("profile_id", sa.String(length=26), nullable=True),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("identifiers", JSON, nullable=False),
        sa.Column("has_traits", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_identity_event")),
    )
    with op.batch_alter_table("identity_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_event_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "identity_identifier",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("degree", JSON, nullable=False),
        sa.Column("shared_reason", sa.String(length=300), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_bu_id", sa.String(length=26), nullable=False),
        sa.Column("first_source_id", sa.String(length=26), nullable=False),
        sa.Column("first_message_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_identifier")),
        sa.UniqueConstraint("type", "value", name=op.f("uq_identity_identifier_type_value")),
    )
    with op.batch_alter_table("identity_identifier", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_identifier_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "identity_match_key",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.PrimaryKeyConstraint("key", "record_id", name=op.f("pk_identity_match_key")),
    )
    with op.batch_alter_table("identity_match_key", schema=None) as batch_op:
        batch_op.create_index("ix_identity_match_key_profile_id", ["profile_id"], unique=False)

    op.create_table(
        "identity_match_model",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_match_model")),
    )
    op.create_table(
        "identity_merge",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("survivor_id", sa.String(length=26), nullable=False),
        sa.Column("absorbed_id", sa.String(length=26), nullable=False),
        sa.Column("rule", sa.String(length=300), nullable=False),
        sa.Column("edge_id", sa.String(length=26), nullable=True),
        sa.Column("match_weight", sa.Float(), nullable=True),
        sa.Column("bu_id", sa.String(length=26), nullable=True),
        sa.Column("source_id", sa.String(length=26), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("evidence_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("identifiers", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=200), nullable=True),
        sa.Column("undo_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_merge")),
    )
    with op.batch_alter_table("identity_merge", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_merge_absorbed_id"), ["absorbed_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_merge_survivor_id"), ["survivor_id"], unique=False
        )

    op.create_table(
        "identity_pin",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("a_id", sa.String(length=26), nullable=False),
        sa.Column("b_id", sa.String(length=26), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_pin")),
        sa.UniqueConstraint("a_id", "b_id", name=op.f("uq_identity_pin_a_id_b_id")),
    )
    with op.batch_alter_table("identity_pin", schema=None) as batch_op:
        batch_op.create_index("ix_identity_pin_b_id", ["b_id"], unique=False)

    op.create_table(
        "identity_profile",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merged_into", sa.String(length=26), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_profile")),
    )
    with op.batch_alter_table("identity_profile", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_profile_merged_into"), ["merged_into"], unique=False
        )

    op.create_table(
        "identity_rejection",
        sa.Column("source_id", sa.String(length=26), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("example", sa.String(length=200), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "type", "reason", name=op.f("pk_identity_rejection")),
    )
    op.create_table(
        "identity_review",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("left_id", sa.String(length=26), nullable=False),
        sa.Column("right_id", sa.String(length=26), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("comparisons", JSON, nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_review")),
        sa.UniqueConstraint(
            "left_id", "right_id", name=op.f("uq_identity_review_left_id_right_id")
        ),
    )
    with op.batch_alter_table("identity_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_review_left_id"), ["left_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_review_right_id"), ["right_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_review_status"), ["status"], unique=False)

    op.create_table(
        "identity_ruleset",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_ruleset")),
    )


def downgrade() -> None:
    op.drop_table("identity_ruleset")
    with op.batch_alter_table("identity_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_review_status"))
        batch_op.drop_index(batch_op.f("ix_identity_review_right_id"))
        batch_op.drop_index(batch_op.f("ix_identity_review_left_id"))

    op.drop_table("identity_review")
    op.drop_table("identity_rejection")
    with op.batch_alter_table("identity_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_profile_merged_into"))

    op.drop_table("identity_profile")
    with op.batch_alter_table("identity_pin", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_pin_b_id")

    op.drop_table("identity_pin")
    with op.batch_alter_table("identity_merge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_merge_survivor_id"))
        batch_op.drop_index(batch_op.f("ix_identity_merge_absorbed_id"))

    op.drop_table("identity_merge")
    op.drop_table("identity_match_model")
    with op.batch_alter_table("identity_match_key", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_match_key_profile_id")

    op.drop_table("identity_match_key")
    with op.batch_alter_table("identity_identifier", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_identifier_profile_id"))

    op.drop_table("identity_identifier")
    with op.batch_alter_table("identity_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_event_profile_id"))

    op.drop_table("identity_event")
    with op.batch_alter_table("identity_edge", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_edge_b_id")

    op.drop_table("identity_edge")
    with op.batch_alter_table("identity_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_change_profile_id"))

    op.drop_table("identity_change")
