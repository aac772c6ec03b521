"""Events in through the tracking API's own ingest, out as profiles: projected under their
OneID, on the timeline with their department, following merges and unmerges."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.collect import consumers
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.identity import service as identity
from oneloop.identity.schemas import IdentifierRef, UnmergeIn
from oneloop.profiles import departments, service
from oneloop.profiles.live import Sweep
from oneloop.profiles.models import ProfileEventRow, ProfileRow, ProfileUnitRow, TraitRow
from oneloop.segments import service as segments
from oneloop.segments.models import ChangeRow
from oneloop.segments.schemas import SegmentIn
from tests.conftest import ADMIN
from tests.factories import make_source
from tests.pipeline import Feed


def only_profile(session: Session) -> str:
    return session.scalars(select(ProfileRow.id)).one()


def test_events_are_projected_with_their_department_and_profile(
    session: Session, ctx: Context, feed: Feed
) -> None:
    feed(
        {"type": "page", "anonymousId": "a1", "name": "价格页", "properties": {"path": "/pricing"}},
        {"type": "track", "anonymousId": "a1", "event": "Demo Requested", "properties": {}},
        {"type": "track", "anonymousId": "a1", "event": "Ticket Opened", "properties": {}},
        {"type": "identify", "anonymousId": "a1", "traits": {"name": "李娜", "city": "上海"}},
    )
    profile = only_profile(session)
    rows = session.scalars(select(ProfileEventRow).order_by(ProfileEventRow.seq)).all()
    assert [(r.name, r.department) for r in rows] == [
        ("Page Viewed", "marketing"),
        ("Demo Requested", "sales"),
        ("Ticket Opened", "service"),
        ("Identify", "marketing"),
    ]
    assert rows[0].properties == {"path": "/pricing", "name": "价格页"}
    assert session.get(ProfileRow, profile).events == 4
    golden = {
        r.key: r.value
        for r in session.scalars(select(TraitRow).where(TraitRow.key.startswith("golden:")))
    }
    assert golden == {"golden:name": "李娜", "golden:city": "上海"}
    # the consumer is idempotent: draining again changes nothing
    feed()
    assert session.get(ProfileRow, profile).events == 4


def test_timeline_pages_newest_first_and_filters(
    session: Session, ctx: Context, feed: Feed, clock: FixedClock
) -> None:
    for i in range(5):
        feed({"type": "track", "anonymousId": "a1", "event": f"E{i}", "properties": {"i": i}})
        clock.advance(timedelta(minutes=1))
    feed({"type": "track", "anonymousId": "a1", "event": "Lead Assigned", "properties": {}})
    profile = only_profile(session)
    first = service.timeline(session, ctx, profile, limit=4)
    assert [e.name for e in first.entries] == ["Lead Assigned", "E4", "E3", "E2"]
    second = service.timeline(session, ctx, profile, limit=4, cursor=first.next_cursor)
    assert [e.name for e in second.entries] == ["E1", "E0"] and second.next_cursor is None
    sales = service.timeline(session, ctx, profile, department="sales")
    assert [e.name for e in sales.entries] == ["Lead Assigned"]
    assert service.timeline(session, ctx, profile, event="E3").entries[0].properties == {"i": 3}


def test_merge_moves_events_and_unmerge_moves_them_back(
    session: Session, ctx: Context, feed: Feed, clock: FixedClock
) -> None:
    """The segment 'viewed and bought' is entered only by the merged person, and left again
    when the steward splits them: both recorded with their cause."""
    rule = {"and": [{"event": "Viewed"}, {"event": "Bought"}]}
    both = segments.create_segment(session, ctx, SegmentIn(code="both", name="both", rule=rule))
    session.commit()
    feed({"type": "track", "anonymousId": "a1", "event": "Viewed", "properties": {}})
    feed({"type": "track", "userId": "u1", "event": "Bought", "properties": {}})
    assert len(session.scalars(select(ProfileRow.id)).all()) == 2
    feed({"type": "identify", "anonymousId": "a1", "userId": "u1", "traits": {}})
    survivor = only_profile(session)
    assert {r.profile_id for r in session.scalars(select(ProfileEventRow))} == {survivor}
    assert session.get(ProfileRow, survivor).events == 3
    history = session.execute(
        select(ChangeRow.profile_id, ChangeRow.kind, ChangeRow.cause).where(
            ChangeRow.segment_id == both.id
        )
    ).all()
    assert [(p, k) for p, k, _ in history] == [(survivor, "enter")]

    identity.unmerge(
        session,
        ctx,
        survivor,
        UnmergeIn(identifier=IdentifierRef(type="anonymous_id", value="a1"), reason="two people"),
    )
    session.commit()
    feed()  # no new event: the change feed alone carries the split
    owners = {r.name: r.profile_id for r in session.scalars(select(ProfileEventRow))}
    assert owners["Viewed"] != owners["Bought"]
    assert len(session.scalars(select(ProfileRow.id)).all()) == 2
    left = session.execute(
        select(ChangeRow.kind, ChangeRow.cause)
        .where(ChangeRow.segment_id == both.id, ChangeRow.profile_id == survivor)
        .order_by(ChangeRow.seq)
    ).all()
    assert [tuple(r) for r in left] == [("enter", "merge"), ("exit", "split")]


def test_business_unit_users_see_profiles_that_touched_their_unit(
    session: Session, ctx: Context, feed: Feed
) -> None:
    south, _ = make_source(session, ctx, bu="south", name="South web")
    feed({"type": "track", "anonymousId": "a1", "event": "North thing", "properties": {}})
    feed(
        {"type": "track", "anonymousId": "b1", "event": "South thing", "properties": {}}, into=south
    )
    units = {r.bu_id for r in session.scalars(select(ProfileUnitRow))}
    assert len(units) == 2
    north_profile = session.scalars(
        select(ProfileEventRow.profile_id).where(ProfileEventRow.name == "North thing")
    ).one()
    south_ctx = Context(
        bu_id=south.bu_id,
        user_id="someone",
        permissions=frozenset({"profiles.read"}),  # type: ignore[arg-type]
    )
    with pytest.raises(Exception, match="no profile"):
        service.timeline(session, south_ctx, north_profile)


def test_departments_mapping_is_validated_and_restamps(
    session: Session, ctx: Context, feed: Feed
) -> None:
    feed({"type": "track", "anonymousId": "a1", "event": "Webinar Joined", "properties": {}})
    doc = departments.default_document() | {
        "rules": [{"department": "service", "events": ["Webinar *"]}]
    }
    assert departments.set_document(session, ctx, doc) == 1
    assert session.scalars(select(ProfileEventRow.department)).one() == "service"
    with pytest.raises(Exception, match=r"rules\[0\]\.department"):
        departments.set_document(
            session, ctx, doc | {"rules": [{"department": "legal", "events": ["x"]}]}
        )


def test_profile_api_search_timeline_and_bad_cursor(
    client: TestClient, session: Session, feed: Feed
) -> None:
    feed({"type": "identify", "userId": "u9", "traits": {"phone": "138 0013 8000"}})
    found = client.get(
        "/api/v1/profiles", params={"type": "phone", "value": "+86 138-0013-8000"}, headers=ADMIN
    )
    assert found.status_code == 200, found.text
    profile = found.json()["id"]
    page = client.get(f"/api/v1/profiles/{profile}/timeline", headers=ADMIN)
    assert page.status_code == 200 and page.json()["items"][0]["name"] == "Identify"
    bad = client.get(f"/api/v1/profiles/{profile}/timeline?cursor=nonsense", headers=ADMIN)
    assert bad.status_code == 422 and "cursor" in bad.text
    naive = client.get(
        f"/api/v1/profiles/{profile}/timeline?since=2026-01-01T00:00:00", headers=ADMIN
    )
    assert naive.status_code == 422 and "since" in naive.text
    missing = client.get("/api/v1/profiles/01JNOPE0000000000000000000", headers=ADMIN)
    assert missing.status_code == 404
    view = client.get(f"/api/v1/profiles/{profile}", headers=ADMIN)
    assert view.status_code == 200, view.text
    assert {i["type"] for i in view.json()["identifiers"]} >= {"phone"}


def test_sweep_runs_once_per_interval_in_pieces(
    engine: Engine, session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    """A sweep is claimed by its first piece, then takes one time-relative segment per run,
    so the consumers' events wait for a piece, not the whole sweep."""
    recent = {"event": "Order Completed", "within": {"amount": 7, "unit": "days"}}
    segments.create_segment(session, ctx, SegmentIn(code="recent", name="近期 Recent", rule=recent))
    session.commit()
    feed({"type": "track", "userId": "u1", "event": "Order Completed", "properties": {}})
    sweep = Sweep(clock=clock)
    sessions = session_factory(engine)

    def ran() -> int | None:
        with sessions() as s:
            return s.scalar(
                select(consumers.CursorRow.processed).where(consumers.CursorRow.name == sweep.name)
            )

    pieces = [consumers.run_task(sessions, sweep, clock) for _ in range(4)]
    assert pieces == [1, 1, 0, 0]  # claim + traits/scores/tags, the segment, statistics; done
    assert ran() == 1
    clock.advance(timedelta(days=8))
    assert [consumers.run_task(sessions, sweep, clock) for _ in range(3)] == [1, 1, 0]
    assert ran() == 2
    causes = session.execute(select(ChangeRow.kind, ChangeRow.cause).order_by(ChangeRow.seq))
    assert [tuple(c) for c in causes] == [("enter", "event"), ("exit", "time")]


def test_cli_find_and_timeline(
    session: Session, feed: Feed, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed({"type": "identify", "userId": "u7", "traits": {"email": "Li.Na@QQ.com"}})
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    runner = CliRunner()
    found = runner.invoke(app, ["profiles", "find", "email", "li.na@qq.com", "--json"])
    assert found.exit_code == 0, found.output
    profile = orjson.loads(found.output)["id"]
    shown = runner.invoke(app, ["profiles", "timeline", profile], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "Identify" in shown.output
    missing = runner.invoke(app, ["profiles", "find", "email", "zhang.wei@qq.com"])
    assert missing.exit_code == 1
