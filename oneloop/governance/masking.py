"""Masking personal values for display, and protecting sensitive ones at rest (issue 7, part 3).

Pure functions, one per kind of personal information: what a caller without ``pii:read`` sees
(``138****8000``, ``z***@example.com``, ``张*``). Which kind a value is, is the data
dictionary's say (``oneloop.governance.pii``), never a field name hard-coded here.

Every masker takes anything (a value is hostile input: a number, junk, an emoji), never
raises, and for a value with something to hide (a letter or a digit, and no ``*`` yet)
returns something else, with a ``*`` in it. Masking is idempotent on a masked value, so the
stored masked form of a sensitive value can be masked again on the way out.

Sensitive personal information (PIPL art. 28: id-card numbers, bank cards …) is never stored
in clear: ``protect`` keeps a keyed hash (HMAC-SHA256, so equal values still compare equal
across sources) and the masked form, in one string, ``hmac-sha256:<hex>:<masked>``; without
a key, ``masked::<masked>``. Only the masked part is ever shown, to anyone.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import phonenumbers

log = logging.getLogger(__name__)

STARS = "***"
# The kinds of personal information the dictionary may name: kind → (中文, English).
PII_KINDS: dict[str, tuple[str, str]] = {
    "name": ("姓名", "name"),
    "phone": ("手机号码", "phone number"),
    "email": ("电子邮箱", "e-mail address"),
    "address": ("地址", "address"),
    "birth_date": ("出生日期", "birth date"),
    "id_card": ("身份证号", "id-card number"),
    "passport": ("护照号", "passport number"),
    "bank_card": ("银行卡号", "bank card number"),
    "wechat_id": ("微信 OpenID / UnionID", "WeChat openid / unionid"),
    "device_id": ("设备标识", "device id"),
    "other": ("其他个人信息", "other personal information"),
}
DEFAULT_REGION = "CN"


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _has_secret(text: str) -> bool:
    """Something worth hiding: a letter or digit of any script."""
    return any(c.isalnum() for c in text)


def _keep(text: str, head: int, tail: int, stars: str | None = None) -> str:
    """``head`` characters, stars, ``tail`` characters; all stars when too short to keep any."""
    if len(text) <= head + tail:
        return STARS
    return (
        text[:head]
        + (stars if stars is not None else "*" * (len(text) - head - tail))
        + (text[len(text) - tail :] if tail else "")
    )


def mask_phone(value: object) -> str:
    """The national number's first 3 and last 4 digits (``+8613800138000`` → ``138****8000``);
    a number abroad keeps its country code (``+49 301**4567``)."""
    text = _text(value)
    if "*" in text and sum(c.isdigit() for c in text) <= 7:
        return text  # already masked: it shows no more than a mask's 3 + 4 digits
    prefix = ""
    try:
        parsed = phonenumbers.parse(text, DEFAULT_REGION)
        digits = str(parsed.national_number)
        if parsed.country_code != phonenumbers.country_code_for_region(DEFAULT_REGION):
            prefix = f"+{parsed.country_code} "
    except phonenumbers.NumberParseException:
        digits = "".join(c for c in text if c.isascii() and c.isdigit())
    if len(digits) >= 9:
        return prefix + _keep(digits, 3, 4)
    if len(digits) >= 6:
        return prefix + _keep(digits, 2, 2)
    return STARS


def mask_email(value: object) -> str:
    """The first character of the mailbox and the whole domain: ``z***@example.com``."""
    local, at, domain = _text(value).strip().rpartition("@")
    if not at:
        return _first(local or domain)
    head = local[:1] if local[:1] not in ("", "*") else ""
    return f"{head}{STARS}@{domain}"


def _first(text: str) -> str:
    return f"{text[:1]}{STARS}" if len(text) > 1 and text[0] != "*" else STARS


def _is_han(text: str) -> bool:
    return any(unicodedata.name(c, "").startswith("CJK UNIFIED") for c in text)


def mask_name(value: object) -> str:
    """The first character of each word, then up to three stars: ``张伟`` → ``张*``,
    ``欧阳娜娜`` → ``欧***``, ``Zhang Wei`` → ``Z*** W**``. A one-character word is a star:
    an initial says too much of a short name."""
    text = _text(value).strip()
    words = [text] if _is_han(text) else text.split()
    return " ".join(w[:1] + "*" * min(len(w) - 1, 3) if len(w) > 1 else "*" for w in words) or (
        STARS
    )


# Chinese addresses start with the province and the city: 广东省深圳市…, 上海市…, 新疆维吾尔
# 自治区乌鲁木齐市…; what follows them (district, street, number) is what identifies a home.
_PROVINCE = r"(?:[^省市区]{2,7}?(?:省|自治区|特别行政区))"
_CITY = r"(?:[^省市]{1,9}?(?:市|自治州|地区|盟))"
_CN_PREFIX = re.compile(rf"^\s*({_PROVINCE}?{_CITY}|{_PROVINCE})")


def mask_address(value: object) -> str:
    """The province and city only: ``上海市浦东新区世纪大道100号`` → ``上海市***``;
    ``100 Century Ave, Pudong, Shanghai, China`` → ``***, Shanghai, China`` (the last two
    parts of an address written the Western way round)."""
    text = _text(value).strip()
    found = _CN_PREFIX.match(text)
    if found:
        return found.group(1).strip() + STARS
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) >= 3:
        return ", ".join([STARS, *parts[-2:]])
    if len(parts) == 2:
        return f"{STARS}, {parts[-1]}"
    return STARS


_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_COMPACT_DATE = re.compile(r"^(1[89]\d\d|20\d\d)\d{4}$")


def mask_birth_date(value: object) -> str:
    """The year only: ``1990-05-17`` → ``1990-**-**``."""
    text = _text(value).strip()
    found = _COMPACT_DATE.match(text) or _YEAR.search(text)
    return f"{found.group(1)}-**-**" if found else STARS


def mask_id_card(value: object) -> str:
    """The first 6 (the region of issue) and the last 4 characters:
    ``110105199003071234`` → ``110105********1234``. Always, even with ``pii:read``."""
    text = "".join(_text(value).split())
    return _keep(text, 6, 4) if len(text) >= 11 else STARS


def mask_bank_card(value: object) -> str:
    """The first 6 (the issuer) and last 4 digits, as PCI DSS allows a card number shown."""
    text = "".join(c for c in _text(value) if not c.isspace() and c != "-")
    return _keep(text, 6, 4) if len(text) >= 12 else STARS


def mask_passport(value: object) -> str:
    text = "".join(_text(value).split())
    return _keep(text, 2, 2) if len(text) >= 6 else STARS


def mask_opaque_id(value: object) -> str:
    """First 4 and last 4 (WeChat openid/unionid, device ids); a scope written before a colon
    (``wx8f3a…:oAbc…``, the app an openid belongs to) is kept as it is."""
    text = _text(value).strip()
    scope, sep, rest = text.rpartition(":")
    if sep and rest:
        return f"{scope}:{mask_opaque_id(rest)}"
    return _keep(text, 4, 4, stars="****") if len(text) >= 12 else _first(text)


def mask_other(value: object) -> str:
    return STARS


MASKERS: dict[str, Callable[[object], str]] = {
    "name": mask_name,
    "phone": mask_phone,
    "email": mask_email,
    "address": mask_address,
    "birth_date": mask_birth_date,
    "id_card": mask_id_card,
    "passport": mask_passport,
    "bank_card": mask_bank_card,
    "wechat_id": mask_opaque_id,
    "device_id": mask_opaque_id,
    "other": mask_other,
}
assert set(MASKERS) == set(PII_KINDS)


def mask(kind: str | None, value: Any) -> Any:  # Any: a JSON value as sent
    """``value`` as someone without ``pii:read`` sees it: scalars masked by ``kind`` (an
    unknown kind or none: ``***``), objects and lists leaf by leaf, null as null."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: mask(kind, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(kind, v) for v in value]
    if isinstance(value, bool):
        return STARS
    text = _text(value)
    masker = MASKERS.get(kind or "other", mask_other)
    try:
        out = masker(text)
    except Exception as exc:  # a masker's bug must hide the value, never show it or fail
        log.error("masking.failed", extra={"kind": kind, "error": type(exc).__name__})
        return STARS
    if out == text and "*" not in text and _has_secret(text):
        return STARS
    return out


# --- sensitive values at rest ------------------------------------------------------------------

HMAC_SCHEME = "hmac-sha256"
UNKEYED_SCHEME = "masked"
_PROTECTED = re.compile(r"\A(?:hmac-sha256:([0-9a-f]{64})|masked:):(.*)\Z", re.DOTALL)


def is_protected(value: object) -> bool:
    return isinstance(value, str) and _PROTECTED.match(value) is not None


def canonical(value: object) -> str:
    """What is hashed: letters upper-cased, spaces and dashes dropped, so that
    ``11010519900307123x`` and ``110105 19900307 123X`` hash alike."""
    return "".join(c for c in _text(value) if not c.isspace() and c != "-").upper()


def protect(kind: str | None, value: object, key: bytes | None) -> str:
    """The stored form of a sensitive value: its keyed hash and its masked form. Protecting a
    protected value keeps its hash and masks its masked part again (a replayed dead letter
    is protected twice; a forged "protected" value must not carry a clear one)."""
    found = _PROTECTED.match(value) if isinstance(value, str) else None
    if found is not None:
        digest, masked = found.group(1), mask(kind, found.group(2))
        return f"{HMAC_SCHEME}:{digest}:{masked}" if digest else f"{UNKEYED_SCHEME}::{masked}"
    masked = mask(kind, value)
    if key is None:
        return f"{UNKEYED_SCHEME}::{masked}"
    digest = hmac.new(key, canonical(value).encode(), hashlib.sha256).hexdigest()
    return f"{HMAC_SCHEME}:{digest}:{masked}"


def shown_sensitive(kind: str | None, value: Any) -> Any:  # Any: a JSON value as stored
    """A sensitive value as anyone sees it: the masked part of the protected form, or the
    value masked (one stored before its field was classified sensitive)."""
    if isinstance(value, str) and (found := _PROTECTED.match(value)) is not None:
        return mask(kind, found.group(2))
    return mask(kind, value)
