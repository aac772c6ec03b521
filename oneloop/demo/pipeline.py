"""Industrial equipment (工业设备, B2B): from an ad, a summit or a whitepaper to a lead, and
for some leads on to a sales rep, an opportunity and an order.

The hand-off is the point of the demo: marketing produces many leads, sales follows up only
about a third of them (`World.take_lead`), and the rest go cold in the lead pool. Each
follow-up leaves a trace on both sides: `Lead Assigned` / `Sales Contacted` events and a CRM
contact with an opportunity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oneloop.demo import consent, vocab
from oneloop.demo.clock import DAY_MS, END_MS, HOUR_MS, PERIOD_DAYS, day_start_ms
from oneloop.demo.crm import WON, create_contact, create_opportunity
from oneloop.demo.devices import Device, new_device, wechat_device
from oneloop.demo.draw import between
from oneloop.demo.events import Emitter, Page, page_props
from oneloop.demo.mess import format_phone, mess_email
from oneloop.demo.people import Company, Person
from oneloop.demo.records import ContactRow
from oneloop.demo.vocab import Campaign, Product, Summit
from oneloop.demo.world import (
    TAX_RATE,
    Purchase,
    World,
    at_local_hour,
    click_ad,
    day_of,
    next_day,
    organic_referrer,
    running_campaigns,
)

SOLUTIONS: tuple[tuple[str, str, str], ...] = (
    ("automotive", "汽车零部件行业解决方案", "Automotive Solutions"),
    ("electronics", "3C电子行业解决方案", "Electronics Solutions"),
    ("new-energy", "新能源电池行业解决方案", "Battery & New Energy Solutions"),
    ("food", "食品饮料行业解决方案", "Food & Beverage Solutions"),
)
# kind -> (path, title zh, title en, page name zh, page name en)
STATIC_PAGES: dict[str, tuple[str, str, str, str, str]] = {
    "home": ("/", "智能制造解决方案", "Smart Manufacturing Solutions", "首页", "Home"),
    "pricing": ("/pricing", "价格与方案", "Pricing & Plans", "价格页", "Pricing"),
    "cases": ("/cases", "客户案例", "Customer Stories", "客户案例", "Customer Stories"),
    "demo": ("/contact/demo", "预约演示", "Request a Demo", "预约演示", "Request a Demo"),
}
DEMO_MESSAGES_ZH = ("", "", "请尽快联系", "想了解报价和交期", "我们工厂在扩产，想看现场演示")
DEMO_MESSAGES_EN = ("", "", "Please call me", "Interested in pricing and lead times")
_SUMMIT_MS = {s.code: day_start_ms(s.date) for s in vocab.SUMMITS}
_REGISTRATION_WINDOW_MS = 45 * DAY_MS


@dataclass(frozen=True)
class _Page:
    kind: str
    path: str
    title: str
    name: str
    subject: Product | Summit | tuple[str, str, str] | None = None


@dataclass
class Prospect:
    """One person's state in the industrial business unit while they are simulated."""

    person: Person
    company: Company
    world: World
    em: Emitter
    desk: Device
    phone_web: Device | None
    site: str
    site_name: str
    zh: bool  # which site they use: the Chinese one, or the international one
    interests: list[Product]
    user_id: str | None = None
    logged_in: dict[str, bool] = field(default_factory=dict)
    form_email: str = ""
    pricing_views: list[int] = field(default_factory=list)
    whitepaper_at: int | None = None
    demo_at: int | None = None
    registered: list[Summit] = field(default_factory=list)
    checked_in_at: int | None = None
    contact: ContactRow | None = None
    grouped: bool = False
    following_wechat: bool = False
    purchases: list[Purchase] = field(default_factory=list)
    consent_asked: bool = False

    @property
    def contact_id(self) -> str:
        return self.contact.contact_id if self.contact is not None else ""

    def run(self) -> list[Purchase]:
        person, rng = self.person, self.person.rng
        n_sessions = max(1, round(person.engagement * 3.5 * rng.uniform(0.6, 1.4)))
        day = rng.randrange(PERIOD_DAYS - 7)
        if not person.is_foreign and rng.random() < 0.25:
            self._wechat(day + rng.randint(0, 30))
        for _ in range(n_sessions):
            ts = at_local_hour(rng, day, person.country, office=True)
            if ts >= END_MS:
                break
            ts = self._session(ts)
            day = next_day(rng, max(day, day_of(ts)), 12.0)
        self._check_in()
        self._lead()
        return self.purchases

    # --- web sessions -----------------------------------------------------------------------

    def _session(self, ts: int) -> int:
        rng, em, zh = self.person.rng, self.em, self.zh
        dev = self.phone_web if self.phone_web is not None and rng.random() < 0.3 else self.desk
        uid = self.user_id if self.logged_in.get(dev.anonymous_id) else None
        campaign = self._campaign(ts)
        campaign_ctx: dict[str, str] | None = None
        search = ""
        if campaign is not None:
            campaign_ctx, search, ts = click_ad(self.world, em, rng, dev, ts, campaign, zh, uid)
            referrer = vocab.CHANNELS[campaign.channel].referrer
        else:
            referrer = organic_referrer(rng, self.person.is_foreign)
        n_pages = 1 + min(11, int(rng.expovariate(1 / 3.0)))
        for k in range(n_pages):
            kind = self._landing(campaign) if k == 0 and campaign is not None else self._next()
            p = self._page(kind, ts)
            page = page_props(self.site, p.path, f"{p.title} - {self.site_name}", referrer, search)
            em.page(rng, dev, ts, p.name, page, user_id=uid, campaign=campaign_ctx)
            ts += between(rng, 15_000, 240_000)
            if p.kind == "pricing":
                self.pricing_views.append(ts)
                if self.demo_at is None and rng.random() < 0.06 + 0.05 * len(self.pricing_views):
                    ts, uid = self._demo_request(dev, ts, page.url)
            elif p.kind == "whitepaper" and isinstance(p.subject, tuple) and rng.random() < 0.35:
                ts, uid = self._whitepaper(dev, ts, page, p.subject)
            elif p.kind == "summit" and isinstance(p.subject, Summit) and rng.random() < 0.4:
                ts, uid = self._summit_register(dev, ts, page, p.subject)
            elif p.kind == "product" and self.demo_at is None and rng.random() < 0.025:
                ts, uid = self._demo_request(dev, ts, page.url)
            referrer, search, campaign_ctx = page.url, "", None
        return ts

    def _campaign(self, ts: int) -> Campaign | None:
        rng = self.person.rng
        running = running_campaigns("industrial", day_of(ts), self.person.is_foreign)
        if not running or rng.random() >= 0.35:
            return None
        campaign = rng.choice(running)
        if campaign.channel == "email" and not self.form_email:
            return None
        return campaign

    def _landing(self, campaign: Campaign) -> str:
        if campaign.landing:
            return campaign.landing
        return "product" if self.person.rng.random() < 0.7 else "pricing"

    def _next(self) -> str:
        r = self.person.rng.random()
        for kind, upto in (
            ("product", 0.33), ("solution", 0.47), ("pricing", 0.62), ("whitepaper", 0.74),
            ("cases", 0.83), ("summit", 0.92),
        ):  # fmt: skip
            if r < upto:
                return kind
        return "home"

    def _upcoming_summit(self, ts: int) -> Summit | None:
        for summit in vocab.SUMMITS:
            if summit.foreign == self.person.is_foreign:
                lead_time = _SUMMIT_MS[summit.code] - ts
                if 0 < lead_time <= _REGISTRATION_WINDOW_MS:
                    return summit
        return None

    def _page(self, kind: str, ts: int) -> _Page:
        """The page of this kind, titled in the site's language."""
        rng, zh = self.person.rng, self.zh
        if kind == "product":
            pool = self.interests if rng.random() < 0.7 else vocab.INDUSTRIAL
            product = rng.choice(pool)
            name = "产品详情" if zh else "Product"
            title = product.zh if zh else product.en
            return _Page(kind, f"/products/{product.slug}", title, name, product)
        if kind == "solution":
            slug, title_zh, title_en = rng.choice(SOLUTIONS)
            name = "解决方案" if zh else "Solution"
            return _Page(kind, f"/solutions/{slug}", title_zh if zh else title_en, name)
        if kind == "whitepaper":
            paper = rng.choice(vocab.WHITEPAPERS)
            title = paper[1] if zh else paper[2]
            name = "白皮书" if zh else "Whitepaper"
            return _Page(kind, f"/resources/whitepapers/{paper[0]}", title, name, paper)
        if kind == "summit":
            summit = self._upcoming_summit(ts)
            if summit is not None:
                title = summit.zh if zh else summit.en
                name = "峰会" if zh else "Event"
                return _Page(kind, f"/events/{summit.code.lower()}", title, name, summit)
            kind = "home"
        path, title_zh, title_en, name_zh, name_en = STATIC_PAGES[kind]
        return _Page(kind, path, title_zh if zh else title_en, name_zh if zh else name_en)

    # --- forms ------------------------------------------------------------------------------

    def _identify(self, dev: Device, ts: int, page: Page | None) -> str:
        """A form was submitted: the site learns who this is (identify, then group)."""
        person, rng, em, world, company = (
            self.person, self.person.rng, self.em, self.world, self.company,
        )  # fmt: skip
        if self.user_id is None:
            self.user_id = world.registry.claim(lambda: f"IL{rng.randint(0, 9_999_999):07d}")
        if rng.random() < 0.04:
            email = rng.choice(vocab.JUNK_EMAILS)
        else:
            address = person.work_email if rng.random() < 0.8 else person.email
            assert address is not None
            email = mess_email(rng, address, 0.12)
            self.form_email = email
        if rng.random() < 0.15:
            phone = format_phone(rng, company.switchboard, "form")  # the office line
        else:
            phone = format_phone(rng, person.phone, "form")
        title = person.title or ("", "")
        use_zh = self.zh and not person.is_foreign
        name = person.name if use_zh or rng.random() < 0.5 else person.name_latin
        traits: dict[str, object] = {
            "name": name,
            "email": email,
            "phone": phone,
            "company": company.name,
            "title": title[0] if use_zh else title[1],
            "industry": company.industry.zh if use_zh else company.industry.en,
            "province": person.city.province_zh if use_zh else person.city.province_en,
            "city": person.city.zh if use_zh else person.city.en,
        }
        ids = (("email", email), ("phone", phone))
        em.identify(rng, dev, ts, self.user_id, traits, page=page, ids=ids)
        self.logged_in[dev.anonymous_id] = True  # analytics.js keeps the userId it was given
        if not self.consent_asked and page is not None:
            self.consent_asked = True
            path = page.url.removeprefix(self.site).split("?")[0] or "/"
            draws = consent.stream(person, "industrial")
            consent.form_consent(
                world, em, draws, dev, ts, self.user_id, page, path, abroad=person.is_foreign
            )
        if not self.grouped and rng.random() < 0.7:
            self.grouped = True
            em.group(
                rng, dev, ts + between(rng, 50, 400), self.user_id, company.code,
                {"name": company.name, "industry": company.industry.en,
                 "employees": company.employees, "city": company.city.en},
            )  # fmt: skip
        return self.user_id

    def _demo_request(self, dev: Device, ts: int, referrer: str) -> tuple[int, str]:
        rng, em = self.person.rng, self.em
        p = self._page("demo", ts)
        page = page_props(self.site, p.path, f"{p.title} - {self.site_name}", referrer)
        em.page(rng, dev, ts, p.name, page, user_id=self.user_id)
        ts += between(rng, 40_000, 300_000)
        uid = self._identify(dev, ts, page)
        product = self.interests[0]
        em.track(
            rng, dev, ts + between(rng, 100, 900), "Demo Requested",
            {"product": product.zh if self.zh else product.en, "product_sku": product.sku,
             "preferred_contact": rng.choice(("phone", "email", "wechat")),
             "message": rng.choice(DEMO_MESSAGES_ZH if self.zh else DEMO_MESSAGES_EN)},
            user_id=uid, page=page,
        )  # fmt: skip
        self.demo_at = ts
        self.world.count("demo_requests")
        return ts + 1_000, uid

    def _whitepaper(
        self, dev: Device, ts: int, page: Page, paper: tuple[str, str, str]
    ) -> tuple[int, str]:
        rng = self.person.rng
        uid = self._identify(dev, ts, page)
        self.em.track(
            rng, dev, ts + between(rng, 100, 900), "Whitepaper Downloaded",
            {"whitepaper_id": paper[0], "title": paper[1] if self.zh else paper[2],
             "format": "pdf"},
            user_id=uid, page=page,
        )  # fmt: skip
        if self.whitepaper_at is None:
            self.whitepaper_at = ts
        self.world.count("whitepaper_downloads")
        return ts + between(rng, 30_000, 120_000), uid

    def _summit_register(self, dev: Device, ts: int, page: Page, summit: Summit) -> tuple[int, str]:
        rng = self.person.rng
        if summit in self.registered:
            return ts, self.user_id or ""
        uid = self._identify(dev, ts, page)
        self.em.track(
            rng, dev, ts + between(rng, 100, 900), "Summit Registered",
            {"summit_id": summit.code, "summit_name": summit.zh if self.zh else summit.en,
             "city": summit.city, "date": summit.date,
             "ticket_type": rng.choice(("standard", "vip", "partner"))},
            user_id=uid, page=page,
        )  # fmt: skip
        self.registered.append(summit)
        self.world.count("summit_registrations")
        return ts + between(rng, 30_000, 120_000), uid

    def _check_in(self) -> None:
        """Badge scans at the venue arrive from the event system, server side."""
        rng, world = self.person.rng, self.world
        for summit in self.registered:
            if rng.random() >= 0.65 or self.user_id is None:
                continue
            country = "DE" if summit.foreign else "CN"
            ts = at_local_hour(rng, day_of(_SUMMIT_MS[summit.code]), country, office=True)
            self.em.track(
                rng, world.server, ts, "Summit Checked In",
                {"summit_id": summit.code, "summit_name": summit.zh if self.zh else summit.en,
                 "city": summit.city, "badge_no": f"B{rng.randint(10_000, 99_999)}"},
                user_id=self.user_id,
            )  # fmt: skip
            world.count("summit_checkins")
            if self.checked_in_at is None:
                self.checked_in_at = ts
            if not self.contact_id and rng.random() < 0.5:
                self._crm_contact(ts + between(rng, 1, 3) * DAY_MS, owner="", source="峰会")

    # --- the hand-off to sales ------------------------------------------------------------------

    def _lead(self) -> None:
        """Become a lead by asking for a demo, or by showing intent twice over (pricing page
        more than once, and a whitepaper or a summit check-in)."""
        candidates: list[tuple[int, str]] = []
        if self.demo_at is not None:
            candidates.append((self.demo_at, "demo_request"))
        engaged = [t for t in (self.whitepaper_at, self.checked_in_at) if t is not None]
        if len(self.pricing_views) >= 2 and engaged:
            candidates.append((max(self.pricing_views[1], min(engaged)), "high_intent"))
        if not candidates or self.user_id is None:
            return
        lead_ts, kind = min(candidates)
        world = self.world
        assign_ts = self._office_time(lead_ts, max_days=5)
        if assign_ts >= END_MS:
            world.lead_too_late()
            return
        if not world.take_lead(kind):
            return
        self._follow_up(assign_ts, kind)

    def _follow_up(self, ts: int, kind: str) -> None:
        rng, world, company, em = self.person.rng, self.world, self.company, self.em
        assert self.user_id is not None
        owner = company.owner
        em.track(
            rng, world.server, ts, "Lead Assigned",
            {"lead_id": self.user_id, "owner": owner, "lead_source": kind,
             "routing_rule": f"region:{company.city.province_en}", "account_id": company.code},
            user_id=self.user_id,
        )  # fmt: skip
        if self.contact is not None:
            self.contact.owner = owner  # the rep claims it from the pool (公海)
        else:
            source = "Demo Request" if kind == "demo_request" else "Website"
            self._crm_contact(ts, owner=owner, source=source)
        contacted = self._office_time(ts, max_days=3)
        if contacted >= END_MS:
            return
        em.track(
            rng, world.server, contacted, "Sales Contacted",
            {"owner": owner, "method": rng.choice(("电话", "拜访", "微信", "邮件")),
             "crm_contact_id": self.contact_id},
            user_id=self.user_id,
        )  # fmt: skip
        self._opportunity(contacted + rng.randint(0, 5) * DAY_MS, owner)

    def _office_time(self, after: int, max_days: int) -> int:
        """A moment in the rep's office hours within `max_days` after `after`."""
        rng = self.person.rng
        country = "DE" if self.person.is_foreign else "CN"
        ts = at_local_hour(rng, day_of(after) + rng.randint(0, max_days), country, office=True)
        return ts if ts > after else after + rng.randint(HOUR_MS, 4 * HOUR_MS)

    def _crm_contact(self, ts: int, owner: str, source: str) -> None:
        self.contact = create_contact(self.world, self.person, self.company, ts, owner, source)

    def _opportunity(self, ts: int, owner: str) -> None:
        if ts >= END_MS:
            return
        product = self.interests[0]
        row, qty = create_opportunity(
            self.world, self.person, self.company, self.contact_id, product, ts, owner
        )
        if row.stage in WON:
            self._won(row.close_ms, product, qty, row.amount, row.currency, row.opportunity_id)

    def _won(
        self, ts: int, product: Product, qty: int, amount: float, currency: str, opp_id: str
    ) -> None:
        """The deal closes: the ERP reports the order, server side."""
        rng, world = self.person.rng, self.world
        order_no = world.registry.claim(lambda: f"SO2026{rng.randint(0, 999_999):06d}")
        rate = TAX_RATE[self.person.country]
        tax = round(amount - amount / (1 + rate), 2)
        self.em.track(
            rng, world.server, ts, "Order Completed",
            {"order_id": order_no, "affiliation": "星河工业设备", "total": amount,
             "revenue": round(amount - tax, 2), "tax": tax, "shipping": 0, "currency": currency,
             "opportunity_id": opp_id,
             "products": [{"product_id": product.sku, "sku": product.sku,
                           "name": product.zh if self.zh else product.en,
                           "category": product.category_en, "quantity": qty,
                           "price": round(amount / qty, 2)}]},
            user_id=self.user_id,
        )  # fmt: skip
        world.count("deals_won")
        self.purchases.append(Purchase(ts, product, order_no, True, self.contact_id))

    # --- WeChat -----------------------------------------------------------------------------

    def _wechat(self, day: int) -> None:
        """The industrial account is bound to the open platform for half its followers, so
        some events carry the unionid next to this account's openid."""
        person, rng, em = self.person, self.person.rng, self.em
        app_id = vocab.WECHAT_APP_IDS["industrial"]
        openid = person.openid("industrial")
        traits = {"wechat_openid": openid, "wechat_appid": app_id}
        ids: tuple[tuple[str, str], ...] = (("wechat_openid", openid),)
        if rng.random() < 0.5:
            traits["wechat_unionid"] = person.unionid
            ids += (("wechat_unionid", person.unionid),)
        dev = wechat_device(openid, traits)
        ts = at_local_hour(rng, day, "CN", office=True)
        base = {"wechat_appid": app_id, "wechat_openid": openid}
        for _ in range(1 + rng.randint(0, 3)):
            if ts >= END_MS:
                return
            if not self.following_wechat:
                em.track(rng, dev, ts, "WeChat Followed", base | {"scene": "qrcode"}, ids=ids)
                self.following_wechat = True
            else:
                key, label = rng.choice(vocab.WECHAT_MENUS["industrial"])
                props = base | {"menu_key": key, "menu_name": label}
                em.track(rng, dev, ts, "WeChat Menu Clicked", props, ids=ids)
            ts += between(rng, HOUR_MS, 25 * DAY_MS)


def simulate_prospect(person: Person, world: World) -> list[Purchase]:
    """Run one person's industrial journey; returns the deals they closed."""
    rng = person.rng
    assert person.company is not None
    em = world.emitters["industrial"]
    em.begin(person)
    zh = not person.is_foreign and rng.random() >= 0.08  # some use the English site
    locale = "zh-CN" if zh else ("en-US" if not person.is_foreign else person.locale)
    phone_web = new_device(rng, person.country, "web", locale) if rng.random() < 0.4 else None
    prospect = Prospect(
        person=person,
        company=person.company,
        world=world,
        em=em,
        desk=new_device(rng, person.country, "web", locale),
        phone_web=phone_web,
        site=vocab.SITES["industrial"][0 if zh else 1],
        site_name=vocab.SITE_NAMES["industrial"][0 if zh else 1],
        zh=zh,
        interests=rng.sample(vocab.INDUSTRIAL, k=rng.randint(1, 2)),
    )
    return prospect.run()
