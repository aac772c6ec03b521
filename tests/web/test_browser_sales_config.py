"""The sales set-up pages in a real browser, on the shared demo: the industrial unit's admin
opens the settings, adds a trigger row and saves them unchanged, reads the teams, and uploads
the shipped routing table as a new version; then the three pages on a phone. Any console
error, failed request or unexpected error status fails the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from oneloop.demo.load import role_user_email
from oneloop.demo.sales import UNIT
from oneloop.sales import config
from tests.web.conftest import PHONE, Demo, Watch, screenshot, sign_in_page

pytestmark = pytest.mark.browser

Page = Any  # playwright's Page
ADMIN = role_user_email("bu_admin", UNIT)
SHIPPED = Path(config.__file__).parent / "dmn" / "industrial_routing.dmn"


def _fits(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_an_admin_edits_settings_reads_teams_and_uploads_the_routing_table(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    sign_in_page(page, ADMIN, demo.role_password)

    page.click("#nav a[href='/sales/settings']")
    expect(page.locator("#triggers")).to_be_visible()
    expect(page.locator("#nav a[href='/sales/settings']")).to_have_attribute("aria-current", "page")
    _fits(page, 1280)  # the menu's three new entries fit a desktop
    rows = page.locator(".trigger-row").count()
    page.click("#add-trigger")
    expect(page.locator(".trigger-row")).to_have_count(rows + 1)
    screenshot(page, "sales-settings")
    page.click("#save-settings")
    expect(page.locator("#saved")).to_be_visible()
    expect(page.locator(".trigger-row")).to_have_count(rows)  # the empty rows were not saved

    page.click(".sales-tabs a[href='/sales/teams']")
    expect(page.locator("#team-east_industrial")).to_be_visible()
    expect(page.locator("#team-east_industrial [data-rep]").first).to_be_visible()
    screenshot(page, "sales-teams")

    page.click(".sales-tabs a[href='/sales/routing']")
    version = int(page.inner_text("#table-version"))
    page.set_input_files("#f-table", str(SHIPPED))
    page.click("#upload-table")
    expect(page.locator("#uploaded")).to_be_visible()
    expect(page.locator("#table-version")).to_have_text(str(version + 1))
    expect(page.locator("#rules-table tbody tr").first).to_be_visible()
    screenshot(page, "sales-routing")

    page.set_viewport_size(PHONE)
    for path, name in (
        ("/sales/settings", "sales-settings-390"),
        ("/sales/teams", "sales-teams-390"),
        ("/sales/routing", "sales-routing-390"),
    ):
        page.goto(path)
        expect(page.locator(".sales-tabs")).to_be_visible()
        _fits(page, PHONE["width"])
        screenshot(page, name, full_page=False)
