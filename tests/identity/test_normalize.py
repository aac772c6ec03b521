"""Identifier normalisation: real-world spellings, every rejection's reason, and the properties
the resolver relies on (never raises, idempotent, one person's spellings meet)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains

from oneloop.identity.normalize import (
    BUILTIN_KINDS,
    KINDS,
    MAX_LENGTH,
    REASONS,
    Normalized,
    NormalizeOptions,
    mask_matches,
    normalize,
    normalize_many,
)

APP = "wx1234567890abcdef"
OPENID = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
ANON = "3f6c0b8e-1d2a-4c5e-9f00-AA11BB22CC33"  # case kept: only device ids fold
PROVIDER_RULES = NormalizeOptions(email_gmail_dots=True, email_plus_tags=True)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ACCEPTED = [
    # CN mobiles, as forms, CRMs and spreadsheets spell them
    ("phone", "13800138000", "+8613800138000"),
    ("phone", "138 0013 8000", "+8613800138000"),
    ("phone", "+86 138-0013-8000", "+8613800138000"),
    ("phone", "+86-138-0013-8000", "+8613800138000"),
    ("phone", "8613800138000", "+8613800138000"),
    ("phone", "86 138 0013 8000", "+8613800138000"),
    ("phone", "(+86)13800138000", "+8613800138000"),
    ("phone", "（+86）13800138000", "+8613800138000"),
    ("phone", "0086 138 0013 8000", "+8613800138000"),
    ("phone", "＋８６ １３８ ００１３ ８０００", "+8613800138000"),
    ("phone", "０１３８００１３８０００", "+8613800138000"),
    ("phone", "\u3000138.0013.8000\u00a0", "+8613800138000"),
    ("phone", 13800138000, "+8613800138000"),
    ("phone", "+8613800138000", "+8613800138000"),
    ("phone", "133 1234 5678", "+8613312345678"),
    ("phone", "139-1234-5678", "+8613912345678"),
    ("phone", "15012345678", "+8615012345678"),
    ("phone", "151 9876 5432", "+8615198765432"),
    ("phone", "+86 186 1234 5678", "+8618612345678"),
    ("phone", "18787654321", "+8618787654321"),
    ("phone", "8619912345678", "+8619912345678"),
    ("phone", "166 1234 5678", "+8616612345678"),
    # CN landlines; an extension is the switchboard's, so it is dropped
    ("phone", "021-6888 0000", "+862168880000"),
    ("phone", "+86 21 68880000", "+862168880000"),
    ("phone", "862168880000", "+862168880000"),
    ("phone", "+86 (0)21 6888 0000", "+862168880000"),
    ("phone", "010-12345678", "+861012345678"),
    ("phone", "+86 755 68654790", "+8675568654790"),
    ("phone", "0755-6865 4790", "+8675568654790"),
    ("phone", "8675568654790", "+8675568654790"),
    ("phone", "021-68880000-8001", "+862168880000"),
    ("phone", "021-68880000转8001", "+862168880000"),
    ("phone", "021-68880000 转 8001", "+862168880000"),
    ("phone", "021-68880000分机8001", "+862168880000"),
    ("phone", "+86 21 68880000 ext. 8001", "+862168880000"),
    ("phone", "021 68880000 x8001", "+862168880000"),
    ("phone", "021-68880000#8001", "+862168880000"),
    ("phone", "400-820-8820", "+864008208820"),
    # international, with the 00 prefix dialled from China or with a plus
    ("phone", "00447858244833", "+447858244833"),
    ("phone", "+44 (0)20 7946 0958", "+442079460958"),
    ("phone", "+1 (415) 555-2671", "+14155552671"),
    ("phone", "+49 157 55135546", "+4915755135546"),
    # masked mobiles, as apps and receipts print them
    ("phone_masked", "138****8000", "138****8000"),
    ("phone_masked", "138 **** 8000", "138****8000"),
    ("phone_masked", "+86 138****8000", "138****8000"),
    ("phone_masked", "138xxxx8000", "138****8000"),
    ("phone_masked", "138XXXX8000", "138****8000"),
    ("phone_masked", "１３８＊＊＊＊８０００", "138****8000"),
    # emails: trimmed, NFKC (full-width ＠), both parts lower-cased, Unicode domain
    ("email", "ZHANG.WEI@QQ.COM", "zhang.wei@qq.com"),
    ("email", "zhang.wei@qq.com", "zhang.wei@qq.com"),
    ("email", " li@163.com ", "li@163.com"),
    ("email", "\u3000li@163.com\t", "li@163.com"),
    ("email", "test＠example.com", "test@example.com"),
    ("email", "ｗａｎｇ＠１２６．ｃｏｍ", "wang@126.com"),
    ("email", "Wang.Fang+news@Gmail.com", "wang.fang+news@gmail.com"),
    ("email", "j.o.h.n@googlemail.com", "j.o.h.n@googlemail.com"),
    ("email", "info@xn--fiqs8s.cn", "info@中国.cn"),
    ("email", "INFO@中国.CN", "info@中国.cn"),
    ("email", "用户@例子.广告", "用户@例子.广告"),
    ("email", "abc+tag@qq.com", "abc+tag@qq.com"),
    # opaque ids: trimmed, NFKC, case kept
    ("user_id", "  u_10086  ", "u_10086"),
    ("user_id", "\u3000ＵＳＥＲ１２３\u00a0", "USER123"),
    ("user_id", "AbC-123", "AbC-123"),
    ("user_id", 42, "42"),
    ("user_id", "张伟 VIP", "张伟 VIP"),
    ("user_id", "😀", "😀"),
    ("crm_id", "CRM-0001", "CRM-0001"),
    ("anonymous_id", ANON, ANON),
    ("previous_id", "anon-1", "anon-1"),
    ("wechat_unionid", "oQq-Z5ZD8TuEBbZwHHC0tI0oEJWs", "oQq-Z5ZD8TuEBbZwHHC0tI0oEJWs"),
    ("user_id", "x" * MAX_LENGTH, "x" * MAX_LENGTH),
    # device ids are case-insensitive hex
    ("device_id", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
    ("device_id", "ＡＢＣ", "abc"),
    # member numbers printed in groups
    ("member_no", "8801 2345 6789", "880123456789"),
    ("member_no", "8801-2345-6789", "880123456789"),
    ("member_no", "８８０１\u30002345", "88012345"),
    ("member_no", "007", "007"),
    ("member_no", "VIP 8801-2345", "VIP 8801-2345"),
    ("member_no", 880123456789, "880123456789"),
]


@pytest.mark.parametrize(
    ("type_code", "raw", "expected"), ACCEPTED, ids=[f"{t}:{v[:20]}" for t, _, v in ACCEPTED]
)
def test_accepts_real_world_spellings(type_code: str, raw: object, expected: str) -> None:
    found = normalize(type_code, raw)
    assert found == Normalized(type_code, expected, None, None)
    assert found.ok


REJECTED = [
    ("phone", "1380013800", "phone_invalid"),
    ("phone", "12345", "phone_invalid"),
    ("phone", "14012345678", "phone_invalid"),
    ("phone", "138-0013-8000-1", "phone_invalid"),  # a mobile has no extension
    ("phone", "13800138000abc", "phone_invalid"),
    ("phone", "abc13800138000", "phone_invalid"),
    ("phone", "1-800-FLOWERS", "phone_invalid"),
    ("phone", "tel:+86-138-0013-8000", "phone_invalid"),
    ("phone", "+999 1234 5678", "phone_invalid"),
    ("phone", "+8613800138000" + "0", "phone_invalid"),
    ("phone", "138****8000", "phone_masked"),
    ("phone", "138xxxx8000", "phone_masked"),
    ("phone", "+86 138 **** 8000", "phone_masked"),
    ("phone", "1" * 65, "too_long"),
    ("phone", "", "empty"),
    ("phone", "   ", "empty"),
    ("phone", "138\x000138000", "control_chars"),
    ("phone", 1.38e10, "not_a_string"),
    ("phone", True, "not_a_string"),
    ("phone_masked", "138***8000", "phone_masked_invalid"),
    ("phone_masked", "13800138000", "phone_masked_invalid"),
    ("phone_masked", "021****0000", "phone_masked_invalid"),
    ("email", "a@", "email_invalid"),
    ("email", "@b.com", "email_invalid"),
    ("email", "a b@c.com", "email_invalid"),
    ("email", "zhang.wei", "email_invalid"),
    ("email", "a@@b.com", "email_invalid"),
    ("email", "a..b@c.com", "email_invalid"),
    ("email", "a@localhost", "email_invalid"),
    ("email", "a@shop.local", "email_invalid"),
    ("email", "Zhang Wei <zw@qq.com>", "email_invalid"),
    ("email", "a@" + "b" * 64 + ".com", "email_invalid"),
    ("email", "a" * 321 + "@b.com", "too_long"),
    ("email", "a\u200b@b.com", "control_chars"),
    ("email", b"a@b.com", "not_a_string"),
    ("wechat_openid", OPENID, "openid_without_app"),
    ("wechat_openid", "short", "openid_invalid"),
    ("wechat_openid", "o" * 65, "openid_invalid"),
    ("wechat_openid", "oGZUI0eg BJY1zh", "openid_invalid"),
    ("wechat_openid", "wx12:" + OPENID, "openid_invalid"),
    ("user_id", "", "empty"),
    ("user_id", "\u3000\u00a0 \t", "empty"),
    ("user_id", "x" * (MAX_LENGTH + 1), "too_long"),
    ("user_id", "x" * 100_000, "too_long"),
    ("user_id", 10**5000, "too_long"),
    ("user_id", "a\x00b", "control_chars"),
    ("user_id", "a\nb", "control_chars"),
    ("user_id", "ab\u200d", "control_chars"),
    ("user_id", "a\u2028b", "control_chars"),
    ("user_id", "a\ud800b", "control_chars"),
    ("user_id", None, "not_a_string"),
    ("user_id", ["u1"], "not_a_string"),
    ("user_id", {"id": 1}, "not_a_string"),
    ("device_id", "\x7f", "control_chars"),
    ("member_no", "", "empty"),
    ("loyalty_card", "LC-1", "unknown_type"),
]


@pytest.mark.parametrize(
    ("type_code", "raw", "reason"), REJECTED, ids=[f"{t}:{r}" for t, _, r in REJECTED]
)
def test_rejects_with_a_reason_code(type_code: str, raw: object, reason: str) -> None:
    found = normalize(type_code, raw)
    assert (found.type, found.value, found.reason) == (type_code, None, reason)
    assert not found.ok
    assert found.detail


def test_invalid_phone_detail_names_the_region_and_the_number() -> None:
    found = normalize("phone", "1380013800")
    assert found.detail == "not a valid number for region CN: 1380013800"


def test_email_rejection_carries_the_library_message() -> None:
    assert "after the @-sign" in (normalize("email", "a@").detail or "")


def test_default_region_reads_national_numbers() -> None:
    us = NormalizeOptions(default_region="US")
    assert normalize("phone", "(415) 555-2671", options=us).value == "+14155552671"
    assert normalize("phone", "+8613800138000", options=us).value == "+8613800138000"
    assert normalize("phone", "(415) 555-2671").value == "+864155552671"  # Dandong, in CN
    assert normalize("phone", "13800138000", options=NormalizeOptions("cn")).ok
    assert "region US" in (normalize("phone", "13800138000", options=us).detail or "")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("J.O.H.N@gmail.com", "john@gmail.com"),
        ("j.o.h.n@googlemail.com", "john@gmail.com"),
        ("John.Smith+newsletter@Gmail.com", "johnsmith@gmail.com"),
        ("li.lei+promo@outlook.com", "li.lei@outlook.com"),
        ("li.lei+promo@hotmail.com", "li.lei@hotmail.com"),
        ("wang+x@icloud.com", "wang@icloud.com"),
        ("+tag@gmail.com", "+tag@gmail.com"),
        ("li.+promo@outlook.com", "li.+promo@outlook.com"),  # "li." is no mailbox
        ("zhang.wei+vip@qq.com", "zhang.wei+vip@qq.com"),  # QQ documents no sub-addressing
        ("zhang.wei+vip@163.com", "zhang.wei+vip@163.com"),
        ("first.last@outlook.com", "first.last@outlook.com"),  # dots only matter at Gmail
    ],
)
def test_provider_rules_when_switched_on(raw: str, expected: str) -> None:
    assert normalize("email", raw, options=PROVIDER_RULES).value == expected


def test_provider_rules_are_off_by_default() -> None:
    assert normalize("email", "J.O.H.N+x@googlemail.com").value == "j.o.h.n+x@googlemail.com"


def test_openid_is_scoped_by_its_app() -> None:
    found = normalize("wechat_openid", f" {OPENID} ", scope=APP)
    assert found.value == f"{APP}:{OPENID}"
    assert normalize("wechat_openid", OPENID, scope=APP.upper()).value == f"{APP}:{OPENID}"


def test_scoped_openid_keeps_its_own_app() -> None:
    other = "wxfedcba0987654321"
    assert normalize("wechat_openid", f"{other}:{OPENID}", scope=APP).value == f"{other}:{OPENID}"
    assert normalize("wechat_openid", f"{other}:{OPENID}").value == f"{other}:{OPENID}"


@pytest.mark.parametrize("scope", [None, "", "wx123", "gh_1234567890ab", "wx1234567890abcdeg"])
def test_openid_without_a_valid_app_is_refused(scope: str | None) -> None:
    found = normalize("wechat_openid", OPENID, scope=scope)
    assert found.reason == "openid_without_app"


def test_custom_type_uses_its_configured_kind() -> None:
    assert normalize("loyalty_card", " LC-1 ", kind="opaque").value == "LC-1"
    assert normalize("work_phone", "021-6888 0000", kind="phone").value == "+862168880000"
    assert normalize("loyalty_card", "LC-1", kind="nonsense").reason == "unknown_kind"


def test_kinds_cover_the_builtin_table() -> None:
    assert set(BUILTIN_KINDS.values()) == KINDS


@pytest.mark.parametrize(
    ("masked", "e164", "fits"),
    [
        ("138****8000", "+8613800138000", True),
        ("138 **** 8000", "+8613811118000", True),
        ("138****8000", "+8613900138000", False),
        ("138****8000", "+8613800138001", False),
        ("138****8000", "13800138000", False),
        ("138****8000", "+4413800138000", False),
        ("not a mask", "+8613800138000", False),
    ],
)
def test_mask_matches(masked: str, e164: str, fits: bool) -> None:
    assert mask_matches(masked, e164) is fits


def test_normalize_many_dedupes_in_input_order_and_keeps_rejections() -> None:
    accepted, rejected = normalize_many(
        [
            ("phone", "138 0013 8000"),
            ("email", "ZHANG.WEI@QQ.COM"),
            ("phone", "+86 138-0013-8000"),
            ("phone", "138****8000"),
            ("loyalty_card", "LC-1"),
            ("email", "zhang.wei@qq.com"),
            ("user_id", "+8613800138000"),
            ("wechat_openid", OPENID),
        ],
        scope=APP,
        kinds={"loyalty_card": "opaque"},
    )
    assert [(n.type, n.value) for n in accepted] == [
        ("phone", "+8613800138000"),
        ("email", "zhang.wei@qq.com"),
        ("loyalty_card", "LC-1"),
        ("user_id", "+8613800138000"),
        ("wechat_openid", f"{APP}:{OPENID}"),
    ]
    assert [(n.type, n.reason) for n in rejected] == [("phone", "phone_masked")]


def test_lower_casing_stays_normalised() -> None:
    """Lower-casing İ gives i + U+0307, which must not be reordered by a second pass."""
    once = normalize("device_id", "İ\u0323X")
    assert once.ok
    assert normalize("device_id", once.value).value == once.value


# --- properties -----------------------------------------------------------------------------

junk = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=20),
    st.binary(),
    st.integers(),
    st.none(),
    st.floats(),
    st.booleans(),
    st.lists(st.one_of(st.text(), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(alphabet="0123456789 +-()*xX转#.＠@", max_size=30),
)
options = st.builds(
    NormalizeOptions,
    default_region=st.sampled_from(["CN", "CN", "CN", "US", "GB", "XX"]),
    email_gmail_dots=st.booleans(),
    email_plus_tags=st.booleans(),
)
scopes = st.one_of(st.none(), st.text(max_size=20), st.just(APP))


@FAST
@given(st.sampled_from(sorted(BUILTIN_KINDS)), junk, scopes, options)
def test_never_raises_and_answers_in_shape(
    type_code: str, raw: object, scope: str | None, opts: NormalizeOptions
) -> None:
    found = normalize(type_code, raw, scope=scope, options=opts)
    if found.ok:
        assert isinstance(found.value, str)
        assert 0 < len(found.value) <= MAX_LENGTH
        assert found.detail is None
    else:
        assert found.value is None
        assert found.reason in REASONS
        assert found.detail


def _spelled(digits: str, prefix: str, sep: str, full_width: bool) -> str:
    text = prefix + sep.join((digits[:3], digits[3:7], digits[7:]))
    return text.translate(_FULL_WIDTH) if full_width else text


_FULL_WIDTH = str.maketrans("0123456789+-() ", "０１２３４５６７８９＋－（）\u3000")
cn_mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
mobile_spellings = st.builds(
    _spelled,
    cn_mobiles,
    st.sampled_from(["", "+86", "+86 ", "86", "0086 ", "(+86)", "+86-"]),
    st.sampled_from(["", " ", "-", "."]),
    st.booleans(),
)
landlines = st.from_regex(
    r"0(10|2[0-9]|[3-9][0-9]{2})[- ]?[2-8][0-9]{6,7}([-转][0-9]{1,4})?", fullmatch=True
)
international = st.from_regex(r"(\+|00)[1-9][0-9]{6,13}", fullmatch=True)
emails = st.one_of(
    st.emails(),
    st.emails().map(str.upper),
    st.emails().map(lambda e: f" {e}\u3000"),
    st.builds(
        "{}@{}".format,
        st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12),
        st.sampled_from(["qq.com", "例子.广告", "xn--fiqs8s.cn", "GMAIL.com", "googlemail.com"]),
    ),
    st.builds(
        "{}+{}@{}".format,
        st.from_regex(r"[A-Za-z0-9.]{1,10}", fullmatch=True),
        st.from_regex(r"[a-z0-9+]{0,5}", fullmatch=True),
        st.sampled_from(sorted(["gmail.com", "Googlemail.com", "outlook.com", "qq.com"])),
    ),
)
IDEMPOTENCE_CASES = {
    "phone": st.one_of(mobile_spellings, landlines, international, st.text(max_size=20)),
    "phone_masked": st.one_of(
        st.from_regex(r"(\+86 ?)?1[3-9][0-9] ?[*xX]{4} ?[0-9]{4}", fullmatch=True), st.text()
    ),
    "email": st.one_of(emails, st.text(max_size=30)),
    "wechat_openid": st.one_of(
        st.from_regex(r"[A-Za-z0-9_-]{6,64}", fullmatch=True),
        st.from_regex(r"wx[0-9a-fA-F]{16}:[A-Za-z0-9_-]{6,64}", fullmatch=True),
        st.text(max_size=30),
    ),
    "member_no": st.one_of(
        st.from_regex(r"[0-9０-９]{1,4}([ \-\u3000][0-9]{1,4}){0,4}", fullmatch=True), st.text()
    ),
    "device_id": st.one_of(st.uuids().map(str).map(str.upper), st.text()),
    "user_id": st.text(),
}


@pytest.mark.parametrize("type_code", sorted(IDEMPOTENCE_CASES))
def test_normalising_a_normalised_value_changes_nothing(type_code: str) -> None:
    @FAST
    @given(IDEMPOTENCE_CASES[type_code], options, st.sampled_from([None, APP]))
    def check(raw: str, opts: NormalizeOptions, scope: str | None) -> None:
        once = normalize(type_code, raw, scope=scope, options=opts)
        if once.ok:
            again = normalize(type_code, once.value, scope=scope, options=opts)
            assert again == once

    check()


def test_idempotence_cases_find_valid_values() -> None:
    """The property above proves little if its strategies only produce rejections."""
    samples = {
        "phone": "+86 138-0013-8000",
        "phone_masked": "138 XXXX 8000",
        "email": "ZHANG.WEI@QQ.COM",
        "wechat_openid": OPENID,
        "member_no": "8801 2345",
        "device_id": "AB",
        "user_id": "u1",
    }
    for type_code, raw in samples.items():
        assert normalize(type_code, raw, scope=APP).ok, type_code
    assert set(samples) == set(IDEMPOTENCE_CASES)


@FAST
@given(cn_mobiles)
def test_every_spelling_of_a_cn_mobile_meets(digits: str) -> None:
    expected = normalize("phone", digits)
    assume(expected.ok)
    assert expected.value == f"+86{digits}"
    spellings = [
        _spelled(digits, prefix, sep, full_width)
        for prefix in ["", "+86 ", "+86", "86", "0086 ", "(+86)", "+86-"]
        for sep in ["", " ", "-"]
        for full_width in [False, True]
    ]
    for raw in [*spellings, int(digits), f" {digits}\u3000", f"0{digits}"]:
        assert normalize("phone", raw).value == expected.value, raw


fast_path_domains = st.one_of(
    domains().map(str.lower),
    st.sampled_from(["a.local", "b.test", "x.arpa", "ab--c.com", "xn--fiqs8s.cn", "a.b-.com"]),
)


@FAST
@given(
    st.from_regex(r"[a-z0-9_+\-]{1,70}(\.[a-z0-9_+\-]{1,10}){0,2}", fullmatch=True),
    fast_path_domains,
)
def test_canonical_email_shortcut_agrees_with_the_library(local: str, domain: str) -> None:
    raw = f"{local}@{domain}"
    try:
        info = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        expected = None
    else:
        expected = f"{info.local_part.lower()}@{info.domain}"
    assert normalize("email", raw).value == expected
