"""The maskers (issue 7, part 3): one per kind of personal information, pure, hostile-input
proof, and the protected form sensitive values are stored in."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from oneloop.governance.masking import (
    MASKERS,
    PII_KINDS,
    STARS,
    canonical,
    is_protected,
    mask,
    protect,
    shown_sensitive,
)

KINDS = sorted(PII_KINDS)
ID_CARD = "110105199003071234"


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("phone", "+8613800138000", "138****8000"),
        ("phone", "138 0013 8000", "138****8000"),
        ("phone", 13800138000, "138****8000"),
        ("phone", "+49 30 1234567", "+49 301**4567"),
        ("phone", "12", STARS),
        ("email", "zhang.wei@example.com", "z***@example.com"),
        ("email", "@example.com", "***@example.com"),
        ("email", "not-an-email", "n***"),
        ("name", "张伟", "张*"),
        ("name", "欧阳娜娜", "欧***"),
        ("name", "Zhang Wei", "Z*** W**"),
        ("name", "J Smith", "* S***"),
        ("address", "上海市浦东新区世纪大道100号", "上海市***"),
        ("address", "广东省深圳市南山区科技园南区", "广东省深圳市***"),
        ("address", "新疆维吾尔自治区乌鲁木齐市天山区", "新疆维吾尔自治区乌鲁木齐市***"),
        ("address", "100 Century Ave, Pudong, Shanghai, China", "***, Shanghai, China"),
        ("address", "somewhere", STARS),
        ("birth_date", "1990-03-07", "1990-**-**"),
        ("birth_date", "19900307", "1990-**-**"),
        ("birth_date", "07/03/1990", "1990-**-**"),
        ("birth_date", "yesterday", STARS),
        ("id_card", ID_CARD, "110105********1234"),
        ("id_card", "110105 19900307 123X", "110105********123X"),
        ("id_card", "12345", STARS),
        ("bank_card", "6222 0212 3456 7890", "622202******7890"),
        ("wechat_id", "oGZUI0egBJY1zhBYw2KhdUfwVJJE", "oGZU****VJJE"),
        (
            "wechat_id",
            "wx8f3a2b1c4d5e6f70:oGZUI0egBJY1zhBYw2KhdUfwVJJE",
            "wx8f3a2b1c4d5e6f70:oGZU****VJJE",
        ),
        ("device_id", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "6D92****E7DC"),
        ("other", "anything", STARS),
        (None, "anything", STARS),
        ("no-such-kind", "anything", STARS),
    ],
)
def test_each_kind_masks_as_the_issue_shows(kind: str | None, value: object, shown: str) -> None:
    assert mask(kind, value) == shown


def test_objects_and_lists_are_masked_leaf_by_leaf_and_null_stays_null() -> None:
    assert mask("phone", None) is None
    assert mask("name", {"first": "Wei", "last": ["Zhang"]}) == {"first": "W**", "last": ["Z***"]}
    assert mask("name", True) == STARS


@pytest.mark.parametrize("kind", KINDS)
@given(value=st.one_of(st.text(max_size=80), st.integers(), st.floats(), st.binary(max_size=40)))
def test_maskers_never_raise_on_junk(kind: str, value: object) -> None:
    out = mask(kind, value)
    assert isinstance(out, str)


@pytest.mark.parametrize("kind", KINDS)
@given(value=st.text(min_size=1, max_size=80))
def test_a_non_trivial_value_never_comes_back_unchanged(kind: str, value: str) -> None:
    """Something to hide (a letter or a digit, not yet masked) always changes, and the
    result shows where it was hidden."""
    assume("*" not in value and any(c.isalnum() for c in value))
    out = mask(kind, value)
    assert out != value
    assert "*" in out


@pytest.mark.parametrize("kind", KINDS)
@given(value=st.text(max_size=60))
def test_masking_a_masked_value_changes_nothing(kind: str, value: str) -> None:
    """What sensitive values are stored as (their masked form) can be masked again on the
    way out without losing what the masked form shows."""
    once = mask(kind, value)
    assert mask(kind, once) == once or mask(kind, once) == STARS


def test_every_kind_has_a_masker_and_names_in_both_languages() -> None:
    assert set(MASKERS) == set(PII_KINDS)
    for zh, en in PII_KINDS.values():
        assert zh and en and zh != en


def test_protected_form_keeps_a_keyed_hash_and_the_masked_form_only() -> None:
    stored = protect("id_card", ID_CARD, b"secret")
    assert ID_CARD not in stored and is_protected(stored)
    assert stored.startswith("hmac-sha256:") and stored.endswith(":110105********1234")
    assert shown_sensitive("id_card", stored) == "110105********1234"
    # the same card written another way hashes the same; another key, another hash
    assert protect("id_card", "110105 19900307 1234", b"secret") == stored
    assert protect("id_card", ID_CARD, b"other") != stored
    assert canonical("11010519900307123x") == "11010519900307123X"


def test_protecting_twice_keeps_the_hash_and_a_forged_form_cannot_carry_a_clear_value() -> None:
    stored = protect("id_card", ID_CARD, b"secret")
    assert protect("id_card", stored, b"secret") == stored
    assert protect("id_card", stored, None) == stored  # a replay without the key keeps it
    forged = f"masked::{ID_CARD}"
    assert is_protected(forged)
    assert protect("id_card", forged, b"secret") == "masked::110105********1234"
    assert shown_sensitive("id_card", forged) == "110105********1234"


def test_without_a_key_only_the_masked_form_is_stored() -> None:
    assert protect("id_card", ID_CARD, None) == "masked::110105********1234"
    assert shown_sensitive("id_card", ID_CARD) == "110105********1234"  # stored before


@given(value=st.text(max_size=60), key=st.binary(min_size=1, max_size=32))
def test_protect_never_raises_and_never_keeps_a_clear_value(value: str, key: bytes) -> None:
    stored = protect("id_card", value, key)
    assert is_protected(stored)
    masked = shown_sensitive("id_card", stored)
    assume("*" not in value and sum(c.isalnum() for c in value) > 1)
    assert masked != value
