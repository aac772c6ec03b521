"""The data dictionary (issue 7, parts 3 and 7): the shipped defaults, versions, who may
change what, bad input, the CLI, and computed traits that name its metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app as cli
from oneloop.core.context import Context
from oneloop.core.errors import Forbidden, ValidationFailed
from oneloop.governance import dictionary
from oneloop.governance.dictionary import DEFAULTS_NOTE
from oneloop.governance.dictionary_schemas import EntryIn
from oneloop.governance.models import AuditRow, DictionaryEntryRow, DictionaryVersionRow
from oneloop.identity.rules import DEFAULT_RULES
from oneloop.profiles.models import TraitDefRow
from tests.conftest import ADMIN
from tests.factories import make_group, make_user, signed_in

BASE = "/api/v1/dictionary"
DEMO_MAPPINGS = Path(__file__).parents[2] / "oneloop" / "demo" / "mappings"
# What the demo's tracking events identify people with (oneloop/demo/shopping.py,
# pipeline.py, aftersales.py): their golden-record fields, besides the mappings' traits.
DEMO_TRACKED_TRAITS = {
    "name", "email", "phone", "company", "title", "industry", "province", "city",
    "member_no", "gender", "created_at", "wechat_unionid", "wechat_openid",
}  # fmt: skip
REVENUE = {
    "kind": "metric",
    "name_zh": "销售额（含税）",
    "name_en": "Revenue (incl. VAT)",
    "description_en": "What orders cost, VAT included, in CNY; the same in every unit.",
    "data_type": "money",
    "currency": "CNY",
    "includes_tax": True,
    "classification": "internal",
    "lineage": [{"kind": "property", "event": "Order Completed", "name": "total"}],
}


def _covered(entries: list[dict]) -> tuple[set[str], set[str]]:
    """The identifier types and trait names the entries classify."""
    identifiers, traits = set(), set()
    for e in entries:
        traits.add(e["key"])
        identifiers.add(e["key"])
        for item in e["lineage"]:
            if item["kind"] == "identifier":
                identifiers.add(item["name"])
            if item["kind"] == "trait":
                traits.add(item["name"])
    return identifiers, traits


def _everything(client: TestClient, **params: str) -> list[dict]:
    found, cursor = [], None
    while True:
        page = client.get(
            BASE,
            params={**params, "limit": 7, **({"cursor": cursor} if cursor else {})},
            headers=ADMIN,
        )
        assert page.status_code == 200, page.text
        found.extend(page.json()["items"])
        if (cursor := page.json()["next_cursor"]) is None:
            return found


def test_a_new_database_has_the_default_dictionary_classifying_every_demo_field(
    client: TestClient,
) -> None:
    entries = _everything(client, kind="field")
    assert len({e["key"] for e in entries}) == len(entries)  # pages neither repeat nor skip
    identifiers, traits = _covered(entries)
    assert set(DEFAULT_RULES.types) <= identifiers
    mapped = set()
    for path in DEMO_MAPPINGS.glob("*.yaml"):
        mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
        if mapping["call"] == "identify":
            mapped |= set(mapping.get("traits", {})) | set(mapping.get("identifiers", {}))
    assert mapped | DEMO_TRACKED_TRAITS <= traits, (mapped | DEMO_TRACKED_TRAITS) - traits
    personal = {e["key"]: e for e in _everything(client, classification="pii")}
    assert {"name", "phone", "email", "address", "birth_date", "wechat_openid"} <= set(personal)
    assert personal["phone"]["pii_kind"] == "phone"
    assert personal["phone"]["classification_label"] == {
        "zh": "个人信息",
        "en": "personal information",
    }
    [id_card] = [
        e for e in _everything(client, classification="sensitive_pii") if e["key"] == "id_card"
    ]
    assert id_card["pii_kind"] == "id_card" and id_card["pii_kind_label"]["zh"] == "身份证号"
    metrics = {e["key"]: e for e in _everything(client, kind="metric")}
    assert {"revenue", "order_count", "aov", "csat"} <= set(metrics)
    revenue = metrics["revenue"]
    assert (revenue["currency"], revenue["includes_tax"], revenue["owner_bu"]) == (
        "CNY",
        True,
        None,
    )
    assert client.get(f"{BASE}/revenue/versions", headers=ADMIN).json()[0]["change"] == "installed"


def test_every_signed_in_caller_reads_the_dictionary_and_only_managers_change_it(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    make_user(session, ctx, "mia@north.example.com", "north", "marketer")
    make_user(session, ctx, "ada@north.example.com", "north", "bu_admin")
    make_user(session, ctx, "cleo@north.example.com", "north", "compliance_officer")
    for email in ("mia@north.example.com", "ada@north.example.com"):
        reader = signed_in(app, email)
        assert reader.get(f"{BASE}/revenue").json()["key"] == "revenue"
        assert reader.get(f"{BASE}/revenue/versions").status_code == 200
        refused = reader.put(f"{BASE}/revenue", json=REVENUE)
        assert refused.status_code == 403 and "dictionary.manage" in refused.json()["detail"]
    officer = signed_in(app, "cleo@north.example.com")
    assert officer.put(f"{BASE}/revenue", json=REVENUE).status_code == 403  # the group's
    own = {**REVENUE, "kind": "metric", "name_en": "North CSAT", "data_type": "number"}
    own.pop("currency"), own.pop("includes_tax")
    made = officer.put(f"{BASE}/north_csat", json=own)
    assert made.status_code == 200, made.text
    assert made.json()["owner_bu"] == "north" and made.json()["version"] == 1
    other = officer.put(f"{BASE}/south_csat", json={**own, "owner_bu": "south"})
    assert other.status_code == 422  # another unit is unknown to a unit's user
    assert other.json()["errors"][0]["path"] == "owner_bu"
    assert (
        officer.put(f"{BASE}/north_csat", json={**own, "name_en": "CSAT N"}).json()["version"] == 2
    )


def test_each_change_is_a_new_version_with_who_when_what_and_why(
    client: TestClient, session: Session
) -> None:
    first = client.get(f"{BASE}/revenue", headers=ADMIN).json()
    body = {**REVENUE, "note": "VAT included in every unit"}
    changed = client.put(f"{BASE}/revenue", json=body, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == first["version"] + 1
    again = client.put(f"{BASE}/revenue", json=body, headers=ADMIN)
    assert again.json()["version"] == first["version"] + 1  # the same again changes nothing
    versions = client.get(f"{BASE}/revenue/versions", headers=ADMIN).json()
    assert [v["version"] for v in versions] == [2, 1]
    latest, installed = versions
    assert latest["change"] == "edited" and latest["changed_by"] == "system"
    assert latest["note"] == "VAT included in every unit"
    assert set(latest["changed"]) == {"description_en", "description_zh", "lineage"}
    assert installed["entry"]["name_en"] == "Revenue (incl. VAT)"
    assert latest["entry"]["description_en"] == REVENUE["description_en"]
    assert client.get(f"{BASE}/revenue", headers=ADMIN).json()["description_zh"] == ""
    audited = session.scalars(select(AuditRow).where(AuditRow.action == "dictionary.changed"))
    [entry] = list(audited)
    assert (entry.object_type, entry.object_id) == ("dictionary_entry", "revenue")
    assert entry.detail == {"version": 2, "fields": latest["changed"]}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"currency": "RMB"}, "body.currency"),
        ({"classification": "secret"}, "body.classification"),
        ({"pii_kind": "shoe_size"}, "body.pii_kind"),
        ({"kind": "report"}, "body.kind"),
        ({"includes_tax": None}, "includes_tax"),
        ({"currency": None}, "currency"),
        ({"data_type": "integer"}, "currency"),
        ({"pii_kind": "phone"}, "pii_kind"),
        ({"classification": "pii"}, "classification"),
        ({"owner_bu": "atlantis"}, "owner_bu"),
        ({"lineage": [{"kind": "metric", "name": "no_such_metric"}]}, "lineage[0].name"),
        ({"lineage": [{"kind": "event", "name": "x", "event": "y"}]}, "lineage[0].event"),
        ({"lineage": [{"kind": "table", "name": "x"}]}, "body.lineage[0].kind"),
        ({"sql": "drop table"}, "body.sql"),
    ],
)
def test_bad_entries_are_refused_naming_the_field(
    client: TestClient, change: dict, path: str
) -> None:
    answer = client.put(f"{BASE}/revenue", json={**REVENUE, **change}, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"] == "/problems/validation-failed"
    assert path in [e["path"] for e in answer.json()["errors"]]
    assert client.get(f"{BASE}/revenue", headers=ADMIN).json()["version"] == 1


def test_sensitive_fields_cannot_be_identifiers_and_keys_are_checked(client: TestClient) -> None:
    sensitive = {
        "kind": "field",
        "name_zh": "身份证号",
        "name_en": "Id card",
        "data_type": "string",
        "classification": "sensitive_pii",
        "pii_kind": "id_card",
        "lineage": [{"kind": "identifier", "name": "id_card"}],
    }
    refused = client.put(f"{BASE}/id_card", json=sensitive, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["errors"][0]["path"] == "lineage[0].kind"
    bad_key = client.put(f"{BASE}/Bad%20Key", json={**sensitive, "lineage": []}, headers=ADMIN)
    assert bad_key.status_code == 422 and bad_key.json()["errors"][0]["path"] == "key"
    assert client.get(f"{BASE}/no_such_key", headers=ADMIN).status_code == 404
    assert client.get(f"{BASE}/no_such_key/versions", headers=ADMIN).status_code == 404
    assert client.get(BASE, params={"kind": "report"}, headers=ADMIN).status_code == 422


def test_install_is_idempotent_updates_untouched_defaults_and_keeps_edited_ones(
    session: Session, ctx: Context
) -> None:
    assert dictionary.install_defaults(session, ctx).model_dump() == {
        "created": [], "updated": [], "kept": [],
        "unchanged": len(dictionary.default_entries()),
    }  # fmt: skip
    csat = dictionary.default_entries()["csat"].model_copy(update={"unit": "stars 1-5"})
    dictionary.set_entry(session, ctx, "csat", csat)
    # an older release's default, never edited since
    session.execute(
        update(DictionaryEntryRow).where(DictionaryEntryRow.key == "nps").values(name_en="old")
    )
    # a default this release adds
    session.execute(delete(DictionaryVersionRow).where(DictionaryVersionRow.key == "tickets"))
    session.execute(delete(DictionaryEntryRow).where(DictionaryEntryRow.key == "tickets"))
    report = dictionary.install_defaults(session, ctx)
    assert (report.created, report.updated, report.kept) == (["tickets"], ["nps"], ["csat"])
    assert dictionary.get_entry(session, ctx, "nps").name_en == "Net promoter score (NPS)"
    assert dictionary.get_entry(session, ctx, "csat").unit == "stars 1-5"
    assert dictionary.install_defaults(session, ctx).updated == []


def test_changing_needs_dictionary_manage_in_the_service_too(
    session: Session, ctx: Context
) -> None:
    from dataclasses import replace

    reader = replace(ctx, permissions=frozenset({"profiles.read"}))
    assert dictionary.get_entry(session, reader, "phone").pii_kind == "phone"
    with pytest.raises(Forbidden):
        dictionary.set_entry(session, reader, "revenue", EntryIn.model_validate(REVENUE))
    with pytest.raises(Forbidden):
        dictionary.install_defaults(session, reader)
    with pytest.raises(ValidationFailed) as bad:
        dictionary.parse_entry({**REVENUE, "currency": "XXXX"})
    assert bad.value.errors[0].path == "currency"


def test_cli_lists_shows_sets_installs_and_shows_versions(
    db_url: str, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    runner = CliRunner()
    listed = runner.invoke(cli, ["dictionary", "list", "--kind", "metric", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "revenue" in {e["key"] for e in json.loads(listed.stdout)}
    table = runner.invoke(
        cli, ["dictionary", "list", "--classification", "pii"], env={"COLUMNS": "200"}
    )
    assert "phone" in table.output and "个人信息" in table.output and "revenue" not in table.output
    shown = runner.invoke(cli, ["dictionary", "show", "revenue"], env={"COLUMNS": "200"})
    assert "CNY (incl. tax)" in shown.output and "Order Completed.total" in shown.output
    entry = tmp_path / "revenue.yaml"
    entry.write_text(
        yaml.safe_dump({**REVENUE, "note": "one meaning"}, allow_unicode=True), "utf-8"
    )
    made = runner.invoke(cli, ["dictionary", "set", "revenue", "--file", str(entry), "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["version"] == 2
    versions = runner.invoke(cli, ["dictionary", "versions", "revenue", "--json"])
    assert [v["note"] for v in json.loads(versions.stdout)] == ["one meaning", DEFAULTS_NOTE]
    entry.write_text(yaml.safe_dump({**REVENUE, "currency": "RMB"}), "utf-8")
    bad = runner.invoke(cli, ["dictionary", "set", "revenue", "--file", str(entry)])
    assert bad.exit_code == 1 and "currency" in bad.output
    installed = runner.invoke(cli, ["dictionary", "install"])
    assert installed.exit_code == 0 and "0 created" in installed.output
    assert "kept as edited" in installed.output and "revenue" in installed.output
    assert runner.invoke(cli, ["dictionary", "show", "nope"]).exit_code == 1


@pytest.mark.parametrize("command", ["list", "show", "set", "install", "versions"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    helped = CliRunner().invoke(cli, ["dictionary", command, "--help"])
    assert helped.exit_code == 0 and "Example: oneloop dictionary" in helped.output


# --- computed traits refer to the dictionary's metrics ----------------------------------------

TRAIT = {
    "name": "revenue_365d",
    "event": "Order Completed",
    "aggregate": "sum",
    "property": "total",
    "window": {"amount": 365, "unit": "days"},
}


def test_a_trait_names_a_metric_and_shows_what_it_means(
    client: TestClient, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    made = client.post("/api/v1/traits", json={**TRAIT, "metric": "revenue"}, headers=ADMIN)
    assert made.status_code == 201, made.text
    metric = made.json()["metric"]
    assert (metric["key"], metric["currency"], metric["includes_tax"]) == ("revenue", "CNY", True)
    assert metric["name_en"] == "Revenue (incl. VAT)" and "VAT" in metric["description_en"]
    assert session.scalar(select(TraitDefRow.metric)) == "revenue"
    listed = client.get("/api/v1/traits", headers=ADMIN).json()["items"]
    assert listed[0]["metric"]["data_type"] == "money"
    plain = client.put(f"/api/v1/traits/{made.json()['id']}", json=TRAIT, headers=ADMIN)
    assert plain.status_code == 200 and plain.json()["metric"] is None
    session.expire_all()
    assert session.scalar(select(TraitDefRow.metric)) is None


@pytest.mark.parametrize(
    ("metric", "why"),
    [("profit", "no metric 'profit'"), ("phone", "no metric 'phone'"), (7, "metric's key")],
)
def test_a_trait_naming_an_unknown_metric_is_refused_naming_the_field(
    client: TestClient, session: Session, ctx: Context, metric: object, why: str
) -> None:
    make_group(session, ctx)
    answer = client.post("/api/v1/traits", json={**TRAIT, "metric": metric}, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error["path"] == "metric" and why in error["msg"]
    assert session.scalar(select(TraitDefRow.id)) is None
