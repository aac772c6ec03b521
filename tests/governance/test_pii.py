"""Personal data leaving the service layer (issue 7, part 3): masked for every role without
``pii:read`` — the 360 view, identity, search, timeline, segment members and export —, shown
and audited once per call with it, and sensitive values never stored in clear."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app as cli
from oneloop.collect.ingest import ingest
from oneloop.collect.models import DeadLetterRow, EventRow
from oneloop.collect.schemas import Source
from oneloop.collect.spec import parse_batch
from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.context import Context
from oneloop.core.db import create_db_engine, session_factory
from oneloop.core.ids import BusinessUnitId, UserId
from oneloop.governance import pii
from oneloop.governance.models import AuditRow
from oneloop.governance.roles import BUILTIN_ROLES, PII_READ, expand
from oneloop.migrations import target_metadata
from oneloop.profiles import service as profiles
from oneloop.profiles import traits
from oneloop.profiles.models import TraitRow
from oneloop.segments import service as segments
from oneloop.segments.schemas import SegmentIn
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.factories import make_source, make_user, signed_in
from tests.governance.conftest import lookup
from tests.pipeline import Feed

NAME = "张伟"
PHONE = "13800138000"
EMAIL = "zhang.wei@galaxy-mail.cn"  # example.com is a blocked placeholder
OPENID = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
APPID = "wx8f3a2b1c4d5e6f70"
ID_CARD = "110105199003071234"
CLEAR = (NAME, PHONE, EMAIL, OPENID, ID_CARD)
MASKED_PHONE = "138****8000"
MASKED_ID_CARD = "110105********1234"
WITHOUT_PII_READ = [
    code for code, role in BUILTIN_ROLES.items() if PII_READ not in expand(role.permissions)
]


@pytest.fixture
def settings(db_url: str) -> Settings:
    """As the suite's, with the key sensitive values are hashed with."""
    return Settings(
        database_url=db_url,
        run_consumers=False,
        admin_token=ADMIN_TOKEN,
        pii_hash_key=SecretStr("test-pii-hash-key"),
    )


@dataclass
class Person:
    profile_id: str
    segment_id: str


@pytest.fixture
def person(feed: Feed, session: Session, ctx: Context) -> Person:
    """张伟 in north: an identify call with his name, phone, e-mail, birthday and id card, a
    WeChat follow with his openid in its properties, a page view; and a segment he is in."""
    feed(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {
                "name": NAME,
                "phone": PHONE,
                "email": EMAIL,
                "city": "上海",
                "birthday": "1990-03-07",
                "id_card": ID_CARD,
            },
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "WeChat Followed",
            "properties": {"wechat_openid": OPENID, "scene": "qr", "email": EMAIL},
            "context": {"traits": {"wechat_openid": OPENID, "wechat_appid": APPID}},
        },
        {"type": "page", "userId": "u1", "name": "Pricing", "properties": {"path": "/pricing"}},
    )
    profile_id = lookup(session, ctx, "user_id", "north:u1")
    picked = {"name": "last_openid", "event": "WeChat Followed", "aggregate": "last"}
    made_trait = traits.create_trait(session, ctx, {**picked, "property": "wechat_openid"}, "north")
    traits.recompute_trait(session, ctx, made_trait.id)
    rule = {"trait": "city", "op": "eq", "value": "上海"}
    made = segments.create_segment(
        session, ctx, SegmentIn(code="sh", name="上海", rule=rule, bu="north")
    )
    session.commit()
    return Person(profile_id, made.id)


def _answers(client: TestClient, person: Person, headers: dict[str, str] | None = None) -> dict:
    pid, sid = person.profile_id, person.segment_id
    fields = {"fields": "name,phone,email,birthday,id_card"}
    return {
        "360": client.get(f"/api/v1/profiles/{pid}", headers=headers),
        "identity": client.get(f"/api/v1/profiles/{pid}/identity", headers=headers),
        "golden": client.get(f"/api/v1/profiles/{pid}/golden-record", headers=headers),
        "traits": client.get(f"/api/v1/profiles/{pid}/traits", headers=headers),
        "search": client.get(
            "/api/v1/profiles", params={"type": "phone", "value": PHONE}, headers=headers
        ),
        "timeline": client.get(f"/api/v1/profiles/{pid}/timeline", headers=headers),
        "members": client.get(f"/api/v1/segments/{sid}/members", params=fields, headers=headers),
        "export": client.get(f"/api/v1/segments/{sid}/export.csv", params=fields, headers=headers),
    }


def _pii_reads(session: Session) -> list[AuditRow]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditRow).where(AuditRow.action == "pii.read").order_by(AuditRow.seq)
        )
    )


# What each answer needs besides pii:read; a role without it gets a 403 and no data at all.
NEEDS = {
    "360": {"profiles.read", "identity.read"},
    "identity": {"identity.read"},
    "golden": {"identity.read"},
    "traits": {"profiles.read"},
    "search": {"profiles.read", "identity.read"},
    "timeline": {"profiles.read"},
    "members": {"segments.read"},
    "export": {"segments.export"},
}


def test_the_built_in_roles_without_pii_read_are_the_marketer_and_the_analyst() -> None:
    assert sorted(WITHOUT_PII_READ) == ["analyst", "marketer"]


@pytest.mark.parametrize("role", WITHOUT_PII_READ)
def test_a_role_without_pii_read_sees_masked_values_everywhere(
    app: FastAPI, session: Session, ctx: Context, person: Person, role: str
) -> None:
    make_user(session, ctx, f"{role}@north.example.com", "north", role)
    answers = _answers(signed_in(app, f"{role}@north.example.com"), person)
    held = expand(BUILTIN_ROLES[role].permissions)
    for what, answer in answers.items():
        if not NEEDS[what] <= held:
            assert answer.status_code == 403, (what, answer.text)
            continue
        assert answer.status_code == 200, (what, answer.text)
        body = answer.text.lower()
        for clear in CLEAR:
            assert clear.lower() not in body, (what, clear)
    assert MASKED_PHONE in answers["360"].text and "z***@galaxy-mail.cn" in answers["360"].text
    assert "张*" in answers["golden"].text and "1990-**-**" in answers["golden"].text
    assert MASKED_ID_CARD in answers["golden"].text
    assert f"{APPID}:oGZU****VJJE" in answers["identity"].text
    computed = {t["name"]: t["value"] for t in answers["traits"].json() if t["kind"] == "computed"}
    assert computed == {"last_openid": "oGZU****VJJE"}  # picks a personal property's values
    assert answers["search"].json()["identifier"] == {"type": "phone", "value": MASKED_PHONE}
    assert answers["search"].json()["id"] == person.profile_id
    timeline = {e["name"]: e["properties"] for e in answers["timeline"].json()["items"]}
    assert timeline["WeChat Followed"]["wechat_openid"] == "oGZU****VJJE"
    assert timeline["WeChat Followed"]["scene"] == "qr"  # not personal: as sent
    assert timeline["Page Viewed"]["name"] == "Pricing"  # a page's name is no person's
    member = answers["members"].json()["items"][0]
    assert member["fields"]["phone"] == MASKED_PHONE and member["fields"]["name"] == "张*"
    if answers["export"].status_code == 200:
        rows = list(csv.reader(io.StringIO(answers["export"].text)))
        header = ["profile_id", "entered_at", "name", "phone", "email", "birthday", "id_card"]
        assert rows[0] == header
        masked = ["张*", MASKED_PHONE, "z***@galaxy-mail.cn", "1990-**-**", MASKED_ID_CARD]
        assert rows[1][2:] == masked
    assert _pii_reads(session) == []


def test_search_by_a_full_phone_number_finds_the_person_for_a_role_without_pii_read(
    app: FastAPI, session: Session, ctx: Context, person: Person
) -> None:
    make_user(session, ctx, "mia@north.example.com", "north", "marketer")
    client = signed_in(app, "mia@north.example.com")
    for written in ("138 0013 8000", "+86 138-0013-8000", PHONE):
        found = client.get("/api/v1/profiles", params={"type": "phone", "value": written})
        assert found.status_code == 200 and found.json()["id"] == person.profile_id
        assert PHONE not in found.text
    lookup_ = client.get("/api/v1/identity/lookup", params={"type": "phone", "value": PHONE})
    assert lookup_.json() == {"profile_id": person.profile_id}


def test_pii_read_shows_clear_values_and_audits_each_call_once_without_the_values(
    client: TestClient, session: Session, person: Person
) -> None:
    answers = _answers(client, person, ADMIN)
    for what, answer in answers.items():
        assert answer.status_code == 200, (what, answer.text)
        assert ID_CARD not in answer.text, what  # sensitive: never in full, even here
    assert f"+86{PHONE}" in answers["identity"].text and EMAIL in answers["identity"].text
    assert NAME in answers["golden"].text and MASKED_ID_CARD in answers["golden"].text
    assert answers["search"].json()["identifier"]["value"] == f"+86{PHONE}"
    assert OPENID in answers["timeline"].text
    assert answers["members"].json()["items"][0]["fields"]["phone"] == PHONE
    assert list(csv.reader(io.StringIO(answers["export"].text)))[1][2:5] == [NAME, PHONE, EMAIL]

    reads = _pii_reads(session)
    by_call = [(r.object_type, r.object_id) for r in reads]
    pid, sid = person.profile_id, person.segment_id
    assert by_call == [("profile", pid)] * 6 + [("segment", sid)] * 2  # one per call
    full = reads[0]
    assert full.actor == "system" and full.origin and full.origin.startswith("api")
    assert {"name", "phone", "email", "birth_date", "wechat_openid"} <= set(full.detail["fields"])
    assert "id_card" not in full.detail["fields"]  # shown masked, so not read
    assert reads[-1].detail == {"fields": ["birth_date", "email", "name", "phone"], "rows": 1}
    for read in reads:
        text = json.dumps(read.detail, ensure_ascii=False)
        assert not any(clear in text for clear in CLEAR)


@pytest.mark.parametrize("role", ["compliance_officer", "sales_manager"])
def test_a_unit_user_with_pii_read_sees_clear_values_and_is_audited(
    app: FastAPI, session: Session, ctx: Context, person: Person, role: str
) -> None:
    user = make_user(session, ctx, f"{role}@north.example.com", "north", role)
    client = signed_in(app, f"{role}@north.example.com")
    if role == "compliance_officer":
        answer = client.get(f"/api/v1/profiles/{person.profile_id}")
        object_type = "profile"
    else:
        answer = client.get(
            f"/api/v1/segments/{person.segment_id}/members", params={"fields": "phone"}
        )
        object_type = "segment"
    assert answer.status_code == 200, answer.text
    assert PHONE in answer.text
    [read] = _pii_reads(session)
    assert (read.actor, read.object_type, read.outcome) == (user.id, object_type, "ok")


def test_nothing_personal_shown_means_nothing_audited(
    client: TestClient, session: Session, person: Person
) -> None:
    members = client.get(f"/api/v1/segments/{person.segment_id}/members", headers=ADMIN)
    assert members.status_code == 200 and members.json()["items"][0]["fields"] == {}
    city = client.get(
        f"/api/v1/segments/{person.segment_id}/members", params={"fields": "city"}, headers=ADMIN
    )
    assert city.json()["items"][0]["fields"] == {"city": "上海"}  # internal: not personal
    assert _pii_reads(session) == []


def test_bad_member_fields_are_refused_naming_them(client: TestClient, person: Person) -> None:
    answer = client.get(
        f"/api/v1/segments/{person.segment_id}/members",
        params={"fields": "name,golden:phone"},
        headers=ADMIN,
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["path"] == "fields[1]"


def test_service_masks_for_a_context_without_pii_read(
    session: Session, clock: FixedClock, person: Person
) -> None:
    north = profiles.summary(session, _ctx(clock, "*"), person.profile_id).business_units[0]
    reader = _ctx(clock, "profiles.read", "identity.read", bu=north)
    shown = profiles.get(session, reader, person.profile_id)
    assert [i.value for i in shown.identifiers if i.type == "phone"] == [MASKED_PHONE]
    assert shown.golden.fields["email"].value == "z***@galaxy-mail.cn"
    assert all(o.value == "z***@galaxy-mail.cn" for o in shown.golden.fields["email"].history)
    golden_traits = {t.name: t.value for t in shown.traits if t.kind == "golden"}
    assert golden_traits["phone"] == MASKED_PHONE and golden_traits["city"] == "上海"
    allowed = profiles.get(
        session,
        _ctx(clock, "profiles.read", "identity.read", PII_READ, bu=north),
        person.profile_id,
    )
    assert allowed.golden.fields["phone"].value == PHONE


def _ctx(clock: FixedClock, *permissions: str, bu: str | None = None) -> Context:
    return Context(
        bu_id=BusinessUnitId(bu) if bu else None,
        user_id=UserId("u-test"),
        permissions=frozenset(permissions),
        is_group_wide=bu is None,
        clock=clock,
    )


def test_cli_reads_are_unmasked_and_audited(
    db_url: str, session: Session, person: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    runner = CliRunner()
    shown = runner.invoke(cli, ["profiles", "show", person.profile_id, "--json"])
    assert shown.exit_code == 0, shown.output
    assert PHONE in shown.stdout and ID_CARD not in shown.stdout
    explained = runner.invoke(cli, ["identity", "explain", person.profile_id, "--json"])
    assert explained.exit_code == 0 and EMAIL in explained.stdout
    reads = _pii_reads(session)
    assert [(r.actor, r.origin, r.object_id) for r in reads] == [
        ("system", "cli", person.profile_id)
    ] * 2


# --- sensitive values at rest ----------------------------------------------------------------


def _clear_copies(session: Session, needle: str) -> list[str]:
    """Every column of every table that holds ``needle``, as text or inside JSON."""
    found = []
    for table in target_metadata().sorted_tables:
        for row in session.execute(select(table)).mappings():
            for column, value in row.items():
                text = (
                    value
                    if isinstance(value, str)
                    else json.dumps(value, default=str, ensure_ascii=False)
                )
                if needle in text:
                    found.append(f"{table.name}.{column}")
    return found


def test_an_id_card_number_is_nowhere_in_the_database_in_clear(
    feed: Feed, session: Session, ctx: Context, person: Person, client: TestClient
) -> None:
    crm, _ = make_source(session, ctx, bu="south", name="CRM")
    feed(
        {"type": "identify", "userId": "c9", "traits": {"id_card": "110105 19900307 1234"}},
        into=crm,
    )
    feed({"type": "identify", "traits": {"id_card": ID_CARD}})  # no id: a dead letter
    session.expire_all()
    assert session.scalar(select(DeadLetterRow.id)) is not None
    assert _clear_copies(session, ID_CARD) == []
    stored = {
        e.traits["id_card"]
        for e in session.scalars(select(EventRow).where(EventRow.type == "identify"))
        if e.traits and "id_card" in e.traits
    }
    assert len(stored) == 1  # the same card, written two ways: one hash
    [value] = stored
    assert value.startswith("hmac-sha256:") and value.endswith(f":{MASKED_ID_CARD}")
    golden = session.get(TraitRow, (person.profile_id, "golden:id_card"))
    assert golden is not None and golden.value == value
    letter = session.scalar(select(DeadLetterRow.payload))
    assert letter is not None and MASKED_ID_CARD in letter
    shown = client.get(f"/api/v1/profiles/{person.profile_id}/golden-record", headers=ADMIN)
    assert shown.json()["fields"]["id_card"]["value"] == MASKED_ID_CARD


def test_without_a_hash_key_only_the_masked_form_is_stored(
    db_url: str, engine: Engine, source: Source, clock: FixedClock
) -> None:
    unkeyed = create_db_engine(Settings(database_url=db_url))
    try:
        with session_factory(unkeyed)() as session:
            assert pii.hash_key(session) is None
            messages, _ = parse_batch(
                {"batch": [{"type": "identify", "userId": "u2", "traits": {"id_card": ID_CARD}}]},
                clock.now(),
            )
            ingest(session, source, messages, received_at=clock.now(), origin="api", ref="t")
            session.commit()
            stored = session.scalar(select(EventRow.traits))
        assert stored == {"id_card": f"masked::{MASKED_ID_CARD}"}
    finally:
        unkeyed.dispose()


def test_rejected_identifier_examples_are_masked_too(
    app: FastAPI, client: TestClient, feed: Feed, session: Session, ctx: Context
) -> None:
    feed({"type": "identify", "userId": "u3", "traits": {"email": "li.lei@@corp.cn"}})
    make_user(session, ctx, "mia@north.example.com", "north", "marketer")
    masked = signed_in(app, "mia@north.example.com").get("/api/v1/identity/rejections")
    assert masked.status_code == 200 and "li.lei" not in masked.text
    assert [r["example"] for r in masked.json()["items"]] == ["l***@corp.cn"]
    shown = client.get("/api/v1/identity/rejections", headers=ADMIN)
    assert [r["example"] for r in shown.json()["items"]] == ["li.lei@@corp.cn"]
    [read] = _pii_reads(session)
    assert (read.object_type, read.detail) == (
        "identity_rejections",
        {"fields": ["email"], "rows": 1},
    )
