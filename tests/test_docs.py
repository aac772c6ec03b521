"""The README cannot drift: its commands exist and every setting is documented."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from oneloop.cli.main import app
from oneloop.core.config import Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
ROOT = typer.main.get_group(app)


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("oneloop ")]


@pytest.mark.parametrize("line", _readme_commands())
def test_readme_commands_exist_with_their_options(line: str) -> None:
    words = shlex.split(line)[1:]
    cmd = ROOT
    while isinstance(cmd, TyperGroup) and words and not words[0].startswith("-"):
        sub = cmd.commands.get(words.pop(0))
        assert sub is not None, f"README names a command that does not exist: {line}"
        cmd = sub
    known = {"--help"} | {opt for p in cmd.params for opt in getattr(p, "opts", [])}
    for word in words:
        if word.startswith("--"):
            assert word in known, f"README uses an unknown option {word}: {line}"


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"ONELOOP_{name.upper()}" in README, f"ONELOOP_{name.upper()} is not in the README"
