"""The console: server-rendered pages (Jinja2, autoescaped: every value is hostile), htmx for
partial updates, ECharts for charts, all served from ``static/`` (no Node, no CDN).

``install`` adds the pages to the app, mounts the static files, and teaches the app's error
handlers about pages: a page answers a missing sign-in with a redirect to the sign-in page and
any other domain error with an error page in the reader's language, while the REST API keeps
answering problem+json. A page module is one router; adding one is a line in ``ROUTERS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from oneloop.api.errors import STATUS
from oneloop.core.errors import OneLoopError, RateLimited, Unauthenticated, ValidationFailed
from oneloop.web import (
    audit_pages,
    auth_pages,
    customers,
    dashboard,
    dictionary_pages,
    identity_pages,
    privacy_pages,
    sales_board_pages,
    sales_config_pages,
    sales_opportunity_pages,
    sales_pages,
    sales_report_pages,
    segments_pages,
    sources_pages,
    users_pages,
)
from oneloop.web.templating import render

STATIC = Path(__file__).parent / "static"
ROUTERS: tuple[APIRouter, ...] = (
    auth_pages.router,
    dashboard.router,
    customers.router,
    audit_pages.router,
    segments_pages.router,
    sources_pages.router,
    identity_pages.router,
    users_pages.router,
    privacy_pages.router,
    dictionary_pages.router,
    sales_pages.router,
    sales_board_pages.router,
    sales_config_pages.router,
    sales_opportunity_pages.router,
    sales_report_pages.router,
)
Handler = Callable[[Request, Exception], Awaitable[Response]]


def install(app: FastAPI) -> None:
    """Call after ``errors.install``: the page handlers fall back on the API's."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    endpoints = {getattr(r, "endpoint", None) for router in ROUTERS for r in router.routes}
    for kind in (OneLoopError, RequestValidationError):
        api_handler = app.exception_handlers[kind]
        app.add_exception_handler(kind, _for_pages(endpoints, api_handler))


def _for_pages(endpoints: set[object], api_handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if request.scope.get("endpoint") not in endpoints:
            return await api_handler(request, exc)
        return page_error(request, exc)

    return handle


def page_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Unauthenticated):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        login = f"/login?next={quote(target, safe='')}"
        if request.headers.get("HX-Request") == "true":
            # htmx swaps a redirect's target into the page; tell it to load the page instead
            return Response(status_code=204, headers={"HX-Redirect": login})
        return RedirectResponse(login, status_code=303)
    if isinstance(exc, OneLoopError):
        status = next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), 500)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}
        errors = exc.errors if isinstance(exc, ValidationFailed) else []
        title, detail = exc.title, exc.detail
    else:  # a request that does not fit the page's parameters
        assert isinstance(exc, RequestValidationError)
        status, headers, errors = 422, {}, []
        title, detail = ValidationFailed.title, "the address has parameters this page cannot read"
    response = render(
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail, "errors": errors},
        status_code=status,
    )
    response.headers.update(headers)
    return response
