"""The golden record: which value survives per field, where it came from, and what else was
seen."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from oneloop.collect.ingest import ingest
from oneloop.collect.log import START, read_after
from oneloop.collect.spec import parse_batch
from oneloop.core.context import Context
from oneloop.core.errors import NotFound
from oneloop.identity import service
from oneloop.identity.golden import observations
from tests.factories import make_group, make_source
from tests.identity.conftest import T0, profile_of, run


def identify(at: int, traits: dict[str, object]) -> dict[str, object]:
    return {
        "type": "identify",
        "userId": "u1",
        "traits": traits,
        "messageId": f"m{at}",
        "timestamp": (T0 + timedelta(minutes=at)).isoformat(),
    }


def test_survivorship_per_field_with_lineage_and_history(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    web, _ = make_source(session, ctx, name="官网 Web")
    crm, _ = make_source(session, ctx, name="CRM 导出")
    calls = [
        (crm, [identify(1, {"name": "张玮", "city": "苏州", "birthday": "1990-05-01"})]),
        (
            web,
            [
                identify(2, {"name": "张伟", "city": "上海"}),
                identify(3, {"name": "Zhang Wei", "city": "上海", "title": "经理"}),
                identify(4, {"birthday": "1990-01-05", "address": {"city": "上海市"}}),
            ],
        ),
    ]
    for source, batch in calls:
        messages, invalid = parse_batch({"batch": batch}, T0)
        ingest(session, source, messages, invalid, received_at=T0, origin="api", ref="test")
    session.commit()  # the log shows PostgreSQL readers committed rows only
    run(session, read_after(session, START, 100))
    profile = profile_of(session, "user_id", "u1")
    record = service.golden(session, ctx, profile)
    fields = record.fields
    assert record.events_read == 4
    # name: the CRM is trusted over the web form, although the form is newer
    assert fields["name"].value == "张玮" and fields["name"].rule == "most_trusted"
    assert fields["name"].source_name == "CRM 导出" and fields["name"].message_id == "m1"
    assert [h.value for h in fields["name"].history] == ["Zhang Wei", "张伟", "张玮"]
    assert fields["city"].value == "上海" and fields["city"].rule == "most_frequent"
    assert fields["birthday"].value == "1990-05-01"  # first seen
    assert fields["title"].value == "经理"
    assert fields["title"].observed_at == T0 + timedelta(minutes=3)
    assert fields["address.city"].value == "上海市"
    # a unit's user sees what its own unit's events said; a profile it never met, not at all
    other = Context(bu_id=ctx.bu_id, user_id="u", permissions=ctx.permissions, clock=ctx.clock)
    with pytest.raises(NotFound):
        service.golden(session, other, profile)


def test_observations_skip_what_is_no_attribute_of_a_person() -> None:
    found = dict(
        observations(
            {
                "name": " 李娜 ",
                "bio": "x" * 2000,
                "blank": "  ",
                "vip": True,
                "tags": ["a"],
                "wechat_appid": "wx1",
                "address": {"city": "北京", "geo": {"lat": 1}},
            }
        )
    )
    assert found == {"name": "李娜", "vip": True, "address.city": "北京"}
