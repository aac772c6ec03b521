"""``demo load``: turn the generated files into a running group, through the real services.

Idempotent: units and the admin that exist are kept, so ``make demo`` can run it every time.
Each later issue extends this with its importer (events through the tracking API's ingest,
CRM/POS files through the file importers); until then the files are counted, not loaded.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from oneloop.collect import service as collect
from oneloop.collect.schemas import SourceIn
from oneloop.core.context import Context
from oneloop.core.errors import NotFound
from oneloop.demo.catalog import GROUP, UNITS, DemoUnit
from oneloop.governance import service as governance
from oneloop.governance.schemas import BusinessUnitIn, UserIn

ADMIN_EMAIL = "admin@galaxy.example.com"


@dataclass
class LoadSummary:
    created_units: list[str] = field(default_factory=list)
    existing_units: list[str] = field(default_factory=list)
    admin_email: str = ADMIN_EMAIL
    admin_password: str | None = None  # only when created now: shown once, never stored in clear
    new_write_keys: dict[str, str] = field(default_factory=dict)  # BU code -> key made now
    files: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)


def load_demo(session: Session, ctx: Context, demo_dir: Path) -> LoadSummary:
    summary = LoadSummary()
    for unit in (GROUP, *UNITS):
        _ensure_unit(session, ctx, unit, summary)
    if not governance.user_exists(session, ctx, ADMIN_EMAIL):
        summary.admin_password = secrets.token_urlsafe(12)
        governance.create_user(
            session,
            ctx,
            UserIn(
                email=ADMIN_EMAIL,
                display_name="集团管理员 Group Admin",
                password=summary.admin_password,
                bu=GROUP.code,
                role="group_admin",
            ),
        )
    _ensure_sources(session, ctx, summary)
    summary.files = read_manifest(demo_dir)
    return summary


def _ensure_unit(session: Session, ctx: Context, unit: DemoUnit, summary: LoadSummary) -> None:
    try:
        governance.get_business_unit(session, ctx, unit.code)
    except NotFound:
        data = BusinessUnitIn(
            code=unit.code, name_zh=unit.name_zh, name_en=unit.name_en, parent=unit.parent
        )
        governance.create_business_unit(session, ctx, data)
        summary.created_units.append(unit.code)
    else:
        summary.existing_units.append(unit.code)


WEB_SOURCE = "官网 Web"


def _ensure_sources(session: Session, ctx: Context, summary: LoadSummary) -> None:
    """One HTTP source per unit, for its site and apps' tracking SDKs."""
    units = {u.id: u.code for u in governance.list_business_units(session, ctx)}
    existing = {units[s.bu_id] for s in collect.list_sources(session, ctx) if s.name == WEB_SOURCE}
    for unit in UNITS:
        if unit.code not in existing:
            new = collect.create_source(session, ctx, SourceIn(bu=unit.code, name=WEB_SOURCE))
            summary.new_write_keys[unit.code] = new.write_key


def read_manifest(demo_dir: Path) -> dict[str, int]:
    """File name → record count, from the generator's manifest; empty if nothing was generated."""
    path = demo_dir / "manifest.json"
    if not path.exists():
        return {}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return {str(f["path"]): int(f["records"]) for f in manifest.get("files", [])}
