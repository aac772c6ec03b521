"""Governance pages through the app: users and roles (list, role matrix, new user with errors
beside the fields, grant, revoke and deactivate after a confirmation, custom roles), privacy
requests (deadlines, overdue, execute with the export as a download, reject), the data
dictionary (classification, editing as a new version) and the audit log's filters; each
with its refusals, another unit's data and hostile values. On the suite's fresh databases."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.clock import FixedClock
from oneloop.core.context import Context, system_context
from oneloop.governance import audit, dictionary, privacy, users
from oneloop.governance.models import AuditRow
from oneloop.governance.privacy_models import PrivacyRequestRow
from tests.factories import PASSWORD, make_group, make_user
from tests.governance.conftest import lookup
from tests.pipeline import Feed
from tests.web.conftest import csrf_of, sign_in

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _client(
    app: FastAPI, session: Session, ctx: Context, role: str, bu: str = "north"
) -> TestClient:
    email = f"{role}.{bu}@example.org"
    if not users.user_exists(session, ctx, email):
        make_user(session, ctx, email, bu=bu, role=role)
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    return sign_in(client, email, PASSWORD)


def _token(client: TestClient) -> str:
    return csrf_of(client.get("/").text)


@pytest.fixture
def person(feed: Feed, session: Session, ctx: Context) -> str:
    feed({"type": "identify", "userId": "u1", "traits": {"name": "张伟", "phone": "13800138000"}})
    return lookup(session, ctx, "user_id", "north:u1")


def _assert_no_inline_script(html: str) -> None:
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all("src=" in s or 'type="application/json"' in s for s in scripts)
    assert not re.search(r"\son[a-z]+=", html)


# --- users and roles ----------------------------------------------------------------------------


def test_a_unit_admin_lists_the_units_users_and_the_role_matrix(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    make_user(session, ctx, "li@north.example.org", bu="north", role="marketer")
    make_user(session, ctx, "wang@south.example.org", bu="south", role="marketer")
    admin = _client(app, session, ctx, "bu_admin")
    page = admin.get("/users")
    assert page.status_code == 200 and 'href="/users"' in page.text
    _assert_no_inline_script(page.text)
    assert "li@north.example.org" in page.text and "wang@south.example.org" not in page.text
    matrix = page.text.split('id="role-matrix"')[1]
    assert 'data-role="compliance_officer"' in matrix and 'data-role="group_admin"' in matrix
    row = matrix.split('data-permission="dictionary.manage"')[1].split("</tr>")[0]
    assert row.count('class="cell held"') == 2  # group admin (every permission), compliance
    assert 'href="/roles/new"' not in page.text  # a unit admin does not define roles
    assert _client(app, session, ctx, "marketer").get("/users").status_code == 403


def test_a_new_user_is_checked_beside_each_field_then_made(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    admin = _client(app, session, ctx, "bu_admin")
    form = admin.get("/users/new")
    assert form.status_code == 200 and 'id="f-email"' in form.text
    token = csrf_of(form.text)
    good = {"csrf_token": token, "email": "new@example.org", "display_name": "新人",
            "password": "a long enough password", "bu": "north", "role": "marketer"}  # fmt: skip
    bad = admin.post("/users/new", data={**good, "email": "not-an-email", "password": "short"})
    assert bad.status_code == 422
    assert 'id="f-email-error"' in bad.text and 'id="f-password-error"' in bad.text
    assert (
        'value="not-an-email"' in bad.text and "short" not in bad.text.split("f-password")[1][:200]
    )
    group_role = admin.post("/users/new", data={**good, "role": "group_admin"})
    assert group_role.status_code == 422 and 'id="f-role-error"' in group_role.text
    too_much = admin.post("/users/new", data={**good, "role": "compliance_officer"})
    assert too_much.status_code == 403 and 'id="f-role-error"' in too_much.text
    made = admin.post("/users/new", data=good, follow_redirects=False)
    assert made.status_code == 303
    user_page = admin.get(made.headers["location"])
    assert user_page.status_code == 200 and "new@example.org" in user_page.text
    twice = admin.post("/users/new", data=good)
    assert twice.status_code == 409 and "A user with this email already exists." in twice.text
    south = admin.post("/users/new", data={**good, "email": "s@example.org", "bu": "south"})
    assert south.status_code == 404  # another unit is unknown to a unit admin
    assert admin.post("/users/new", data={**good, "csrf_token": "x"}).status_code == 403


def test_roles_are_granted_and_revoked_and_a_user_deactivated_after_confirmations(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    li = make_user(session, ctx, "li@example.org", bu="north", role="marketer")
    group = _client(app, session, ctx, "group_admin", "galaxy")
    token = _token(group)
    granted = group.post(
        f"/users/{li.id}/grant",
        data={"csrf_token": token, "bu": "south", "role": "analyst"},
        follow_redirects=False,
    )
    assert granted.status_code == 303
    assert [m.bu_code for m in users.get_user(session, ctx, li.id).memberships] == [
        "north",
        "south",
    ]
    empty = group.post(f"/users/{li.id}/grant", data={"csrf_token": token, "bu": "south"})
    assert empty.status_code == 422 and 'id="f-role-error"' in empty.text
    revoke = f"/users/{li.id}/memberships/south/revoke"
    assert f'href="{revoke}"' in group.get(f"/users/{li.id}").text
    confirm = group.get(revoke)
    assert confirm.status_code == 200 and f'action="{revoke}"' in confirm.text
    assert group.post(revoke, data={"csrf_token": token}, follow_redirects=False).status_code == 303
    session.expire_all()
    assert [m.bu_code for m in users.get_user(session, ctx, li.id).memberships] == ["north"]
    assert group.get(revoke).status_code == 404  # no role there any more

    deactivate = f"/users/{li.id}/deactivate"
    assert group.get(deactivate).status_code == 200
    done = group.post(deactivate, data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    session.expire_all()
    assert not users.get_user(session, ctx, li.id).is_active
    again = group.post(f"/users/{li.id}/activate", data={"csrf_token": token})
    assert again.status_code == 200 and users.get_user(session, ctx, li.id).is_active
    actions = set(session.scalars(select(AuditRow.action).where(AuditRow.object_id == li.id)))
    assert {"user.role_granted", "user.role_revoked", "user.updated"} <= actions


def test_a_unit_admin_cannot_reach_another_units_user(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    wang = make_user(session, ctx, "wang@example.org", bu="south", role="marketer")
    admin = _client(app, session, ctx, "bu_admin")
    token = _token(admin)
    assert admin.get(f"/users/{wang.id}").status_code == 404
    assert admin.get(f"/users/{wang.id}/deactivate").status_code == 404
    refused = admin.post(f"/users/{wang.id}/deactivate", data={"csrf_token": token})
    assert refused.status_code == 404
    assert users.get_user(session, ctx, wang.id).is_active


def test_custom_roles_are_defined_changed_and_deleted_by_who_may(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    group = _client(app, session, ctx, "group_admin", "galaxy")
    token = _token(group)
    form = group.get("/roles/new")
    assert form.status_code == 200 and 'value="identity.match"' in form.text
    role = {"csrf_token": token, "code": "steward", "name_zh": "数据管家", "name_en": HOSTILE}
    none = group.post("/roles/new", data=role)
    assert none.status_code == 422 and 'id="f-permissions-error"' in none.text
    bad_code = group.post(
        "/roles/new", data={**role, "code": "Bad Code", "permissions": ["identity.read"]}
    )
    assert bad_code.status_code == 422 and 'id="f-code-error"' in bad_code.text
    made = group.post(
        "/roles/new",
        data={**role, "permissions": ["identity.read", "identity.match"]},
        follow_redirects=False,
    )
    assert made.status_code == 303
    page = group.get("/users").text
    assert 'data-role="steward"' in page and HOSTILE not in page and ESCAPED in page
    twice = group.post("/roles/new", data={**role, "permissions": ["identity.read"]})
    assert twice.status_code == 409 and 'id="f-code-error"' in twice.text
    edited = group.post(
        "/roles/steward/edit",
        data={"csrf_token": token, "name_zh": "管家", "name_en": "Steward",
              "permissions": ["identity.read", "identity.match", "identity.unmerge"]},
        follow_redirects=False,
    )  # fmt: skip
    assert edited.status_code == 303
    assert users.get_role(session, ctx, "steward").permissions == [
        "identity.match",
        "identity.read",
        "identity.unmerge",
    ]
    assert group.get("/roles/marketer/edit").status_code == 422  # built-in roles are fixed
    assert group.get("/roles/steward/delete").status_code == 200
    gone = group.post("/roles/steward/delete", data={"csrf_token": token}, follow_redirects=False)
    assert gone.status_code == 303
    session.expire_all()
    assert users.role_permissions(session, "steward") is None
    admin = _client(app, session, ctx, "bu_admin")
    assert admin.get("/roles/new").status_code == 403


# --- privacy requests ---------------------------------------------------------------------------


def test_an_officer_logs_an_access_request_and_sees_its_deadline(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    officer = _client(app, session, ctx, "compliance_officer", "galaxy")
    page = officer.get("/privacy")
    assert page.status_code == 200 and 'href="/privacy"' in page.text
    _assert_no_inline_script(page.text)
    token = csrf_of(page.text)
    form = {"csrf_token": token, "kind": "access", "profile_id": person, "channel": "email",
            "note": HOSTILE}  # fmt: skip
    made = officer.post("/privacy", data=form, follow_redirects=False)
    assert made.status_code == 303
    row = session.scalars(select(PrivacyRequestRow)).one()
    listed = officer.get(made.headers["location"])
    line = listed.text.split(f'id="request-{row.id}"')[1].split("</tr>")[0]
    assert "just-created" in listed.text.split(f'id="request-{row.id}"')[1][:200]
    assert person in line and "days left" in line and "overdue" not in line
    assert row.due_at.date().isoformat() in line  # the deadline, one month on
    assert HOSTILE not in listed.text and ESCAPED in line
    unknown = officer.post("/privacy", data={**form, "profile_id": "01NOBODY"})
    assert unknown.status_code == 404 and 'id="f-profile_id-error"' in unknown.text
    bad = officer.post("/privacy", data={**form, "kind": "deletion"})
    assert bad.status_code == 422 and 'id="f-kind-error"' in bad.text
    zh = officer.get("/privacy?lang=zh-CN").text
    assert "隐私请求" in zh and "登记请求" in zh and "天" in zh.split(f'id="request-{row.id}"')[1]
    assert _client(app, session, ctx, "marketer").get("/privacy").status_code == 403


def test_an_overdue_request_stands_out_and_the_filter_finds_it(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    past = system_context(FixedClock(datetime.now(UTC) - timedelta(days=45)))
    late = privacy.create_request(session, past, "erasure", person, "letter", "L-1")
    now = replace(ctx, clock=FixedClock(datetime.now(UTC)))
    fresh = privacy.create_request(session, now, "access", person, "web", "W-1")
    session.commit()
    officer = _client(app, session, ctx, "compliance_officer", "galaxy")
    page = officer.get("/privacy").text
    assert re.search(rf'id="request-{late.id}"[^>]*class="overdue', page)
    assert not re.search(rf'id="request-{fresh.id}"[^>]*class="overdue', page)
    overdue = officer.get("/privacy?overdue=1").text
    assert f'id="request-{late.id}"' in overdue and f'id="request-{fresh.id}"' not in overdue


def test_executing_an_access_request_downloads_the_export_once(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    row = privacy.create_request(session, ctx, "access", person, "web", "")
    session.commit()
    officer = _client(app, session, ctx, "compliance_officer", "galaxy")
    path = f"/privacy/{row.id}/execute"
    assert f'href="{path}"' in officer.get("/privacy").text
    confirm = officer.get(path)
    assert confirm.status_code == 200 and f'action="{path}"' in confirm.text
    token = csrf_of(confirm.text)
    export = officer.post(path, data={"csrf_token": token})
    assert export.status_code == 200 and export.headers["content-type"] == "application/json"
    assert export.headers["content-disposition"] == (
        f'attachment; filename="privacy-access-{row.id}.json"'
    )
    assert export.headers["cache-control"] == "no-store"
    document = json.loads(export.text)
    assert document["profile_id"] == person and document["identifiers"]
    session.expire_all()
    assert session.get(PrivacyRequestRow, row.id).status == "completed"  # type: ignore[union-attr]
    again = officer.post(path, data={"csrf_token": token})
    assert again.status_code == 409 and "already completed" in again.text


def test_a_request_is_rejected_with_a_reason_and_a_unit_cannot_execute(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    theirs = privacy.create_request(session, ctx, "access", person, "web", "HQ-1")
    session.commit()
    unit = _client(app, session, ctx, "compliance_officer")  # of north, where the person is
    form = {"csrf_token": _token(unit), "kind": "erasure", "profile_id": person,
            "channel": "phone", "note": "T-9"}  # fmt: skip
    assert unit.post("/privacy", data=form, follow_redirects=False).status_code == 303
    row = session.scalars(select(PrivacyRequestRow).where(PrivacyRequestRow.id != theirs.id)).one()
    page = unit.get("/privacy").text
    assert f'id="request-{row.id}"' in page and f'id="request-{theirs.id}"' not in page
    assert f'href="/privacy/{row.id}/execute"' not in page and "executed by the group" in page
    token = csrf_of(page)
    refused = unit.post(f"/privacy/{row.id}/execute", data={"csrf_token": token})
    assert refused.status_code == 403
    assert unit.get(f"/privacy/{theirs.id}/reject").status_code == 404
    reject = f"/privacy/{row.id}/reject"
    missing = unit.post(reject, data={"csrf_token": token, "reason": ""})
    assert missing.status_code == 422 and 'id="f-reason-error"' in missing.text
    done = unit.post(
        reject,
        data={"csrf_token": token, "reason": "identity not verified"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    session.expire_all()
    stored = session.get(PrivacyRequestRow, row.id)
    assert stored is not None and stored.status == "rejected"
    assert "identity not verified" in unit.get("/privacy").text


# --- the data dictionary ------------------------------------------------------------------------


def test_the_dictionary_lists_fields_with_their_classification(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    officer = _client(app, session, ctx, "compliance_officer", "galaxy")
    page = officer.get("/dictionary")
    assert page.status_code == 200 and 'href="/dictionary"' in page.text
    _assert_no_inline_script(page.text)
    assert re.search(r'data-key="phone" data-classification="pii"', page.text)
    assert 'href="/dictionary/phone#edit"' in page.text
    sensitive = officer.get("/dictionary?classification=sensitive_pii").text
    classes = set(re.findall(r'data-classification="(\w+)"', sensitive))
    assert classes == {"sensitive_pii"}
    marketer = _client(app, session, ctx, "marketer")
    read = marketer.get("/dictionary")
    assert read.status_code == 200 and "#edit" not in read.text  # everyone reads, few edit
    assert 'href="/dictionary"' not in read.text  # not in a marketer's menu
    entry = marketer.get("/dictionary/phone")
    assert entry.status_code == 200 and 'id="entry-form"' not in entry.text
    assert marketer.get("/dictionary/no_such_key").status_code == 404


def test_an_officer_edits_an_entry_as_a_new_version(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    before = dictionary.get_entry(session, ctx, "phone")
    officer = _client(app, session, ctx, "compliance_officer", "galaxy")
    form = officer.get("/dictionary/phone")
    assert form.status_code == 200 and 'id="entry-form"' in form.text
    token = csrf_of(form.text)
    values = {"csrf_token": token, "name_zh": before.name_zh, "name_en": before.name_en,
              "description_zh": before.description_zh, "description_en": HOSTILE,
              "data_type": before.data_type, "classification": "pii",
              "pii_kind": before.pii_kind or "", "note": "clearer"}  # fmt: skip
    bad = officer.post("/dictionary/phone", data={**values, "classification": "internal"})
    assert bad.status_code == 422 and 'id="f-pii_kind-error"' in bad.text
    assert 'value="internal" selected' in bad.text  # the form keeps what was chosen
    money = officer.post("/dictionary/phone", data={**values, "currency": "RMB"})
    assert money.status_code == 422 and 'id="f-currency-error"' in money.text
    done = officer.post("/dictionary/phone", data=values, follow_redirects=False)
    assert done.status_code == 303
    after = dictionary.get_entry(session, ctx, "phone")
    assert after.version == before.version + 1 and after.lineage == before.lineage
    page = officer.get("/dictionary/phone").text
    assert HOSTILE not in page and ESCAPED in page and "clearer" in page
    assert f'data-version="{after.version}"' in page


def test_a_unit_officer_cannot_edit_the_groups_entry(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    unit = _client(app, session, ctx, "compliance_officer")
    page = unit.get("/dictionary/phone")
    assert page.status_code == 200 and 'id="entry-form"' not in page.text
    refused = unit.post(
        "/dictionary/phone",
        data={"csrf_token": csrf_of(page.text), "name_zh": "x", "name_en": "x",
              "data_type": "string", "classification": "pii"},
    )  # fmt: skip
    assert refused.status_code == 403
    assert dictionary.get_entry(session, ctx, "phone").version == 1


# --- the audit log's filters --------------------------------------------------------------------


def test_the_audit_log_filters_by_actor_object_type_and_days(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    officer = _client(app, session, ctx, "compliance_officer", "galaxy")
    audit.record(session, ctx, "role.created", "role", HOSTILE)
    session.commit()
    today = datetime.now(UTC).date().isoformat()
    everyone = officer.get("/audit").text
    assert 'data-action="auth.login"' in everyone and 'data-action="role.created"' in everyone
    mine = officer.get("/audit", params={"actor": "system", "object_type": "role"}).text
    assert set(re.findall(r'data-action="([\w.]+)"', mine)) == {"role.created"}
    assert HOSTILE not in mine and ESCAPED in mine
    logins = officer.get("/audit", params={"action": "auth.login", "from": today, "to": today})
    assert 'data-action="auth.login"' in logins.text  # today's sign-in, in the unit's days
    old = officer.get("/audit", params={"action": "auth.login", "to": "2020-01-01"}).text
    assert 'data-action="auth.login"' not in old
    bad = officer.get("/audit", params={"from": "yesterday"})
    assert bad.status_code == 422 and 'id="f-from-error"' in bad.text
    assert 'value="yesterday"' in bad.text
