"""A real `oneloop serve` process on a free port, for tests that talk to it over the network."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from oneloop.bench.harness import served


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(database_url: str, **env: str) -> Iterator[str]:
    """Migrate ``database_url``, serve it with uvicorn, yield the base URL, stop it after."""
    environ = {**os.environ, "ONELOOP_DATABASE_URL": database_url, **env}
    subprocess.run(
        [sys.executable, "-m", "oneloop", "db", "upgrade"],
        env=environ,
        check=True,
        capture_output=True,
    )
    with served(database_url, free_port(), ONELOOP_LOG_FORMAT="json", **env) as base:
        yield base
