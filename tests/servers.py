"""A real `oneloop serve` process on a free port, for tests that talk to it over the network."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(database_url: str, **env: str) -> Iterator[str]:
    """Migrate ``database_url``, serve it with uvicorn, yield the base URL, stop it after."""
    port = free_port()
    environ = {
        **os.environ,
        "ONELOOP_DATABASE_URL": database_url,
        "ONELOOP_LOG_FORMAT": "json",
        **env,
    }
    subprocess.run(
        [sys.executable, "-m", "oneloop", "db", "upgrade"],
        env=environ,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "oneloop", "serve", "--port", str(port)],
        env=environ,
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
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
