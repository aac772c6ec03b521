"""Liveness and readiness, for load balancers and for `make demo` to know when to open a browser.

``/healthz`` answers while the process runs; ``/readyz`` only when the database answers and its
schema is at the head migration (a half-migrated database must not take traffic).
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from oneloop import __version__
from oneloop.api.deps import StateDep
from oneloop.core.errors import Unavailable
from oneloop.migrations import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
def readyz(state: StateDep) -> dict[str, str | None]:
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(state.engine)
    except DBAPIError as exc:
        raise Unavailable("the database is not reachable", retry_after=5) from exc
    head = head_revision()
    if revision != head:
        raise Unavailable(
            f"the database is at migration {revision or 'none'}, the code needs {head}; "
            "run `oneloop db upgrade`",
            retry_after=30,
            revision=revision,
            head=head,
        )
    return {"status": "ready", "database": state.engine.dialect.name, "revision": revision}
