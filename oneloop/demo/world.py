"""What the journeys share: the output sinks, campaign calendar, and the running tallies.

People are simulated one at a time, in index order; the few things that cross people (an
open household, the sales team's follow-up capacity, ad clicks per campaign and day) live
here so that each journey module stays a function of (person, world).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import accumulate
from urllib.parse import quote

from oneloop.demo import vocab
from oneloop.demo.clock import DAY_MS, END_MS, PERIOD_DAYS, START_MS, day_start_ms, local_date
from oneloop.demo.devices import Device, server_device
from oneloop.demo.draw import Registry, between
from oneloop.demo.events import Emitter, Truth
from oneloop.demo.people import Household
from oneloop.demo.records import Records
from oneloop.demo.vocab import Campaign, Product

_HOURS = tuple(range(24))
_HOURS_CONSUMER_CUM = list(accumulate(vocab.HOURS_CONSUMER))
_HOURS_OFFICE_CUM = list(accumulate(vocab.HOURS_OFFICE))

CURRENCY = {"CN": "CNY", "DE": "EUR", "GB": "EUR", "US": "USD"}
FX_FROM_CNY = {"CNY": 1.0, "EUR": 1 / 7.8, "USD": 1 / 7.2}
TAX_RATE = {"CN": 0.13, "DE": 0.19, "GB": 0.20, "US": 0.08}  # VAT, or US sales tax

# Sales can only work so many leads: the chance that a lead of each kind gets a rep.
FOLLOWUP_CHANCE = {"demo_request": 0.45, "high_intent": 0.22}


@dataclass(frozen=True)
class Purchase:
    """Something bought, in either business unit, that after-sales may hear about."""

    ts: int
    product: Product
    order_no: str
    b2b: bool
    crm_contact_id: str = ""


def local_price(cny: float, currency: str) -> float:
    """Shelf price in the shop's currency: converted, then rounded to a .99 price point."""
    if currency == "CNY":
        return cny
    return round(cny * FX_FROM_CNY[currency]) - 0.01


@dataclass
class World:
    registry: Registry
    emitters: dict[str, Emitter]
    truth: Truth
    records: Records = field(default_factory=Records)
    server: Device = field(default_factory=server_device)
    ad_clicks: dict[tuple[str, str], int] = field(default_factory=dict)  # (campaign, day)
    household: Household | None = None  # the household new people may move into
    leads: int = 0
    leads_followed: int = 0
    followup_credit: float = 0.0
    tallies: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.tallies[what] = self.tallies.get(what, 0) + n

    def lead_too_late(self) -> None:
        """A lead came in so close to the end of the period that nobody could act on it."""
        self.leads += 1

    def take_lead(self, kind: str) -> bool:
        """Whether sales follows this lead up.

        Systematic sampling rather than a coin per lead: each lead adds its chance to a
        running credit and a rep is assigned whenever the credit reaches one. The ratio is
        then stable even for a few hundred customers, as the manifest and tests expect.
        """
        self.leads += 1
        self.followup_credit += FOLLOWUP_CHANCE[kind]
        if self.followup_credit >= 1.0:
            self.followup_credit -= 1.0
            self.leads_followed += 1
            return True
        return False

    def record_ad_click(self, campaign: Campaign, ts: int) -> None:
        """Ad platforms report per day in the account's time zone (Beijing)."""
        key = (campaign.name, local_date(ts))
        self.ad_clicks[key] = self.ad_clicks.get(key, 0) + 1


# --- time ----------------------------------------------------------------------------------


def at_local_hour(rng: random.Random, day: int, country: str, office: bool) -> int:
    """An instant on period day `day` at a local hour people of this kind are active."""
    hour = rng.choices(_HOURS, cum_weights=_HOURS_OFFICE_CUM if office else _HOURS_CONSUMER_CUM)[0]
    local = hour * 3_600_000 + int(rng.random() * 3_600_000)
    ts = START_MS + day * DAY_MS + local - vocab.UTC_OFFSET_HOURS[country] * 3_600_000
    return ts if ts >= START_MS else ts + DAY_MS


def next_day(rng: random.Random, day: int, mean_gap: float) -> int:
    return day + 1 + int(rng.expovariate(1.0 / mean_gap))


def day_of(ts: int) -> int:
    return (ts - START_MS) // DAY_MS


def in_period(ts: int) -> bool:
    return START_MS <= ts < END_MS


# --- campaigns and pages ---------------------------------------------------------------------


def _campaign_calendar() -> dict[tuple[str, bool], list[tuple[Campaign, ...]]]:
    """(bu, foreign audience) -> per period day, the campaigns running that day."""
    calendar: dict[tuple[str, bool], list[tuple[Campaign, ...]]] = {}
    for unit in ("appliances", "industrial", "service"):
        for foreign in (False, True):
            days: list[tuple[Campaign, ...]] = []
            for d in range(PERIOD_DAYS):
                ms = START_MS + d * DAY_MS
                days.append(
                    tuple(
                        c
                        for c in vocab.CAMPAIGNS
                        if c.bu == unit
                        and day_start_ms(c.start) <= ms <= day_start_ms(c.end)
                        and c.audience in ("all", "foreign" if foreign else "cn")
                    )
                )
            calendar[(unit, foreign)] = days
    return calendar


CAMPAIGN_CALENDAR = _campaign_calendar()


def running_campaigns(bu: str, day: int, foreign: bool) -> tuple[Campaign, ...]:
    days = CAMPAIGN_CALENDAR[(bu, foreign)]
    return days[day] if 0 <= day < len(days) else ()


def click_ad(
    world: World,
    em: Emitter,
    rng: random.Random,
    dev: Device,
    ts: int,
    campaign: Campaign,
    zh: bool,
    user_id: str | None,
) -> tuple[dict[str, str], str, int]:
    """A visitor clicks an ad: `Ad Clicked` is tracked and counted for the cost report.

    Returns the `context.campaign`, the landing URL's query string and the landing time.
    """
    channel = vocab.CHANNELS[campaign.channel]
    context, search = utm(rng, campaign)
    properties: dict[str, object] = {
        "channel": channel.code,
        "channel_name": channel.zh if zh else channel.en,
        "campaign": campaign.name,
        "ad_content": campaign.content,
        "keyword": context["term"],
    }
    em.track(rng, dev, ts, "Ad Clicked", properties, user_id=user_id, campaign=context)
    world.record_ad_click(campaign, ts)
    return context, search, ts + between(rng, 800, 4000)


def utm(rng: random.Random, campaign: Campaign) -> tuple[dict[str, str], str]:
    """`context.campaign` and the landing URL's query string for one ad click."""
    channel = vocab.CHANNELS[campaign.channel]
    term = rng.choice(campaign.terms)
    context = {
        "name": campaign.name,
        "source": channel.utm_source,
        "medium": channel.utm_medium,
        "term": term,
        "content": campaign.content,
    }
    search = (
        f"?utm_source={channel.utm_source}&utm_medium={channel.utm_medium}"
        f"&utm_campaign={quote(campaign.name)}&utm_term={quote(term)}"
        f"&utm_content={campaign.content}"
    )
    return context, search


def organic_referrer(rng: random.Random, foreign: bool) -> str:
    r = rng.random()
    if r < 0.45:
        return ""  # typed in, bookmarked, or the referrer was stripped
    if foreign:
        return "https://www.google.com/" if r < 0.85 else "https://www.bing.com/"
    if r < 0.75:
        return "https://www.baidu.com/"
    if r < 0.9:
        return "https://mp.weixin.qq.com/"
    return "https://cn.bing.com/"
