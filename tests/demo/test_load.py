from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.collect import service as collect
from oneloop.collect.models import DeadLetterRow, EventRow
from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.context import Context
from oneloop.demo import sales as demo_sales
from oneloop.demo.catalog import GROUP, UNITS
from oneloop.demo.generate import generate
from oneloop.demo.load import ADMIN_EMAIL, DEMO_FILES, DemoUser, load_demo, role_user_email
from oneloop.governance import service as governance
from oneloop.governance import signin


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, customers=30, seed=7)
    return out


def test_load_creates_the_group_units_and_admin_once(
    session: Session, ctx: Context, settings: Settings, tmp_path: Path
) -> None:
    first = load_demo(session, ctx, tmp_path)
    session.commit()
    assert first.created_units == [GROUP.code, *(u.code for u in UNITS)]
    assert first.admin_password and len(first.admin_password) >= 12
    assert _signs_in(session, settings, ADMIN_EMAIL, first.admin_password)
    # a user per role per unit, HQ's two, and the industrial unit's sales team reps
    reps = len(demo_sales.rep_emails())
    assert first.role_password and len(first.role_users) == 2 + 7 * len(UNITS) + reps
    marketer = role_user_email("marketer", "appliances")
    assert DemoUser(marketer, "marketer", "appliances") in first.role_users
    assert _signs_in(session, settings, marketer, first.role_password)
    units = governance.list_business_units(session, ctx)
    assert [u.code for u in units if u.kind == "group"] == ["galaxy"]
    assert sorted(u.code for u in units if u.kind == "bu") == [
        "appliances",
        "industrial",
        "service",
    ]
    assert sorted(first.new_write_keys) == ["appliances", "industrial", "service"]

    again = load_demo(session, ctx, tmp_path)
    session.commit()
    assert again.created_units == [] and again.admin_password is None
    assert again.role_users == [] and again.role_password is None
    assert len(again.existing_units) == 4
    assert again.new_write_keys == {}
    sources = collect.list_sources(session, ctx)
    # One web source per unit, one file source per export (the CRM's three files share one).
    assert sorted((s.kind, s.name) for s in sources) == [
        ("file", "CRM 导出 CRM export"),
        ("file", "POS 订单 POS"),
        ("file", "工单系统 Tickets"),
        ("file", "广告花费 Ad spend"),
        ("file", "满意度调查 Surveys"),
        ("http", "官网 Web"),
        ("http", "官网 Web"),
        ("http", "官网 Web"),
    ]
    assert _signs_in(session, settings, ADMIN_EMAIL, first.admin_password)


def _signs_in(session: Session, settings: Settings, email: str, password: str) -> bool:
    signed = signin.login(session, settings, email, password, "127.0.0.1", FixedClock())
    return signed.context.user_id != ""


def test_load_reports_the_generated_files(session: Session, ctx: Context, tmp_path: Path) -> None:
    manifest = {"files": [{"path": "events/appliances.jsonl", "records": 12}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    summary = load_demo(session, ctx, tmp_path)
    assert summary.files == {"events/appliances.jsonl": 12}
    assert [(f.file, f.status) for f in summary.loads] == [("events/appliances.jsonl", "missing")]


def test_load_imports_every_file_once_and_a_second_load_adds_nothing(
    session: Session, ctx: Context, tiny_demo: Path
) -> None:
    ticks: list[tuple[int, int]] = []
    first = load_demo(session, ctx, tiny_demo, on_progress=lambda d, of: ticks.append((d, of)))
    loads = {f.file: f for f in first.loads}
    assert set(loads) == {f.path for f in DEMO_FILES} | {"truth/identities.csv"}
    assert loads["truth/identities.csv"].status.startswith("skipped")
    for demo_file in DEMO_FILES:
        load = loads[demo_file.path]
        assert load.status == "loaded", load
        assert load.rows_read == load.records and load.dead_lettered == 0, load
        assert load.accepted > 0 and load.duplicates == 0, load
    orders = loads["pos/orders.csv"]
    assert orders.accepted <= orders.rows_read  # an order's lines are one Order Completed
    stored = session.scalar(select(func.count()).select_from(EventRow))
    assert stored == first.accepted
    assert session.scalar(select(func.count()).select_from(DeadLetterRow)) == 0
    assert ticks and ticks[-1][0] == ticks[-1][1]
    costs = session.scalars(select(EventRow).where(EventRow.event == "Marketing Cost Recorded"))
    assert all(e.identifiers == [] for e in costs)

    again = load_demo(session, ctx, tiny_demo)
    assert again.accepted == 0
    assert {f.status for f in again.loads if f.file != "truth/identities.csv"} == {"already loaded"}
    assert session.scalar(select(func.count()).select_from(EventRow)) == stored
