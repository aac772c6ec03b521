"""``demo load``: turn the generated files into a running group, through the real services.

Units, the admin and the sources are created through their services; every data file goes
through the file importers, into the log by ``ingest`` like any other event: the tracking
JSONL as Segment-spec calls (validated exactly as the tracking API validates them) into each
unit's HTTP source, the CRM, POS, ticket, survey and cost exports through the mappings shipped
in ``oneloop/demo/mappings`` into one file source each.

Idempotent and resumable: units, the admin and sources that exist are kept; a file already
loaded (same bytes, same mapping, a finished run) is skipped without reading it, so ``make demo``
can run this every time; a load interrupted half-way resumes from its last committed chunk.
``truth/identities.csv`` is never loaded: it is the answer key for scoring OneID, not a source.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from oneloop.collect import service as collect
from oneloop.collect.importers import SEGMENT, ImportReport, import_file
from oneloop.collect.schemas import CreatableKind, SourceIn
from oneloop.core.context import Context
from oneloop.core.errors import NotFound
from oneloop.demo import definitions
from oneloop.demo import sales as demo_sales
from oneloop.demo.catalog import GROUP, UNITS, DemoUnit
from oneloop.governance import dictionary, users
from oneloop.governance import service as governance
from oneloop.governance.roles import BUILTIN_ROLES
from oneloop.governance.schemas import BusinessUnitIn, UserIn

ADMIN_EMAIL = "admin@galaxy.example.com"
WEB_SOURCE = "官网 Web"


@dataclass(frozen=True)
class DemoSource:
    bu: str
    name: str
    kind: CreatableKind


@dataclass(frozen=True)
class DemoFile:
    path: str
    source: DemoSource
    mapping: str


CRM = DemoSource("industrial", "CRM 导出 CRM export", "file")
POS = DemoSource("appliances", "POS 订单 POS", "file")
TICKETS = DemoSource("service", "工单系统 Tickets", "file")
SURVEYS = DemoSource("service", "满意度调查 Surveys", "file")
# The cost file has no business-unit column and spans all three units' campaigns: it is group
# HQ's view of spend, the input of cross-unit ROI.
AD_SPEND = DemoSource(GROUP.code, "广告花费 Ad spend", "file")
WEB = {unit.code: DemoSource(unit.code, WEB_SOURCE, "http") for unit in UNITS}

DEMO_FILES: tuple[DemoFile, ...] = (
    *(DemoFile(f"events/{code}.jsonl", source, SEGMENT) for code, source in WEB.items()),
    DemoFile("crm/companies.csv", CRM, "demo-crm-companies"),
    DemoFile("crm/contacts.csv", CRM, "demo-crm-contacts"),
    DemoFile("crm/opportunities.csv", CRM, "demo-crm-opportunities"),
    DemoFile("pos/orders.csv", POS, "demo-pos-orders"),
    DemoFile("service/tickets.csv", TICKETS, "demo-service-tickets"),
    DemoFile("service/surveys.jsonl", SURVEYS, "demo-service-surveys"),
    DemoFile("marketing/costs.csv", AD_SPEND, "demo-marketing-costs"),
)
NOT_A_SOURCE = {"truth/identities.csv": "ground truth (scoring)"}


@dataclass
class FileLoad:
    """One file's outcome. ``status``: loaded (now; or resumed, then loaded), already loaded
    (skipped), missing, or why it is not loaded at all."""

    file: str
    records: int
    status: str
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True)
class DemoUser:
    email: str
    role: str
    unit: str


# Who HQ has besides its admin; every unit gets every role a unit can hold.
GROUP_ROLES = ("compliance_officer", "analyst")


def role_user_email(role: str, unit: str) -> str:
    return f"{role.replace('_', '-')}.{unit}@galaxy.example.com"


@dataclass
class LoadSummary:
    created_units: list[str] = field(default_factory=list)
    existing_units: list[str] = field(default_factory=list)
    admin_email: str = ADMIN_EMAIL
    admin_password: str | None = None  # only when created now: shown once, never stored in clear
    # One user per built-in role in each unit (and HQ's), made now, sharing one password.
    role_users: list[DemoUser] = field(default_factory=list)
    role_password: str | None = None
    new_write_keys: dict[str, str] = field(default_factory=dict)  # BU code -> web key made now
    files: dict[str, int] = field(default_factory=dict)
    definitions: int = 0  # tags, traits, score models and segments created by this load
    sales: demo_sales.SalesSetup = field(default_factory=demo_sales.SalesSetup)
    loads: list[FileLoad] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(load.accepted for load in self.loads)


def load_demo(
    session: Session,
    ctx: Context,
    demo_dir: Path,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> LoadSummary:
    """Set up the group and load its files. Commits: the units, admin and sources first, then
    every import chunk (which is what makes an interrupted load resume)."""
    summary = LoadSummary()
    for unit in (GROUP, *UNITS):
        _ensure_unit(session, ctx, unit, summary)
    _ensure_users(session, ctx, summary)
    sources = _ensure_sources(session, ctx, summary)
    dictionary.install_defaults(session, ctx)  # before the traits that name its metrics
    session.commit()
    summary.definitions = definitions.install(session, ctx).created
    session.commit()
    summary.sales = demo_sales.install(
        session,
        ctx,
        manager=role_user_email("sales_manager", demo_sales.UNIT),
        rep=role_user_email("sales_rep", demo_sales.UNIT),
    )
    session.commit()
    summary.files = read_manifest(demo_dir)
    _load_files(session, ctx, demo_dir, sources, summary, on_progress)
    return summary


def _ensure_users(session: Session, ctx: Context, summary: LoadSummary) -> None:
    """The group admin (own password) and a user per role per unit (one shared password), so
    that every view of the console can be tried; those that exist are left as they are."""
    if not users.user_exists(session, ctx, ADMIN_EMAIL):
        summary.admin_password = secrets.token_urlsafe(12)
        users.create_user(
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
    wanted = [DemoUser(role_user_email(r, GROUP.code), r, GROUP.code) for r in GROUP_ROLES]
    wanted += [
        DemoUser(role_user_email(r.code, unit.code), r.code, unit.code)
        for unit in UNITS
        for r in BUILTIN_ROLES.values()
        if not r.group_only
    ]
    wanted += [DemoUser(email, "sales_rep", demo_sales.UNIT) for email in demo_sales.rep_emails()]
    for user in wanted:
        if users.user_exists(session, ctx, user.email):
            continue
        summary.role_password = summary.role_password or secrets.token_urlsafe(12)
        role = BUILTIN_ROLES[user.role]
        users.create_user(
            session,
            ctx,
            UserIn(
                email=user.email,
                display_name=f"{role.name_zh} {role.name_en} ({user.unit})",
                password=summary.role_password,
                bu=user.unit,
                role=user.role,
            ),
        )
        summary.role_users.append(user)


def _load_files(
    session: Session,
    ctx: Context,
    demo_dir: Path,
    sources: dict[DemoSource, str],
    summary: LoadSummary,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """Each file through the importers; progress is over all files' records together."""
    planned = [f for f in DEMO_FILES if f.path in summary.files]
    total = sum(summary.files[f.path] for f in planned)
    before = 0
    for demo_file in planned:
        path = demo_dir / demo_file.path
        records = summary.files[demo_file.path]
        if not path.is_file():
            summary.loads.append(FileLoad(demo_file.path, records, "missing"))
            continue

        def tick(done: int, _of: int, offset: int = before) -> None:
            if on_progress is not None:
                on_progress(offset + done, max(total, offset + done))

        report = import_file(
            session,
            ctx,
            sources[demo_file.source],
            path,
            demo_file.mapping,
            on_progress=tick,
            skip_if_loaded=True,
        )
        summary.loads.append(
            FileLoad(
                demo_file.path,
                records,
                _status(report),
                rows_read=report.rows_read,
                accepted=report.accepted,
                duplicates=report.duplicates,
                dead_lettered=report.dead_lettered,
            )
        )
        before += records
        if on_progress is not None:
            on_progress(before, total)
    for name, records in summary.files.items():
        if name in NOT_A_SOURCE:
            summary.loads.append(FileLoad(name, records, f"skipped: {NOT_A_SOURCE[name]}"))


def _status(report: ImportReport) -> str:
    if report.status == "skipped":
        return "already loaded"
    if report.resumed_after_row is not None:
        return f"resumed after row {report.resumed_after_row:,}, loaded"
    return "loaded"


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


def _ensure_sources(session: Session, ctx: Context, summary: LoadSummary) -> dict[DemoSource, str]:
    """One HTTP source per unit for its site and apps' SDKs, and one file source per export;
    returns each one's id. Only the web sources' write keys are shown: files come in by import."""
    units = {u.id: u.code for u in governance.list_business_units(session, ctx)}
    existing = {(units[s.bu_id], s.name): s.id for s in collect.list_sources(session, ctx)}
    ids: dict[DemoSource, str] = {}
    for source in (*WEB.values(), *(f.source for f in DEMO_FILES)):
        if source in ids:
            continue
        if (source.bu, source.name) in existing:
            ids[source] = existing[(source.bu, source.name)]
            continue
        new = collect.create_source(
            session, ctx, SourceIn(bu=source.bu, name=source.name, kind=source.kind)
        )
        ids[source] = new.id
        if source.kind == "http":
            summary.new_write_keys[source.bu] = new.write_key
    return ids


def read_manifest(demo_dir: Path) -> dict[str, int]:
    """File name → record count, from the generator's manifest; empty if nothing was generated."""
    path = demo_dir / "manifest.json"
    if not path.exists():
        return {}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return {str(f["path"]): int(f["records"]) for f in manifest.get("files", [])}
