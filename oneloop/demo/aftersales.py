"""After-sales service (售后服务): tickets from the 400 hotline, WeChat, e-mail and the service
portal, and the satisfaction survey sent once a ticket is resolved.

Service is where identities arrive at their messiest: the hotline knows a caller id, e-mail
tickets an address typed any which way, B2B tickets often the plant's switchboard. The
service WeChat account is bound to the open platform, so its events carry the unionid that
the appliances account never sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from oneloop.demo import vocab
from oneloop.demo.clock import DAY_MS, END_MS, HOUR_MS, MINUTE_MS, iso_utc
from oneloop.demo.devices import Device, new_device, wechat_device
from oneloop.demo.draw import between, weighted
from oneloop.demo.events import Emitter, page_props
from oneloop.demo.mess import format_phone, mess_email
from oneloop.demo.people import Person
from oneloop.demo.records import SurveyRow, TicketRow
from oneloop.demo.world import Purchase, World, at_local_hour, day_of

TICKETS = "service/tickets.csv"
SURVEYS = "service/surveys.jsonl"
_CHANNELS, _CHANNELS_CUM = weighted(vocab.TICKET_CHANNELS)
_CSAT_CUM = (0.05, 0.12, 0.25, 0.6, 1.0)  # cumulative shares of scores 1..5
_PRIORITIES = ("紧急", "高", "中", "低")


@dataclass
class Customer:
    """One person's state in the service business unit while they are simulated."""

    person: Person
    world: World
    em: Emitter
    portal: Device | None = None
    following_wechat: bool = False

    @property
    def service_user_id(self) -> str:
        """The portal logs people in with an SMS code (abroad: by e-mail), so the phone
        number itself is the userId."""
        person = self.person
        return person.email if person.is_foreign else person.phone[1]

    def ticket(self, opened: int, purchase: Purchase) -> None:
        person, rng, world = self.person, self.person.rng, self.world
        if person.is_foreign:
            channel = "邮件" if rng.random() < 0.7 else "web"
        else:
            channel = rng.choices(_CHANNELS, cum_weights=_CHANNELS_CUM)[0]
        stamp = iso_utc(opened)[2:10].replace("-", "")
        ticket_no = world.registry.claim(lambda: f"TK{stamp}{rng.randint(0, 99_999):05d}")
        categories = vocab.TICKET_CATEGORIES_B2B if purchase.b2b else vocab.TICKET_CATEGORIES_B2C
        category = rng.choice(categories)
        urgent = 0.08 if purchase.b2b else 0.02
        priority = rng.choices(_PRIORITIES, cum_weights=(urgent, 0.3, 0.8, 1.0))[0]
        resolved_at = opened + int(rng.lognormvariate(3.0, 1.0) * HOUR_MS)  # median ~20 h
        resolved = resolved_at if resolved_at < END_MS else None  # still open at the end

        phone, email = self._contact(purchase, channel)
        member_no = ""
        if not purchase.b2b and person.member_no and rng.random() < 0.6:
            member_no = person.member_no
        crm_id = purchase.crm_contact_id if purchase.b2b and rng.random() < 0.8 else ""
        if channel == "web":
            self._portal_ticket(opened, ticket_no, category, purchase, priority)
        elif channel == "微信":
            self._wechat_ticket(opened, ticket_no, category, purchase, priority)

        answered = False
        if resolved is not None and rng.random() < 0.4:
            answered = self._survey(ticket_no, resolved, opened)
        if resolved is None:
            status = "处理中"
        elif answered:
            status = "已关闭"
        else:
            status = rng.choice(("已解决", "已关闭", "待回访"))
        # The one English-speaking agent takes the tickets from abroad.
        agents = vocab.SERVICE_AGENTS[-1:] if person.is_foreign else vocab.SERVICE_AGENTS[:-1]
        agent = rng.choice(agents)
        world.records.tickets.append(
            TicketRow(
                ticket_no, opened, channel, phone, email, member_no, crm_id,
                purchase.product.zh, category, priority, status, resolved, agent,
            )
        )  # fmt: skip
        world.count("tickets")
        truth = world.truth
        truth.add(TICKETS, ticket_no, "phone", phone, person.pid)
        truth.add(TICKETS, ticket_no, "email", email, person.pid)
        truth.add(TICKETS, ticket_no, "member_no", member_no, person.pid)
        truth.add(TICKETS, ticket_no, "crm_id", crm_id, person.pid)

    def _contact(self, purchase: Purchase, channel: str) -> tuple[str, str]:
        """What the ticket records about who asked: (phone, e-mail)."""
        person, rng = self.person, self.person.rng
        if purchase.b2b and person.company is not None and rng.random() < 0.4:
            phone = format_phone(rng, person.company.switchboard, "ticket")  # called from work
        else:
            phone = format_phone(rng, person.phone, "ticket")
        email = ""
        if channel == "邮件":
            email = mess_email(rng, person.work_email or person.email, 0.3)
            if rng.random() < 0.5:
                phone = ""
        return phone, email

    def _portal(self) -> tuple[Device, str, str, bool]:
        """The service portal in the person's language, and the browser they use for it."""
        person = self.person
        zh = not person.is_foreign
        site = vocab.SITES["service"][0 if zh else 1]
        site_name = vocab.SITE_NAMES["service"][0 if zh else 1]
        if self.portal is None:
            self.portal = new_device(person.rng, person.country, "web", person.locale)
        return self.portal, site, site_name, zh

    def _portal_ticket(
        self, ts: int, ticket_no: str, category: str, purchase: Purchase, priority: str
    ) -> None:
        person, rng, em = self.person, self.person.rng, self.em
        dev, site, site_name, zh = self._portal()
        label = "在线报修" if zh else "Request a Repair"
        page = page_props(site, "/repair/new", f"{label} - {site_name}", "")
        em.page(rng, dev, ts, label, page)
        ts += between(rng, 60_000, 400_000)
        uid = self.service_user_id
        login = person.phone[1] if zh else person.email
        traits: dict[str, object] = {"name": person.name, "phone" if zh else "email": login}
        em.identify(
            rng, dev, ts, uid, traits, page=page, ids=(("phone" if zh else "email", login),)
        )
        em.track(
            rng, dev, ts + between(rng, 200, 2000), "Ticket Created",
            {"ticket_no": ticket_no, "category": category, "priority": priority,
             "product_sku": purchase.product.sku, "channel": "web"},
            user_id=uid, page=page,
        )  # fmt: skip

    def _follow(self, ts: int, scene: str) -> tuple[Device, dict[str, object], int]:
        """The service account's device and base properties; follows it first if needed."""
        person, rng = self.person, self.person.rng
        app_id = vocab.WECHAT_APP_IDS["service"]
        openid = person.openid("service")
        traits = {"wechat_unionid": person.unionid, "wechat_openid": openid, "wechat_appid": app_id}
        dev = wechat_device(openid, traits)
        base: dict[str, object] = {
            "wechat_appid": app_id,
            "wechat_openid": openid,
            "wechat_unionid": person.unionid,
        }
        if not self.following_wechat:
            self.em.track(rng, dev, ts, "WeChat Followed", base | {"scene": scene}, ids=self._ids)
            self.following_wechat = True
            ts += between(rng, 10_000, 120_000)
        return dev, base, ts

    @property
    def _ids(self) -> tuple[tuple[str, str], ...]:
        person = self.person
        return (("wechat_openid", person.openid("service")), ("wechat_unionid", person.unionid))

    def register_warranty(self, ts: int, purchase: Purchase) -> None:
        """Scanning the warranty card in the box: the service account learns the order."""
        rng = self.person.rng
        dev, base, ts = self._follow(ts, "warranty_card")
        self.em.track(
            rng, dev, ts, "Warranty Registered",
            base | {"order_no": purchase.order_no, "product_sku": purchase.product.sku,
                    "product_name": purchase.product.zh},
            ids=self._ids,
        )  # fmt: skip
        self.world.count("warranty_registrations")

    def _wechat_ticket(
        self, ts: int, ticket_no: str, category: str, purchase: Purchase, priority: str
    ) -> None:
        rng, em = self.person.rng, self.em
        dev, base, ts = self._follow(ts, "menu_search")
        ids = self._ids
        key, label = vocab.WECHAT_MENUS["service"][0]
        em.track(
            rng,
            dev,
            ts,
            "WeChat Menu Clicked",
            base | {"menu_key": key, "menu_name": label},
            ids=ids,
        )
        em.track(
            rng, dev, ts + between(rng, 60_000, 600_000), "Ticket Created",
            base | {"ticket_no": ticket_no, "category": category, "priority": priority,
                    "product_sku": purchase.product.sku, "channel": "wechat"},
            ids=ids,
        )  # fmt: skip

    def _survey(self, ticket_no: str, resolved: int, opened: int) -> bool:
        person, rng, world = self.person, self.person.rng, self.world
        answered = resolved + between(rng, 10 * MINUTE_MS, 3 * DAY_MS)
        if answered >= END_MS:
            return False
        csat = 1 + sum(rng.random() > c for c in _CSAT_CUM[:4])
        if resolved - opened > 3 * DAY_MS and csat > 1:
            csat -= 1  # slow tickets score lower
        low, high = {5: (9, 10), 4: (7, 9), 3: (5, 8), 2: (2, 6), 1: (0, 4)}[csat]
        nps = rng.randint(low, high)
        lang = "en" if person.is_foreign else "zh"
        comment = ""
        if rng.random() < 0.55:
            comment = rng.choice(vocab.SURVEY_COMMENTS[f"{lang}_{'good' if csat >= 4 else 'bad'}"])
        channel = "email" if person.is_foreign else rng.choice(("sms", "wechat", "wechat"))
        world.records.surveys.append(
            SurveyRow(ticket_no, answered, csat, nps, comment, lang, channel)
        )
        world.truth.add(SURVEYS, ticket_no, "ticket_no", ticket_no, person.pid)
        world.count("surveys")
        return True

    def warranty_visit(self, ts: int) -> None:
        """Owners look up their warranty on the portal without opening a ticket."""
        rng, em = self.person.rng, self.em
        portal, site, site_name, zh = self._portal()
        referrer = "https://www.baidu.com/" if zh else "https://www.google.com/"
        for path, label in (
            ("/", "首页" if zh else "Home"),
            ("/warranty", "保修查询" if zh else "Warranty Check"),
        ):
            page = page_props(site, path, f"{label} - {site_name}", referrer)
            em.page(rng, portal, ts, label, page)
            referrer = page.url
            ts += between(rng, 10_000, 90_000)


def simulate_aftersales(person: Person, world: World, purchases: list[Purchase]) -> None:
    """Warranty cards, tickets and surveys for what this person bought (in either BU).

    Everything is planned first and then played in time order, so that the service
    account is followed before it is used whichever purchase comes first.
    """
    if not purchases:
        return
    rng = person.rng
    em = world.emitters["service"]
    em.begin(person)
    customer = Customer(person, world, em)
    plans: list[tuple[int, str, Purchase]] = []
    for purchase in sorted(purchases, key=lambda p: p.ts):
        day = day_of(purchase.ts)
        if not purchase.b2b and not person.is_foreign and rng.random() < 0.3:
            plans.append((purchase.ts + between(rng, HOUR_MS, 7 * DAY_MS), "warranty", purchase))
        if rng.random() < (0.5 if purchase.b2b else 0.3):
            opened = at_local_hour(rng, day + rng.randint(1, 60), person.country, office=True)
            plans.append((opened, "ticket", purchase))
        if rng.random() < 0.25:
            visit = at_local_hour(rng, day + rng.randint(1, 90), person.country, office=False)
            plans.append((visit, "visit", purchase))
    plans.sort(key=lambda plan: plan[0])
    for ts, kind, purchase in plans:
        if ts >= END_MS:
            break
        if kind == "warranty":
            customer.register_warranty(ts, purchase)
        elif kind == "ticket":
            customer.ticket(ts, purchase)
        else:
            customer.warranty_visit(ts)
