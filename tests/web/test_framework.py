"""The console's framework without a server: catalogues, language choice, formatting, paging
and form errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from pydantic import BaseModel, Field
from starlette.datastructures import URL

from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.web import i18n
from oneloop.web.forms import FormErrors, local_path, parse_form
from oneloop.web.i18n import Formatter, pick_lang
from oneloop.web.paging import cursor_pager
from oneloop.web.templating import translator

WEB = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _extracted() -> set[str | tuple[str, ...]]:
    """The message ids in the console's code and templates, as ``babel.cfg`` extracts them."""
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    return {message for _, _, message, *_ in extract_from_dir(str(WEB), method_map) if message}


def _catalogue(locale: str) -> dict[str | tuple[str, ...], object]:
    path = WEB / "locale" / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        return {m.id: m.string for m in read_po(po) if m.id}


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_every_message_of_the_pages_is_in_the_catalogues(locale: str) -> None:
    extracted = _extracted()
    catalogue = _catalogue(locale)
    assert extracted - set(catalogue) == set(), "run pybabel extract and update the .po files"
    assert set(catalogue) - extracted == set(), "messages no page uses any more"


def test_every_message_has_a_chinese_translation_with_the_same_placeholders() -> None:
    for message, translated in _catalogue("zh_CN").items():
        singular = message[0] if isinstance(message, tuple) else message
        text = translated[0] if isinstance(translated, tuple) else translated
        assert isinstance(text, str) and text.strip(), f"no translation of {message!r}"
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(singular)), message


def test_translations_escape_what_they_are_given() -> None:
    gettext, _ = translator("zh-CN")
    assert str(gettext("Customers")) == "客户"
    assert str(gettext("<b>not ours</b>")) == "&lt;b&gt;not ours&lt;/b&gt;"
    shown = gettext("Remove the tag %(tag)s from this customer?", tag="<i>x</i>")
    assert "&lt;i&gt;x&lt;/i&gt;" in str(shown) and "移除" in str(shown)
    _, nenglish = translator("en")
    assert str(nenglish("%(num)s event", "%(num)s events", 1)) == "1 event"
    assert str(nenglish("%(num)s event", "%(num)s events", 3)) == "3 events"


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        ("en", "zh-CN", "zh-CN", "en"),
        (None, "zh-CN", "en", "zh-CN"),
        (None, None, "zh-TW,zh;q=0.9", "zh-CN"),
        (None, None, "en-GB,zh-CN;q=0.5", "en"),
        (None, None, "fr-FR,zh;q=0.5", "zh-CN"),
        ("xx", "yy", None, "en"),
    ],
)
def test_the_language_is_asked_then_remembered_then_the_browsers(
    query: str | None, cookie: str | None, accept: str | None, expected: str
) -> None:
    assert pick_lang(query, cookie, accept) == expected


def test_times_and_numbers_are_in_the_readers_language_and_the_units_zone() -> None:
    at = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    zh = Formatter("zh-CN", ZoneInfo("Asia/Shanghai"))
    en = Formatter("en", ZoneInfo("Europe/Berlin"))
    assert zh.datetime(at) == "2026年3月2日 00:30:00"
    assert en.date(at) == "Mar 1, 2026"
    assert zh.number(1234567) == "1,234,567" and en.percent(0.4567) == "45.7%"
    assert zh.iso(at) == "2026-03-02T00:30:00+08:00"
    assert zh.datetime(None) == "—"


def test_the_pager_goes_forward_and_back_with_the_cursors_it_was_given() -> None:
    first = cursor_pager(URL("/audit?action=x"), "c2", fragment_path="/frag")
    assert first.prev_url is None and first.first_url is None
    assert first.next_url == "/audit?action=x&cursor=c2&trail=~"
    assert first.next_fragment == "/frag?action=x&cursor=c2&trail=~"
    second = cursor_pager(URL(first.next_url), "c3")
    assert second.prev_url == "/audit?action=x"
    assert second.next_url == "/audit?action=x&cursor=c3&trail=~.c2"
    third = cursor_pager(URL(second.next_url), None)
    assert third.next_url is None
    assert third.prev_url == "/audit?action=x&cursor=c2&trail=~"
    assert third.first_url == "/audit?action=x"


def test_the_pager_keeps_its_trail_short() -> None:
    url = URL("/audit?cursor=c99&trail=" + ".".join(f"c{i}" for i in range(200)))
    pager = cursor_pager(url, "c100")
    assert pager.next_url is not None and len(pager.next_url) < 400


class _Form(BaseModel):
    reason: str = Field(min_length=1, max_length=5)


def test_form_errors_land_beside_their_fields() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_form(_Form, {"reason": ""})
    errors = FormErrors.of(caught.value, {"reason"})
    assert errors.get("reason") == ["This field is required."] and not errors.general
    domain = ValidationFailed(
        "bad", [FieldError(("value",), "not a phone"), FieldError(("x",), "y")]
    )
    placed = FormErrors.of(domain, {"q"}, aliases={"value": "q"})
    assert placed.get("q") == ["not a phone"] and placed.general == ["y"]
    assert FormErrors.of(ValidationFailed("just this"), {"q"}).general == ["just this"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/customers?q=1", "/customers?q=1"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("customers", "/"),
        (None, "/"),
    ],
)
def test_redirects_stay_on_the_site(target: str | None, expected: str) -> None:
    assert local_path(target) == expected
