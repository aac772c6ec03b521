"""The CRM side of the hand-off: contacts, accounts and opportunities as sales types them.

Reps key contacts in from a phone call or a business card, so the CRM is where names get
typos, where the company's main line stands in for a mobile, and where account names are
shortened. Foreign accounts are run by the European team, in English stages.
"""

from __future__ import annotations

from oneloop.demo.clock import DAY_MS, END_MS
from oneloop.demo.draw import between, token
from oneloop.demo.mess import format_phone, mess_email, typo_name
from oneloop.demo.people import Company, Person
from oneloop.demo.records import ContactRow, OpportunityRow
from oneloop.demo.vocab import Product
from oneloop.demo.world import CURRENCY, FX_FROM_CNY, World

CONTACTS = "crm/contacts.csv"
OPPORTUNITIES = "crm/opportunities.csv"
STAGES_ZH = ("初步接触", "需求确认", "方案报价", "商务谈判", "赢单", "输单")
STAGES_EN = ("Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost")
WON = {STAGES_ZH[4], STAGES_EN[4]}


def create_contact(
    world: World, person: Person, company: Company, ts: int, owner: str, source: str
) -> ContactRow:
    """A contact (and its account) as a rep or an event import enters it; `owner` is empty
    while the contact sits in the lead pool (公海)."""
    rng = person.rng
    contact_id = world.registry.claim(lambda: "003" + token(rng, 15))  # Salesforce-style ids
    if rng.random() < 0.3:
        mobile = format_phone(rng, company.switchboard, "crm")  # the rep wrote the main line
    else:
        mobile = format_phone(rng, person.phone, "crm")
    email = mess_email(rng, person.work_email or person.email, 0.3)
    name = typo_name(rng, person) if rng.random() < 0.15 else person.name
    cn = not person.is_foreign
    title = person.title or ("", "")
    contact = ContactRow(
        contact_id=contact_id,
        full_name=name,
        email=email,
        mobile=mobile,
        company=company.name if rng.random() < 0.85 else short_name(company),
        title=title[0] if cn else title[1],
        industry=company.industry.zh,
        province=person.city.province_zh,
        city=person.city.zh,
        owner=owner,
        lead_source=source if cn else {"峰会": "Trade Show"}.get(source, source),
        created_ms=ts,
    )
    world.records.contacts.append(contact)
    world.records.accounts[company.code] = company
    truth = world.truth
    truth.add(CONTACTS, contact_id, "crm_id", contact_id, person.pid)
    truth.add(CONTACTS, contact_id, "email", email, person.pid)
    truth.add(CONTACTS, contact_id, "phone", mobile, person.pid)
    return contact


def create_opportunity(
    world: World,
    person: Person,
    company: Company,
    contact_id: str,
    product: Product,
    ts: int,
    owner: str,
) -> tuple[OpportunityRow, int]:
    """An opportunity and the quantity it is for. About 30% are won and 30% lost within
    20-120 days; the rest (and any that would close after the period) are still open."""
    rng = person.rng
    stages = STAGES_EN if person.is_foreign else STAGES_ZH
    qty = rng.choice((1, 1, 1, 2, 3, 5))
    currency = CURRENCY[person.country]
    amount = round(product.price * qty * FX_FROM_CNY[currency] * rng.uniform(0.82, 1.0), -2)
    close = ts + between(rng, 20, 120) * DAY_MS
    r = rng.random()
    if close >= END_MS or r >= 0.6:
        stage = rng.choice(stages[:4])  # still open: the close date is the rep's forecast
    else:
        stage = stages[4] if r < 0.3 else stages[5]
    opportunity_id = world.registry.claim(lambda: "006" + token(rng, 15))
    row = OpportunityRow(
        opportunity_id=opportunity_id,
        name=f"{company.name} - {product.en if person.is_foreign else product.zh}",
        account=company.name,
        contact_id=contact_id,
        stage=stage,
        amount=amount,
        currency=currency,
        close_ms=close,
        owner=owner,
        created_ms=ts,
        product=product.sku,
    )
    world.records.opportunities.append(row)
    world.truth.add(OPPORTUNITIES, opportunity_id, "crm_id", contact_id, person.pid)
    return row, qty


def short_name(company: Company) -> str:
    """What a rep types for the account: 苏州鼎泰精密机械有限公司 → 鼎泰精密机械."""
    name = company.name
    for suffix in ("股份有限公司", "有限公司"):
        name = name.removesuffix(suffix)
    if name.startswith(company.city.zh):
        name = name[len(company.city.zh) :]
    return name
