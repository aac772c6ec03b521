"""``oneloop users``, ``roles`` and ``apikeys`` on a real database: the password comes from
stdin, a key's token is printed once and then works against the API."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app as cli
from oneloop.core.context import Context
from tests.factories import PASSWORD, make_group, signed_in

runner = CliRunner()


def test_users_and_keys_from_the_command_line(
    db_url: str, session: Session, ctx: Context, app: FastAPI
) -> None:
    make_group(session, ctx)
    env = {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}
    made = runner.invoke(
        cli,
        ["users", "create", "li.lei@galaxy.example.com", "--bu", "north", "--role", "analyst"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert made.exit_code == 0, made.output
    assert PASSWORD not in made.output
    signed_in(app, "li.lei@galaxy.example.com")  # the stdin password is the one set

    short = runner.invoke(
        cli,
        ["users", "create", "x@galaxy.example.com", "--bu", "north", "--role", "analyst"],
        input="short\n",
        env=env,
    )
    assert short.exit_code == 1 and "password" in short.output
    unknown_role = runner.invoke(
        cli,
        ["users", "create", "y@galaxy.example.com", "--bu", "north", "--role", "wizard"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert unknown_role.exit_code == 1 and "role" in unknown_role.output

    granted = runner.invoke(
        cli,
        ["users", "grant", "li.lei@galaxy.example.com", "--bu", "south", "--role", "marketer"],
        env=env,
    )
    assert granted.exit_code == 0, granted.output
    listed = runner.invoke(cli, ["users", "list", "--json"], env=env)
    roles = json.loads(listed.stdout)[0]["memberships"]
    assert [(m["bu_code"], m["role"]) for m in roles] == [
        ("north", "analyst"),
        ("south", "marketer"),
    ]

    key = runner.invoke(
        cli,
        [
            "apikeys",
            "create",
            "--user",
            "li.lei@galaxy.example.com",
            "--scope",
            "segments.read",
            "--json",
        ],
        env=env,
    )
    assert key.exit_code == 0, key.output
    token = json.loads(key.stdout)["token"]
    machine = TestClient(app)
    who = machine.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert who["bu_code"] == "north" and who["permissions"] == ["segments.read"]
    beyond = runner.invoke(
        cli,
        ["apikeys", "create", "--user", "li.lei@galaxy.example.com", "--scope", "pii:read"],
        env=env,
    )
    assert beyond.exit_code == 1 and "pii:read" in beyond.output

    revoked = runner.invoke(cli, ["apikeys", "revoke", json.loads(key.stdout)["id"]], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert (
        machine.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )

    matrix = runner.invoke(cli, ["roles", "list", "--json"], env=env)
    assert {r["code"] for r in json.loads(matrix.stdout)} >= {"group_admin", "compliance_officer"}
    assert (
        runner.invoke(cli, ["users", "unlock", "li.lei@galaxy.example.com"], env=env).exit_code == 0
    )
    assert (
        runner.invoke(cli, ["users", "unlock", "nobody@galaxy.example.com"], env=env).exit_code == 1
    )
