"""Real servers for tests that talk over the network: `oneloop serve` and `redis-server`, each
on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from oneloop.bench.harness import served


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(database_url: str, workers: int = 1, **env: str) -> Iterator[str]:
    """Migrate ``database_url``, serve it with uvicorn (``workers`` processes), yield the base
    URL, stop it after."""
    environ = {**os.environ, "ONELOOP_DATABASE_URL": database_url, **env}
    subprocess.run(
        [sys.executable, "-m", "oneloop", "db", "upgrade"],
        env=environ,
        check=True,
        capture_output=True,
    )
    with served(database_url, free_port(), workers, ONELOOP_LOG_FORMAT="json", **env) as base:
        yield base


REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """A throwaway ``redis-server`` on a free port: nothing saved to disk, stopped and started
    again on the same port by tests of a Redis outage."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        self._proc = subprocess.Popen(  # our fixed arguments
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start:\n{text}")
            time.sleep(0.02)  # polling a starting process

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None


@contextmanager
def running_redis(binary: str, directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(binary, directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
