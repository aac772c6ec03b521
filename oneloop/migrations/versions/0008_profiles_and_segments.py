"""Profiles and segments: the profiles' projection of the log, business units touched,
computed trait definitions and values, tag categories, tags and their history, score models,
scores and points history, settings; segments, members and the enter/exit feed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
LOG_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "profiles_event",
        sa.Column("seq", LOG_POSITION, autoincrement=False, nullable=False),
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("source_id", sa.String(length=26), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("department", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_profiles_event")),
    )
    with op.batch_alter_table("profiles_event", schema=None) as batch_op:
        batch_op.create_index("ix_profiles_event_name_at", ["name", "at"], unique=False)
        batch_op.create_index("ix_profiles_event_profile_id_at", ["profile_id", "at"], unique=False)

    op.create_table(
        "profiles_profile",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles_profile")),
    )
    with op.batch_alter_table("profiles_profile", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profiles_profile_last_seen_at"), ["last_seen_at"], unique=False
        )

    op.create_table(
        "profiles_profile_tag",
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("tag_id", sa.String(length=26), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("profile_id", "tag_id", name=op.f("pk_profiles_profile_tag")),
    )
    with op.batch_alter_table("profiles_profile_tag", schema=None) as batch_op:
        batch_op.create_index("ix_profiles_profile_tag_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(
            "ix_profiles_profile_tag_tag_id_profile_id", ["tag_id", "profile_id"], unique=False
        )

    op.create_table(
        "profiles_profile_unit",
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "bu_id", name=op.f("pk_profiles_profile_unit")),
    )
    with op.batch_alter_table("profiles_profile_unit", schema=None) as batch_op:
        batch_op.create_index(
            "ix_profiles_profile_unit_bu_id_profile_id", ["bu_id", "profile_id"], unique=False
        )

    op.create_table(
        "profiles_score",
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("model_id", sa.String(length=26), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "model_id", name=op.f("pk_profiles_score")),
    )
    with op.batch_alter_table("profiles_score", schema=None) as batch_op:
        batch_op.create_index(
            "ix_profiles_score_model_id_value", ["model_id", "value"], unique=False
        )

    op.create_table(
        "profiles_score_history",
        sa.Column("id", LOG_POSITION, autoincrement=True, nullable=False),
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("model_id", sa.String(length=26), nullable=False),
        sa.Column("seq", LOG_POSITION, nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("value_after", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles_score_history")),
    )
    with op.batch_alter_table("profiles_score_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_profiles_score_history_profile_id_model_id_at",
            ["profile_id", "model_id", "at"],
            unique=False,
        )

    op.create_table(
        "profiles_score_model",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles_score_model")),
        sa.UniqueConstraint("bu_id", "code", name=op.f("uq_profiles_score_model_bu_id_code")),
    )
    op.create_table(
        "profiles_setting",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_profiles_setting")),
    )
    op.create_table(
        "profiles_tag",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("category_id", sa.String(length=26), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule", JSON, nullable=True),
        sa.Column("expires_after_days", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles_tag")),
        sa.UniqueConstraint("bu_id", "code", name=op.f("uq_profiles_tag_bu_id_code")),
    )
    with op.batch_alter_table("profiles_tag", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profiles_tag_category_id"), ["category_id"], unique=False
        )

    op.create_table(
        "profiles_tag_category",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles_tag_category")),
        sa.UniqueConstraint("bu_id", "code", name=op.f("uq_profiles_tag_category_bu_id_code")),
    )
    op.create_table(
        "profiles_tag_history",
        sa.Column("id", LOG_POSITION, autoincrement=True, nullable=False),
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("tag_id", sa.String(length=26), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles_tag_history")),
    )
    with op.batch_alter_table("profiles_tag_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_profiles_tag_history_profile_id_at", ["profile_id", "at"], unique=False
        )

    op.create_table(
        "profiles_trait",
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column(
            "value", sa.Text().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("num", sa.Float(), nullable=True),
        sa.Column("text", sa.String(length=300), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "key", name=op.f("pk_profiles_trait")),
    )
    with op.batch_alter_table("profiles_trait", schema=None) as batch_op:
        batch_op.create_index("ix_profiles_trait_key_at", ["key", "at"], unique=False)
        batch_op.create_index("ix_profiles_trait_key_num", ["key", "num"], unique=False)
        batch_op.create_index("ix_profiles_trait_key_text", ["key", "text"], unique=False)

    op.create_table(
        "profiles_trait_def",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles_trait_def")),
        sa.UniqueConstraint("bu_id", "name", name=op.f("uq_profiles_trait_def_bu_id_name")),
    )
    op.create_table(
        "segments_change",
        sa.Column("seq", LOG_POSITION, autoincrement=True, nullable=False),
        sa.Column("segment_id", sa.String(length=26), nullable=False),
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_segments_change")),
    )
    with op.batch_alter_table("segments_change", schema=None) as batch_op:
        batch_op.create_index("ix_segments_change_profile_id", ["profile_id"], unique=False)
        batch_op.create_index(
            "ix_segments_change_segment_id_at", ["segment_id", "at"], unique=False
        )

    op.create_table(
        "segments_member",
        sa.Column("segment_id", sa.String(length=26), nullable=False),
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "profile_id", name=op.f("pk_segments_member")),
    )
    with op.batch_alter_table("segments_member", schema=None) as batch_op:
        batch_op.create_index("ix_segments_member_profile_id", ["profile_id"], unique=False)

    op.create_table(
        "segments_segment",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("rule", JSON, nullable=False),
        sa.Column("is_live", sa.Boolean(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments_segment")),
        sa.UniqueConstraint("bu_id", "code", name=op.f("uq_segments_segment_bu_id_code")),
    )


def downgrade() -> None:
    op.drop_table("segments_segment")
    with op.batch_alter_table("segments_member", schema=None) as batch_op:
        batch_op.drop_index("ix_segments_member_profile_id")

    op.drop_table("segments_member")
    with op.batch_alter_table("segments_change", schema=None) as batch_op:
        batch_op.drop_index("ix_segments_change_segment_id_at")
        batch_op.drop_index("ix_segments_change_profile_id")

    op.drop_table("segments_change")
    op.drop_table("profiles_trait_def")
    with op.batch_alter_table("profiles_trait", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_trait_key_text")
        batch_op.drop_index("ix_profiles_trait_key_num")
        batch_op.drop_index("ix_profiles_trait_key_at")

    op.drop_table("profiles_trait")
    with op.batch_alter_table("profiles_tag_history", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_tag_history_profile_id_at")

    op.drop_table("profiles_tag_history")
    op.drop_table("profiles_tag_category")
    with op.batch_alter_table("profiles_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_tag_category_id"))

    op.drop_table("profiles_tag")
    op.drop_table("profiles_setting")
    op.drop_table("profiles_score_model")
    with op.batch_alter_table("profiles_score_history", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_score_history_profile_id_model_id_at")

    op.drop_table("profiles_score_history")
    with op.batch_alter_table("profiles_score", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_score_model_id_value")

    op.drop_table("profiles_score")
    with op.batch_alter_table("profiles_profile_unit", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_profile_unit_bu_id_profile_id")

    op.drop_table("profiles_profile_unit")
    with op.batch_alter_table("profiles_profile_tag", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_profile_tag_tag_id_profile_id")
        batch_op.drop_index("ix_profiles_profile_tag_expires_at")

    op.drop_table("profiles_profile_tag")
    with op.batch_alter_table("profiles_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_profile_last_seen_at"))

    op.drop_table("profiles_profile")
    with op.batch_alter_table("profiles_event", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_event_profile_id_at")
        batch_op.drop_index("ix_profiles_event_name_at")

    op.drop_table("profiles_event")
