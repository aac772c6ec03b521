"""The CLI as a user runs it: settings from the environment, help with examples, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from oneloop import __version__
from oneloop.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    return {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}


def _commands(group: TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command's path, e.g. ("db", "upgrade") and ("serve",)."""
    found: list[tuple[str, ...]] = []
    for name, cmd in group.commands.items():
        if isinstance(cmd, TyperGroup):
            found += _commands(cmd, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


ALL_COMMANDS = _commands(typer.main.get_group(app))


def test_root_help_lists_the_groups() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("db", "bu", "demo", "bench", "serve"):
        assert group in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_db_upgrade_and_current_act_on_the_env_database(env: dict[str, str]) -> None:
    before = runner.invoke(app, ["db", "current", "--json"], env=env)
    assert before.exit_code == 1 and json.loads(before.stdout)["current"] is None
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    after = runner.invoke(app, ["db", "current", "--json"], env=env)
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["is_current"] is True


def test_bu_create_and_list(env: dict[str, str]) -> None:
    runner.invoke(app, ["db", "upgrade"], env=env)
    group = runner.invoke(
        app, ["bu", "create", "galaxy", "--name", "星河集团", "--name-en", "Galaxy"], env=env
    )
    assert group.exit_code == 0, group.output
    unit = runner.invoke(
        app,
        ["bu", "create", "north", "--name", "北区事业部", "--parent", "galaxy", "--json"],
        env=env,
    )
    assert unit.exit_code == 0, unit.output
    assert json.loads(unit.stdout)["kind"] == "bu"
    listed = json.loads(runner.invoke(app, ["bu", "list", "--json"], env=env).stdout)
    assert [u["code"] for u in listed] == ["galaxy", "north"]


def test_bu_errors_exit_1_with_a_message(env: dict[str, str]) -> None:
    runner.invoke(app, ["db", "upgrade"], env=env)
    missing = runner.invoke(
        app, ["bu", "create", "north", "--name", "北", "--parent", "nope"], env=env
    )
    assert missing.exit_code == 1
    assert "no business unit with code 'nope'" in missing.output
    bad = runner.invoke(app, ["bu", "create", "Bad Code", "--name", "x"], env=env)
    assert bad.exit_code == 1 and "code" in bad.output
    assert "Traceback" not in bad.output


def test_usage_errors_exit_2() -> None:
    assert runner.invoke(app, ["bu", "create"]).exit_code == 2


def test_bench_store_writes_a_report(env: dict[str, str], tmp_path: Path, db_url: str) -> None:
    out = tmp_path / "store.json"
    env = {**env, "ONELOOP_BENCH_POSTGRES_URL": db_url if db_url.startswith("postgresql") else ""}
    result = runner.invoke(
        app, ["bench", "store", "--rows", "1000", "--batch", "100", "--json", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report) >= {"name", "metrics", "baseline", "ratio", "env"}
    assert report["name"] == "store"
    assert report["baseline"]["sqlite_rows_per_s"] > 0
    assert report["metrics"]["sqlite_core_p99_ms"] >= report["metrics"]["sqlite_core_p50_ms"]
    if db_url.startswith("postgresql"):
        assert report["baseline"]["postgres_rows_per_s"] > 0
        assert report["metrics"]["postgres_core_rows_per_s"] > 0
    else:
        assert report["metrics"]["postgres_raw_rows_per_s"] is None
    assert report["env"]["cores"] >= 1


def test_bench_demo_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    result = runner.invoke(app, ["bench", "demo", "--customers", "60", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["name"] == "demo"
    assert report["metrics"]["events"] > 0 and report["metrics"]["events_per_s"] > 0
    assert report["baseline"]["events_per_s"] > 0 and report["ratio"] > 0


def test_unmigrated_database_says_what_to_run(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["bu", "list"], env=env)
    assert result.exit_code == 1
    assert "oneloop db upgrade" in result.output and "Traceback" not in result.output
