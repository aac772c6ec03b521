"""Taking one person's PII out of a JSON document, keeping what aggregates need.

An erased person's events stay in the log so that revenue, funnels and counts still add up;
what identifies them goes. Numbers and booleans stay; a string goes when its key names
personal information or when it carries one of the person's own values (an identifier, a
trait), however deep in the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Keys whose values are personal whatever they hold (compared without case, "_" or "-").
# Not ``name``: a page's or a product's name is not a person's; a person's name is found by
# its value, which their own traits give.
PII_KEYS = frozenset(
    {
        "firstname",
        "lastname",
        "fullname",
        "nickname",
        "username",
        "phone",
        "mobile",
        "tel",
        "email",
        "address",
        "street",
        "postalcode",
        "zip",
        "birthday",
        "birthdate",
        "dateofbirth",
        "idcard",
        "idnumber",
        "passport",
        "ip",
        "useragent",
        "avatar",
        "openid",
        "unionid",
        "wechat",
        "deviceid",
        "userid",
        "anonymousid",
        "crmid",
        "memberno",
    }
)
# Shorter strings (a name "张伟", a city "上海") are looked for in the person's own events, not
# in other people's dead letters, where they would erase strangers who share them.
MIN_VALUE = 4
REMOVED = "[erased]"


@dataclass
class PiiValues:
    """The person's own values, as found before anything was erased."""

    values: set[str] = field(default_factory=set)
    # Property names the data dictionary classifies as personal, beside ``PII_KEYS``.
    keys: set[str] = field(default_factory=set)

    def add(self, value: object) -> None:
        if isinstance(value, str):
            text = value.strip()
            if len(text) >= 2:
                self.values.add(text)
            digits = re.sub(r"\D", "", text)
            if len(digits) >= 7:  # a phone however it was typed: 138 0013 8000, +86 …
                self.values.add(digits)
                if digits.startswith("86") and len(digits) == 13:
                    self.values.add(digits[2:])

    def add_all(self, document: object) -> None:
        """Every string in a document (traits): a trait is the person's by definition."""
        if isinstance(document, dict):
            for value in document.values():
                self.add_all(value)
        elif isinstance(document, list):
            for value in document:
                self.add_all(value)
        else:
            self.add(document)

    def searchable(self) -> list[str]:
        """Values long enough to look for inside other text (dead letters' payloads)."""
        return sorted(v for v in self.values if len(v) >= MIN_VALUE)

    def found_in(self, text: str) -> bool:
        """Whether ``text`` (of the person's own events) carries one of their values, even a
        two-character name inside a sentence: better a city too many gone from their events
        than their name kept."""
        digits = re.sub(r"\D", "", text)
        return any(
            v in text or (v.isdigit() and len(v) >= MIN_VALUE and v in digits) for v in self.values
        )


def is_pii_key(key: str) -> bool:
    return re.sub(r"[_\-\s.]", "", key).lower() in PII_KEYS


def scrub(document: Any, pii: PiiValues) -> Any:  # Any: a JSON document
    """``document`` without the person's PII; the same shape where possible."""
    if isinstance(document, dict):
        personal = {k for k in document if is_pii_key(str(k)) or str(k) in pii.keys}
        return {
            key: (REMOVED if key in personal and value not in (None, "") else scrub(value, pii))
            for key, value in document.items()
            if not (key in personal and isinstance(value, dict | list))
        }
    if isinstance(document, list):
        return [scrub(value, pii) for value in document]
    if isinstance(document, str) and pii.found_in(document):
        return REMOVED
    return document
