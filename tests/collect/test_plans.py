"""Tracking plans: allow and block modes, unplanned events, violation counters, bad plans,
YAML round trips, BU isolation; over the service, the ingest path, the API and the CLI."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app as cli_app
from oneloop.collect import deadletters, plan_check, plans
from oneloop.collect import service as sources
from oneloop.collect.ingest import IngestResult, ingest
from oneloop.collect.models import DeadLetterRow, EventRow, IngestBatchRow
from oneloop.collect.plan_schemas import PlanIn, TrackingPlan
from oneloop.collect.schemas import Source
from oneloop.collect.spec import parse_batch
from oneloop.core.context import Context
from oneloop.core.errors import Conflict, NotFound, ValidationFailed
from oneloop.core.ids import BusinessUnitId, UserId
from oneloop.governance import audit
from oneloop.governance.schemas import BusinessUnit
from tests.conftest import ADMIN
from tests.factories import make_group, make_source

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
DEMO_PLAN = Path(__file__).parents[2] / "oneloop" / "demo" / "plans" / "industrial.yaml"

ORDERS_PLAN = """
name: Web shop
mode: {mode}
unplanned: {unplanned}
traits:
  type: object
  properties:
    email: {{type: string, format: email}}
events:
  Order Completed:
    properties:
      type: object
      required: [order_id, total]
      properties:
        order_id: {{type: string}}
        total: {{type: number}}
        products:
          type: array
          items:
            type: object
            properties:
              price: {{type: number}}
"""


def _plan(
    session: Session, ctx: Context, mode: str = "allow", unplanned: str = "allow", bu: str = "north"
) -> TrackingPlan:
    data = plans.plan_from_yaml(ORDERS_PLAN.format(mode=mode, unplanned=unplanned), bu=bu)
    plan = plans.create_plan(session, ctx, data)
    session.commit()
    return plan


def _planned_source(
    session: Session, ctx: Context, mode: str = "allow", unplanned: str = "allow"
) -> Source:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    plan = _plan(session, ctx, mode, unplanned)
    source = plans.attach_plan(session, ctx, source.id, plan.id)
    session.commit()
    return source


def _order(mid: str, **properties: object) -> dict[str, object]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "messageId": mid,
        "properties": {"order_id": "SO1", "total": 12.5, **properties},
    }


def _ingest(
    session: Session, source: Source, batch: list[object], at: datetime = NOW
) -> IngestResult:
    messages, invalid = parse_batch({"batch": batch}, at)
    result = ingest(session, source, messages, invalid, received_at=at, origin="api", ref="test")
    session.commit()
    return result


def _counts(
    session: Session, ctx: Context, source: Source
) -> dict[tuple[str | None, str, str], int]:
    return {
        (v.event, v.path, v.kind): v.count for v in plans.list_violations(session, ctx, source.id)
    }


def _bu_ctx(unit: BusinessUnit) -> Context:
    return Context(
        bu_id=BusinessUnitId(unit.id),
        user_id=UserId("admin-" + unit.code),
        permissions=frozenset(
            {
                "collect.plan.read",
                "collect.plan.manage",
                "collect.source.read",
                "collect.source.manage",
                "governance.bu.read",
            }
        ),
    )


# --- on the ingest path ------------------------------------------------------------------------


def test_allow_mode_keeps_the_event_and_counts_the_violation_per_event_and_property(
    session: Session, ctx: Context
) -> None:
    source = _planned_source(session, ctx, mode="allow")
    result = _ingest(
        session,
        source,
        [
            _order("ok"),
            _order("bad-total", total="12.50"),
            _order("bad-prices", products=[{"price": "1"}, {"price": "2"}]),
            {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "no-id"},
            {"type": "identify", "userId": "u1", "messageId": "id1", "traits": {"email": "x"}},
            {"type": "page", "userId": "u1", "messageId": "p1", "name": "Home"},
        ],
    )
    assert (result.accepted, result.dead_lettered, result.violations) == (6, 0, 4)
    assert session.scalar(select(func.count()).select_from(EventRow)) == 6
    assert session.scalar(select(IngestBatchRow.violations)) == 4
    # Two bad prices in one event's list are one event on one row: the index is folded.
    assert _counts(session, ctx, source) == {
        ("Order Completed", "properties.total", "type"): 1,
        ("Order Completed", "properties.products[].price", "type"): 1,
        ("Order Completed", "properties.order_id", "required"): 1,
        ("Order Completed", "properties.total", "required"): 1,
        (None, "traits.email", "format"): 1,
    }
    listed = plans.list_violations(session, ctx, source.id)
    identify = next(v for v in listed if v.event is None)
    assert (identify.call, identify.example_message_id) == ("identify", "id1")


def test_block_mode_dead_letters_the_event_with_the_path_in_the_reason(
    session: Session, ctx: Context
) -> None:
    source = _planned_source(session, ctx, mode="block")
    result = _ingest(session, source, [_order("ok"), _order("bad", total="12.50")])
    assert (result.received, result.accepted, result.dead_lettered, result.violations) == (
        2,
        1,
        1,
        0,
    )
    assert [r.reason for r in result.refused] == ["plan_violation"]
    letter = session.scalars(select(DeadLetterRow)).one()
    assert (letter.reason, letter.message_id) == ("plan_violation", "bad")
    assert letter.errors == [{"path": "properties.total", "msg": "must be a number; got a string"}]
    assert letter.detail == "properties.total: must be a number; got a string"
    assert json.loads(letter.payload)["properties"]["total"] == "12.50"
    # Blocked violations are counted too: the counter is what a data engineer fixes from.
    assert _counts(session, ctx, source) == {("Order Completed", "properties.total", "type"): 1}


def test_a_blocked_event_enters_the_log_once_after_the_plan_is_fixed_and_replayed(
    session: Session, ctx: Context
) -> None:
    source = _planned_source(session, ctx, mode="block")
    _ingest(session, source, [_order("late", total="12.50")])
    plan_id = source.tracking_plan_id
    assert plan_id is not None
    fixed = plans.get_plan(session, ctx, plan_id).model_copy(update={"mode": "allow"})
    plans.update_plan(session, ctx, plan_id, fixed)
    session.commit()
    first = deadletters.replay(session, ctx, source=source.id)
    session.commit()
    again = deadletters.replay(session, ctx, source=source.id, reason="plan_violation")
    session.commit()
    assert (first.replayed, again.selected) == (1, 0)
    assert session.scalars(select(EventRow.message_id)).all() == ["late"]


@pytest.mark.parametrize("policy", ["allow", "block"])
def test_unplanned_events_follow_the_plans_unplanned_policy(
    session: Session, ctx: Context, policy: str
) -> None:
    source = _planned_source(session, ctx, mode="allow", unplanned=policy)
    result = _ingest(
        session,
        source,
        [{"type": "track", "event": "Coupon Used", "userId": "u1", "messageId": "c1"}],
    )
    if policy == "allow":
        assert (result.accepted, result.violations, result.dead_lettered) == (1, 1, 0)
    else:
        assert (result.accepted, result.violations, result.dead_lettered) == (0, 0, 1)
        assert result.refused[0].detail == "event: 'Coupon Used' is not in the tracking plan"
    assert _counts(session, ctx, source) == {("Coupon Used", "event", "unplanned"): 1}


def test_counters_sum_across_batches_and_a_retried_duplicate_is_not_counted_twice(
    session: Session, ctx: Context
) -> None:
    source = _planned_source(session, ctx, mode="allow")
    for day in range(3):
        at = NOW + timedelta(days=day)
        batch = [_order(f"d{day}-{i}", total="x") for i in range(day + 1)]
        assert _ingest(session, source, batch, at).violations == day + 1
    assert _ingest(session, source, [_order("d2-0", total="x")], NOW + timedelta(days=5)).duplicates
    [counter] = plans.list_violations(session, ctx, source.id)
    assert counter.count == 1 + 2 + 3
    assert (counter.first_seen_at, counter.last_seen_at) == (NOW, NOW + timedelta(days=2))
    assert counter.example_message_id.startswith("d2-")


def test_validators_are_compiled_once_per_plan_version(
    session: Session, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _planned_source(session, ctx)
    compiled: list[str] = []
    real = plan_check.compile_plan

    def counting(mode: str, document: dict[str, object]) -> plan_check.CompiledPlan:
        compiled.append(mode)
        return real(mode, document)

    monkeypatch.setattr(plan_check, "compile_plan", counting)
    _ingest(session, source, [_order("a")])
    _ingest(session, source, [_order("b")])
    assert compiled == ["allow"]
    assert source.tracking_plan_id is not None
    plan = plans.get_plan(session, ctx, source.tracking_plan_id)
    saved = plans.update_plan(session, ctx, plan.id, plan.model_copy(update={"mode": "block"}))
    session.commit()
    assert saved.version == 2
    assert _ingest(session, source, [_order("c", total="x")]).dead_lettered == 1
    assert compiled == ["allow", "block"]


def test_a_source_without_a_plan_never_looks_for_one(
    session: Session, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)

    def refuse(*args: object) -> None:
        raise AssertionError("a source without a plan must not query for one")

    monkeypatch.setattr(plan_check, "_load", refuse)
    assert _ingest(session, source, [_order("a", total="x")]).accepted == 1


# --- the plan document -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        (
            {
                "events": {
                    "Order Completed": {"properties": {"properties": {"total": {"type": "numbr"}}}}
                }
            },
            "events.Order Completed.properties.properties.total.type",
            "is not valid under any of the given schemas",
        ),
        (
            {"traits": {"properties": {"phone": {"pattern": "["}}}},
            "traits.properties.phone.pattern",
            "is not a 'regex'",
        ),
        (
            {"events": {"X": {"properties": {"$ref": "https://example.com/evil.json"}}}},
            "events.X.properties.$ref",
            "must be a reference inside the plan",
        ),
        (
            {"events": {"X": {"properties": {"$ref": "#/$defs/missing"}}}},
            "events.X.properties.$ref",
            "points at nothing",
        ),
        ({"mode": "warn"}, "mode", "'allow' or 'block'"),
        ({"events": {"X": {"properties": "string"}}}, "events.X.properties", "JSON Schema"),
        ({"events": {"X": {"propertise": {}}}}, "events.X.propertise", "Extra inputs"),
    ],
)
def test_a_bad_plan_fails_validation_naming_the_path(
    session: Session, ctx: Context, document: dict[str, object], path: str, words: str
) -> None:
    make_group(session, ctx)
    with pytest.raises(ValidationFailed) as caught:
        plans.create_plan(session, ctx, plans.parse_plan({"name": "P", **document}, bu="north"))
    assert [e.path for e in caught.value.errors] == [path]
    assert words in caught.value.errors[0].msg
    assert path in caught.value.detail


def test_yaml_that_json_cannot_hold_is_refused_with_its_path() -> None:
    with pytest.raises(ValidationFailed) as caught:
        plans.plan_from_yaml("name: P\nevents:\n  X:\n    properties:\n      on: {type: string}\n")
    assert caught.value.errors[0].path == "events.X.properties.True"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + prev] * 10)}]\n"
        for prev, n in zip("abcdefg", "bcdefgh", strict=True)
    )
    with pytest.raises(ValidationFailed, match="more than 50,000 values"):
        plans.plan_from_yaml(bomb)
    with pytest.raises(ValidationFailed, match="at line 2, column 9"):
        plans.plan_from_yaml("name: P\nevents: }\n")
    with pytest.raises(ValidationFailed, match="nested"):
        plans.plan_from_yaml("[" * 100_000)


@given(st.text(max_size=200))
def test_reading_any_text_as_a_plan_gives_a_plan_or_validation_failed(text: str) -> None:
    try:
        plan = plans.plan_from_yaml(text, bu="north")
    except ValidationFailed as exc:
        assert exc.detail.startswith("the tracking plan") or exc.detail.startswith("a tracking")
    else:
        assert plan.bu == "north"


def test_yaml_export_round_trips(session: Session, ctx: Context) -> None:
    make_group(session, ctx, ("industrial",))
    text = DEMO_PLAN.read_text(encoding="utf-8")
    plan = plans.create_plan(session, ctx, plans.plan_from_yaml(text, bu="industrial"))
    session.commit()
    exported = plans.export_plan(session, ctx, plan.id)
    again = plans.plan_from_yaml(exported, bu="industrial")
    assert again == plans.plan_from_yaml(text, bu="industrial")
    assert again.events["Summit Registered"].properties["properties"]["date"]["format"] == "date"
    assert list(again.events)[:2] == ["Whitepaper Downloaded", "Demo Requested"]
    assert yaml.safe_load(exported)["mode"] == "allow"
    replaced, created = plans.import_plan(session, ctx, again)
    assert (replaced.id, replaced.version, created) == (plan.id, 2, False)
    assert plans.export_plan(session, ctx, plan.id) == exported


def test_the_readme_plan_is_a_valid_plan() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S) if "events:" in b]
    assert blocks, "the README shows a tracking plan"
    for block in blocks:
        plans.check_schemas(plans.plan_from_yaml(block))


# --- business units ----------------------------------------------------------------------------


def test_a_bu_user_cannot_see_or_attach_another_units_plan(session: Session, ctx: Context) -> None:
    _, north, south = make_group(session, ctx)
    north_source, _ = make_source(session, ctx, "north")
    south_source, _ = make_source(session, ctx, "south")
    north_plan = _plan(session, ctx, bu="north")
    south_plan = _plan(session, ctx, bu="south")
    as_south = _bu_ctx(south)
    assert [p.id for p in plans.list_plans(session, as_south)] == [south_plan.id]
    with pytest.raises(NotFound):
        plans.get_plan(session, as_south, north_plan.id)
    with pytest.raises(NotFound):
        plans.attach_plan(session, as_south, south_source.id, north_plan.id)
    with pytest.raises(NotFound):
        plans.attach_plan(session, as_south, north_source.id, south_plan.id)
    with pytest.raises(NotFound):
        plans.list_violations(session, as_south, north_source.id)
    with pytest.raises(NotFound):
        plans.create_plan(session, as_south, PlanIn(name="Mine now", bu="north"))
    # Group-wide, both are visible, but a plan still only fits its own unit's sources.
    with pytest.raises(Conflict):
        plans.attach_plan(session, ctx, south_source.id, north_plan.id)
    attached = plans.attach_plan(session, _bu_ctx(north), north_source.id, north_plan.id)
    assert attached.tracking_plan_id == north_plan.id


def test_a_plan_in_use_cannot_be_deleted_and_names_are_unique_per_unit(
    session: Session, ctx: Context
) -> None:
    source = _planned_source(session, ctx)
    assert source.tracking_plan_id is not None
    with pytest.raises(Conflict, match=source.id):
        plans.delete_plan(session, ctx, source.tracking_plan_id)
    with pytest.raises(Conflict):
        _plan(session, ctx)
    _plan(session, ctx, bu="south")  # the same name in another unit is another plan
    plans.attach_plan(session, ctx, source.id, None)
    plans.delete_plan(session, ctx, source.tracking_plan_id)
    assert sources.get_source(session, ctx, source.id).tracking_plan_id is None


# --- HTTP and CLI ------------------------------------------------------------------------------


def test_the_api_manages_plans_in_json_and_yaml(
    client: TestClient, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    body = ORDERS_PLAN.format(mode="allow", unplanned="allow")
    made = client.post(
        "/api/v1/tracking-plans?bu=north",
        content=body.encode(),
        headers={**ADMIN, "Content-Type": "application/yaml"},
    )
    assert made.status_code == 201, made.text
    plan_id = made.json()["id"]
    as_yaml = client.get(
        f"/api/v1/tracking-plans/{plan_id}", headers={**ADMIN, "Accept": "application/yaml"}
    )
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.text)["events"]["Order Completed"]["properties"]["required"] == [
        "order_id",
        "total",
    ]
    replaced = client.put(
        f"/api/v1/tracking-plans/{plan_id}",
        json={**made.json(), "mode": "block", "bu": None},
        headers=ADMIN,
    )
    assert (replaced.status_code, replaced.json()["version"]) == (200, 2), replaced.text
    attached = client.put(
        f"/api/v1/sources/{source.id}/tracking-plan", json={"plan_id": plan_id}, headers=ADMIN
    )
    assert attached.json()["tracking_plan_id"] == plan_id
    in_use = client.delete(f"/api/v1/tracking-plans/{plan_id}", headers=ADMIN)
    assert (in_use.status_code, in_use.json()["type"]) == (409, "/problems/conflict")
    session.expire_all()  # the API changed the source in another session
    _ingest(session, sources.get_source(session, ctx, source.id), [_order("m", total="x")])
    counted = client.get(f"/api/v1/sources/{source.id}/violations", headers=ADMIN).json()
    assert [(v["event"], v["path"], v["kind"], v["count"]) for v in counted["items"]] == [
        ("Order Completed", "properties.total", "type", 1)
    ]
    client.put(f"/api/v1/sources/{source.id}/tracking-plan", json={"plan_id": None}, headers=ADMIN)
    assert client.delete(f"/api/v1/tracking-plans/{plan_id}", headers=ADMIN).status_code == 204
    assert client.get("/api/v1/tracking-plans", headers=ADMIN).json()["items"] == []
    assert client.get("/api/v1/tracking-plans").status_code == 401


def test_a_bad_plan_over_http_is_a_422_naming_the_path(
    client: TestClient, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    bad = {"bu": "north", "name": "P", "events": {"Order Completed": {"properties": {"type": 7}}}}
    response = client.post("/api/v1/tracking-plans", json=bad, headers=ADMIN)
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "/problems/validation-failed"
    assert [e["path"] for e in problem["errors"]] == ["events.Order Completed.properties.type"]
    no_unit = client.post("/api/v1/tracking-plans", json={"name": "P"}, headers=ADMIN)
    assert [e["path"] for e in no_unit.json()["errors"]] == ["bu"]
    not_yaml = client.post(
        "/api/v1/tracking-plans?bu=north",
        content=b"name: [",
        headers={**ADMIN, "Content-Type": "application/yaml"},
    )
    assert not_yaml.status_code == 422
    as_text = client.post(
        "/api/v1/tracking-plans", content=b"x", headers={**ADMIN, "Content-Type": "text/plain"}
    )
    assert as_text.status_code == 415
    assert client.get("/api/v1/tracking-plans/nope", headers=ADMIN).status_code == 404


def test_the_cli_imports_attaches_exports_and_reports(
    db_url: str, session: Session, ctx: Context, tmp_path: Path
) -> None:
    make_group(session, ctx, ("industrial",))
    source, _ = make_source(session, ctx, "industrial")
    env = {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli_app, ["plans", *args], env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    made = json.loads(
        run("import", str(DEMO_PLAN), "--bu", "industrial", "--mode", "block", "--json")
    )
    assert (made["mode"], made["version"]) == ("block", 1)
    assert [p["id"] for p in json.loads(run("list", "--json"))] == [made["id"]]
    run("attach", made["id"], "--source", source.id)
    session.expire_all()  # the CLI changed the source in another session
    _ingest(
        session,
        sources.get_source(session, ctx, source.id),
        [{"type": "track", "event": "Summit Registered", "userId": "u", "messageId": "s1"}],
    )
    counted = json.loads(run("violations", "--source", source.id, "--json"))
    assert {v["path"] for v in counted} == {
        "properties.summit_id",
        "properties.date",
        "properties.ticket_type",
    }
    out = tmp_path / "plan.yaml"
    run("export", made["id"], "--out", str(out))
    assert plans.plan_from_yaml(out.read_text(encoding="utf-8")).mode == "block"
    run("detach", "--source", source.id)
    failed = runner.invoke(cli_app, ["plans", "attach", "nope", "--source", source.id], env=env)
    assert failed.exit_code == 1 and "no tracking plan" in failed.output


def test_plan_changes_are_audited(session: Session, ctx: Context) -> None:
    source = _planned_source(session, ctx)
    plan_id = source.tracking_plan_id
    assert plan_id is not None
    plans.attach_plan(session, ctx, source.id, None)
    plans.delete_plan(session, ctx, plan_id)
    session.commit()
    assert [e.action for e in audit.list_entries(session, ctx, object_id=plan_id).items] == [
        "plan.deleted",
        "plan.created",
    ]
    on_source = audit.list_entries(session, ctx, object_id=source.id).items
    assert [e.action for e in on_source][:2] == ["source.plan_detached", "source.plan_attached"]
    assert on_source[1].detail == {"plan_id": plan_id}
    assert audit.verify(session).is_intact
