from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from oneloop.collect import service as collect
from oneloop.core.context import Context
from oneloop.demo.catalog import GROUP, UNITS
from oneloop.demo.load import ADMIN_EMAIL, load_demo
from oneloop.governance import service as governance


def test_load_creates_the_group_units_and_admin_once(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    first = load_demo(session, ctx, tmp_path)
    session.commit()
    assert first.created_units == [GROUP.code, *(u.code for u in UNITS)]
    assert first.admin_password and len(first.admin_password) >= 12
    assert governance.verify_password(session, ADMIN_EMAIL, first.admin_password)
    units = governance.list_business_units(session, ctx)
    assert [u.code for u in units if u.kind == "group"] == ["galaxy"]
    assert sorted(u.code for u in units if u.kind == "bu") == [
        "appliances",
        "industrial",
        "service",
    ]

    again = load_demo(session, ctx, tmp_path)
    session.commit()
    assert again.created_units == [] and again.admin_password is None
    assert len(again.existing_units) == 4
    assert again.new_write_keys == {}
    assert len(collect.list_sources(session, ctx)) == 3
    assert governance.verify_password(session, ADMIN_EMAIL, first.admin_password)


def test_load_reports_the_generated_files(session: Session, ctx: Context, tmp_path: Path) -> None:
    manifest = {"files": [{"path": "events/appliances.jsonl", "records": 12}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert load_demo(session, ctx, tmp_path).files == {"events/appliances.jsonl": 12}
