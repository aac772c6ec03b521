"""Consumer appliances (消费电器, B2C): browse on the web and in the app, put things in the
cart, buy on the own shop, on 天猫/京东 or in a store, follow the WeChat account.

Only orders on the own shop (官网, web or app) are tracked as events; marketplace and store
orders reach OneLoop through `pos/orders.csv` alone, with the member number or the phone as
the only link back to the shopper. What people buy is handed on to after-sales.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from oneloop.demo import consent, vocab
from oneloop.demo.clock import DAY_MS, END_MS, HOUR_MS, PERIOD_DAYS, iso_utc
from oneloop.demo.devices import Device, new_device, wechat_device
from oneloop.demo.draw import between
from oneloop.demo.events import Emitter, page_props
from oneloop.demo.mess import format_phone, mask_phone, mess_email
from oneloop.demo.people import Person
from oneloop.demo.records import OrderLine
from oneloop.demo.vocab import Product
from oneloop.demo.world import (
    CURRENCY,
    TAX_RATE,
    Purchase,
    World,
    at_local_hour,
    click_ad,
    day_of,
    local_price,
    next_day,
    organic_referrer,
    running_campaigns,
)

POS_SOURCE = "pos/orders.csv"
_TALLY = {
    "官网": "orders_own_shop",
    "天猫": "orders_tmall",
    "京东": "orders_jd",
    "门店": "orders_store",
}


@dataclass
class Shopper:
    """One person's state in the appliances business unit while they are simulated."""

    person: Person
    world: World
    em: Emitter
    web: Device
    app: Device | None
    site: str
    site_name: str
    zh: bool
    currency: str
    interests: list[Product]
    user_id: str | None = None
    logged_in: dict[str, bool] = field(default_factory=dict)  # anonymousId -> persisted login
    gave_email: bool = False
    purchases: list[Purchase] = field(default_factory=list)

    # --- the journey ------------------------------------------------------------------------

    def run(self) -> list[Purchase]:
        person, rng = self.person, self.person.rng
        n_sessions = max(1, round(person.engagement * 3.5 * rng.uniform(0.6, 1.4)))
        n_orders = 0
        if rng.random() < 0.5:
            n_orders = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
        orders: dict[int, list[str]] = {}
        for _ in range(n_orders):
            orders.setdefault(rng.randrange(n_sessions), []).append(self._order_channel())
        day = rng.randrange(PERIOD_DAYS - 14)
        if self.zh and rng.random() < 0.35:
            self._wechat(day + rng.randint(0, 40))
        for s in range(n_sessions):
            ts = at_local_hour(rng, day, person.country, office=False)
            if ts >= END_MS:
                break
            ts = self._session(ts, orders.get(s, ()))
            day = next_day(rng, max(day, day_of(ts)), 10.0)
        return self.purchases

    def _order_channel(self) -> str:
        rng = self.person.rng
        if not self.zh:
            return "官网"
        channel = rng.choices(("官网", "天猫", "京东", "门店"), cum_weights=(35, 60, 85, 100))[0]
        if channel == "门店" and self.person.city.zh not in vocab.STORES:
            return "京东"
        return channel

    def _device(self) -> Device:
        rng = self.person.rng
        if self.app is not None and rng.random() < 0.55:
            return self.app
        household = self.person.household
        if household is not None and rng.random() < 0.4:
            return household.device
        if rng.random() < 0.04:  # cookies cleared or a new browser: a fresh anonymousId
            self.web = new_device(rng, self.person.country, "web", self.person.locale)
        return self.web

    def _session(self, ts: int, orders: Sequence[str]) -> int:
        rng = self.person.rng
        dev = self._device()
        uid = self.user_id if self.logged_in.get(dev.anonymous_id) else None
        if self.user_id and uid is None and rng.random() < 0.3:
            ts = self._sign_in(dev, ts)
            uid = self.user_id
        if dev.platform == "web":
            ts = self._browse_web(dev, ts, uid)
        else:
            ts = self._browse_app(dev, ts, uid)
        for channel in orders:
            if channel == "官网":
                ts = self._checkout(dev, ts, uid)
                uid = self.user_id
            else:
                self._offline_order(channel, ts)
        return ts

    # --- browsing ---------------------------------------------------------------------------

    def _product_props(self, product: Product) -> dict[str, object]:
        return {
            "product_id": product.sku,
            "sku": product.sku,
            "name": product.zh if self.zh else product.en,
            "category": product.category_zh if self.zh else product.category_en,
            "brand": "星河" if self.zh else "Galaxy",
            "price": local_price(product.price, self.currency),
            "currency": self.currency,
            "url": f"{self.site}/products/{product.slug}",
        }

    def _pick_product(self) -> Product:
        rng = self.person.rng
        if rng.random() < 0.75:
            return rng.choice(self.interests)
        return rng.choice(vocab.APPLIANCES)

    def _browse_web(self, dev: Device, ts: int, uid: str | None) -> int:
        rng, em, zh = self.person.rng, self.em, self.zh
        campaign_ctx: dict[str, str] | None = None
        search = ""
        running = running_campaigns("appliances", day_of(ts), not zh)
        campaign = rng.choice(running) if running and rng.random() < 0.3 else None
        if campaign is not None and campaign.channel == "email" and not self.gave_email:
            campaign = None
        if campaign is not None:
            campaign_ctx, search, ts = click_ad(self.world, em, rng, dev, ts, campaign, zh, uid)
            referrer = vocab.CHANNELS[campaign.channel].referrer
        else:
            referrer = organic_referrer(rng, not zh)
        n_pages = 1 + min(9, int(rng.expovariate(1 / 2.6)))
        for k in range(n_pages):
            landing = k == 0 and campaign is not None
            path, title, name, product = self._web_page(landing, uid is not None)
            page = page_props(self.site, path, f"{title} - {self.site_name}", referrer, search)
            em.page(rng, dev, ts, name, page, user_id=uid, campaign=campaign_ctx)
            if product is not None:
                ts += between(rng, 200, 2500)
                em.track(
                    rng, dev, ts, "Product Viewed", self._product_props(product),
                    user_id=uid, page=page, campaign=campaign_ctx,
                )  # fmt: skip
                if rng.random() < 0.12:
                    ts += between(rng, 5_000, 90_000)
                    props = self._product_props(product) | {"quantity": 1}
                    em.track(rng, dev, ts, "Product Added", props, user_id=uid, page=page)
            referrer, search, campaign_ctx = page.url, "", None
            ts += between(rng, 8_000, 150_000)
        return ts

    def _web_page(self, landing: bool, signed_in: bool) -> tuple[str, str, str, Product | None]:
        """(path, title, page name, product shown) of the next page; ads land on products
        more often than not."""
        rng, zh = self.person.rng, self.zh
        r = rng.random()
        if landing:
            r = 0.0 if r < 0.6 else 0.99
        if r < 0.55:
            product = self._pick_product()
            title = product.zh if zh else product.en
            return (
                f"/products/{product.slug}",
                title,
                "商品详情" if zh else "Product Detail",
                product,
            )
        if r < 0.8:
            item = self._pick_product()
            path = f"/category/{item.category_en.lower().replace(' ', '-')}"
            title = item.category_zh if zh else item.category_en
            return path, title, "商品列表" if zh else "Category", None
        if r < 0.9 or not signed_in:
            return (
                "/",
                "智慧家电" if zh else "Smart Home Appliances",
                "首页" if zh else "Home",
                None,
            )
        label = "会员中心" if zh else "My Account"
        return "/member", label, label, None

    def _browse_app(self, dev: Device, ts: int, uid: str | None) -> int:
        rng, em, zh = self.person.rng, self.em, self.zh
        em.screen(rng, dev, ts, "首页" if zh else "Home", {}, user_id=uid)
        n_screens = min(10, int(rng.expovariate(1 / 2.6)))
        for _ in range(n_screens):
            ts += between(rng, 5_000, 120_000)
            if self.purchases and rng.random() < 0.4:  # owners steer their appliance
                product = self.purchases[-1].product
                em.screen(
                    rng, dev, ts, "设备控制" if zh else "Device Control",
                    {"sku": product.sku, "device_name": product.zh if zh else product.en},
                    user_id=uid,
                )  # fmt: skip
                continue
            product = self._pick_product()
            props = self._product_props(product)
            em.screen(rng, dev, ts, "商品详情" if zh else "Product Detail", props, user_id=uid)
            ts += between(rng, 200, 2500)
            em.track(rng, dev, ts, "Product Viewed", props, user_id=uid)
        return ts + between(rng, 5_000, 60_000)

    # --- accounts ---------------------------------------------------------------------------

    def _traits(self, ts: int) -> tuple[dict[str, object], tuple[tuple[str, str], ...]]:
        """Registration traits, and the identifiers they show for the truth file."""
        person, rng = self.person, self.person.rng
        phone = format_phone(rng, person.phone, "form")
        traits: dict[str, object] = {"name": person.name, "phone": phone}
        ids: list[tuple[str, str]] = [("phone", phone)]
        if rng.random() < 0.04:
            email = rng.choice(vocab.JUNK_EMAILS)
        elif rng.random() < (0.4 if self.zh else 0.95):
            email = mess_email(rng, person.email, 0.1)
            self.gave_email = True
        else:
            email = ""  # Chinese shops sign up by phone; e-mail is optional
        if email:
            traits["email"] = email
            ids.append(("email", email))
        assert person.member_no is not None
        traits |= {
            "member_no": person.member_no,
            "gender": person.gender,
            "province": person.city.province_zh if self.zh else person.city.province_en,
            "city": person.city.zh if self.zh else person.city.en,
            "created_at": iso_utc(ts),
        }
        ids.append(("member_no", person.member_no))
        return traits, tuple(ids)

    def _register(self, dev: Device, ts: int) -> int:
        """Sign up: `Signed Up`, an identify with the profile, and sometimes an alias."""
        person, rng, em, zh, world = self.person, self.person.rng, self.em, self.zh, self.world
        self.user_id = world.registry.claim(lambda: str(rng.randint(10_000_000, 99_999_999)))
        if person.member_no is None:
            person.member_no = new_member_no(world, person)
        label = "注册" if zh else "Sign Up"
        if dev.platform == "web":
            page = page_props(self.site, "/register", f"{label} - {self.site_name}", "")
            em.page(rng, dev, ts, label, page)
        else:
            em.screen(rng, dev, ts, label, {})
        ts += between(rng, 20_000, 180_000)
        method = rng.choice(("phone", "phone", "wechat")) if zh else "email"
        em.track(
            rng, dev, ts, "Signed Up", {"method": method, "member_no": person.member_no},
            user_id=self.user_id,
        )  # fmt: skip
        traits, ids = self._traits(ts)
        draws = consent.stream(person, "appliances")
        choices = consent.signup_trait(draws, zh)
        if choices is not None:
            traits["consent"] = choices
        em.identify(rng, dev, ts + between(rng, 5, 300), self.user_id, traits, ids=ids)
        if choices is not None:
            marketing = choices["marketing"]
            assert isinstance(marketing, dict)
            said_yes = [channel for channel, yes in marketing.items() if yes]
            consent.maybe_unsubscribe(world, em, draws, ts, self.user_id, said_yes)
        if rng.random() < 0.5:
            em.alias(rng, dev, ts + between(rng, 300, 900), self.user_id)
        self.logged_in[dev.anonymous_id] = not dev.shared  # a family computer logs out
        world.count("appliances_signups")
        return ts + 1_000

    def _sign_in(self, dev: Device, ts: int) -> int:
        rng = self.person.rng
        assert self.user_id is not None
        self.em.track(
            rng, dev, ts, "Signed In", {"method": "sms_code" if self.zh else "password"},
            user_id=self.user_id,
        )  # fmt: skip
        traits = {"name": self.person.name}
        self.em.identify(rng, dev, ts + between(rng, 5, 300), self.user_id, traits)
        self.logged_in[dev.anonymous_id] = not dev.shared
        return ts + 2_000

    # --- orders -----------------------------------------------------------------------------

    def _basket(self) -> list[tuple[Product, int]]:
        rng = self.person.rng
        basket = [(self._pick_product(), 1 if rng.random() < 0.9 else 2)]
        if rng.random() < 0.2:
            small = rng.choice(_SMALL_APPLIANCES)
            if small is not basket[0][0]:
                basket.append((small, 1))
        return basket

    def _checkout(self, dev: Device, ts: int, uid: str | None) -> int:
        """An order on the own shop: tracked as events and exported to `pos/orders.csv`."""
        person, rng, em, zh = self.person, self.person.rng, self.em, self.zh
        if self.user_id is None:
            ts = self._register(dev, ts)
        elif uid is None:
            ts = self._sign_in(dev, ts)
        uid = self.user_id
        basket = self._basket()
        stamp = iso_utc(ts)[2:10].replace("-", "")
        order_no = self.world.registry.claim(lambda: f"GW{stamp}{rng.randint(0, 999_999):06d}")
        products = [self._product_props(p) | {"quantity": q} for p, q in basket]
        total = round(sum(local_price(p.price, self.currency) * q for p, q in basket), 2)
        discount = round(total * rng.choice((0, 0, 0.05, 0.1)), 2)
        total = round(total - discount, 2)
        rate = TAX_RATE[person.country]
        tax = round(total - total / (1 + rate), 2)
        cart_name = "购物车" if zh else "Cart"
        if dev.platform == "web":
            page = page_props(self.site, "/cart", f"{cart_name} - {self.site_name}", "")
            em.page(rng, dev, ts, cart_name, page, user_id=uid)
        else:
            em.screen(rng, dev, ts, cart_name, {}, user_id=uid)
        ts += between(rng, 10_000, 120_000)
        em.track(
            rng, dev, ts, "Checkout Started",
            {"order_id": order_no, "value": total, "revenue": round(total - tax, 2),
             "currency": self.currency, "products": products},
            user_id=uid,
        )  # fmt: skip
        ts += between(rng, 30_000, 300_000)
        affiliation = "星河电器官网" if zh else "Galaxy Appliances Global Store"
        em.track(
            rng, dev, ts, "Order Completed",
            {"order_id": order_no, "affiliation": affiliation, "total": total,
             "subtotal": round(total + discount, 2), "revenue": round(total - tax, 2),
             "shipping": 0, "tax": tax, "discount": discount,
             "coupon": "" if not discount else rng.choice(("NEWYEAR26", "MEMBER10", "618VIP")),
             "currency": self.currency, "products": products},
            user_id=uid,
        )  # fmt: skip
        self.world.count(_TALLY["官网"])
        self._order_lines(order_no, "官网", affiliation, ts, basket, person.member_no or "", "pos")
        return ts + between(rng, 10_000, 60_000)

    def _offline_order(self, channel: str, ts: int) -> None:
        """天猫, 京东 or a store: the shopper is only known by what the channel exports."""
        person, rng, world = self.person, self.person.rng, self.world
        day = day_of(ts) + rng.randint(0, 3)
        order_ts = at_local_hour(rng, day, person.country, office=False)
        if order_ts >= END_MS:
            return
        stamp = iso_utc(order_ts)[2:10].replace("-", "")
        if channel == "门店":
            code, store = vocab.STORES[person.city.zh]
            order_no = world.registry.claim(lambda: f"{code}-{stamp}-{rng.randint(0, 9999):04d}")
            if person.member_no is None and rng.random() < 0.5:
                person.member_no = new_member_no(world, person)  # joined at the till
            member = person.member_no or ""
            phone_style = "pos"
        else:
            store = "星河电器天猫旗舰店" if channel == "天猫" else "星河电器京东自营旗舰店"
            digits = 19 if channel == "天猫" else 12
            order_no = world.registry.claim(
                lambda: str(rng.randint(10 ** (digits - 1), 10**digits - 1))
            )
            member = (person.member_no or "") if rng.random() < 0.3 else ""
            phone_style = "mask" if rng.random() < 0.6 else "pos"
        world.count(_TALLY[channel])
        self._order_lines(order_no, channel, store, order_ts, self._basket(), member, phone_style)

    def _order_lines(
        self,
        order_no: str,
        channel: str,
        store: str,
        ts: int,
        basket: list[tuple[Product, int]],
        member_no: str,
        phone_style: str,
    ) -> None:
        """One CSV row per basket line, the truth rows for the order, and the purchase."""
        person, rng, world = self.person, self.person.rng, self.world
        if phone_style == "mask":
            phone = mask_phone(person.phone)
        elif channel == "门店" and rng.random() < 0.15:
            phone = ""  # the cashier did not ask
        else:
            phone = format_phone(rng, person.phone, "pos")
        rate = TAX_RATE[person.country]
        for line, (product, qty) in enumerate(basket, start=1):
            amount = round(local_price(product.price, self.currency) * qty, 2)
            tax = round(amount - amount / (1 + rate), 2)
            world.records.orders.append(
                OrderLine(
                    order_no, channel, store, member_no, phone, ts, line, product.sku,
                    product.zh, qty, amount, tax, self.currency,
                )
            )  # fmt: skip
        truth = world.truth
        truth.add(POS_SOURCE, order_no, "member_no", member_no, person.pid)
        kind = "phone_masked" if phone_style == "mask" else "phone"
        truth.add(POS_SOURCE, order_no, kind, phone, person.pid)
        self.purchases.append(Purchase(ts, basket[0][0], order_no, b2b=False))

    # --- WeChat -----------------------------------------------------------------------------

    def _wechat(self, day: int) -> None:
        """The appliances official account only knows the openid: no unionid is bound here."""
        person, rng, em = self.person, self.person.rng, self.em
        app_id = vocab.WECHAT_APP_IDS["appliances"]
        openid = person.openid("appliances")
        dev = wechat_device(openid, {"wechat_openid": openid, "wechat_appid": app_id})
        ids = (("wechat_openid", openid),)
        ts = at_local_hour(rng, day, "CN", office=False)
        if ts >= END_MS:
            return
        base = {"wechat_appid": app_id, "wechat_openid": openid}
        scene = rng.choice(("qrcode", "search", "article", "store_poster"))
        em.track(rng, dev, ts, "WeChat Followed", base | {"scene": scene}, ids=ids)
        for _ in range(rng.randint(0, 4)):
            ts += between(rng, HOUR_MS, 20 * DAY_MS)
            if ts >= END_MS:
                return
            key, label = rng.choice(vocab.WECHAT_MENUS["appliances"])
            props = base | {"menu_key": key, "menu_name": label}
            em.track(rng, dev, ts, "WeChat Menu Clicked", props, ids=ids)
        if rng.random() < 0.15:
            ts += between(rng, DAY_MS, 60 * DAY_MS)
            if ts < END_MS:
                em.track(rng, dev, ts, "WeChat Unfollowed", base, ids=ids)


_SMALL_APPLIANCES = tuple(p for p in vocab.APPLIANCES if p.price < 1000)


def new_member_no(world: World, person: Person) -> str:
    rng = person.rng
    return world.registry.claim(lambda: f"8866{rng.randint(0, 99_999_999):08d}")


def simulate_shopper(person: Person, world: World) -> list[Purchase]:
    """Run one person's appliances journey; returns what they bought."""
    rng = person.rng
    em = world.emitters["appliances"]
    em.begin(person)
    zh = not person.is_foreign
    app = None
    if rng.random() < (0.4 if zh else 0.1):
        app = new_device(rng, person.country, "app", person.locale)
    shopper = Shopper(
        person=person,
        world=world,
        em=em,
        web=new_device(rng, person.country, "web", person.locale),
        app=app,
        site=vocab.SITES["appliances"][0 if zh else 1],
        site_name=vocab.SITE_NAMES["appliances"][0 if zh else 1],
        zh=zh,
        currency=CURRENCY[person.country],
        interests=rng.sample(vocab.APPLIANCES, k=rng.randint(1, 3)),
    )
    return shopper.run()
