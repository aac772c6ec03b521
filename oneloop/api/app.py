"""The FastAPI app factory: one app per Settings, so tests build their own on their database."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from oneloop import __version__
from oneloop.api import errors, health, openapi
from oneloop.api.deps import AppState
from oneloop.api.graphql import make_router as graphql_router
from oneloop.api.idempotency import IdempotencyMiddleware
from oneloop.api.middleware import AnswerHeaders, ConnectionTurnover
from oneloop.collect import api as collect_api
from oneloop.collect import consumers, plans_api, sources_api
from oneloop.core.config import Settings
from oneloop.core.db import create_db_engine, session_factory
from oneloop.core.logging import configure_logging
from oneloop.governance import api as governance_api
from oneloop.governance import (
    audit_api,
    auth_api,
    consent_api,
    dictionary_api,
    privacy_api,
    sharing_api,
    users_api,
)
from oneloop.governance.signin import KeyContexts
from oneloop.identity import api as identity_api
from oneloop.profiles import api as profiles_api
from oneloop.profiles import traits_api
from oneloop.profiles.scores_api import router as scores_router
from oneloop.sales import api as sales_api
from oneloop.segments import api as segments_api
from oneloop.web import pages
from oneloop.worker import worker_tasks

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = engine or create_db_engine(settings)
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        keys=KeyContexts(settings.api_key_cache_seconds),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """Run the log's consumers beside the API unless a separate `oneloop worker` does."""
        stop = threading.Event()
        worker = None
        if settings.run_consumers:
            worker = threading.Thread(
                target=consumers.run_forever,
                args=(state.sessions, consumers.registered(), stop),
                kwargs={"tasks": worker_tasks(settings)},
                name="oneloop-consumers",
                daemon=True,
            )
            worker.start()
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                worker.join(timeout=10)

    app = FastAPI(
        title="OneLoop",
        version=__version__,
        description="One customer, one ID, one loop: marketing, sales and service.",
        lifespan=lifespan,
        openapi_url=openapi.OPENAPI_URL,
        docs_url=openapi.DOCS_URL,
        redoc_url=openapi.REDOC_URL,
    )
    app.state.oneloop = state
    errors.install(app)
    openapi.install(app)
    # Added first, so innermost: its replays and problems get the request id and the
    # security headers like any other answer.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(AnswerHeaders)
    if settings.max_requests_per_connection:
        app.add_middleware(ConnectionTurnover, limit=settings.max_requests_per_connection)

    for router in api_routers():
        app.include_router(router)
    pages.install(app)  # the console: its routes, static files, and HTML error pages
    return app


def api_routers() -> list[APIRouter]:
    """The API's routers, busiest first. FastAPI tries a request against the routers in
    turn, so the tracking API and the reads come before the administration; no path of one
    router is also a path of another (``tests/api/test_routes.py``), so the order changes
    what a request costs, never where it goes. The console's pages follow (``pages``)."""
    return [
        health.router,
        collect_api.tracking,
        graphql_router(),
        profiles_api.router,
        segments_api.router,
        sales_api.router,
        consent_api.router,
        identity_api.router,
        scores_router,
        traits_api.router,
        collect_api.admin,
        sources_api.router,
        plans_api.router,
        auth_api.router,
        governance_api.router,
        users_api.router,
        privacy_api.router,
        sharing_api.router,
        audit_api.router,
        dictionary_api.router,
    ]


def serve_app() -> FastAPI:
    """The factory `oneloop serve` hands to uvicorn: each worker process reads the environment
    and sets up structured logging itself, since workers do not inherit the parent's set-up."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)
    # The app's own objects (routes, schemas, models) live as long as the process: move them
    # out of the collector's sight, so a full collection walks a request's garbage, not the
    # whole app, and does not stall every request in flight for tens of milliseconds.
    gc.collect()
    gc.freeze()
    return app
