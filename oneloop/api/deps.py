"""Typed dependencies declared once, so routes stay short.

``SessionDep`` gives a route a session inside a transaction that commits when the route
returns normally and rolls back when it raises: acknowledged means committed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from oneloop.core.clock import Clock, SystemClock
from oneloop.core.config import Settings
from oneloop.governance.signin import KeyContexts


@dataclass(frozen=True)
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: KeyContexts = field(default_factory=lambda: KeyContexts(seconds=0))
    clock: Clock = field(default_factory=SystemClock)
    # SQLite has one writer at a time; queueing writers on a lock in the process is cheaper
    # than letting them spin in SQLite's busy handler. PostgreSQL writers run in parallel.
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    def writing(self) -> AbstractContextManager[object]:
        return self.write_lock if self.engine.dialect.name == "sqlite" else nullcontext()


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.oneloop
    return state


def get_session(state: Annotated[AppState, Depends(get_state)]) -> Iterator[Session]:
    with state.sessions() as session, session.begin():
        yield session


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]
