from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from oneloop.api.app import create_app
from oneloop.core.config import Settings


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # Server errors must come back as responses (the 500 contract), not be re-raised here.
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
