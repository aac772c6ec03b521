"""Console tests: pages through the app (TestClient) on the suite's fresh databases, and a real
browser (Debian's chromium under Playwright) against a live server on one shared demo.

The browser harness, session-scoped so the whole run pays for it once: a small demo generated,
loaded and run through the worker's pipeline (``demo``), the app served by uvicorn in a thread
on a free 127.0.0.1 port (``live_server``), and pytest-playwright's ``browser`` launched from
``/usr/bin/chromium`` (no browser download). Without chromium the browser tests skip, unless
``ONELOOP_REQUIRE_BROWSER=1`` (CI), where they fail instead. ``console_page`` is a fresh page
(own cookies) that fails its test on any console error, page error, failed request or
unexpected 4xx/5xx answer, and saves screenshots under ``var/test-artifacts/screenshots``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from oneloop.api.app import create_app
from oneloop.collect import consumers
from oneloop.core.config import Settings
from oneloop.core.context import system_context
from oneloop.core.db import create_db_engine, session_factory
from oneloop.demo.generate import generate
from oneloop.demo.load import load_demo
from oneloop.migrations import upgrade
from tests.conftest import ADMIN_TOKEN

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("ONELOOP_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "screenshots"
DEMO_CUSTOMERS = 40
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def login_token(html: str) -> str:
    """The sign-in form's own CSRF token, as a browser would send it back."""
    found = re.search(r'name="login_csrf" value="([^"]+)"', html)
    assert found, "the sign-in form has no login_csrf field"
    return found.group(1)


def csrf_of(html: str) -> str:
    """The session's CSRF token, from a page's meta tag."""
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str, next: str = "/") -> TestClient:
    """Sign in through the form, as a browser does; the client keeps the cookies."""
    token = login_token(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"email": email, "password": password, "login_csrf": token, "next": next},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


# --- the shared demo -------------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    role_password: str


def sign_in_page(page: Any, email: str, password: str, at: str = "/") -> None:  # Any: Page
    """Sign a browser in through the form, starting ``at`` a page (``/`` sends it to
    ``/login?next=/`` first), and wait for the dashboard."""
    page.goto(at)
    if at == "/":
        page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("#login-button")
    page.wait_for_url(re.compile(r"/$"))


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A demo group of a few customers, loaded and resolved as ``make demo`` and the worker
    would: one database for every console test that needs realistic data."""
    root = tmp_path_factory.mktemp("console-demo")
    generate(root / "demo", customers=DEMO_CUSTOMERS, seed=7)
    settings = Settings(
        database_url=f"sqlite:///{root / 'oneloop.db'}",
        run_consumers=False,
        admin_token=ADMIN_TOKEN,
        cookie_secure=False,  # the browser talks plain HTTP to 127.0.0.1
        login_rate_per_minute=1000,  # every test signs in from the same address
    )
    engine = create_db_engine(settings)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        summary = load_demo(session, system_context(), root / "demo")
        session.commit()
    consumers.drain(sessions, consumers.registered(), tasks=consumers.registered_tasks())
    assert summary.role_password is not None
    yield Demo(settings, engine, sessions, summary.role_password)
    engine.dispose()


@pytest.fixture(scope="session")
def demo_app(demo: Demo) -> FastAPI:
    return create_app(demo.settings, demo.engine)


@pytest.fixture
def demo_client(demo_app: FastAPI) -> Iterator[TestClient]:
    """A client of the demo app with no one signed in (each test its own cookies)."""
    with TestClient(demo_app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


# --- the browser harness ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_server(demo_app: FastAPI) -> Iterator[str]:
    """The demo app served by uvicorn on a free port. The socket is bound and listening before
    the server thread starts, so a request made at once waits in the backlog: no polling."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(demo_app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="console-server", daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch, from Debian's chromium: Playwright downloads no browser."""
    if not CHROMIUM.exists():
        if REQUIRE_BROWSER:
            pytest.fail(f"ONELOOP_REQUIRE_BROWSER=1 but {CHROMIUM} is missing")
        pytest.skip(f"no browser: install Debian's chromium ({CHROMIUM}); CI does")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": CHROMIUM_ARGS,
        "headless": True,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any], live_server: str) -> dict[str, Any]:
    return {
        **browser_context_args,
        "base_url": live_server,
        "viewport": DESKTOP,
        "locale": "en-US",
        "timezone_id": "Asia/Shanghai",
    }


_FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class Watch:
    """What went wrong in the page: console errors, page errors, failed requests, answers
    with an error status that the test did not announce with ``expect`` (chromium also logs
    such an answer as a console error, which the same announcement covers)."""

    problems: list[str] = field(default_factory=list)
    expected: set[tuple[int, str]] = field(default_factory=set)

    def expect(self, status: int, path: str) -> None:
        self.expected.add((status, path))

    def response(self, status: int, url: str) -> None:
        if status >= 400 and (status, _path(url)) not in self.expected:
            self.problems.append(f"HTTP {status} {url}")

    def console(self, kind: str, text: str, url: str | None) -> None:
        if kind != "error":
            return
        failed = _FAILED_LOAD.match(text)
        if failed and url and (int(failed.group(1)), _path(url)) in self.expected:
            return
        self.problems.append(f"console: {text} at {url}")


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url).split("?")[0]


@pytest.fixture
def console_page(page: Any, request: pytest.FixtureRequest) -> Iterator[tuple[Any, Watch]]:
    # Any: playwright's Page (typed by playwright; kept loose so the module imports without it)
    watch = Watch()
    page.on("console", lambda msg: watch.console(msg.type, msg.text, msg.location.get("url")))
    page.on("pageerror", lambda exc: watch.problems.append(f"page error: {exc}"))
    page.on(
        "requestfailed",
        lambda req: watch.problems.append(f"request failed: {req.url} {req.failure}"),
    )
    page.on("response", lambda resp: watch.response(resp.status, resp.url))
    yield page, watch
    assert watch.problems == [], f"{request.node.name}: the browser reported problems"


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    # Any: playwright's Page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
