"""``oneloop scores …``: the score models (list, show, create, update, delete) and rebuilding
scores from the events with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from oneloop.cli.common import cli_session, console, print_json, progress_bar, reported_errors
from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.profiles import score_models, scores
from oneloop.profiles.score_models import ScoreModel

scores_app = typer.Typer(
    help="Scores (评分): points models with caps, decay and thresholds that set tags.",
    no_args_is_help=True,
)
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
Unit = Annotated[str | None, typer.Option("--bu", help="business unit code (default: the group)")]
ModelArg = Annotated[str, typer.Argument(metavar="MODEL", help="the model's code or id")]
ModelFile = Annotated[
    Path,
    typer.Option("--file", exists=True, dir_okay=False, help="the model document, YAML or JSON"),
]
MAX_FILE = 1024 * 1024


@scores_app.command("list", epilog="Example: oneloop scores list --bu north")
def list_models(bu: Unit = None, as_json: AsJson = False) -> None:
    """List score models."""
    with reported_errors(), cli_session() as (session, ctx):
        found = score_models.list_models(session, ctx, bu=bu)
    if as_json:
        print_json(found)
        return
    table = Table("id", "code", "中文", "English", "half-life (days)", "rules", "version")
    for m in found:
        half_life = m.definition.get("half_life_days")
        table.add_row(
            m.id,
            m.code,
            escape(m.name_zh),
            escape(m.name_en),
            "—" if half_life is None else f"{half_life:g}",
            str(len(m.definition.get("rules", []))),
            str(m.version),
        )
    console.print(table)


@scores_app.command("show", epilog="Example: oneloop scores show intent --bu north")
def show(model: ModelArg, bu: Unit = None, as_json: AsJson = False) -> None:
    """Show a model: its rules, caps and thresholds."""
    with reported_errors(), cli_session() as (session, ctx):
        found = score_models.get_model(session, ctx, model, bu=bu)
    if as_json:
        print_json(found)
        return
    _show(found)


@scores_app.command("create", epilog="Example: oneloop scores create --file intent.yaml --bu north")
def create(file: ModelFile, bu: Unit = None) -> None:
    """Create a model from a YAML or JSON file and score every profile."""
    with reported_errors(), cli_session() as (session, ctx):
        with progress_bar("scoring") as tick:
            made = score_models.create_model(session, ctx, _document(file), bu=bu, on_progress=tick)
        session.commit()
    console.print(f"score model [bold]{made.code}[/] created: {made.id}")


@scores_app.command(
    "update", epilog="Example: oneloop scores update intent --file intent.yaml --bu north"
)
def update(model: ModelArg, file: ModelFile, bu: Unit = None) -> None:
    """Store a new version of a model (same code) and rescore."""
    with reported_errors(), cli_session() as (session, ctx):
        with progress_bar("scoring") as tick:
            changed = score_models.update_model(
                session, ctx, model, _document(file), bu=bu, on_progress=tick
            )
        session.commit()
    console.print(f"score model [bold]{changed.code}[/] is now version {changed.version}")


@scores_app.command("delete", epilog="Example: oneloop scores delete intent --bu north --yes")
def delete(
    model: ModelArg,
    bu: Unit = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Delete a model, its scores and history, and take away the tags it set."""
    if not yes:
        typer.confirm(f"delete score model {model} and the tags it set?", abort=True)
    with reported_errors(), cli_session() as (session, ctx):
        score_models.delete_model(session, ctx, model, bu=bu)
        session.commit()
    console.print(f"score model {escape(model)} deleted")


@scores_app.command(
    "recompute",
    epilog="Examples: oneloop scores recompute --model intent --bu north\n\n"
    "oneloop scores recompute   (every model)",
)
def recompute(
    model: Annotated[str | None, typer.Option("--model", help="model code (default: all)")] = None,
    bu: Unit = None,
) -> None:
    """Rebuild scores, points history and threshold tags from the events."""
    with reported_errors(), cli_session() as (session, ctx):
        with progress_bar("recomputing scores") as tick:
            done = scores.recompute(session, ctx, model=model, bu=bu, on_progress=tick)
        session.commit()
    console.print(f"{done} profile scores rebuilt")


def _document(file: Path) -> object:
    """The file's document: JSON is YAML, so one parser reads both."""
    if file.stat().st_size > MAX_FILE:
        raise ValidationFailed("file too large", [FieldError(("file",), "at most 1 MiB")])
    try:
        return yaml.safe_load(file.read_text("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            "the model file is not valid YAML or JSON", [FieldError(("file",), str(exc))]
        ) from None


def _show(found: ScoreModel) -> None:
    doc = found.definition
    half_life = doc.get("half_life_days")
    console.print(
        f"[bold]{escape(found.code)}[/] {escape(found.name_zh)} / {escape(found.name_en)} · "
        f"version {found.version} · "
        + ("no decay" if half_life is None else f"half-life {half_life:g} days")
    )
    if found.description:
        console.print(escape(found.description))
    table = Table("rule", "event", "where", "points", "cap", title="rules")
    for rule in doc.get("rules", []):
        event = rule["event"] if isinstance(rule["event"], str) else ", ".join(rule["event"])
        where = "; ".join(
            f"{w['property']} {w['op']} {w.get('value', '')}".strip() for w in rule.get("where", [])
        )
        cap = rule.get("cap")
        capped = ""
        if cap:
            amount = f"{cap['points']} points" if "points" in cap else f"{cap['times']} times"
            capped = f"{amount} per {cap['per']}"
        table.add_row(
            escape(rule["id"]), escape(event), escape(where), f"{rule['points']:+g}", capped
        )
    console.print(table)
    thresholds = Table("min", "tag", title="thresholds")
    for threshold in doc.get("thresholds", []):
        thresholds.add_row(f"≥ {threshold['min']:g}", escape(threshold["tag"]))
    console.print(thresholds)
