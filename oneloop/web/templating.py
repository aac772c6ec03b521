"""Rendering a console page: one Jinja2 environment, autoescaped, and per render the reader's
language, formatter, navigation and CSRF token.

Translation functions are handed to each render rather than installed on the environment, so
two requests in two languages never share state. Every string a translation function returns
is escaped first: a message id that came from data (a domain error's text) cannot smuggle
markup, and placeholders (``_("Signed in as %(name)s", name=user)``) are escaped by Markup's
``%``. Templates that import macros do it ``with context`` so the macros see these too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from oneloop.governance.models import DEFAULT_TIME_ZONE
from oneloop.web.i18n import (
    LANG_COOKIE,
    Formatter,
    Lang,
    other_lang,
    pick_lang,
    translations,
)
from oneloop.web.nav import nav_for
from oneloop.web.viewer import Viewer

TEMPLATES = Path(__file__).parent / "templates"
LANG_MAX_AGE = 365 * 86400

ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",), default_for_string=True, default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _as_datetime(value: datetime | str) -> datetime:
    """A time a service handed over as JSON (ISO 8601 text) back as a time, to format."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


ENV.filters["as_datetime"] = _as_datetime
# tojson still escapes < > & ' (safe in HTML and in <script type="application/json">); Chinese
# text stays readable instead of becoming \u escapes.
ENV.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}


def page_lang(request: Request) -> Lang:
    return pick_lang(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def translator(lang: Lang) -> tuple[Any, Any]:  # Any: the two template callables
    catalogue = translations(lang)

    def gettext(message: str, **variables: object) -> Markup:
        text = escape(catalogue.gettext(message))
        return text % variables if variables else text

    def ngettext(singular: str, plural: str, n: int, **variables: object) -> Markup:
        return escape(catalogue.ngettext(singular, plural, n)) % {"num": n, **variables}

    return gettext, ngettext


def render(
    request: Request,
    name: str,
    context: Mapping[str, object] | None = None,
    *,
    viewer: Viewer | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The page ``name`` for ``viewer`` (None on the sign-in and error pages). Signed-in pages
    are not stored by the browser or a proxy: they may show personal data."""
    lang = page_lang(request)
    gettext, ngettext = translator(lang)
    zone = ZoneInfo(viewer.unit.time_zone if viewer else DEFAULT_TIME_ZONE)
    switch = request.url.include_query_params(lang=other_lang(lang))
    html = ENV.get_template(name).render(
        {
            "request": request,
            "lang": lang,
            "other_lang": other_lang(lang),
            "lang_switch_url": f"{switch.path}?{switch.query}",
            "_": gettext,
            "ngettext": ngettext,
            "fmt": Formatter(lang, zone),
            "viewer": viewer,
            "nav": nav_for(viewer, request.url.path),
            "is_htmx": request.headers.get("HX-Request") == "true",
            **(context or {}),
        }
    )
    response = HTMLResponse(html, status_code=status_code)
    if viewer is not None:
        response.headers["Cache-Control"] = "no-store"
    remember_lang(request, lang, response)
    return response


def remember_lang(request: Request, lang: Lang, response: HTMLResponse) -> None:
    """A language chosen with ``?lang=`` is remembered for a year."""
    if request.query_params.get("lang") == lang and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=LANG_MAX_AGE, httponly=True, samesite="lax", path="/"
        )
