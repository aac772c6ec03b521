"""Identity review and governance pages in a real browser, on the shared demo: a compliance
officer logs an access request and sees its deadline, then reads the data dictionary; an
admin reads the role matrix; a data steward works the review queue; and the privacy page on
a phone. Each test fails on any console error, failed request or unexpected error status
(``console_page``) and leaves screenshots behind."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from oneloop.core.context import system_context
from oneloop.demo.load import role_user_email
from oneloop.governance import service as governance
from oneloop.governance import users
from oneloop.governance.schemas import RoleIn, UserIn
from oneloop.identity.models import ReviewRow
from oneloop.profiles.models import ProfileUnitRow
from tests.web.conftest import PHONE, Demo, Watch, screenshot, sign_in_page

pytestmark = pytest.mark.browser

Page = Any  # playwright's Page
STEWARD_EMAIL = "steward.appliances@galaxy.example.com"


def _customers_of(demo: Demo, unit: str, count: int) -> list[str]:
    """Profiles that touched ``unit``, from the end of the list (other scenarios take the
    first phone numbers)."""
    with demo.sessions() as session:
        bu_id = governance.unit_row(session, unit).id
        return list(
            session.scalars(
                select(ProfileUnitRow.profile_id)
                .where(ProfileUnitRow.bu_id == bu_id)
                .order_by(ProfileUnitRow.profile_id.desc())
                .limit(count)
            )
        )


def _steward_with_a_pair(demo: Demo) -> str:
    """A data steward of appliances (a custom role with identity.match) and one pair in the
    queue, as the matcher would have left it; the review's id."""
    left, right = sorted(_customers_of(demo, "appliances", 2))
    with demo.sessions() as session:
        ctx = system_context()
        if users.role_permissions(session, "data_steward") is None:
            users.create_role(
                session,
                ctx,
                RoleIn(
                    code="data_steward",
                    name_zh="数据管家",
                    name_en="Data steward",
                    permissions=["identity.read", "identity.match", "identity.unmerge",
                                 "profiles.read"],
                ),
            )  # fmt: skip
        if not users.user_exists(session, ctx, STEWARD_EMAIL):
            users.create_user(
                session,
                ctx,
                UserIn(
                    email=STEWARD_EMAIL,
                    display_name="数据管家 Steward",
                    password=demo.role_password,
                    bu="appliances",
                    role="data_steward",
                ),
            )
        row = session.scalar(
            select(ReviewRow).where(ReviewRow.left_id == left, ReviewRow.right_id == right)
        )
        if row is None:
            row = ReviewRow(
                id="01BROWSERREVIEW00000000001",
                left_id=left,
                right_id=right,
                match_weight=7.6,
                match_probability=0.81,
                comparisons={
                    "name": {"level": "pinyin similar", "match_weight": 4.2},
                    "city": {"level": "same city", "match_weight": 1.9},
                    "phone": {"level": "else", "match_weight": -2.4},
                },
                model_version="demo",
                status="open",
                created_at=ctx.clock.now(),
            )
            session.add(row)
        session.commit()
        return row.id


def test_a_compliance_officer_logs_an_access_request_and_sees_its_deadline(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    customer = _customers_of(demo, "industrial", 1)[0]
    sign_in_page(
        page,
        role_user_email("compliance_officer", "galaxy"),
        demo.role_password,
        at="/login?lang=en",
    )
    page.click("nav a[href='/privacy']")
    page.wait_for_selector("#request-form")
    page.select_option("#f-kind", "access")
    page.fill("#f-profile_id", customer)
    page.select_option("#f-channel", "email")
    page.fill("#f-note", "ticket 4711")
    page.click("#log-request")
    row = page.wait_for_selector("#privacy-requests tr.just-created")
    assert customer in row.inner_text()
    deadline = row.query_selector("td.deadline")
    assert deadline is not None and re.search(r"\d", deadline.inner_text())
    assert "days left" in deadline.inner_text()
    screenshot(page, "privacy")

    request_id = row.get_attribute("data-request")
    page.click(f"#request-{request_id} a.execute-link")
    page.wait_for_selector("#confirm")
    assert "not kept" in page.inner_text("#confirm")
    # Confirming answers with the export as a download, which chromium reports as an aborted
    # navigation (the harness counts it as a failed request): test_governance_pages.py
    # checks the file itself.
    page.click("#confirm a.button.secondary")
    page.wait_for_selector(f"#request-{request_id}")

    page.click("nav a[href='/dictionary']")
    page.select_option("#f-classification", "pii")
    page.click("#dictionary-filter button[type=submit]")
    page.wait_for_selector("#dictionary-entries tr[data-key='phone']")
    classes = page.eval_on_selector_all(
        "#dictionary-entries tbody tr", "rows => rows.map(r => r.dataset.classification)"
    )
    assert classes and set(classes) == {"pii"}
    screenshot(page, "dictionary")
    page.click("#dictionary-entries tr[data-key='phone'] a.edit-link")
    page.wait_for_selector("#entry-form")
    assert page.input_value("#f-classification") == "pii"


def test_an_admin_opens_users_and_sees_the_role_matrix(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    sign_in_page(
        page, role_user_email("bu_admin", "appliances"), demo.role_password, at="/login?lang=en"
    )
    page.click("nav a[href='/users']")
    page.wait_for_selector("#user-list")
    emails = page.inner_text("#user-list")
    assert role_user_email("marketer", "appliances") in emails
    assert role_user_email("marketer", "industrial") not in emails  # another unit's people
    matrix = page.locator("#role-matrix table.matrix")
    assert matrix.locator("th[data-role='compliance_officer']").count() == 1
    held = matrix.locator("tr[data-permission='privacy.manage'] td.held").count()
    assert held >= 3  # group admin, unit admin, compliance officer at least
    screenshot(page, "users")


def test_a_steward_opens_the_review_queue_and_keeps_a_pair_apart(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    review = _steward_with_a_pair(demo)
    sign_in_page(page, STEWARD_EMAIL, demo.role_password, at="/login?lang=en")
    page.click("nav a[href='/identity/reviews']")
    card = page.wait_for_selector(f"#review-{review}")
    names = page.eval_on_selector_all(
        f"#review-{review} tr[data-comparison]", "rows => rows.map(r => r.dataset.comparison)"
    )
    assert names == ["name", "phone", "city"]  # strongest evidence first, for or against
    assert "-2.40" in card.inner_text()
    screenshot(page, "identity-review")
    page.fill(f"#note-{review}", "two people at one address")
    page.click(f"#review-{review} button.reject")
    page.wait_for_url(re.compile(r"/identity/reviews"))
    assert page.locator(f"#review-{review}").count() == 0


def test_on_a_phone_the_privacy_page_fits_the_screen(
    console_page: tuple[Page, Watch], demo: Demo
) -> None:
    page, _ = console_page
    page.set_viewport_size(PHONE)
    sign_in_page(
        page,
        role_user_email("compliance_officer", "galaxy"),
        demo.role_password,
        at="/login?lang=en",
    )
    page.goto("/privacy")
    page.wait_for_selector("#request-form")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # the table scrolls inside its box, the page does not
    screenshot(page, "privacy-390", full_page=False)
