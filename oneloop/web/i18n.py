"""The console speaks zh-CN and English: chosen by ``?lang=``, then a cookie, then the browser.

Messages are gettext catalogues (``locale/<locale>/LC_MESSAGES/messages.po``) whose message ids
are the English text, extracted from the templates and the page modules by ``babel.cfg``. The
``.po`` files are read with Babel and compiled in memory once per process, so no binary ``.mo``
is committed and a translator edits one text file. A message without a translation shows its
English id, so a page never shows a key.

Dates and numbers are formatted with Babel in the reader's language and, for times, in the
business unit's time zone (issue 6: stored in UTC, shown in the unit's local time).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

Lang = Literal["zh-CN", "en"]
LANGS: tuple[Lang, ...] = ("zh-CN", "en")
LANG_COOKIE = "lang"
LOCALE_DIR = Path(__file__).parent / "locale"
# Babel's and gettext's name of each language.
LOCALES: dict[Lang, str] = {"zh-CN": "zh_CN", "en": "en"}


def pick_lang(query: str | None, cookie: str | None, accept_language: str | None) -> Lang:
    """The asked-for language, else the remembered one, else the browser's first choice among
    ours (``Accept-Language`` is ordered by quality; we only need to know which comes first)."""
    for choice in (query, cookie):
        if choice in LANGS:
            return choice  # type: ignore[return-value]  # narrowed by the membership test
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def other_lang(lang: Lang) -> Lang:
    return "en" if lang == "zh-CN" else "zh-CN"


@cache
def translations(lang: Lang) -> Translations:
    """The catalogue of ``lang``, read from its ``.po`` and compiled in memory, once."""
    path = LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=LOCALES[lang])
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def gettext(lang: Lang, message: str) -> str:
    return translations(lang).gettext(message)


@dataclass(frozen=True)
class Formatter:
    """Dates and numbers for one reader: their language, their unit's time zone."""

    lang: Lang
    zone: ZoneInfo

    @property
    def locale(self) -> str:
        return LOCALES[self.lang]

    def datetime(self, value: datetime | None, format: str = "medium") -> str:
        if value is None:
            return "—"
        return format_datetime(value, format, tzinfo=self.zone, locale=self.locale)

    def date(self, value: date | datetime | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, datetime):
            value = value.astimezone(self.zone).date()
        return format_date(value, "medium", locale=self.locale)

    def number(self, value: float | int | None) -> str:
        if value is None:
            return "—"
        return format_decimal(value, locale=self.locale)

    def percent(self, value: float | None) -> str:
        if value is None:
            return "—"
        return format_percent(value, "#,##0.0%", locale=self.locale)

    def iso(self, value: datetime) -> str:
        """For ``<time datetime=…>`` and charts: the local time with its offset."""
        return value.astimezone(self.zone).isoformat(timespec="seconds")
