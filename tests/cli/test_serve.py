"""`oneloop serve` as a user starts it: a real uvicorn process on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "ONELOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "ONELOOP_LOG_FORMAT": "json",
    }
    subprocess.run(
        [sys.executable, "-m", "oneloop", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "oneloop", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"server did not start:\n{out}")
            time.sleep(0.1)  # polling a starting process, not waiting out a race
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def test_serve_answers_health_and_readiness(server: str) -> None:
    assert _get(f"{server}/healthz")[0] == 200
    status, body = _get(f"{server}/readyz")
    assert status == 200 and body["status"] == "ready"
    status, body = _get(f"{server}/nope")
    assert status == 404 and body["type"] == "/problems/not-found"
