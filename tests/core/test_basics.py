from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.context import Context, system_context
from oneloop.core.errors import FieldError, Forbidden
from oneloop.core.ids import BusinessUnitId, UserId, new_id
from oneloop.core.logging import JsonFormatter, KeyValueFormatter, request_id_var


def test_ids_sort_by_time() -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    ids = [new_id(t + timedelta(milliseconds=i)) for i in (5, 1, 3)]
    assert sorted(ids) == [ids[1], ids[2], ids[0]]
    assert len(set(new_id() for _ in range(1000))) == 1000
    assert all(len(i) == 26 for i in ids)


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONELOOP_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("ONELOOP_SQLITE_SYNCHRONOUS", "EXTRA")
    s = Settings()
    assert s.database_url == "sqlite:///elsewhere.db"
    assert s.sqlite_synchronous == "EXTRA"


def test_settings_default_to_sqlite_under_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONELOOP_DATABASE_URL", raising=False)
    assert Settings().database_url == "sqlite:///var/oneloop.db"
    assert Settings().sqlite_synchronous == "FULL"


def test_settings_refuse_unsafe_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONELOOP_SQLITE_SYNCHRONOUS", "FULL; DROP TABLE x")
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Settings()


def test_context_requires_permissions() -> None:
    ctx = Context(bu_id=BusinessUnitId("b"), user_id=UserId("u"), permissions=frozenset({"a.read"}))
    ctx.require("a.read")
    with pytest.raises(Forbidden) as caught:
        ctx.require("a.write")
    assert caught.value.context == {"permission": "a.write"}
    system_context().require("anything.at.all")


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock()
    first = clock.now()
    assert clock.now() == first
    assert clock.advance(timedelta(hours=1)) == first + timedelta(hours=1)


@pytest.mark.parametrize(
    ("loc", "path"),
    [(("batch", 3, "type"), "batch[3].type"), (("body", "code"), "body.code"), ((0,), "[0]")],
)
def test_field_error_path(loc: tuple[str | int, ...], path: str) -> None:
    assert FieldError(loc, "bad").path == path


@given(st.lists(st.one_of(st.text(max_size=5), st.integers(0, 99)), max_size=6))
def test_field_error_path_never_crashes(loc: list[str | int]) -> None:
    assert isinstance(FieldError(tuple(loc), "x").path, str)


def _record(**extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "msg": "segment.refreshed"})
    record.__dict__.update(extra)
    return record


def test_json_log_lines_carry_fields_and_request_id() -> None:
    token = request_id_var.set("req-1")
    try:
        line = JsonFormatter().format(_record(bu_id="north", members=3))
    finally:
        request_id_var.reset(token)
    doc = json.loads(line)
    assert doc["event"] == "segment.refreshed"
    assert doc["request_id"] == "req-1"
    assert doc["members"] == 3 and doc["bu_id"] == "north"


def test_key_value_log_lines() -> None:
    line = KeyValueFormatter().format(_record(members=3))
    assert "segment.refreshed" in line and "members=3" in line
