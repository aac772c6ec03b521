"""The sales pages in a real browser, on the shared demo: the industrial unit's sales rep
sees their leads, claims one from the pool and marks one contacted; the unit's sales manager
sees the team board, toggles a rep's duty and opens the funnel chart. On a desktop and a
phone; any console error, failed request or unexpected error status fails the test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from oneloop.core.clock import SystemClock
from oneloop.core.context import system_context
from oneloop.demo.load import role_user_email
from oneloop.demo.sales import UNIT, work_leads
from oneloop.governance import users
from oneloop.governance.service import unit_row
from oneloop.governance.signin import context_of
from oneloop.profiles.models import ProfileUnitRow
from oneloop.sales import leads
from oneloop.sales.models import LeadRow
from tests.web.conftest import PHONE, Demo, Watch, screenshot, sign_in_page

pytestmark = pytest.mark.browser

Page = Any  # playwright's Page
REP = role_user_email("sales_rep", UNIT)
MANAGER = role_user_email("sales_manager", UNIT)


@dataclass(frozen=True)
class Story:
    to_call: str  # the rep's lead, assigned and not yet contacted
    in_pool: str  # a lead the rep returned to the pool, for the claim


@pytest.fixture(scope="module")
def story(demo: Demo) -> Story:
    """The leads the worker made, worked for some days (``work_leads``: the funnel has depth),
    then a few customers of the unit imported as leads by the manager, as from a CRM; two of
    them handed to the rep, who returns one to the pool. All through the sales services."""
    with demo.sessions() as session:
        bu_id = unit_row(session, UNIT).id
        manager = users.user_in_unit(session, MANAGER, bu_id)
        rep = users.user_in_unit(session, REP, bu_id)
        assert manager is not None and rep is not None
        work_leads(session, system_context())
        boss = context_of(session, manager.id, bu_id, clock=SystemClock(), origin="test")
        seller = context_of(session, rep.id, bu_id, clock=SystemClock(), origin="test")
        with_leads = set(session.scalars(select(LeadRow.profile_id).where(LeadRow.bu_id == bu_id)))
        customers = [
            p
            for p in session.scalars(
                select(ProfileUnitRow.profile_id)
                .where(ProfileUnitRow.bu_id == bu_id)
                .order_by(ProfileUnitRow.profile_id)
            )
            if p not in with_leads
        ]
        assert len(customers) >= 2, "the demo has too few customers in the unit"
        made = [
            leads.create_lead(session, boss, p, "crm_import", campaign="2026 智能制造峰会")
            for p in customers[:6]
        ]
        to_call, in_pool = made[0].id, made[1].id
        for lead_id in (to_call, in_pool):
            leads.reassign(session, boss, lead_id, REP)
        leads.return_to_pool(session, seller, in_pool, "客户在华南 · the customer is in the south")
        session.commit()
    return Story(to_call, in_pool)


def test_a_rep_sees_their_leads_claims_from_the_pool_and_marks_one_contacted(
    console_page: tuple[Page, Watch], demo: Demo, story: Story
) -> None:
    page, _ = console_page
    sign_in_page(page, REP, demo.role_password)
    assert page.locator("nav a[href='/reports/sales']").count() == 0  # not a rep's page
    page.click("nav a[href='/sales']")
    page.wait_for_selector(f"#leads tr[data-lead='{story.to_call}']")
    row = page.inner_text(f"tr[data-lead='{story.to_call}']")
    assert "2026 智能制造峰会" in row and "Assigned" in row
    assert page.locator(".sales-tabs a[href='/sales/board']").count() == 0
    screenshot(page, "sales-my-leads")

    page.click(".sales-tabs a[href='/sales/pool']")
    page.wait_for_selector(f"#pool tr[data-lead='{story.in_pool}']")
    screenshot(page, "sales-pool")
    page.click(f"#pool tr[data-lead='{story.in_pool}'] button.claim")
    page.wait_for_url(re.compile(rf"/sales/leads/{story.in_pool}$"))
    assert page.inner_text("#lead-status") == "Assigned"
    assert (
        page.locator("#lead-routing tr[data-routing='strategy']")
        .inner_text()
        .endswith("Claimed from the pool")
    )
    screenshot(page, "sales-lead-claimed")

    page.click(".sales-tabs a[href='/sales']")
    page.click(f"tr[data-lead='{story.to_call}'] button.mark-contacted")
    page.wait_for_selector(f"tr[data-lead='{story.to_call}'][data-status='contacted']")
    page.goto(f"/sales/leads/{story.to_call}?lang=zh-CN")
    assert page.inner_text("#lead-status").startswith("已联系")
    assert page.locator("#lead-history li[data-kind='contacted']").count() == 1
    screenshot(page, "sales-lead-zh")

    page.set_viewport_size(PHONE)
    page.goto("/sales")
    page.wait_for_selector(f"tr[data-lead='{story.to_call}']")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "sales-my-leads-390", full_page=False)
    page.goto(f"/sales/leads/{story.to_call}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "sales-lead-390", full_page=False)


def test_a_manager_sees_the_board_toggles_duty_and_reads_the_funnel(
    console_page: tuple[Page, Watch], demo: Demo, story: Story
) -> None:
    page, _ = console_page
    sign_in_page(page, MANAGER, demo.role_password)
    page.click("nav a[href='/sales']")
    page.wait_for_selector(f"#leads tr[data-lead='{story.in_pool}']")  # the unit's leads
    page.click(".sales-tabs a[href='/sales/board']")
    page.wait_for_selector("#team-east_industrial")
    rep_row = f"#team-east_industrial tr[data-rep='{REP}']"
    assert "On duty" in page.inner_text(rep_row)
    screenshot(page, "sales-board")
    page.click(f"{rep_row} button.duty-toggle")
    page.wait_for_selector(f"{rep_row} .pill.off-duty")
    page.click(f"{rep_row} button.duty-toggle")  # back on duty: other tests route to them
    page.wait_for_selector(f"{rep_row} .pill.on-duty")

    page.click(".sales-tabs a[href='/sales/sla']")
    page.wait_for_selector("#breached")
    screenshot(page, "sales-sla")

    page.click("nav a[href='/reports/sales']")
    page.wait_for_selector("#chart-funnel canvas")
    page.wait_for_selector("#chart-sources canvas")
    assert "2026 智能制造峰会" in page.inner_text("#funnel-table")
    screenshot(page, "sales-funnel")
    page.set_viewport_size(PHONE)
    page.reload()
    page.wait_for_selector("#chart-funnel canvas")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "sales-funnel-390", full_page=False)
