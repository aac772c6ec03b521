"""The audit log (issue 7): the chain verification catches an edited or deleted row, on
SQLite and PostgreSQL; search by API and CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.errors import ValidationFailed
from oneloop.governance import audit, service
from oneloop.governance.models import AuditRow
from oneloop.governance.schemas import BusinessUnitPatch
from tests.conftest import ADMIN
from tests.factories import make_group
from tests.pipeline import Feed

runner = CliRunner()


def _record_five(session: Session, ctx: Context, clock: FixedClock) -> None:
    for n in range(1, 6):
        audit.record(
            session, ctx, "segment.exported", "segment", f"seg{n}", detail={"rows": n * 10}
        )
        clock.advance(timedelta(minutes=1))
    audit.record(session, ctx, "source.created", "source", "src1")
    session.commit()


def test_records_chain_and_verify_passes(session: Session, ctx: Context, clock: FixedClock) -> None:
    _record_five(session, ctx, clock)
    result = audit.verify(session)
    assert result.is_intact and result.entries == 6
    page = audit.list_entries(session, ctx, limit=10)
    assert [e.seq for e in page.items] == [6, 5, 4, 3, 2, 1]
    assert page.items[-1].prev_hash == audit.GENESIS
    assert all(a.prev_hash == b.hash for a, b in zip(page.items, page.items[1:], strict=False))


def test_empty_chain_is_intact(session: Session) -> None:
    result = audit.verify(session)
    assert result.is_intact and result.entries == 0


def test_audit_chain_verification_catches_an_edited_row(
    session: Session, ctx: Context, clock: FixedClock
) -> None:
    _record_five(session, ctx, clock)
    session.execute(
        text("UPDATE governance_audit SET detail = :d WHERE seq = 3"), {"d": '{"rows": 9999}'}
    )
    session.commit()
    result = audit.verify(session)
    assert not result.is_intact
    assert result.bad_seq == 3 and result.entries == 2
    assert result.reason is not None and "edited" in result.reason


def test_edited_row_with_rehashed_self_breaks_the_next_link(
    session: Session, ctx: Context, clock: FixedClock
) -> None:
    """An editor who also rewrites the row's own hash still breaks the next entry's link."""
    _record_five(session, ctx, clock)
    session.execute(text("UPDATE governance_audit SET hash = :h WHERE seq = 2"), {"h": "f" * 64})
    session.commit()
    result = audit.verify(session)
    assert result.bad_seq == 2  # its hash no longer matches its own fields


def test_audit_chain_verification_catches_a_deleted_row(
    session: Session, ctx: Context, clock: FixedClock
) -> None:
    _record_five(session, ctx, clock)
    session.execute(text("DELETE FROM governance_audit WHERE seq = 3"))
    session.commit()
    result = audit.verify(session)
    assert not result.is_intact and result.bad_seq == 4
    assert result.reason is not None and "deleted" in result.reason


def test_deleting_the_first_row_is_caught(
    session: Session, ctx: Context, clock: FixedClock
) -> None:
    _record_five(session, ctx, clock)
    session.execute(text("DELETE FROM governance_audit WHERE seq = 1"))
    session.commit()
    assert audit.verify(session).bad_seq == 2


def test_naive_since_is_refused_naming_the_field(session: Session, ctx: Context) -> None:
    with pytest.raises(ValidationFailed) as caught:
        audit.list_entries(session, ctx, since=ctx.clock.now().replace(tzinfo=None))
    assert caught.value.errors[0].loc == ("since",)


def test_api_filters_and_pages(
    client: TestClient, session: Session, ctx: Context, clock: FixedClock
) -> None:
    _record_five(session, ctx, clock)
    first = client.get(
        "/api/v1/audit", params={"action": "segment.exported", "limit": 2}, headers=ADMIN
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert [e["seq"] for e in body["items"]] == [5, 4] and isinstance(body["next_cursor"], str)
    rest = client.get(
        "/api/v1/audit",
        params={"action": "segment.exported", "limit": 10, "cursor": body["next_cursor"]},
        headers=ADMIN,
    ).json()
    assert [e["seq"] for e in rest["items"]] == [3, 2, 1] and rest["next_cursor"] is None
    by_object = client.get("/api/v1/audit", params={"object_id": "seg2"}, headers=ADMIN).json()
    assert [e["detail"] for e in by_object["items"]] == [{"rows": 20}]
    since = client.get(
        "/api/v1/audit",
        params={"since": "2026-01-01T00:03:00Z", "until": "2026-01-01T00:05:00+00:00"},
        headers=ADMIN,
    ).json()
    assert [e["seq"] for e in since["items"]] == [5, 4]
    assert client.get("/api/v1/audit", params={"actor": "nobody"}, headers=ADMIN).json() == {
        "items": [],
        "next_cursor": None,
    }


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01"])
def test_api_bad_since_is_a_422_naming_the_field(client: TestClient, since: str) -> None:
    response = client.get("/api/v1/audit", params={"since": since}, headers=ADMIN)
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "/problems/validation-failed"
    assert "since" in body["detail"]


def test_api_naive_since_is_a_422_naming_the_field(client: TestClient) -> None:
    response = client.get("/api/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=ADMIN)
    assert response.status_code == 422
    assert "since" in response.json()["detail"]


def test_api_needs_the_admin_token(client: TestClient) -> None:
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/api/v1/audit/verify").status_code == 401


def test_api_verify_names_the_edited_seq(
    client: TestClient, session: Session, ctx: Context, clock: FixedClock
) -> None:
    _record_five(session, ctx, clock)
    ok = client.get("/api/v1/audit/verify", headers=ADMIN).json()
    assert ok == {"is_intact": True, "entries": 6, "bad_seq": None, "reason": None}
    session.execute(text("UPDATE governance_audit SET actor = 'mallory' WHERE seq = 5"))
    session.commit()
    broken = client.get("/api/v1/audit/verify", headers=ADMIN).json()
    assert broken["is_intact"] is False and broken["bad_seq"] == 5


def test_api_records_its_origin(client: TestClient, session: Session) -> None:
    """An act through the API is attributed to the caller's address (here, the test client)."""
    made = client.post(
        "/api/v1/business-units",
        json={"code": "galaxy", "name_zh": "星河集团", "name_en": "Galaxy"},
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    entries = client.get(
        "/api/v1/audit", params={"action": "business_unit.created"}, headers=ADMIN
    ).json()["items"]
    assert len(entries) == 1
    assert entries[0]["origin"].startswith("api ")
    assert entries[0]["object_id"] == made.json()["id"]


def test_cli_verify_exit_codes(
    db_url: str, session: Session, ctx: Context, clock: FixedClock
) -> None:
    env = {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}
    _record_five(session, ctx, clock)
    ok = runner.invoke(app, ["audit", "verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "chain intact: 6 entries" in ok.output
    listed = runner.invoke(app, ["audit", "list", "--action", "source.created", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert '"src1"' in listed.stdout
    session.execute(text("DELETE FROM governance_audit WHERE seq = 2"))
    session.commit()
    broken = runner.invoke(app, ["audit", "verify"], env=env)
    assert broken.exit_code == 1
    assert "seq 3" in broken.output


def test_cli_list_refuses_a_bad_since(db_url: str, session: Session) -> None:
    env = {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}
    result = runner.invoke(app, ["audit", "list", "--since", "yesterday"], env=env)
    assert result.exit_code == 2
    assert "--since" in result.output


def test_business_unit_changes_are_audited(session: Session, ctx: Context) -> None:
    _, north, _ = make_group(session, ctx)
    service.update_business_unit(session, ctx, "north", BusinessUnitPatch(name_en="North"))
    entries = audit.list_entries(session, ctx, object_id=north.id).items
    assert [e.action for e in entries] == ["business_unit.updated", "business_unit.created"]
    assert entries[0].detail == {"fields": ["name_en"]}
    assert entries[0].origin is None  # the service context names no origin; CLI and API do


def test_merges_are_audited_per_step(session: Session, feed: Feed) -> None:
    """The resolver merges at ingest rates: one entry per step that merged, with counts (each
    merge is explained in ``identity_merge``)."""
    feed({"type": "identify", "anonymousId": "a1", "traits": {"email": "li.na@galaxy-mail.cn"}})
    feed({"type": "identify", "userId": "u1", "traits": {"phone": "137 0000 1111"}})
    assert session.scalars(select(AuditRow).where(AuditRow.action == "identity.merged")).all() == []
    feed({"type": "alias", "userId": "u1", "previousId": "a1"})
    (entry,) = session.scalars(select(AuditRow).where(AuditRow.action == "identity.merged"))
    assert entry.detail is not None and entry.detail["merges"] == 1
    assert entry.origin == "worker" and entry.actor == "system"
