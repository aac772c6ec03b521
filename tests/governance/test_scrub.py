"""What an erasure leaves of a person's event: numbers and what names nobody."""

from __future__ import annotations

from oneloop.governance.scrub import REMOVED, PiiValues, scrub


def person() -> PiiValues:
    pii = PiiValues(keys={"shipping_note"})
    pii.add_all({"name": "张伟", "phone": "+86 138-0013-8000", "email": "zw@galaxy-mail.cn"})
    return pii


def test_numbers_and_strangers_stay_the_person_goes() -> None:
    event = {
        "total": 99.5,
        "paid": True,
        "name": "Pricing",  # a page's name, not a person's
        "products": [{"sku": "AC-9", "price": 3999}],
        "contact": "call 13800138000 after 6",  # the phone, typed another way
        "note": "for 张伟",
        "email": "zw@galaxy-mail.cn",
        "shipping_note": "leave at the door",  # personal by the data dictionary
        "address": {"city": "上海", "street": "世纪大道100号"},
    }
    assert scrub(event, person()) == {
        "total": 99.5,
        "paid": True,
        "name": "Pricing",
        "products": [{"sku": "AC-9", "price": 3999}],
        "contact": REMOVED,
        "note": REMOVED,
        "email": REMOVED,
        "shipping_note": REMOVED,
    }


def test_only_long_values_are_looked_for_in_other_peoples_data() -> None:
    assert "张伟" not in person().searchable()
    assert {"8613800138000", "13800138000", "zw@galaxy-mail.cn"} <= set(person().searchable())
    assert scrub("a call from 13800138000", PiiValues()) == "a call from 13800138000"
