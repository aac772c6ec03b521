from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.collect import service
from oneloop.collect.models import WriteKeyRow
from oneloop.collect.schemas import SourceIn
from oneloop.core.context import Context
from oneloop.core.errors import Conflict, NotFound, Unauthenticated
from oneloop.core.ids import BusinessUnitId, UserId
from oneloop.governance import audit
from oneloop.governance.schemas import BusinessUnit
from tests.factories import make_group


def _bu_ctx(unit: BusinessUnit) -> Context:
    return Context(
        bu_id=BusinessUnitId(unit.id),
        user_id=UserId("admin-" + unit.code),
        permissions=frozenset(
            {"collect.source.read", "collect.source.manage", "governance.bu.read"}
        ),
    )


def test_a_new_key_authenticates_and_is_stored_only_hashed(session: Session, ctx: Context) -> None:
    _, north, _ = make_group(session, ctx)
    new = service.create_source(session, ctx, SourceIn(bu="north", name="官网 Web"))
    session.commit()
    assert new.write_key.startswith("olk_") and len(new.write_key) > 30
    assert service.authenticate(session, new.write_key).bu_id == north.id
    stored = session.scalars(select(WriteKeyRow.key_hash)).all()
    assert new.write_key not in stored and service.hash_key(new.write_key) in stored
    listed = service.list_sources(session, ctx)
    assert [k.prefix for k in listed[0].keys] == [new.write_key[:12]]


def test_unknown_revoked_and_disabled_keys_are_refused_alike(
    session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    new = service.create_source(session, ctx, SourceIn(bu="north", name="App"))
    messages = []
    with pytest.raises(Unauthenticated) as caught:
        service.authenticate(session, "olk_not-a-key")
    messages.append(caught.value.detail)
    service.set_enabled(session, ctx, new.id, enabled=False)
    with pytest.raises(Unauthenticated) as caught:
        service.authenticate(session, new.write_key)
    messages.append(caught.value.detail)
    service.set_enabled(session, ctx, new.id, enabled=True)
    assert service.authenticate(session, new.write_key).id == new.id
    service.revoke_key(session, ctx, new.id, new.write_key[:12])
    with pytest.raises(Unauthenticated) as caught:
        service.authenticate(session, new.write_key)
    messages.append(caught.value.detail)
    assert len(set(messages)) == 1


def test_rotation_keeps_the_old_key_until_revoked(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    first = service.create_source(session, ctx, SourceIn(bu="north", name="Web"))
    second = service.rotate_key(session, ctx, first.id, revoke_old=False)
    assert service.authenticate(session, first.write_key).id == first.id
    assert service.authenticate(session, second.write_key).id == first.id
    third = service.rotate_key(session, ctx, first.id, revoke_old=True)
    for old in (first, second):
        with pytest.raises(Unauthenticated):
            service.authenticate(session, old.write_key)
    assert service.authenticate(session, third.write_key).id == first.id
    with pytest.raises(NotFound):
        service.revoke_key(session, ctx, first.id, first.write_key[:12])


def test_names_are_unique_per_unit(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    service.create_source(session, ctx, SourceIn(bu="north", name="Web"))
    service.create_source(session, ctx, SourceIn(bu="south", name="Web"))
    with pytest.raises(Conflict):
        service.create_source(session, ctx, SourceIn(bu="north", name="Web"))


def test_a_unit_sees_and_touches_only_its_own_sources(session: Session, ctx: Context) -> None:
    _, north, south = make_group(session, ctx)
    theirs = service.create_source(session, ctx, SourceIn(bu="south", name="South Web"))
    mine = service.create_source(session, _bu_ctx(north), SourceIn(bu="north", name="North Web"))
    assert [s.id for s in service.list_sources(session, _bu_ctx(north))] == [mine.id]
    with pytest.raises(NotFound):
        service.get_source(session, _bu_ctx(north), theirs.id)
    with pytest.raises(NotFound):
        service.rotate_key(session, _bu_ctx(north), theirs.id, revoke_old=True)
    with pytest.raises(NotFound):
        service.set_enabled(session, _bu_ctx(north), theirs.id, enabled=False)
    with pytest.raises(NotFound):  # cannot create in another unit either
        service.create_source(session, _bu_ctx(north), SourceIn(bu="south", name="Sneaky"))
    assert service.authenticate(session, theirs.write_key).bu_id == south.id


def test_cli_create_prints_id_and_key_as_json(db_url: str) -> None:
    runner = CliRunner()
    env = {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    runner.invoke(app, ["bu", "create", "galaxy", "--name", "星河集团"], env=env)
    runner.invoke(app, ["bu", "create", "north", "--name", "北区", "--parent", "galaxy"], env=env)
    made = runner.invoke(
        app, ["sources", "create", "--bu", "north", "--name", "官网", "--json"], env=env
    )
    assert made.exit_code == 0, made.output
    doc = json.loads(made.stdout)
    assert set(doc) == {"id", "write_key"}
    listed = runner.invoke(app, ["sources", "list", "--json"], env=env)
    assert doc["write_key"] not in listed.stdout
    assert json.loads(listed.stdout)[0]["name"] == "官网"
    assert runner.invoke(app, ["sources", "disable", doc["id"]], env=env).exit_code == 0
    bad = runner.invoke(app, ["sources", "create", "--bu", "nope", "--name", "x"], env=env)
    assert bad.exit_code == 1 and "nope" in bad.output


def test_source_changes_are_audited_and_a_unit_sees_only_its_own(
    session: Session, ctx: Context
) -> None:
    _, north, south = make_group(session, ctx)
    new = service.create_source(session, ctx, SourceIn(bu="north", name="Web"))
    service.rotate_key(session, ctx, new.id, revoke_old=True)
    service.set_enabled(session, ctx, new.id, enabled=False)
    service.create_source(session, ctx, SourceIn(bu="south", name="Web"))
    session.commit()
    entries = audit.list_entries(session, ctx, object_id=new.id).items
    assert [e.action for e in entries] == [
        "source.disabled",
        "source.key_rotated",
        "source.created",
    ]
    assert entries[1].detail == {"revoked": 1}
    assert all(e.bu_id == north.id for e in entries)
    assert new.write_key not in str([e.model_dump() for e in entries])
    as_south = Context(
        bu_id=BusinessUnitId(south.id),
        user_id=UserId("auditor-south"),
        permissions=frozenset({audit.READ_PERMISSION}),
    )
    seen = audit.list_entries(session, as_south, action="source.created").items
    assert [e.bu_id for e in seen] == [south.id]
