"""Console pages, rendered on the server with Jinja2 (autoescaped: every value is hostile)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from oneloop.api.deps import SessionDep
from oneloop.core.context import system_context
from oneloop.governance import service as governance
from oneloop.web.i18n import Lang, pick_lang, translate

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False)


def page_lang(request: Request) -> Lang:
    return pick_lang(
        request.query_params.get("lang"),
        request.cookies.get("lang"),
        request.headers.get("accept-language"),
    )


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep) -> HTMLResponse:
    lang = page_lang(request)
    units = governance.list_business_units(session, system_context())
    group = next((u for u in units if u.kind == "group"), None)
    response = TEMPLATES.TemplateResponse(
        request,
        "index.html",
        {
            "lang": lang,
            "other_lang": "en" if lang == "zh-CN" else "zh-CN",
            "t": lambda key: translate(lang, key),
            "group": group,
            "units": [u for u in units if u.kind == "bu"],
        },
    )
    if request.query_params.get("lang") == lang:
        response.set_cookie("lang", lang, httponly=True, samesite="lax", max_age=365 * 86400)
    return response
