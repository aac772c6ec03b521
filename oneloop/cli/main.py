"""The ``oneloop`` command: one sub-command group per domain."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from oneloop import __version__
from oneloop.bench.cli import bench_app
from oneloop.cli import db
from oneloop.cli.bus import bus_app
from oneloop.cli.common import load_settings
from oneloop.collect.cli import deadletters_app, sources_app, worker
from oneloop.collect.import_cli import register as register_import
from oneloop.collect.plans_cli import plans_app
from oneloop.demo.cli import demo_app
from oneloop.governance.audit_cli import audit_app
from oneloop.governance.cli import bu_app
from oneloop.governance.consent_cli import consent_app
from oneloop.governance.dictionary_cli import dictionary_app
from oneloop.governance.privacy_cli import privacy_app
from oneloop.governance.sharing_cli import sharing_app
from oneloop.governance.users_cli import apikeys_app, roles_app, users_app
from oneloop.identity.cli import identity_app
from oneloop.profiles.cli import profiles_app, tags_app
from oneloop.profiles.scores_cli import scores_app
from oneloop.profiles.traits_cli import traits_app
from oneloop.sales.cli import leads_app, sales_app
from oneloop.segments.cli import segments_app

app = typer.Typer(
    name="oneloop",
    help="OneLoop: one customer, one ID, one loop across marketing, sales and service.",
    no_args_is_help=True,
    epilog="Example: oneloop db upgrade && oneloop demo load && oneloop serve",
)
app.add_typer(db.app, name="db")
app.add_typer(bu_app, name="bu")
app.add_typer(users_app, name="users")
app.add_typer(roles_app, name="roles")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(audit_app, name="audit")
app.add_typer(dictionary_app, name="dictionary")
app.add_typer(consent_app, name="consent")
app.add_typer(privacy_app, name="privacy")
app.add_typer(sharing_app, name="sharing")
app.add_typer(sources_app, name="sources")
app.add_typer(plans_app, name="plans")
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(identity_app, name="identity")
app.add_typer(scores_app, name="scores")
app.add_typer(traits_app, name="traits")
app.add_typer(leads_app, name="leads")
app.add_typer(sales_app, name="sales")
app.add_typer(profiles_app, name="profiles")
app.add_typer(tags_app, name="tags")
app.add_typer(segments_app, name="segments")
app.command("worker", epilog="Example: oneloop worker --once")(worker)
app.add_typer(bus_app, name="bus")
app.add_typer(demo_app, name="demo")
app.add_typer(bench_app, name="bench")
register_import(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"oneloop {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Settings come from ONELOOP_* environment variables (see README)."""


@app.command(
    epilog="Example: ONELOOP_DATABASE_URL=sqlite:///var/oneloop.db oneloop serve --port 8000 "
    "--workers 2"
)
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default ONELOOP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default ONELOOP_PORT)")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="server processes; one per core for a busy API")
    ] = 1,
) -> None:
    """Serve the API and the console with uvicorn.

    One process runs the log's consumers in a thread beside the API (unless
    ONELOOP_RUN_CONSUMERS=false). With several, the consumers run once, in a
    ``oneloop worker`` process started and stopped with the server, not once per process.
    """
    import uvicorn

    settings = load_settings()
    consumer = None
    if workers > 1 and settings.run_consumers:
        consumer = subprocess.Popen([sys.executable, "-m", "oneloop", "worker"])
        os.environ["ONELOOP_RUN_CONSUMERS"] = "false"  # read by each server process
    try:
        uvicorn.run(
            "oneloop.api.app:serve_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            log_config=None,  # keep our structured logging
        )
    finally:
        if consumer is not None:
            consumer.terminate()
            consumer.wait(timeout=30)


def main() -> None:
    app()
