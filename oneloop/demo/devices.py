"""Browsers, phones and back ends: what `anonymousId`, `context.device` and `context.library`
describe in a tracking event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from oneloop.demo import vocab
from oneloop.demo.draw import encode_json, token, uuid4
from oneloop.demo.vocab import Handset


@dataclass(slots=True)
class Device:
    """A browser or phone: what `anonymousId` and `context.device.id` really identify."""

    platform: str  # web, ios, android or server
    anonymous_id: str
    device_id: str | None
    context: dict[str, object]  # the message context shared by every call from this device
    skew_ms: int  # how far the client clock is off; `originalTimestamp` carries it
    is_mobile: bool
    shared: bool = False  # a household's device: several people, several logins
    context_json: str = ""  # `context`, encoded once
    anonymous_part: str = ""  # `,"anonymousId":"…"`, rendered once

    def __post_init__(self) -> None:
        self.context_json = encode_json(self.context)
        if self.anonymous_id:
            self.anonymous_part = ',"anonymousId":' + encode_json(self.anonymous_id)


def new_device(rng: random.Random, country: str, platform: str, locale: str) -> Device:
    """A browser (`web`), a phone running the app (`ios`/`android`) or a back end (`server`).

    The context is built once per device and shared by all its messages: the message is
    encoded before anything else touches it, so sharing is safe and saves a copy per event.
    """
    skew = 0
    if platform != "server" and rng.random() < 0.15:
        skew = int(rng.choice((-1, 1)) * rng.expovariate(1 / 90_000))  # clocks off by ~1.5 min
    first = rng.choice(vocab.IP_FIRST_OCTETS[country])
    ip = f"{first}.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if platform == "server":
        context: dict[str, object] = {"library": vocab.LIBRARIES["server"]}
        return Device("server", "", None, context, 0, False)
    if platform == "web":
        is_mobile = rng.random() < (0.55 if country == "CN" else 0.35)
        if is_mobile:
            pool = (
                vocab.USER_AGENTS_MOBILE_CN if country == "CN" else vocab.USER_AGENTS_MOBILE_FOREIGN
            )
        else:
            pool = vocab.USER_AGENTS_DESKTOP
        context = {
            "ip": ip,
            "userAgent": rng.choice(pool),
            "locale": locale,
            "library": vocab.LIBRARIES["web"],
        }
        return Device("web", uuid4(rng), None, context, skew, is_mobile)
    handset = rng.choice(vocab.HANDSETS_CN if country == "CN" else vocab.HANDSETS_FOREIGN)
    device_id = (
        uuid4(rng).upper() if handset.platform == "ios" else token(rng, 16, "0123456789abcdef")
    )
    context = {
        "ip": ip,
        "userAgent": _app_user_agent(handset),
        "locale": locale,
        "library": vocab.LIBRARIES[handset.platform],
        "app": vocab.APP_INFO,
        "device": {
            "id": device_id,
            "type": handset.platform,
            "manufacturer": handset.manufacturer,
            "model": handset.model,
        },
        "os": {"name": handset.os_name, "version": handset.os_version},
        "network": {"wifi": rng.random() < 0.6, "carrier": _carrier(rng, country)},
        "timezone": _timezone(country),
    }
    return Device(handset.platform, uuid4(rng), device_id, context, skew, True)


def wechat_device(openid: str, traits: dict[str, str]) -> Device:
    """WeChat pushes follow and menu events to the official account's server: the openid is
    all there is, so it stands in as the anonymousId."""
    context: dict[str, object] = {"library": vocab.LIBRARIES["server"], "traits": traits}
    return Device("server", openid, None, context, 0, False)


def server_device() -> Device:
    """Back ends (CRM, ERP, event badge scanners) calling the tracking API with a userId."""
    return Device("server", "", None, {"library": vocab.LIBRARIES["server"]}, 0, False)


def _app_user_agent(handset: Handset) -> str:
    if handset.platform == "ios":
        return f"GalaxyHome/4.2.0 (iPhone; iOS {handset.os_version}; Scale/3.00)"
    return f"GalaxyHome/4.2.0 (Linux; {handset.os_name} {handset.os_version}; {handset.model})"


def _carrier(rng: random.Random, country: str) -> str:
    return rng.choice(
        {
            "CN": ("中国移动", "中国联通", "中国电信"),
            "GB": ("EE", "Vodafone UK", "O2 - UK"),
            "DE": ("Telekom.de", "Vodafone.de", "o2 - de"),
            "US": ("AT&T", "Verizon", "T-Mobile"),
        }[country]
    )


def _timezone(country: str) -> str:
    return {
        "CN": "Asia/Shanghai",
        "GB": "Europe/London",
        "DE": "Europe/Berlin",
        "US": "America/New_York",
    }[country]
