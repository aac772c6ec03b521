"""Consent from tracking (a ``Consent Updated`` event, an identify trait ``consent``), over
HTTP and on the command line: what a caller sends, and what each kind of caller may see."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app as cli
from oneloop.collect import deadletters
from oneloop.collect.models import CursorRow, DeadLetterRow
from oneloop.collect.schemas import Source
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.governance import audit, consent, consent_views
from oneloop.governance.consent_schemas import ConsentIn
from oneloop.governance.consent_tracking import CONSUMER, ConsentConsumer
from oneloop.governance.models import ConsentHistoryRow
from oneloop.identity.resolver import ResolveConsumer
from tests.conftest import ADMIN
from tests.factories import make_source, make_user, signed_in
from tests.governance.conftest import lookup, person, ticked
from tests.pipeline import Feed

EVENT = "Consent Updated"
GIVEN = "given_at"


def history_rows(session: Session) -> list[ConsentHistoryRow]:
    return list(session.scalars(select(ConsentHistoryRow).order_by(ConsentHistoryRow.seq)))


def letters(session: Session) -> list[DeadLetterRow]:
    """In log order (their ids share the fixed clock's millisecond, so not by id)."""
    found = session.scalars(select(DeadLetterRow))
    return sorted(found, key=lambda d: int(orjson.loads(d.payload)["seq"]))


# --- tracking -------------------------------------------------------------------------------


def test_a_consent_updated_event_is_recorded_with_its_proof(
    session: Session, ctx: Context, clock: FixedClock, source: Source, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    properties = {
        "purpose": "marketing",
        "channel": "email",
        "status": "granted",
        "legal_basis": "consent",
        "proof": "form:newsletter-2026#v2",
    }
    feed({"type": "track", "userId": "u1", "event": EVENT, "properties": properties})
    assert consent.may_contact(session, profile, "marketing", "email")
    clock.advance(timedelta(hours=1))
    withdrawn = {"purpose": "marketing", "channel": "email", "status": "withdrawn"}
    feed({"type": "track", "userId": "u1", "event": EVENT, "properties": withdrawn})
    assert not consent.may_contact(session, profile, "marketing", "email")
    first, second = history_rows(session)
    assert (first.source, first.bu_id, first.message_id) == (source.id, source.bu_id, "m1")
    assert first.proof == "form:newsletter-2026#v2" and first.event_seq is not None
    assert first.recorded_by == "system" and first.profile_id == profile
    assert second.given_at == clock.now() and second.legal_basis == "consent"
    # one audit entry per batch and unit, by the worker, with counts and no personal data
    entries = audit.list_entries(session, ctx, action="consent.changed").items
    assert [e.origin for e in entries] == ["worker", "worker"]
    assert entries[0].detail == {
        "source": "tracking",
        "changes": 1,
        "first_seq": second.event_seq,
        "last_seq": second.event_seq,
        "marketing.email.withdrawn": 1,
    }
    assert entries[0].bu_id == source.bu_id and audit.verify(session).is_intact


def test_an_identify_consent_trait_records_each_purpose_and_channel_once(
    session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    traits = {"consent": {"marketing": {"email": True, "sms": False}, "analytics": True}}
    profile = person(feed, session, ctx, **traits)
    assert consent.may_contact(session, profile, "marketing", "email")
    assert not consent.may_contact(session, profile, "marketing", "sms")
    assert consent.may_contact(session, profile, "analytics", "any")
    assert {(r.purpose, r.channel, r.status) for r in history_rows(session)} == {
        ("marketing", "email", "granted"),
        ("marketing", "sms", "withdrawn"),
        ("analytics", "any", "granted"),
    }
    # SDKs send the traits again with every identify: the same decisions are no new ones
    clock.advance(timedelta(minutes=5))
    feed({"type": "identify", "userId": "u1", "traits": traits})
    assert len(history_rows(session)) == 3
    clock.advance(timedelta(minutes=5))
    feed({"type": "identify", "userId": "u1", "traits": {"consent": {"marketing": {"sms": True}}}})
    assert len(history_rows(session)) == 4
    assert consent.may_contact(session, profile, "marketing", "sms")
    denied = {"consent": {"third_party_sharing": "denied"}}
    feed({"type": "identify", "userId": "u1", "traits": denied})
    items = consent_views.current_state(session, ctx, profile).items
    state = {(i.purpose, i.channel): i for i in items}
    assert state[("third_party_sharing", "any")].status == "denied"
    assert not state[("third_party_sharing", "any")].is_default


def test_a_replayed_or_resent_event_adds_no_history(
    engine: Engine, session: Session, ctx: Context, source: Source, clock: FixedClock, feed: Feed
) -> None:
    person(feed, session, ctx)
    call = {
        "type": "track",
        "userId": "u1",
        "event": EVENT,
        "properties": {"purpose": "marketing", "channel": "sms", "status": "granted"},
    }
    consumers_ = [ResolveConsumer(), ConsentConsumer(clock)]
    ticked(engine, session, source, clock, call, consumers_=consumers_, prefix="same")
    ticked(engine, session, source, clock, call, consumers_=consumers_, prefix="same")
    assert len(history_rows(session)) == 1  # the log kept the message once
    # the consumer reads the whole log again (a reset cursor, a restored backup)
    session.execute(update(CursorRow).where(CursorRow.name == CONSUMER).values(tx=0, seq=0))
    session.commit()
    ticked(engine, session, source, clock, consumers_=consumers_)
    assert len(history_rows(session)) == 1


def test_a_late_tracked_decision_does_not_override_a_newer_one(
    session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    no = {"purpose": "marketing", "channel": "email", "status": "withdrawn"}
    feed({"type": "track", "userId": "u1", "event": EVENT, "properties": no})
    yes = {"purpose": "marketing", "channel": "email", "status": "granted"}
    earlier = (clock.now() - timedelta(days=2)).isoformat()
    feed({"type": "track", "userId": "u1", "event": EVENT, "properties": yes, "timestamp": earlier})
    assert not consent.may_contact(session, profile, "marketing", "email")
    items = consent_views.history(session, ctx, profile).items
    assert [(r.status, r.is_current) for r in items] == [("withdrawn", True), ("granted", False)]
    # a client clock in the future cannot pin a decision: given_at is at most its arrival
    ahead = (clock.now() + timedelta(days=30)).isoformat()
    feed({"type": "track", "userId": "u1", "event": EVENT, "properties": yes, "timestamp": ahead})
    assert max(r.given_at for r in history_rows(session)) == clock.now()


def test_bad_tracked_consent_is_dead_lettered_and_its_good_parts_kept(
    session: Session, ctx: Context, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    bad = {"purpose": "spam", "channel": "email", "status": "maybe"}
    feed({"type": "track", "userId": "u1", "event": EVENT, "properties": bad})
    mixed = {"marketing": {"email": True, "fax": True}, "nope": True, "analytics": "perhaps"}
    feed({"type": "identify", "userId": "u1", "traits": {"consent": mixed}})
    wrong_channel = {"purpose": "analytics", "channel": "sms", "status": "granted"}
    feed({"type": "track", "userId": "u1", "event": EVENT, "properties": wrong_channel})
    assert [(r.purpose, r.channel) for r in history_rows(session)] == [("marketing", "email")]
    found = letters(session)
    assert [(d.origin, d.reason) for d in found] == [("consent", "invalid_consent")] * 3
    assert [e["path"] for e in found[0].errors] == ["properties.purpose", "properties.status"]
    assert [e["path"] for e in found[1].errors] == [
        "traits.consent.analytics",
        "traits.consent.marketing.fax",
        "traits.consent.nope",
    ]
    assert [e["path"] for e in found[2].errors] == ["properties.channel"]
    assert orjson.loads(found[0].payload)["consent"] == bad
    # the consumer moved on: the events are in the log and on the timeline
    cursor = session.get(CursorRow, CONSUMER)
    assert cursor is not None and cursor.failed == 0
    assert consent.may_contact(session, profile, "marketing", "email")
    # replaying cannot make them valid; they stay waiting and nothing is recorded twice
    report = deadletters.replay(session, ctx, reason="invalid_consent")
    session.commit()
    assert (report.selected, report.still_refused, report.replayed) == (3, 3, 0)
    assert len(history_rows(session)) == 1
    assert {d.status for d in letters(session)} == {"waiting"}


def test_consent_of_an_event_that_belongs_to_nobody_waits_as_a_dead_letter(
    session: Session, ctx: Context, feed: Feed
) -> None:
    feed(
        {"type": "identify", "userId": "u1", "anonymousId": "kiosk"},
        {"type": "identify", "userId": "u2", "anonymousId": "kiosk"},
    )
    yes = {"purpose": "marketing", "status": "granted"}
    feed({"type": "track", "anonymousId": "kiosk", "event": EVENT, "properties": yes})
    assert history_rows(session) == []
    [letter] = letters(session)
    assert (letter.origin, letter.reason) == ("consent", "consent_no_profile")


# --- HTTP -----------------------------------------------------------------------------------


def url(profile: str, tail: str = "consent") -> str:
    return f"/api/v1/profiles/{profile}/{tail}"


def test_record_check_and_read_consent_over_http(
    client: TestClient, session: Session, ctx: Context, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    body = {"purpose": "marketing", "channel": "email", "status": "granted", "proof": "form 7"}
    made = client.post(url(profile), json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert made.json()["is_current"] and made.json()["source"] == "api"
    email = {"purpose": "marketing", "channel": "email"}
    check = client.get(url(profile, "may-contact"), params=email, headers=ADMIN)
    assert check.status_code == 200 and check.json()["allowed"] is True
    no = {**body, "status": "withdrawn", "proof": None}
    assert client.post(url(profile), json=no, headers=ADMIN).status_code == 201
    check = client.get(url(profile, "may-contact"), params=email, headers=ADMIN).json()
    assert check["allowed"] is False and check["decided_by"] == "channel"
    assert check["record"]["status"] == "withdrawn"
    state = client.get(url(profile), headers=ADMIN).json()
    items = {(i["purpose"], i["channel"]): i for i in state["items"]}
    assert items[("marketing", "email")]["is_default"] is False
    assert items[("marketing", "sms")]["is_default"] is True
    assert items[("marketing", "sms")]["allowed"] is False
    page = client.get(url(profile, "consent/history"), params={"limit": 1}, headers=ADMIN).json()
    assert [r["status"] for r in page["items"]] == ["withdrawn"] and page["next_cursor"]
    rest = client.get(
        url(profile, "consent/history"), params={"cursor": page["next_cursor"]}, headers=ADMIN
    ).json()
    assert [r["status"] for r in rest["items"]] == ["granted"]
    # audited: what changed and from where, never who the person is
    entries = audit.list_entries(session, ctx, action="consent.changed").items
    assert [e.detail for e in reversed(entries)] == [
        {
            "purpose": "marketing",
            "channel": "email",
            "status": status,
            "legal_basis": "consent",
            "source": "api",
            "record": seq,
        }
        for status, seq in (("granted", 1), ("withdrawn", 2))
    ]
    assert {(e.object_type, e.object_id, e.outcome) for e in entries} == {
        ("profile", profile, "ok")
    }


def test_a_retry_with_the_same_idempotency_key_records_nothing_new(
    client: TestClient, session: Session, ctx: Context, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    body = {"purpose": "marketing", "channel": "sms", "status": "withdrawn"}
    headers = {**ADMIN, "Idempotency-Key": "desk-call-1029"}
    first = client.post(url(profile), json=body, headers=headers)
    again = client.post(url(profile), json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["seq"] == again.json()["seq"]
    assert len(history_rows(session)) == 1
    assert len(audit.list_entries(session, ctx, action="consent.changed").items) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purpose": "spam", "status": "granted"}, "purpose"),
        ({"purpose": "marketing", "channel": "fax", "status": "granted"}, "channel"),
        ({"purpose": "marketing", "status": "maybe"}, "status"),
        ({"purpose": "marketing", "status": "granted", "legal_basis": "whim"}, "legal_basis"),
        ({"purpose": "marketing"}, "status"),
        ({"purpose": "analytics", "channel": "email", "status": "granted"}, "channel"),
        ({"purpose": "marketing", "status": "granted", "given_at": "2099-01-01T00:00Z"}, GIVEN),
        ({"purpose": "marketing", "status": "granted", "given_at": "2026-01-01T00:00"}, GIVEN),
        ({"purpose": "marketing", "status": "granted", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: TestClient, session: Session, ctx: Context, feed: Feed, body: dict[str, str], field: str
) -> None:
    profile = person(feed, session, ctx)
    answer = client.post(url(profile), json=body, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["type"] == "/problems/validation-failed"
    assert any(e["loc"][-1] == field for e in problem["errors"]), problem["errors"]
    assert history_rows(session) == []


def test_bad_query_parameters_are_a_422(
    client: TestClient, session: Session, ctx: Context, feed: Feed
) -> None:
    profile = person(feed, session, ctx)
    for params, field in (
        ({"purpose": "spam"}, "purpose"),
        ({"purpose": "marketing", "channel": "fax"}, "channel"),
        ({}, "purpose"),
    ):
        answer = client.get(url(profile, "may-contact"), params=params, headers=ADMIN)
        assert answer.status_code == 422
        assert any(e["loc"][-1] == field for e in answer.json()["errors"])
    bad_cursor = client.get(url(profile, "consent/history"), params={"cursor": "x"}, headers=ADMIN)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["loc"] == ["query", "cursor"]


@pytest.fixture
def north_profile(session: Session, ctx: Context, feed: Feed) -> str:
    profile = person(feed, session, ctx)
    consent.record_consent(
        session, ctx, profile, ConsentIn(purpose="marketing", channel="email", status="granted")
    )
    session.commit()
    return profile


def test_another_units_profile_is_not_found_on_every_consent_route(
    app: FastAPI, session: Session, ctx: Context, north_profile: str
) -> None:
    make_user(session, ctx, "he.li@galaxy.cn", bu="south", role="compliance_officer")
    south = signed_in(app, "he.li@galaxy.cn")
    answers = [
        south.get(url(north_profile)),
        south.get(url(north_profile, "consent/history")),
        south.post(url(north_profile), json={"purpose": "marketing", "status": "withdrawn"}),
        south.get(url(north_profile, "may-contact"), params={"purpose": "marketing"}),
        south.get("/api/v1/consent/summary", params={"bu": "north"}),
    ]
    assert [a.status_code for a in answers] == [404] * 5
    assert all(a.json()["type"] == "/problems/not-found" for a in answers)
    assert len(history_rows(session)) == 1
    # their own unit's summary counts nobody: north's person never touched south
    own = south.get("/api/v1/consent/summary").json()
    assert own["profiles"] == 0 and all(i["granted"] == 0 for i in own["items"])


def test_reading_without_manage_is_forbidden_to_record(
    app: FastAPI, session: Session, ctx: Context, north_profile: str
) -> None:
    make_user(session, ctx, "mei@galaxy.cn", bu="north", role="marketer")
    marketer = signed_in(app, "mei@galaxy.cn")
    assert marketer.get(url(north_profile)).status_code == 200
    assert marketer.get(url(north_profile, "consent/history")).status_code == 200
    tried = marketer.post(url(north_profile), json={"purpose": "marketing", "status": "withdrawn"})
    assert tried.status_code == 403 and tried.json()["permission"] == "consent.manage"
    assert len(history_rows(session)) == 1


def test_a_record_made_by_another_unit_shows_its_decision_not_its_origin(
    app: FastAPI, session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    south_source, _ = make_source(session, ctx, bu="south", name="售后 Service")
    feed({"type": "identify", "userId": "n1", "traits": {"email": "li.na@qq.com"}})
    same_email = {"email": "li.na@qq.com"}
    feed({"type": "identify", "userId": "s1", "traits": same_email}, into=south_source)
    profile = lookup(session, ctx, "email", "li.na@qq.com")
    no = {"purpose": "marketing", "channel": "sms", "status": "withdrawn", "proof": "sms STOP"}
    feed({"type": "track", "userId": "n1", "event": EVENT, "properties": no})
    make_user(session, ctx, "he.li@galaxy.cn", bu="south", role="service_agent")
    south = signed_in(app, "he.li@galaxy.cn")
    [record] = south.get(url(profile, "consent/history")).json()["items"]
    assert record["status"] == "withdrawn" and record["recorded_elsewhere"] is True
    assert record["source"] is record["proof"] is record["message_id"] is record["bu_id"] is None
    sms = {"purpose": "marketing", "channel": "sms"}
    check = south.get(url(profile, "may-contact"), params=sms)
    assert check.json()["allowed"] is False and check.json()["record"]["proof"] is None
    # what south records is south's own: shown whole
    yes = {"purpose": "marketing", "channel": "email", "status": "granted", "proof": "desk"}
    assert south.post(url(profile), json=yes).status_code == 201
    mine = south.get(url(profile, "consent/history")).json()["items"][0]
    assert mine["proof"] == "desk" and mine["recorded_elsewhere"] is False


def test_the_summary_counts_opt_in_over_the_profiles_one_may_see(
    client: TestClient, session: Session, ctx: Context, clock: FixedClock, feed: Feed
) -> None:
    a = person(feed, session, ctx, user="a", phone="13800138001")
    b = person(feed, session, ctx, user="b", phone="13800138002")
    person(feed, session, ctx, user="c", phone="13800138003")
    for profile, channel, status in (
        (a, "any", "granted"),
        (b, "email", "granted"),
        (b, "sms", "denied"),
    ):
        consent.record_consent(
            session, ctx, profile, ConsentIn(purpose="marketing", channel=channel, status=status)
        )
    clock.advance(timedelta(minutes=1))
    consent.record_consent(
        session, ctx, a, ConsentIn(purpose="marketing", channel="sms", status="withdrawn")
    )
    session.commit()
    answer = client.get("/api/v1/consent/summary", params={"bu": "north"}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["profiles"] == 3
    items = {(i["purpose"], i["channel"]): i for i in body["items"]}
    email, sms, whole = (
        items[("marketing", "email")],
        items[("marketing", "sms")],
        items[("marketing", "any")],
    )
    assert (email["granted"], email["allowed"]) == (1, 2)  # b's own yes, a's yes to all
    assert (sms["withdrawn"], sms["denied"], sms["allowed"]) == (1, 1, 0)
    assert (whole["granted"], whole["allowed"], whole["opt_in_rate"]) == (1, 1, round(1 / 3, 4))
    assert items[("marketing", "wechat")]["allowed"] == 1
    assert items[("analytics", "any")]["allowed"] == 0
    everyone = client.get("/api/v1/consent/summary", headers=ADMIN).json()
    assert everyone["profiles"] == 3 and everyone["bu"] is None


def test_the_vocabulary_names_everything_in_chinese_and_english(client: TestClient) -> None:
    body = client.get("/api/v1/consent/vocabulary", headers=ADMIN).json()
    purposes = {p["code"]: p for p in body["purposes"]}
    assert purposes["marketing"]["name_zh"] == "营销" and purposes["analytics"]["channels"] == [
        "any"
    ]
    assert purposes["cross_border_transfer"]["name_zh"] == "跨境传输"
    assert {c["code"]: c["name_zh"] for c in body["channels"]}["wechat"] == "微信"
    assert all(item["name_zh"] and item["name_en"] for item in body["legal_bases"])


# --- the command line -----------------------------------------------------------------------


def test_cli_set_show_check_and_history(
    session: Session, ctx: Context, feed: Feed, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = person(feed, session, ctx)
    session.commit()
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    runner = CliRunner()
    wide = {"COLUMNS": "200"}
    made = runner.invoke(
        cli,
        [
            "consent", "set", profile, "--purpose", "marketing", "--channel", "email",
            "--status", "withdrawn", "--legal-basis", "consent", "--proof", "hotline T-1029",
        ],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "withdrawn for marketing (email)" in made.output
    check = runner.invoke(
        cli, ["consent", "check", profile, "--purpose", "marketing", "--channel", "email"]
    )
    assert check.exit_code == 0 and check.output.startswith("no: withdrawn")
    other = runner.invoke(cli, ["consent", "check", profile, "--purpose", "analytics"])
    assert other.exit_code == 0 and other.output.startswith("no: nothing recorded")
    shown = runner.invoke(cli, ["consent", "show", profile, "--json"])
    assert shown.exit_code == 0, shown.output
    items = orjson.loads(shown.output)["items"]
    assert [i["status"] for i in items if i["channel"] == "email"] == ["withdrawn"]
    listed = runner.invoke(cli, ["consent", "history", profile], env=wide)
    assert listed.exit_code == 0 and "hotline T-1029" in listed.output
    table = runner.invoke(cli, ["consent", "show", profile], env=wide)
    assert table.exit_code == 0 and "营销 Marketing" in table.output
    bad = runner.invoke(
        cli, ["consent", "set", profile, "--purpose", "spam", "--status", "granted"]
    )
    assert bad.exit_code == 1 and "purpose" in bad.output
    missing = runner.invoke(cli, ["consent", "show", "01JNOBODY00000000000000000"])
    assert missing.exit_code == 1
    session.expire_all()
    [entry] = audit.list_entries(session, ctx, action="consent.changed").items
    assert entry.origin == "cli" and entry.detail is not None
    assert entry.detail["source"] == "cli"
    count = session.scalar(select(func.count()).select_from(ConsentHistoryRow))
    assert count == 1


def test_every_consent_command_has_an_example() -> None:
    for command in ("show", "history", "set", "check", "summary"):
        answer = CliRunner().invoke(cli, ["consent", command, "--help"], env={"COLUMNS": "200"})
        assert answer.exit_code == 0 and "Example: oneloop consent" in answer.output
