"""Typed dependencies declared once, so routes stay short.

``SessionDep`` gives a route a session inside a transaction that commits when the route
returns normally and rolls back when it raises: acknowledged means committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from oneloop.core.config import Settings


@dataclass(frozen=True)
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.oneloop
    return state


def get_session(state: Annotated[AppState, Depends(get_state)]) -> Iterator[Session]:
    with state.sessions() as session, session.begin():
        yield session


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]
