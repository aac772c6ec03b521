"""Identity over HTTP and the command line: the same service, the same answers."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.collect import consumers
from oneloop.collect.ingest import ingest
from oneloop.collect.models import CursorRow
from oneloop.collect.spec import parse_batch
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.identity.models import MergeRow
from oneloop.identity.resolver import RESOLVER, ResolveConsumer
from tests.conftest import ADMIN
from tests.factories import make_group, make_source
from tests.identity.conftest import T0


def calls(*batch: dict[str, object]) -> list[dict[str, object]]:
    return [{"messageId": f"m{i}", "timestamp": T0.isoformat(), **c} for i, c in enumerate(batch)]


@pytest.fixture
def resolved(engine: Engine, session: Session, ctx: Context) -> str:
    """A visitor who left a phone on a form, then registered with it: one merge."""
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    batch = calls(
        {"type": "identify", "anonymousId": "a1", "traits": {"phone": "138 0013 8000"}},
        {"type": "identify", "userId": "u1", "traits": {"name": "李娜"}},
        {"type": "identify", "userId": "u1", "traits": {"mobile": "+86 138-0013-8000"}},
    )
    batch.append({**batch[0], "messageId": "bad", "traits": {"phone": "12345", "email": "a@"}})
    for part in (batch[:2], batch[2:]):  # resolved in two steps: two profiles, then a merge
        messages, invalid = parse_batch({"batch": part}, T0)
        ingest(session, source, messages, invalid, received_at=T0, origin="api", ref="test")
        session.commit()
        consumers.drain(session_factory(engine), [ResolveConsumer()])
    return session.scalars(select(MergeRow.survivor_id)).one()


def test_lookup_explain_golden_record_and_unmerge_over_http(
    client: TestClient, resolved: str
) -> None:
    found = client.get(
        "/api/v1/identity/lookup", params={"type": "phone", "value": "8613800138000"}, headers=ADMIN
    )
    assert found.status_code == 200 and found.json() == {"profile_id": resolved}
    identity = client.get(f"/api/v1/profiles/{resolved}/identity", headers=ADMIN).json()
    assert {i["type"] for i in identity["identifiers"]} == {"anonymous_id", "user_id", "phone"}
    merge = identity["history"][0]
    assert merge["kind"] == "merge" and merge["message_id"] == "m2"
    golden = client.get(f"/api/v1/profiles/{resolved}/golden-record", headers=ADMIN).json()
    assert golden["fields"]["name"]["value"] == "李娜"
    split = client.post(
        f"/api/v1/profiles/{resolved}/unmerge",
        json={"merge_id": merge["id"], "reason": "not the same person"},
        headers=ADMIN,
    )
    assert split.status_code == 200, split.text
    assert split.json()["split_off"] == [merge["absorbed_id"]]
    again = client.post(
        f"/api/v1/profiles/{resolved}/unmerge",
        json={"merge_id": merge["id"], "reason": "not the same person"},
        headers=ADMIN,
    )
    assert again.status_code == 409


def test_bad_requests_name_the_field(client: TestClient, resolved: str) -> None:
    both = client.post(
        f"/api/v1/profiles/{resolved}/unmerge",
        json={"merge_id": "x", "identifier": {"type": "phone", "value": "1"}, "reason": "why"},
        headers=ADMIN,
    )
    assert both.status_code == 422 and "exactly one" in both.text
    bad_phone = client.get(
        "/api/v1/identity/lookup", params={"type": "phone", "value": "12345"}, headers=ADMIN
    )
    assert bad_phone.status_code == 422 and "phone_invalid" in bad_phone.text
    unknown = client.get(
        "/api/v1/identity/lookup", params={"type": "shoe_size", "value": "42"}, headers=ADMIN
    )
    assert unknown.status_code == 422 and "shoe_size" in unknown.text
    no_unit = client.get(
        "/api/v1/identity/lookup", params={"type": "user_id", "value": "u1"}, headers=ADMIN
    )
    assert no_unit.status_code == 422 and "CODE:user_id" in no_unit.text
    with_unit = client.get(
        "/api/v1/identity/lookup", params={"type": "user_id", "value": "north:u1"}, headers=ADMIN
    )
    assert with_unit.json() == {"profile_id": resolved}
    assert client.get("/api/v1/profiles/nobody/identity", headers=ADMIN).status_code == 404
    assert client.get(f"/api/v1/profiles/{resolved}/identity").status_code == 401
    rules = client.put(
        "/api/v1/identity/rules", json={"types": {"x": {"kind": "shoe"}}}, headers=ADMIN
    )
    assert rules.status_code == 422 and "types" in rules.text and "shoe" in rules.text


def test_the_cli_explains_and_unmerges(
    db_url: str, resolved: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    runner = CliRunner()
    lookup = runner.invoke(app, ["identity", "lookup", "phone", "138 0013 8000"])
    assert lookup.exit_code == 0 and resolved in lookup.output
    explained = runner.invoke(app, ["identity", "explain", resolved, "--json"])
    assert explained.exit_code == 0, explained.output
    history = orjson.loads(explained.output)["identity"]["history"]
    assert history[0]["message_id"] == "m2"
    table = runner.invoke(app, ["identity", "explain", resolved], env={"COLUMNS": "200"})
    assert "golden record" in table.output and "李娜" in table.output
    split = runner.invoke(
        app,
        ["identity", "unmerge", resolved, "--identifier", "anonymous_id:a1", "--reason", "kiosk"],
    )
    assert split.exit_code == 0, split.output
    assert runner.invoke(app, ["identity", "rules", "show"]).output.startswith("types:")
    rejected = runner.invoke(app, ["identity", "rejections", "--json"])
    found = {(r["type"], r["reason"], r["example"]) for r in orjson.loads(rejected.output)}
    assert found == {("phone", "phone_invalid", "12345"), ("email", "email_invalid", "a@")}


def test_replaying_the_log_after_a_crash_merges_nothing_twice(
    engine: Engine, session: Session, resolved: str
) -> None:
    """The strongest crash: the cursor went back to the start of the log (the writes and the
    cursor commit together, so a real crash loses both; this loses only the cursor)."""
    before = session.scalars(select(MergeRow.id)).all()
    session.execute(update(CursorRow).where(CursorRow.name == RESOLVER).values(tx=0, seq=0))
    session.commit()
    again = consumers.drain(session_factory(engine), [ResolveConsumer()])
    assert again[RESOLVER].processed == 4 and again[RESOLVER].failed == 0
    assert session.scalars(select(MergeRow.id)).all() == before
