"""Segments over HTTP and the command line: the same service, the same answers, and the
problem+json contract for bad rules."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.profiles.models import ProfileRow
from tests.conftest import ADMIN
from tests.segments.conftest import World

SHANGHAI = {"trait": "city", "op": "eq", "value": "上海"}
BASE = "/api/v1/segments"


@pytest.fixture
def shanghai(world: World) -> list[str]:
    """Two Shanghai profiles in north, one Beijing one in south; committed for the app."""
    a, b = world.profile(), world.profile()
    c = world.profile(world.south)
    for pid, city in ((a, "上海"), (b, "上海"), (c, "Beijing")):
        world.trait(pid, "city", city)
    world.session.commit()
    return sorted([a, b])


def test_crud_members_export_evaluate_and_history_over_http(
    client: TestClient, shanghai: list[str]
) -> None:
    body = {"code": "sh", "name": "上海 Shanghai", "rule": SHANGHAI, "bu": "north"}
    made = client.post(BASE, json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    segment = made.json()
    assert segment["size"] == 2 and segment["version"] == 1 and segment["rule"] == SHANGHAI
    sid = segment["id"]
    assert client.post(BASE, json=body, headers=ADMIN).status_code == 409
    assert [s["id"] for s in client.get(BASE, headers=ADMIN).json()["items"]] == [sid]
    assert client.get(BASE, params={"bu": "south"}, headers=ADMIN).json()["items"] == []
    assert client.get(f"{BASE}/{sid}", headers=ADMIN).json()["code"] == "sh"

    page = client.get(f"{BASE}/{sid}/members", params={"limit": 1}, headers=ADMIN).json()
    assert [m["profile_id"] for m in page["items"]] == shanghai[:1]
    rest = client.get(
        f"{BASE}/{sid}/members", params={"cursor": page["next_cursor"]}, headers=ADMIN
    ).json()
    assert [m["profile_id"] for m in rest["items"]] == shanghai[1:]
    assert rest["next_cursor"] is None

    exported = client.get(f"{BASE}/{sid}/export.csv", headers=ADMIN)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["profile_id", "entered_at"] and [r[0] for r in rows[1:]] == shanghai

    changed = client.put(
        f"{BASE}/{sid}",
        json={"name": "北京 Beijing", "rule": {"trait": "city", "op": "eq", "value": "Beijing"}},
        headers=ADMIN,
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert changed.json()["size"] == 0  # the Beijing profile is south's
    evaluated = client.post(f"{BASE}/{sid}/evaluate", headers=ADMIN).json()
    assert (evaluated["entered"], evaluated["exited"], evaluated["size"]) == (0, 0, 0)
    history = client.get(f"{BASE}/{sid}/history", headers=ADMIN).json()["items"]
    assert [(h["kind"], h["cause"]) for h in history] == [("enter", "rule")] * 2 + [
        ("exit", "rule")
    ] * 2
    later = client.get(f"{BASE}/{sid}/history", params={"after": history[1]["seq"]}, headers=ADMIN)
    assert [h["seq"] for h in later.json()["items"]] == [h["seq"] for h in history[2:]]

    assert client.delete(f"{BASE}/{sid}", headers=ADMIN).status_code == 204
    gone = client.get(f"{BASE}/{sid}", headers=ADMIN)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"


def test_preview_counts_without_saving(client: TestClient, shanghai: list[str]) -> None:
    shown = client.post(f"{BASE}/preview", json={"rule": SHANGHAI}, headers=ADMIN)
    assert shown.status_code == 200, shown.text
    found = shown.json()
    assert (found["count"], found["is_estimate"], found["exact_count"]) == (2, False, 2)
    assert found["sample_ids"] == shanghai and found["label"] == "2 (exact)"
    south = client.post(f"{BASE}/preview", json={"rule": SHANGHAI, "bu": "south"}, headers=ADMIN)
    assert south.json()["count"] == 0
    assert client.get(BASE, headers=ADMIN).json()["items"] == []


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"and": [SHANGHAI, {"trait": "city", "op": "like", "value": "%"}]}, "rule.and[1].op"),
        ({"or": [{"not": {"tag": "no_such_tag"}}]}, "rule.or[0].not.tag"),
        ({"event": "E", "count": {"op": "gte", "value": "{{7*7}}"}}, "rule.count.value"),
        ({"segment": "nope"}, "rule.segment"),
        ({"trait": "a", "tag": "b"}, "rule"),
    ],
)
def test_a_bad_rule_answers_problem_json_naming_the_node(
    client: TestClient, shanghai: list[str], rule: object, path: str
) -> None:
    for method, url, body in (
        ("POST", BASE, {"code": "x", "name": "x", "rule": rule}),
        ("POST", f"{BASE}/preview", {"rule": rule}),
    ):
        answer = client.request(method, url, json=body, headers=ADMIN)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["type"] == "/problems/validation-failed"
        assert [e["path"] for e in problem["errors"]] == [path]
        assert path in problem["detail"]


def test_hostile_rule_values_stay_literals_over_http(
    client: TestClient, world: World, shanghai: list[str]
) -> None:
    rule = {
        "trait": "city",
        "op": "in",
        "value": ["'); DROP TABLE profiles_profile; --", "{{7*7}}"],
    }
    shown = client.post(f"{BASE}/preview", json={"rule": rule}, headers=ADMIN)
    assert shown.status_code == 200 and shown.json()["count"] == 0
    assert len(world.session.scalars(select(ProfileRow.id)).all()) == 3


def test_unknown_and_unauthenticated(client: TestClient, shanghai: list[str]) -> None:
    assert client.get(f"{BASE}/01JNOTASEGMENT000000000000", headers=ADMIN).status_code == 404
    assert client.get(f"{BASE}/x/export.csv", headers=ADMIN).status_code == 404
    assert client.get(BASE).status_code == 401
    extra = client.post(
        BASE, json={"code": "x", "name": "x", "rule": SHANGHAI, "sql": "1"}, headers=ADMIN
    )
    assert extra.status_code == 422 and extra.json()["errors"][0]["path"] == "body.sql"
    bad_code = client.post(BASE, json={"code": "X Y", "name": "x", "rule": SHANGHAI}, headers=ADMIN)
    assert bad_code.status_code == 422


def test_cli_create_list_show_preview_members_export_evaluate(
    db_url: str,
    shanghai: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    runner = CliRunner()
    rule = tmp_path / "rule.yaml"
    rule.write_text("trait: city\nop: eq\nvalue: 上海\n", encoding="utf-8")
    made = runner.invoke(
        app,
        [
            "segments",
            "create",
            "--file",
            str(rule),
            "--code",
            "sh",
            "--name",
            "上海",
            "--bu",
            "north",
            "--json",
        ],
    )
    assert made.exit_code == 0, made.output
    segment = json.loads(made.stdout)
    assert segment["size"] == 2 and segment["bu_id"]
    listed = runner.invoke(app, ["segments", "list", "--json"])
    assert [s["code"] for s in json.loads(listed.stdout)] == ["sh"]
    table = runner.invoke(app, ["segments", "list"], env={"COLUMNS": "200"})
    assert "sh" in table.output and "上海" in table.output
    shown = runner.invoke(app, ["segments", "show", "sh", "--bu", "north"])
    assert shown.exit_code == 0 and "value: 上海" in shown.output
    by_id = runner.invoke(app, ["segments", "show", segment["id"], "--json"])
    assert json.loads(by_id.stdout)["code"] == "sh"
    preview = runner.invoke(app, ["segments", "preview", "--file", str(rule), "--bu", "north"])
    assert preview.exit_code == 0 and "2 (exact)" in preview.output
    members = runner.invoke(app, ["segments", "members", "sh", "--bu", "north", "--json"])
    assert [m["profile_id"] for m in json.loads(members.stdout)["members"]] == shanghai
    exported = runner.invoke(app, ["segments", "export", "sh", "--bu", "north"])
    lines = exported.stdout.splitlines()
    assert lines[0] == "profile_id,entered_at"
    assert [line.split(",")[0] for line in lines[1:]] == shanghai
    out = tmp_path / "members.csv"
    written = runner.invoke(app, ["segments", "export", "sh", "--bu", "north", "-o", str(out)])
    assert written.exit_code == 0 and len(out.read_text(encoding="utf-8").splitlines()) == 3
    evaluated = runner.invoke(app, ["segments", "evaluate", "sh", "--bu", "north", "--json"])
    assert json.loads(evaluated.stdout)["size"] == 2


def test_cli_names_bad_input(
    db_url: str, shanghai: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    runner = CliRunner()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"and": [SHANGHAI, {"tag": "no_such_tag"}]}), encoding="utf-8")
    refused = runner.invoke(
        app, ["segments", "create", "--file", str(bad), "--code", "x", "--name", "x"]
    )
    assert refused.exit_code == 1 and "rule.and[1].tag" in refused.output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    unreadable = runner.invoke(app, ["segments", "preview", "--file", str(broken)])
    assert unreadable.exit_code == 1 and "not valid JSON" in unreadable.output
    listy = tmp_path / "list.yaml"
    listy.write_text("- tag: x\n", encoding="utf-8")
    assert runner.invoke(app, ["segments", "preview", "--file", str(listy)]).exit_code == 1
    missing = runner.invoke(app, ["segments", "show", "nope"])
    assert missing.exit_code == 1 and "no segment 'nope'" in missing.output


@pytest.mark.parametrize(
    "command", ["create", "list", "show", "preview", "members", "export", "evaluate"]
)
def test_every_command_has_help_with_an_example(command: str) -> None:
    shown = CliRunner().invoke(app, ["segments", command, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "Example: oneloop segments" in shown.output
