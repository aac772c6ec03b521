"""The schema the models describe and the one the migrations build must be the same."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from oneloop.migrations import (
    current_revision,
    downgrade,
    head_revision,
    is_current,
    target_metadata,
    upgrade,
)


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        mc = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(mc, target_metadata())
    assert diff == []


def test_upgrade_from_first_migration_keeps_data(bare_engine: Engine) -> None:
    upgrade(bare_engine, "0001")
    assert current_revision(bare_engine) == "0001"
    assert not is_current(bare_engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with bare_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO governance_business_unit "
                "(id, code, name_zh, name_en, kind, parent_id, created_at, updated_at) "
                "VALUES ('01J0000000000000000000000G', 'galaxy', '星河集团', 'Galaxy', 'group', "
                "NULL, :t, :t)"
            ),
            {"t": now},
        )
    upgrade(bare_engine)
    assert current_revision(bare_engine) == head_revision()
    with bare_engine.connect() as conn:
        unit = conn.execute(text("SELECT code, time_zone FROM governance_business_unit")).one()
    assert tuple(unit) == ("galaxy", "Asia/Shanghai")  # 0011 gave existing units the default
    assert "governance_user" in inspect(bare_engine).get_table_names()


def test_downgrade_to_base_and_up_again(engine: Engine) -> None:
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert "governance_business_unit" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert is_current(engine)


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    upgrade(engine)
    assert is_current(engine)
