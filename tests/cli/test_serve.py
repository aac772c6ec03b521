"""`oneloop serve` as a user starts it: a real uvicorn process on a free port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import running_server


def _get(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with running_server(f"sqlite:///{tmp_path / 'serve.db'}") as base:
        yield base


def test_serve_answers_health_and_readiness(server: str) -> None:
    assert _get(f"{server}/healthz")[0] == 200
    status, body = _get(f"{server}/readyz")
    assert status == 200 and body["status"] == "ready"
    status, body = _get(f"{server}/nope")
    assert status == 404 and body["type"] == "/problems/not-found"
