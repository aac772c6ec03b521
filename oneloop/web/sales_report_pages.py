"""Sales reports: the lead funnel (created → assigned → contacted → qualified → won) per
source and campaign, as charts and a table, and the hand-off report (hand-offs per converted
customer, median hours per hand-off pair, where leads die).

Both come from ``oneloop.sales.reports`` with the viewer's Context (``sales.report.read``,
one unit). The charts are data for ``static/console.js``: labels are translated here, the
values are counts.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from oneloop.api.deps import SessionDep
from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.profiles import departments
from oneloop.sales import reports
from oneloop.sales.schemas import FunnelRow, HandoffReport
from oneloop.web.i18n import gettext
from oneloop.web.nav import N_
from oneloop.web.sales_pages import STATUS_LABELS, in_unit_only, sales_context, source_label
from oneloop.web.templating import page_lang, render
from oneloop.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)

STAGES: tuple[tuple[str, str], ...] = (
    ("created", N_("Created")),
    ("assigned", N_("Assigned")),
    ("contacted", N_("Contacted")),
    ("qualified", N_("Qualified")),
    ("won", N_("Won")),
)
PERIODS: tuple[tuple[str, str], ...] = (
    ("7", N_("Last 7 days")),
    ("30", N_("Last 30 days")),
    ("90", N_("Last 90 days")),
)
TOP_SOURCES = 10
NO_CAMPAIGN = N_("no campaign")
THE_POOL = N_("the pool")
Chart = dict[str, Any]  # Any: chart JSON for console.js


@router.get("/reports/sales", response_class=HTMLResponse)
def sales_reports(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    days: Annotated[str, Query(max_length=4)] = "",
) -> Response:
    viewer.ctx.require(reports.READ)
    if (away := in_unit_only(request, viewer)) is not None:
        return away
    if days and days not in dict(PERIODS):
        raise ValidationFailed("unknown period", [FieldError(("days",), "7, 30 or 90")])
    lang = page_lang(request)
    _ = partial(gettext, lang)
    since = viewer.ctx.clock.now() - timedelta(days=int(days)) if days else None
    rows = reports.funnel(session, viewer.ctx, since=since)
    handoffs = reports.handoffs(session, viewer.ctx)
    names = departments.current(session).departments
    context = sales_context(
        viewer,
        rows=rows,
        totals=_totals(rows),
        stages=STAGES,
        periods=PERIODS,
        days=days,
        funnel_chart=_funnel_chart(rows, _),
        sources_chart=_sources_chart(rows, _),
        handoffs=handoffs,
        department_names={
            code: (d.name_zh if lang == "zh-CN" else d.name_en) for code, d in names.items()
        },
        died=_where_leads_die(handoffs, _),
    )
    return render(request, "sales/reports.html", context, viewer=viewer)


def _totals(rows: list[FunnelRow]) -> dict[str, int]:
    return {stage: sum(getattr(r, stage) for r in rows) for stage, _ in STAGES}


def _row_label(row: FunnelRow, _: Any) -> str:  # Any: the reader's gettext
    kind, name = source_label(row.source)
    source = f"{_(kind)}: {name}" if kind else name
    return f"{source} · {row.campaign or _(NO_CAMPAIGN)}"


def _funnel_chart(rows: list[FunnelRow], _: Any) -> Chart:  # Any: the reader's gettext
    """Every source together, stage by stage."""
    totals = _totals(rows)
    return {
        "kind": "funnel",
        "stages": [{"name": _(label), "value": totals[stage]} for stage, label in STAGES],
        "empty": _("No leads yet."),
    }


def _sources_chart(rows: list[FunnelRow], _: Any) -> Chart:  # Any: the reader's gettext
    """The largest sources side by side, one bar per stage: where each one loses leads."""
    shown = rows[:TOP_SOURCES]
    return {
        "kind": "bar",
        "legend": True,
        "categories": [_row_label(r, _) for r in shown],
        "series": [
            {"name": _(label), "values": [getattr(r, stage) for r in shown]}
            for stage, label in STAGES
        ],
        "empty": _("No leads yet."),
    }


def _where_leads_die(report: HandoffReport, _: Any) -> list[tuple[str, int]]:  # Any: gettext
    """The report's keys (``open in assigned``, ``disqualified after contacted``) in words."""
    stages = {**STATUS_LABELS, "pool": THE_POOL}
    said = []
    for key, count in report.where_leads_die.items():
        status, sep, furthest = key.partition(" after ")
        if sep:
            text = _("%(status)s after %(stage)s") % {
                "status": _(stages.get(status, status)),
                "stage": _(stages.get(furthest, furthest)),
            }
        else:
            open_in = key.removeprefix("open in ")
            text = _("still open: %(status)s") % {"status": _(stages.get(open_in, open_in))}
        said.append((text, count))
    return said
