"""The console speaks zh-CN and English: chosen by ``?lang=``, then a cookie, then the browser.

Messages are a plain catalogue keyed by message id; a missing translation falls back to English
so a page never shows a key.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh-CN", "en"]
LANGS: tuple[Lang, ...] = ("zh-CN", "en")

MESSAGES: dict[str, dict[Lang, str]] = {
    "tagline": {
        "en": "One customer, one ID, one loop: marketing, sales and service.",
        "zh-CN": "一个客户、一个 ID、一个闭环：营销、销售与服务一体化。",
    },
    "group": {"en": "Group", "zh-CN": "集团"},
    "business_units": {"en": "Business units", "zh-CN": "事业部"},
    "no_group": {
        "en": "No group yet. Run `oneloop demo load` or `oneloop bu create`.",
        "zh-CN": "尚未创建集团。请运行 `oneloop demo load` 或 `oneloop bu create`。",
    },
    "code": {"en": "Code", "zh-CN": "编码"},
    "name": {"en": "Name", "zh-CN": "名称"},
    "status": {"en": "Status", "zh-CN": "状态"},
    "ready": {"en": "Database ready", "zh-CN": "数据库就绪"},
    "api_docs": {"en": "API reference", "zh-CN": "API 文档"},
    "switch_lang": {"en": "中文", "zh-CN": "English"},
}


def pick_lang(query: str | None, cookie: str | None, accept_language: str | None) -> Lang:
    for choice in (query, cookie):
        if choice in LANGS:
            return choice  # type: ignore[return-value]  # narrowed by the membership test
    if accept_language and accept_language.strip().lower().startswith("zh"):
        return "zh-CN"
    return "en"


def translate(lang: Lang, key: str) -> str:
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry["en"]
