"""The demo generator: deterministic, well-formed, and messy in the ways it promises."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any  # parsed JSON

import pytest

from oneloop.demo.generate import FILES, MANIFEST, GenerateSummary, generate

CUSTOMERS = 300
SEED = 11
SEGMENT_TYPES = {"track", "identify", "page", "screen", "alias", "group"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> GenerateSummary:
    return generate(tmp_path_factory.mktemp("demo"), customers=CUSTOMERS, seed=SEED)


@pytest.fixture(scope="module")
def events(demo: GenerateSummary) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [json.loads(line) for line in _lines(demo.out_dir / name)]
        for name in FILES
        if name.startswith("events/")
    }


@pytest.fixture(scope="module")
def truth(demo: GenerateSummary) -> list[dict[str, str]]:
    with (demo.out_dir / "truth/identities.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def manifest(demo: GenerateSummary) -> dict[str, Any]:
    return json.loads((demo.out_dir / MANIFEST).read_text(encoding="utf-8"))


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _national(phone: str) -> str:
    """Digits of a phone without country code or trunk prefix, for comparing formats."""
    digits = re.sub(r"\D", "", phone)
    if phone.strip().startswith("+") or digits.startswith("00"):
        digits = digits.lstrip("0")
        for cc in ("86", "44", "49", "1"):
            if digits.startswith(cc):
                return digits[len(cc) :]
    if digits.startswith("86") and len(digits) == 13:
        return digits[2:]
    return digits.lstrip("0")


# --- determinism --------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(demo: GenerateSummary, tmp_path: Path) -> None:
    again = generate(tmp_path, customers=CUSTOMERS, seed=SEED)
    assert again.files == demo.files
    first, second = _files(demo.out_dir), _files(tmp_path)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_another_seed_gives_other_data(demo: GenerateSummary, tmp_path: Path) -> None:
    generate(tmp_path, customers=CUSTOMERS, seed=SEED + 1)
    for name in ("events/appliances.jsonl", "crm/contacts.csv", "truth/identities.csv"):
        assert (tmp_path / name).read_bytes() != (demo.out_dir / name).read_bytes()


def test_progress_is_reported_up_to_the_total(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    summary = generate(
        tmp_path, customers=12, seed=3, on_progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (12, 12)
    assert summary.events > 0
    assert not list(tmp_path.glob(".spill-*"))  # the temporary sort files are gone


# --- formats ------------------------------------------------------------------------------


def test_every_event_is_a_segment_message(events: dict[str, list[dict[str, Any]]]) -> None:
    message_ids: set[str] = set()
    total = 0
    for name, messages in events.items():
        assert messages, name
        last = ""
        for m in messages:
            assert m["type"] in SEGMENT_TYPES
            assert m.get("userId") or m.get("anonymousId")
            for key in ("timestamp", "originalTimestamp", "sentAt"):
                value = m[key]
                assert isinstance(value, str) and value.endswith("Z")
                assert datetime.fromisoformat(value).utcoffset() is not None
            if m["type"] == "track":
                assert m["event"]
            if m["type"] in ("page", "screen"):
                assert m["name"]
            assert m["context"]["library"]["name"]
            assert m["timestamp"] >= last  # each file is in time order
            last = m["timestamp"]
            message_ids.add(m["messageId"])
            total += 1
    assert len(message_ids) == total


def test_events_cover_the_promised_calls(events: dict[str, list[dict[str, Any]]]) -> None:
    seen = {(m["type"], m.get("event")) for ms in events.values() for m in ms}
    for event in (
        "Ad Clicked", "Product Viewed", "Product Added", "Order Completed", "Whitepaper Downloaded",
        "Summit Registered", "Summit Checked In", "Demo Requested", "Lead Assigned",
        "Sales Contacted", "WeChat Followed", "WeChat Menu Clicked", "Ticket Created",
    ):  # fmt: skip
        assert ("track", event) in seen, event
    for kind in ("page", "screen", "identify", "alias", "group"):
        assert kind in {t for t, _ in seen}, kind
    industrial = events["events/industrial.jsonl"]
    assert any(m["type"] == "page" and m["properties"]["path"] == "/pricing" for m in industrial)
    sources = {
        m["context"]["campaign"]["source"]
        for ms in events.values()
        for m in ms
        if "campaign" in m["context"]
    }
    assert sources >= {"baidu", "wechat", "douyin", "linkedin", "newsletter"}


def test_crm_exports_use_their_encodings(demo: GenerateSummary) -> None:
    contacts = (demo.out_dir / "crm/contacts.csv").read_bytes()
    assert contacts.startswith(b"\xef\xbb\xbf")
    companies = (demo.out_dir / "crm/companies.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        companies.decode("utf-8")
    text = companies.decode("gb18030")
    assert text.startswith("客户编号,公司名称")
    assert "有限公司" in text


def test_manifest_counts_match_the_files(demo: GenerateSummary, manifest: dict[str, Any]) -> None:
    listed = {f["path"]: f["records"] for f in manifest["files"]}
    assert listed == demo.files
    assert manifest["seed"] == SEED and manifest["customers"] == CUSTOMERS
    assert manifest["group"]["name_zh"] == "星河集团"
    assert [u["code"] for u in manifest["units"]] == ["appliances", "industrial", "service"]
    for name, count in demo.files.items():
        path = demo.out_dir / name
        if name.endswith(".jsonl"):
            assert len(_lines(path)) == count, name
        else:
            encoding = FILES[name][0]
            with path.open(encoding=encoding, newline="") as f:
                assert sum(1 for _ in csv.reader(f)) - 1 == count, name
    assert demo.events == sum(n for name, n in demo.files.items() if name.startswith("events/"))
    assert len(manifest["identity_mess"]) >= 7
    assert all(m["en"] and m["zh"] for m in manifest["identity_mess"])


# --- ground truth and the identity mess -----------------------------------------------------


def test_truth_covers_every_event_identifier(
    events: dict[str, list[dict[str, Any]]], truth: list[dict[str, str]]
) -> None:
    known = {(r["source"], r["identifier_type"], r["identifier_value"]) for r in truth}
    for name, messages in events.items():
        for m in messages:
            if m.get("userId"):
                assert (name, "user_id", m["userId"]) in known
            if m.get("anonymousId"):
                assert (name, "anonymous_id", m["anonymousId"]) in known
            device = m["context"].get("device")
            if device:
                assert (name, "device_id", device["id"]) in known


def test_truth_covers_crm_pos_and_tickets(
    demo: GenerateSummary, truth: list[dict[str, str]]
) -> None:
    keys = {(r["source"], r["record_key"]) for r in truth}
    with (demo.out_dir / "crm/contacts.csv").open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            assert ("crm/contacts.csv", row["Contact ID"]) in keys
    with (demo.out_dir / "service/tickets.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            assert ("service/tickets.csv", row["ticket_no"]) in keys
    with (demo.out_dir / "pos/orders.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["member_no"] or row["phone"]:
                assert ("pos/orders.csv", row["order_no"]) in keys


def test_a_person_has_one_phone_in_several_formats(truth: list[dict[str, str]]) -> None:
    formats: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in truth:
        if r["identifier_type"] == "phone":
            formats[(r["person_id"], _national(r["identifier_value"]))].add(r["identifier_value"])
    assert max(len(v) for v in formats.values()) >= 2


def test_a_switchboard_is_shared_by_several_people(truth: list[dict[str, str]]) -> None:
    people: dict[str, set[str]] = defaultdict(set)
    for r in truth:
        if r["identifier_type"] == "phone":
            people[_national(r["identifier_value"])].add(r["person_id"])
    assert max(len(v) for v in people.values()) >= 3


def test_a_household_shares_a_device(truth: list[dict[str, str]]) -> None:
    people: dict[str, set[str]] = defaultdict(set)
    for r in truth:
        if r["identifier_type"] in ("anonymous_id", "device_id"):
            people[r["identifier_value"]].add(r["person_id"])
    assert max(len(v) for v in people.values()) >= 2


def test_junk_emails_and_messy_case(truth: list[dict[str, str]]) -> None:
    junk: dict[str, set[str]] = defaultdict(set)
    messy = 0
    for r in truth:
        if r["identifier_type"] == "email":
            value = r["identifier_value"]
            junk[value.strip().lower()].add(r["person_id"])
            messy += value != value.strip().lower()
    assert max(len(v) for v in junk.values()) >= 2
    assert messy > 0


def test_wechat_openid_in_one_unit_and_unionid_in_another(truth: list[dict[str, str]]) -> None:
    openid_in_appliances = {
        r["person_id"]
        for r in truth
        if r["source"] == "events/appliances.jsonl" and r["identifier_type"] == "wechat_openid"
    }
    unionid_in_service = {
        r["person_id"]
        for r in truth
        if r["source"] == "events/service.jsonl" and r["identifier_type"] == "wechat_unionid"
    }
    assert not any(
        r["identifier_type"] == "wechat_unionid" and r["source"] == "events/appliances.jsonl"
        for r in truth
    )
    assert openid_in_appliances & unionid_in_service


# --- the hand-off from marketing to sales ---------------------------------------------------


def test_about_a_third_of_leads_are_followed_up(
    manifest: dict[str, Any], events: dict[str, list[dict[str, Any]]]
) -> None:
    ratio = manifest["lead_followup_ratio"]
    assert 0.25 <= ratio <= 0.45
    journeys = manifest["journeys"]
    industrial = events["events/industrial.jsonl"]
    assigned = {m["userId"] for m in industrial if m.get("event") == "Lead Assigned"}
    demo_requests = {m["userId"] for m in industrial if m.get("event") == "Demo Requested"}
    assert len(assigned) == journeys["leads_followed_up"]
    assert len(demo_requests) <= journeys["leads"]
    assert journeys["leads_followed_up"] / journeys["leads"] == pytest.approx(ratio, abs=1e-3)


def test_everything_happens_in_the_period(
    demo: GenerateSummary, events: dict[str, list[dict[str, Any]]]
) -> None:
    for messages in events.values():
        assert "2026-01-01" <= messages[0]["timestamp"] <= messages[-1]["timestamp"] < "2026-10"
    with (demo.out_dir / "pos/orders.csv").open(encoding="utf-8", newline="") as f:
        times = [row["order_time"] for row in csv.DictReader(f)]
    assert all(re.fullmatch(r"2026-0\d-\d\d \d\d:\d\d:\d\d", t) for t in times)  # Beijing time
