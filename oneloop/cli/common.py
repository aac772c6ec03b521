"""What every command shares: settings from the environment, a session, errors, progress.

Exit codes: 0 ok, 1 the operation failed (a OneLoop error, printed without a stack), 2 usage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import NoReturn

import typer
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from oneloop.core.config import Settings
from oneloop.core.context import Context, system_context
from oneloop.core.db import create_db_engine, session_factory, transaction
from oneloop.core.errors import OneLoopError, ValidationFailed
from oneloop.core.logging import configure_logging

# Customer data is printed as is: `:ticket:` in an anonymous id is not an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def load_settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return settings


@contextmanager
def cli_engine() -> Iterator[tuple[Settings, Engine]]:
    settings = load_settings()
    engine = create_db_engine(settings)
    try:
        yield settings, engine
    finally:
        engine.dispose()


@contextmanager
def cli_session() -> Iterator[tuple[Session, Context]]:
    """A session committed when the command's block ends well, with the system's context."""
    with cli_engine() as (_, engine), transaction(session_factory(engine)) as session:
        yield session, replace(system_context(), origin="cli")


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn domain errors into a one-line message and exit 1, instead of a traceback."""
    try:
        yield
    except ValidationFailed as exc:
        lines = [exc.detail, *(f"  {e.path}: {e.msg}" for e in exc.errors)]
        fail("\n".join(lines))
    except OneLoopError as exc:
        fail(exc.detail)
    except DBAPIError as exc:
        # Name the failure, not the stack: usually a wrong URL, a server that is down, or a
        # schema behind the code (`oneloop db upgrade`).
        fail(
            f"database error: {type(exc.orig).__name__}: {str(exc.orig).strip()}\n"
            "check ONELOOP_DATABASE_URL, and run `oneloop db upgrade` if the schema is missing"
        )
    except PydanticValidationError as exc:
        fail(
            "invalid input:\n"
            + "\n".join(f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        )


def print_json(value: object) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, list) and all(isinstance(v, BaseModel) for v in value):
        text = json.dumps([v.model_dump(mode="json") for v in value], indent=2, ensure_ascii=False)
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    console.print_json(text) if console.is_terminal else typer.echo(text)


@contextmanager
def progress_bar(label: str, total: int | None = None) -> Iterator[Callable[[int, int], None]]:
    """Yield ``tick(done, total)``; the bar hides itself when output is not a terminal."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=total)

        def tick(done: int, of: int) -> None:
            progress.update(task, completed=done, total=of)

        yield tick
