"""The dashboard: how the loop is doing now, for the unit the viewer acts in.

Each panel reads one service with the viewer's Context and shows only when the viewer's
permissions allow that read, so a role sees the panels of its work and nothing it could not
read through the API. "Today" is the unit's calendar day, in its time zone. Charts are drawn
by ``static/console.js`` from JSON blocks (ECharts options are built there, not here: the data
stays data, with no function or markup in it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from oneloop.api.deps import SessionDep
from oneloop.collect import deadletters, stats
from oneloop.collect import service as collect
from oneloop.core.context import Context
from oneloop.governance import consent_views
from oneloop.governance import service as governance
from oneloop.governance.consent_schemas import CHANNEL_LABELS, PURPOSE_LABELS
from oneloop.identity import service as identity
from oneloop.segments import service as segments
from oneloop.web.i18n import gettext
from oneloop.web.templating import page_lang, render
from oneloop.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)

TOP_SEGMENTS = 12
Chart = dict[str, Any]  # Any: chart JSON for console.js
Translate = Callable[[str], str]


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    ctx = viewer.ctx
    _ = partial(gettext, page_lang(request))
    zone = ZoneInfo(viewer.unit.time_zone)
    now = ctx.clock.now()
    today = datetime.combine(now.astimezone(zone).date(), time(), tzinfo=zone)
    context: dict[str, object] = {"today": today}
    if ctx.can("collect.source.read"):
        context["events_chart"] = _events_chart(session, ctx, now, _)
        context["dead_letters"] = deadletters.count_dead_letters(session, ctx)
    if ctx.can("identity.read"):
        context["activity"] = identity.activity_since(session, ctx, today)
    if ctx.can("segments.read"):
        context["segments_chart"] = _segments_chart(session, ctx, _)
    if ctx.can("consent.read"):
        context["consent_chart"] = _consent_chart(session, ctx, _, page_lang(request))
    return render(request, "dashboard.html", context, viewer=viewer)


def _events_chart(session: SessionDep, ctx: Context, now: datetime, _: Translate) -> Chart:
    """Accepted events per minute over the last hour, one line per source that had any."""
    codes = governance.unit_codes(session) if ctx.is_group_wide else {}
    series = []
    for source in collect.list_sources(session, ctx):
        found = stats.source_stats(session, ctx, source.id, now=now)
        if not any(m.events for m in found.per_minute):
            continue
        name = f"{source.name} ({codes[source.bu_id]})" if codes else source.name
        points = [(m.minute.isoformat(), m.events) for m in found.per_minute]
        series.append({"name": name, "points": points})
    return {
        "kind": "timeseries",
        "series": series,
        "empty": _("No events in the last hour."),
    }


def _segments_chart(session: SessionDep, ctx: Context, _: Translate) -> Chart:
    found = sorted(segments.list_segments(session, ctx), key=lambda s: (-s.size, s.code))
    shown = found[:TOP_SEGMENTS]
    return {
        "kind": "hbar",
        "categories": [s.name for s in reversed(shown)],
        "series": [{"name": _("Members"), "values": [s.size for s in reversed(shown)]}],
        "empty": _("No segments yet."),
    }


def _consent_chart(session: SessionDep, ctx: Context, _: Translate, lang: str) -> Chart:
    """Opt-in rate per purpose and channel: what ``may_contact`` allows, over the profiles
    the viewer may see."""
    found = consent_views.summary(session, ctx)
    pick = 0 if lang == "zh-CN" else 1
    items = list(reversed(found.items))  # a horizontal bar chart lists bottom-up
    categories = [
        f"{PURPOSE_LABELS[i.purpose][pick]} · {CHANNEL_LABELS[i.channel][pick]}" for i in items
    ]
    return {
        "kind": "hbar",
        "percent": True,
        "categories": categories,
        "series": [{"name": _("Opt-in rate"), "values": [i.opt_in_rate for i in items]}],
        "empty": _("No customers yet."),
        "profiles": found.profiles,
    }
