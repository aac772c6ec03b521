"""Consent in the demo (issue 7, part 4), so that the console's opt-in rates are not empty.

Appliances' sign-up form has consent boxes: the registration's identify call carries the trait
``consent`` (``{"marketing": {"sms": true, "email": false, "wechat": true}, "analytics":
true}``); an older app version without the boxes sends none. Industrial's forms (whitepaper,
demo, summit) ask once for marketing e-mail, and people abroad are asked for the transfer of
their data to China: a ``Consent Updated`` event each. Later some unsubscribe (an e-mail
link, an SMS reply ``TD``): a ``Consent Updated`` withdrawal from the messaging back end.

Every draw comes from a stream of its own per person (seeded by the person's unionid, which
the seed decides), so consent adds its own events and trait without moving any other draw of
the data set.
"""

from __future__ import annotations

import random

from oneloop.demo.clock import DAY_MS, END_MS
from oneloop.demo.devices import Device
from oneloop.demo.draw import between
from oneloop.demo.events import Emitter, Page
from oneloop.demo.people import Person
from oneloop.demo.world import World

EVENT = "Consent Updated"
# How often each box is ticked on the sign-up form: China's shops reach people by SMS and
# WeChat; the international shop by e-mail.
SIGNUP_BOXES_CN = (("sms", 0.45), ("wechat", 0.5), ("email", 0.3))
SIGNUP_BOXES_INTL = (("email", 0.55),)
SIGNUP_WITH_BOXES = 0.8
ANALYTICS_YES = 0.7
FORM_OPT_IN = 0.6  # industrial: "send me news and offers by e-mail"
TRANSFER_YES = 0.75  # industrial, abroad: "my data may be transferred to China"
UNSUBSCRIBE = 0.12  # of people with a marketing yes, who withdraw one later
PROOF_FORM = "form:{path}#consent-v3"


def stream(person: Person, unit: str) -> random.Random:
    """The person's consent draws in one unit's journey."""
    return random.Random(f"oneloop-demo-consent:{unit}:{person.unionid}")  # noqa: S311 - synthetic


def signup_trait(rng: random.Random, zh: bool) -> dict[str, object] | None:
    """The sign-up form's boxes as an identify trait, or None (no boxes on that version)."""
    if rng.random() >= SIGNUP_WITH_BOXES:
        return None
    boxes = SIGNUP_BOXES_CN if zh else SIGNUP_BOXES_INTL
    marketing = {channel: rng.random() < chance for channel, chance in boxes}
    return {"marketing": marketing, "analytics": rng.random() < ANALYTICS_YES}


def maybe_unsubscribe(
    world: World, em: Emitter, rng: random.Random, ts: int, user_id: str, channels: list[str]
) -> None:
    """Some of those who said yes to marketing withdraw one channel within three months."""
    if not channels or rng.random() >= UNSUBSCRIBE:
        return
    channel = rng.choice(channels)
    at = ts + between(rng, DAY_MS, 90 * DAY_MS)
    if at >= END_MS:
        return
    proof = "sms-reply:TD" if channel == "sms" else f"unsubscribe:{channel}"
    properties = {"purpose": "marketing", "channel": channel, "status": "withdrawn",
                  "legal_basis": "consent", "proof": proof}  # fmt: skip
    em.track(rng, world.server, at, EVENT, properties, user_id=user_id)
    world.count("consent_withdrawals")


def form_consent(
    world: World,
    em: Emitter,
    rng: random.Random,
    dev: Device,
    ts: int,
    user_id: str,
    page: Page | None,
    path: str,
    abroad: bool,
) -> None:
    """An industrial form's consent boxes, asked the first time a person fills one in."""
    proof = PROOF_FORM.format(path=path)
    said_yes = rng.random() < FORM_OPT_IN
    marketing = {"purpose": "marketing", "channel": "email",
                 "status": "granted" if said_yes else "denied", "legal_basis": "consent",
                 "proof": proof}  # fmt: skip
    em.track(rng, dev, ts + between(rng, 50, 400), EVENT, marketing, user_id=user_id, page=page)
    world.count("consent_forms")
    if abroad:
        transfer = {"purpose": "cross_border_transfer", "channel": "any",
                    "status": "granted" if rng.random() < TRANSFER_YES else "denied",
                    "legal_basis": "consent", "proof": proof}  # fmt: skip
        em.track(rng, dev, ts + between(rng, 50, 400), EVENT, transfer, user_id=user_id, page=page)
    if said_yes:
        maybe_unsubscribe(world, em, rng, ts, user_id, ["email"])
