"""The console in a real browser, on the shared demo: what a marketer and a compliance officer
do, in both languages, on a desktop and a phone. Each test fails on any console error, failed
request or unexpected error status (``console_page``), and leaves screenshots behind."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from oneloop.core.context import system_context
from oneloop.demo.load import role_user_email
from oneloop.governance import service as governance
from oneloop.governance import users
from oneloop.governance.schemas import UserIn
from oneloop.identity.models import IdentifierRow
from oneloop.profiles.models import ProfileUnitRow
from tests.web.conftest import PHONE, Demo, Watch, screenshot, sign_in_page

pytestmark = pytest.mark.browser

Page = Any  # playwright's Page


def _phone_in(demo: Demo, unit: str) -> tuple[str, str]:
    """A Chinese mobile number of a customer who touched ``unit``, and its profile id."""
    with demo.sessions() as session:
        bu_id = governance.unit_row(session, unit).id
        found = session.execute(
            select(IdentifierRow.value, IdentifierRow.profile_id)
            .join(ProfileUnitRow, ProfileUnitRow.profile_id == IdentifierRow.profile_id)
            .where(
                IdentifierRow.type == "phone",
                IdentifierRow.value.startswith("+861"),
                ProfileUnitRow.bu_id == bu_id,
            )
            .order_by(IdentifierRow.value)
            .limit(1)
        ).one()
    return found[0], found[1]


def _find_by_phone(page: Page, national: str) -> None:
    page.click("nav a[href='/customers']")
    page.select_option("#f-type", "phone")
    page.fill("#f-q", national)
    page.click("#search-button")
    page.wait_for_selector("#results")


def test_marketer_finds_a_customer_by_phone_and_sees_only_masked_values(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    e164, profile_id = _phone_in(demo, "appliances")
    national = e164.removeprefix("+86")
    page.goto("/login")
    screenshot(page, "login")
    sign_in_page(page, role_user_email("marketer", "appliances"), demo.role_password)
    page.wait_for_selector("#chart-events canvas")
    page.wait_for_selector("#chart-consent canvas")
    assert page.locator("nav a[href='/audit']").count() == 0  # not a marketer's page
    screenshot(page, "dashboard")

    _find_by_phone(page, national)
    masked = f"{national[:3]}****{national[-4:]}"
    assert masked in page.inner_text("#results")
    screenshot(page, "customers-search")
    page.click(f"a.profile-link[href='/customers/{profile_id}']")
    page.wait_for_selector("#golden")
    text = page.inner_text("main")
    assert national not in text and masked in text
    assert page.locator("#reveal").count() == 0 and page.locator("#masked-note").is_visible()
    title = page.get_attribute("#golden td[data-field='phone']", "title")
    assert title and "From " in title  # hover shows the value's source and time
    page.wait_for_selector("#chart-scores canvas")
    screenshot(page, "customer-360")

    page.select_option("#f-department", "marketing")
    with page.expect_response(lambda r: f"/customers/{profile_id}/timeline?" in r.url):
        page.click("#timeline-filter")  # htmx: the timeline alone is swapped
    # (expect, not wait_for_function: the console's CSP forbids the eval that polls with)
    others = page.locator("#timeline-entries li.entry:not([data-department='marketing'])")
    expect(others).to_have_count(0)
    departments = page.eval_on_selector_all(
        "#timeline-entries li.entry", "items => items.map(i => i.dataset.department)"
    )
    assert departments and set(departments) == {"marketing"}
    assert page.url.endswith(f"/customers/{profile_id}")  # the page itself stayed


def test_compliance_officer_reveals_clear_values_and_the_read_is_audited(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    e164, profile_id = _phone_in(demo, "appliances")
    national = e164.removeprefix("+86")
    sign_in_page(page, role_user_email("compliance_officer", "galaxy"), demo.role_password)
    page.goto(f"/customers/{profile_id}")
    assert national not in page.inner_text("#identifiers")  # masked until revealed
    page.click("#reveal")
    page.wait_for_selector("#revealed-note")
    assert e164 in page.inner_text("#identifiers")
    screenshot(page, "customer-360-revealed")

    page.click("nav a[href='/audit']")
    page.fill("#f-action", "pii.read")
    page.fill("#f-object_id", profile_id)
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("#audit-entries tr[data-action='pii.read']")
    row = page.inner_text("#audit-entries tbody tr:first-child")
    assert "phone" in row and profile_id in row
    screenshot(page, "audit")


def test_the_language_switch_renders_chinese_and_is_remembered(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    sign_in_page(page, role_user_email("analyst", "galaxy"), demo.role_password)
    assert page.inner_text("h1") == "Dashboard"
    page.click("#switch-lang")
    page.wait_for_selector("html[lang='zh-CN']")
    assert page.inner_text("h1") == "仪表盘"
    page.wait_for_selector("#chart-segments canvas")
    screenshot(page, "dashboard-zh")
    page.click("nav a[href='/customers']")
    assert page.inner_text("h1") == "客户"  # the cookie remembers the choice
    assert page.inner_text("#search-button") == "搜索"


def test_a_sign_in_with_a_wrong_password_says_so_on_the_form(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, watch = console_page
    page.goto("/login?lang=zh-CN")
    page.fill("#f-email", role_user_email("marketer", "service"))
    page.fill("#f-password", "not the password")
    watch.expect(401, "/login")
    page.click("#login-button")
    page.wait_for_selector("div.alert.error")
    assert "邮箱或密码错误" in page.inner_text("div.alert.error")
    screenshot(page, "login-failed-zh")


def test_on_a_phone_the_navigation_collapses_into_a_menu(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    page.set_viewport_size(PHONE)
    sign_in_page(page, role_user_email("marketer", "appliances"), demo.role_password)
    assert not page.is_visible("nav a[href='/customers']")
    screenshot(page, "dashboard-390", full_page=False)
    page.click("label.nav-button")
    assert page.is_visible("nav a[href='/customers']")
    _, profile_id = _phone_in(demo, "appliances")
    page.goto(f"/customers/{profile_id}")
    page.wait_for_selector("#timeline")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # nothing wider than the screen
    screenshot(page, "customer-360-390", full_page=False)


def test_a_user_of_two_units_switches_between_them(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    email = "two-units@galaxy.example.com"
    with demo.sessions() as session:
        ctx = system_context()
        if not users.user_exists(session, ctx, email):
            made = users.create_user(
                session,
                ctx,
                UserIn(
                    email=email,
                    display_name="两个事业部 Two units",
                    password=demo.role_password,
                    bu="appliances",
                    role="marketer",
                ),
            )
            users.grant(session, ctx, made.id, "industrial", "sales_rep")
            session.commit()
    sign_in_page(page, email, demo.role_password)
    assert page.eval_on_selector("#unit-select", "s => s.value") == "appliances"
    page.select_option("#unit-select", "industrial")  # console.js submits the form
    expect(page.locator("#unit-select")).to_have_value("industrial")
    assert page.locator("#tile-dead-letters").count() == 0  # a sales rep reads no sources
    screenshot(page, "dashboard-switched-unit")
