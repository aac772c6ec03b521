"""Source records as CRM, POS, ticketing, survey and ad platforms export them.

Each file keeps its source's habits on purpose: the CRM contact export is UTF-8 with a BOM
(Excel needs it), the account export is GB18030 with Chinese headers (纷享销客 and older
Windows tools), times are Beijing wall time without an offset. A loader that reads these
correctly reads the real thing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from oneloop.demo.clock import iso_utc, local_date, local_datetime
from oneloop.demo.people import Company


@dataclass(slots=True)
class ContactRow:
    contact_id: str
    full_name: str
    email: str
    mobile: str
    company: str
    title: str
    industry: str
    province: str
    city: str
    owner: str  # empty: in the lead pool (公海), nobody owns it yet
    lead_source: str
    created_ms: int


@dataclass(slots=True)
class OpportunityRow:
    opportunity_id: str
    name: str
    account: str
    contact_id: str
    stage: str
    amount: float
    currency: str
    close_ms: int
    owner: str
    created_ms: int
    product: str


@dataclass(slots=True)
class OrderLine:
    order_no: str
    channel: str
    store: str
    member_no: str
    phone: str
    order_ms: int
    line: int
    sku: str
    product_name: str
    quantity: int
    amount: float  # tax included, after discount
    tax: float
    currency: str


@dataclass(slots=True)
class TicketRow:
    ticket_no: str
    opened_ms: int
    channel: str
    phone: str
    email: str
    member_no: str
    crm_contact_id: str
    product: str
    category: str
    priority: str
    status: str
    resolved_ms: int | None
    agent: str


@dataclass(slots=True)
class SurveyRow:
    ticket_no: str
    answered_ms: int
    csat: int
    nps: int
    comment: str
    language: str
    channel: str


@dataclass(slots=True)
class CostRow:
    channel: str
    campaign: str
    day: str
    impressions: int
    clicks: int
    cost: float


@dataclass
class Records:
    """Rows gathered while people are simulated; sorted by time when written."""

    contacts: list[ContactRow] = field(default_factory=list)
    opportunities: list[OpportunityRow] = field(default_factory=list)
    orders: list[OrderLine] = field(default_factory=list)
    tickets: list[TicketRow] = field(default_factory=list)
    surveys: list[SurveyRow] = field(default_factory=list)
    costs: list[CostRow] = field(default_factory=list)
    accounts: dict[str, Company] = field(default_factory=dict)  # code -> company, in the CRM

    def write(self, out_dir: Path) -> dict[str, int]:
        """Write every record file; returns relative path -> records written."""
        counts: dict[str, int] = {}
        contacts = sorted(self.contacts, key=lambda r: (r.created_ms, r.contact_id))
        counts["crm/contacts.csv"] = _write_csv(
            out_dir / "crm/contacts.csv",
            "utf-8-sig",
            CONTACT_HEADER,
            (
                (
                    r.contact_id, r.full_name, r.email, r.mobile, r.company, r.title,
                    r.industry, r.province, r.city, r.owner, r.lead_source,
                    local_datetime(r.created_ms, "/", seconds=False),
                )
                for r in contacts
            ),
        )  # fmt: skip
        accounts = sorted(self.accounts.values(), key=lambda c: c.code)
        counts["crm/companies.csv"] = _write_csv(
            out_dir / "crm/companies.csv",
            "gb18030",
            COMPANY_HEADER,
            (
                (
                    c.code, c.name, c.industry.zh, c.city.province_zh, c.city.zh,
                    c.employees, c.revenue_wan, _switchboard_text(c), c.owner,
                )
                for c in accounts
            ),
        )  # fmt: skip
        opportunities = sorted(self.opportunities, key=lambda r: (r.created_ms, r.opportunity_id))
        counts["crm/opportunities.csv"] = _write_csv(
            out_dir / "crm/opportunities.csv",
            "utf-8-sig",
            OPPORTUNITY_HEADER,
            (
                (
                    r.opportunity_id, r.name, r.account, r.contact_id, r.stage,
                    f"{r.amount:.2f}", r.currency, local_date(r.close_ms), r.owner,
                    local_datetime(r.created_ms, "/", seconds=False), r.product,
                )
                for r in opportunities
            ),
        )  # fmt: skip
        orders = sorted(self.orders, key=lambda r: (r.order_ms, r.order_no, r.line))
        counts["pos/orders.csv"] = _write_csv(
            out_dir / "pos/orders.csv",
            "utf-8",
            ORDER_HEADER,
            (
                (
                    r.order_no, r.channel, r.store, r.member_no, r.phone,
                    local_datetime(r.order_ms), r.sku, r.product_name, r.quantity,
                    f"{r.amount:.2f}", f"{r.tax:.2f}", r.currency,
                )
                for r in orders
            ),
        )  # fmt: skip
        tickets = sorted(self.tickets, key=lambda r: (r.opened_ms, r.ticket_no))
        counts["service/tickets.csv"] = _write_csv(
            out_dir / "service/tickets.csv",
            "utf-8",
            TICKET_HEADER,
            (
                (
                    r.ticket_no, local_datetime(r.opened_ms, seconds=False), r.channel,
                    r.phone, r.email, r.member_no, r.crm_contact_id, r.product, r.category,
                    r.priority, r.status,
                    "" if r.resolved_ms is None else local_datetime(r.resolved_ms, seconds=False),
                    r.agent,
                )
                for r in tickets
            ),
        )  # fmt: skip
        counts["service/surveys.jsonl"] = _write_surveys(
            out_dir / "service/surveys.jsonl",
            sorted(self.surveys, key=lambda r: (r.answered_ms, r.ticket_no)),
        )
        costs = sorted(self.costs, key=lambda r: (r.day, r.channel, r.campaign))
        counts["marketing/costs.csv"] = _write_csv(
            out_dir / "marketing/costs.csv",
            "utf-8",
            COST_HEADER,
            (
                (r.channel, r.campaign, r.day, r.impressions, r.clicks, f"{r.cost:.2f}", "CNY")
                for r in costs
            ),
        )
        return counts


CONTACT_HEADER = (
    "Contact ID", "Full Name", "Email", "Mobile", "Company", "Title", "Industry", "Province",
    "City", "Owner", "Lead Source", "Created Date",
)  # fmt: skip
COMPANY_HEADER = (
    "客户编号", "公司名称", "行业", "省份", "城市", "员工人数", "年营收(万元)", "总机", "负责人",
)  # fmt: skip
OPPORTUNITY_HEADER = (
    "Opportunity ID", "Opportunity Name", "Account Name", "Contact ID", "Stage", "Amount",
    "Currency", "Close Date", "Owner", "Created Date", "Product",
)  # fmt: skip
ORDER_HEADER = (
    "order_no", "channel", "store", "member_no", "phone", "order_time", "sku", "product_name",
    "quantity", "amount", "tax", "currency",
)  # fmt: skip
TICKET_HEADER = (
    "ticket_no", "opened_at", "channel", "phone", "email", "member_no", "crm_contact_id",
    "product", "category", "priority", "status", "resolved_at", "agent",
)  # fmt: skip
COST_HEADER = ("channel", "campaign", "date", "impressions", "clicks", "cost", "currency")


def _switchboard_text(company: Company) -> str:
    """The account's main line as the CRM shows it: `021-6888 0000` style."""
    cc, number = company.switchboard
    if cc != "86":
        return f"+{cc} {number}"
    area = number[:2] if number[0] in "12" else number[:3]
    local = number[len(area) :]
    return f"0{area}-{local[:4]} {local[4:]}"


def _write_csv(
    path: Path, encoding: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> int:
    """Excel-dialect CSV (CRLF line ends, as the exporting tools write them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _write_surveys(path: Path, rows: list[SurveyRow]) -> int:
    """The survey tool's webhook log: one JSON object a line, times in UTC."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            answer = {
                "ticket_no": r.ticket_no,
                "answered_at": iso_utc(r.answered_ms),
                "csat": r.csat,
                "nps": r.nps,
                "comment": r.comment,
                "language": r.language,
                "channel": r.channel,
            }
            f.write(json.dumps(answer, ensure_ascii=False, separators=(",", ":")) + "\n")
    return len(rows)
