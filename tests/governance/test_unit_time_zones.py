"""Each business unit's time zone (issue 6): stored as an IANA name, inherited from the parent
when not given, changed later, refused when unknown, by the service, the API and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.errors import Forbidden, NotFound
from oneloop.core.ids import BusinessUnitId, UserId
from oneloop.governance import service
from oneloop.governance.schemas import BusinessUnitIn, BusinessUnitPatch
from tests.conftest import ADMIN
from tests.factories import make_group

URL = "/api/v1/business-units"
runner = CliRunner()


def unit_in(
    code: str, parent: str | None = "galaxy", time_zone: str | None = None
) -> BusinessUnitIn:
    return BusinessUnitIn(
        code=code, name_zh=f"{code}事业部", name_en=code.title(), parent=parent, time_zone=time_zone
    )


# --- the service ----------------------------------------------------------------------------


def test_the_group_defaults_to_shanghai_and_units_take_its_zone(
    session: Session, ctx: Context
) -> None:
    group, north, south = make_group(session, ctx)
    assert (group.time_zone, north.time_zone, south.time_zone) == ("Asia/Shanghai",) * 3
    assert service.zone_of_unit(session, north.id) == ZoneInfo("Asia/Shanghai")


def test_a_unit_without_a_zone_inherits_its_parents(session: Session, ctx: Context) -> None:
    group = service.create_business_unit(
        session, ctx, unit_in("galaxy", parent=None, time_zone="Europe/Berlin")
    )
    plain = service.create_business_unit(session, ctx, unit_in("munich"))
    own = service.create_business_unit(session, ctx, unit_in("tokyo", time_zone="Asia/Tokyo"))
    assert group.time_zone == plain.time_zone == "Europe/Berlin"
    assert own.time_zone == "Asia/Tokyo"
    assert service.zone_of_unit(session, own.id) == ZoneInfo("Asia/Tokyo")


def test_update_changes_only_what_it_names(
    session: Session, ctx: Context, clock: FixedClock
) -> None:
    group, north, _ = make_group(session, ctx)
    clock.advance(timedelta(hours=1))
    moved = service.update_business_unit(
        session, ctx, "north", BusinessUnitPatch(time_zone="Europe/Berlin")
    )
    assert moved.time_zone == "Europe/Berlin" and moved.name_zh == north.name_zh
    assert moved.updated_at == clock.now() and moved.created_at == north.created_at
    assert service.zone_of_unit(session, north.id) == ZoneInfo("Europe/Berlin")
    renamed = service.update_business_unit(session, ctx, "north", BusinessUnitPatch(name_en="N"))
    assert (renamed.name_en, renamed.time_zone) == ("N", "Europe/Berlin")
    # the zone was copied at creation: a later change of the group's leaves the units'
    service.update_business_unit(session, ctx, "galaxy", BusinessUnitPatch(time_zone="UTC"))
    assert service.zone_of_unit(session, group.id) == ZoneInfo("UTC")
    assert service.get_business_unit(session, ctx, "south").time_zone == "Asia/Shanghai"


def test_zone_of_an_unknown_unit_is_not_found(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    with pytest.raises(NotFound):
        service.zone_of_unit(session, "01J00000000000000000000000")


@pytest.mark.parametrize(
    "zone",
    ["Mars/Olympus", "", "asia/shanghai", "Europe/Berlin ", "localtime", "../../etc/passwd"],
)
def test_an_unknown_zone_is_refused_naming_the_field_and_the_value(zone: str) -> None:
    for build in (
        lambda: unit_in("north", time_zone=zone),
        lambda: BusinessUnitPatch(time_zone=zone),
    ):
        with pytest.raises(ValidationError) as caught:
            build()
        (error,) = caught.value.errors()
        assert error["loc"] == ("time_zone",)
        assert repr(zone) in error["msg"]


def test_a_bu_user_changes_only_their_own_unit(session: Session, ctx: Context) -> None:
    _, north, _ = make_group(session, ctx)
    admin = Context(
        bu_id=BusinessUnitId(north.id),
        user_id=UserId("u1"),
        permissions=frozenset({"governance.bu.read", "governance.bu.update"}),
    )
    berlin = BusinessUnitPatch(time_zone="Europe/Berlin")
    assert (
        service.update_business_unit(session, admin, "north", berlin).time_zone == berlin.time_zone
    )
    with pytest.raises(NotFound):
        service.update_business_unit(session, admin, "south", berlin)
    reader = Context(
        bu_id=BusinessUnitId(north.id),
        user_id=UserId("u2"),
        permissions=frozenset({"governance.bu.read"}),
    )
    with pytest.raises(Forbidden):
        service.update_business_unit(session, reader, "north", berlin)


# --- the API --------------------------------------------------------------------------------


def test_api_creates_shows_and_changes_a_units_zone(client: TestClient) -> None:
    group = client.post(
        URL, json={"code": "galaxy", "name_zh": "星河集团", "name_en": "Galaxy"}, headers=ADMIN
    )
    assert group.status_code == 201, group.text
    assert group.json()["time_zone"] == "Asia/Shanghai"
    europe = {"code": "europe", "name_zh": "欧洲", "name_en": "Europe", "parent": "galaxy"}
    made = client.post(URL, json={**europe, "time_zone": "Europe/Berlin"}, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert client.get(f"{URL}/europe", headers=ADMIN).json()["time_zone"] == "Europe/Berlin"
    changed = client.patch(f"{URL}/europe", json={"time_zone": "Europe/Lisbon"}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert changed.json()["time_zone"] == "Europe/Lisbon" and changed.json()["name_en"] == "Europe"
    listed = client.get(URL, headers=ADMIN).json()["items"]
    assert [(u["code"], u["time_zone"]) for u in listed] == [
        ("europe", "Europe/Lisbon"),
        ("galaxy", "Asia/Shanghai"),
    ]


def test_api_refuses_an_unknown_zone_with_422_naming_time_zone(client: TestClient) -> None:
    body = {"code": "galaxy", "name_zh": "星河集团", "name_en": "Galaxy"}
    refused = client.post(URL, json={**body, "time_zone": "Mars/Olympus"}, headers=ADMIN)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["type"] == "/problems/validation-failed"
    assert [e["loc"] for e in problem["errors"]] == [["body", "time_zone"]]
    assert "'Mars/Olympus'" in problem["errors"][0]["msg"]
    assert client.post(URL, json=body, headers=ADMIN).status_code == 201
    patched = client.patch(f"{URL}/galaxy", json={"time_zone": "Mars/Olympus"}, headers=ADMIN)
    assert patched.status_code == 422
    assert [e["loc"] for e in patched.json()["errors"]] == [["body", "time_zone"]]
    assert "'Mars/Olympus'" in patched.json()["errors"][0]["msg"]
    misspelt = client.patch(f"{URL}/galaxy", json={"timezone": "UTC"}, headers=ADMIN)
    assert misspelt.status_code == 422
    missing = client.patch(f"{URL}/nope", json={"time_zone": "UTC"}, headers=ADMIN)
    assert missing.status_code == 404
    assert client.get(f"{URL}/galaxy", headers=ADMIN).json()["time_zone"] == "Asia/Shanghai"


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    settings = {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}
    assert runner.invoke(app, ["db", "upgrade"], env=settings).exit_code == 0
    return settings


def test_cli_sets_shows_and_changes_a_units_zone(env: dict[str, str]) -> None:
    group = runner.invoke(app, ["bu", "create", "galaxy", "--name", "星河集团"], env=env)
    assert group.exit_code == 0, group.output
    made = runner.invoke(
        app,
        [
            *("bu", "create", "europe", "--name", "欧洲", "--parent", "galaxy"),
            *("--time-zone", "Europe/Berlin", "--json"),
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["time_zone"] == "Europe/Berlin"
    changed = runner.invoke(
        app, ["bu", "update", "galaxy", "--time-zone", "UTC", "--json"], env=env
    )
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.stdout)["time_zone"] == "UTC"
    listed = json.loads(runner.invoke(app, ["bu", "list", "--json"], env=env).stdout)
    assert [(u["code"], u["time_zone"]) for u in listed] == [
        ("galaxy", "UTC"),
        ("europe", "Europe/Berlin"),
    ]


def test_cli_refuses_an_unknown_zone_naming_time_zone(env: dict[str, str]) -> None:
    refused = runner.invoke(
        app,
        ["bu", "create", "galaxy", "--name", "星河集团", "--time-zone", "Mars/Olympus"],
        env=env,
    )
    assert refused.exit_code == 1
    assert "time_zone" in refused.output and "Mars/Olympus" in refused.output
    assert "Traceback" not in refused.output
    runner.invoke(app, ["bu", "create", "galaxy", "--name", "星河集团"], env=env)
    update = runner.invoke(app, ["bu", "update", "galaxy", "--time-zone", "Mars/Olympus"], env=env)
    assert update.exit_code == 1
    assert "time_zone" in update.output and "Mars/Olympus" in update.output
    listed = json.loads(runner.invoke(app, ["bu", "list", "--json"], env=env).stdout)
    assert [u["time_zone"] for u in listed] == ["Asia/Shanghai"]
