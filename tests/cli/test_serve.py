"""`oneloop serve` as a user starts it: a real uvicorn process on a free port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def _consumer_processes(database_url: str) -> list[int]:
    """The `oneloop worker` processes serving ``database_url`` (their environment names it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        ours = f"ONELOOP_DATABASE_URL={database_url}".encode() in environ
        if ours and argv[-3:-1] == [b"oneloop", b"worker"]:  # cmdline ends with a NUL
            found.append(int(proc.name))
    return found


def test_several_server_processes_run_the_consumers_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    with running_server(url, workers=2) as base:
        assert _get(f"{base}/healthz")[0] == 200
        assert len(_consumer_processes(url)) == 1
    assert _consumer_processes(url) == []


def test_a_server_process_hides_the_app_from_the_collector(tmp_path: Path) -> None:
    """A full collection over the whole app stalled requests for ~150 ms (bench api's tail);
    after ``gc.freeze`` it walks only what requests left behind."""
    code = (
        "import gc; from oneloop.api.app import serve_app; serve_app(); "
        "print(gc.get_freeze_count())"
    )
    env = {**os.environ, "ONELOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'gc.db'}"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert int(done.stdout.split()[-1]) > 10_000
