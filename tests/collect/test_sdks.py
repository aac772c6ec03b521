"""The real Segment and RudderStack Python SDKs, pointed at a real `oneloop serve`: changing
only the host and the write key must be enough."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from segment.analytics.request import APIError
from segment.analytics.request import post as segment_post
from sqlalchemy import Engine, select

from oneloop.collect.models import DeadLetterRow, EventRow
from oneloop.core.config import Settings
from oneloop.core.context import system_context
from oneloop.core.db import create_db_engine, session_factory
from tests.factories import make_group, make_source
from tests.servers import running_server

SDKS: dict[str, Callable[..., Any]] = {"segment": SegmentClient, "rudderstack": RudderClient}


@pytest.fixture
def served(db_url: str) -> Iterator[tuple[str, str, Engine]]:
    """A running server on the test database, and a write key of the `north` unit's source."""
    with running_server(db_url) as base:
        engine = create_db_engine(Settings(database_url=db_url))
        with session_factory(engine)() as session:
            ctx = system_context()
            make_group(session, ctx)
            _, key = make_source(session, ctx)
        yield base, key, engine
        engine.dispose()


@pytest.mark.parametrize("sdk", list(SDKS))
def test_an_sdk_sends_every_call_and_they_land_in_the_log(
    served: tuple[str, str, Engine], sdk: str
) -> None:
    base, key, engine = served
    errors: list[object] = []
    client = SDKS[sdk](
        write_key=key,
        host=base,
        gzip=True,
        on_error=lambda error, batch: errors.append(error),
        max_retries=0,
    )
    client.identify("u-42", {"email": "Han.Meimei@Example.com", "phone": "138 0013 8000"})
    client.track("u-42", "Whitepaper Downloaded", {"title": "智能工厂白皮书", "pages": 12})
    client.page("u-42", "Docs", "Pricing", {"url": "https://galaxy.example.com/pricing"})
    client.group("u-42", "acme", {"name": "Acme 制造"})
    client.alias("anon-7", "u-42")
    client.flush()
    client.join()
    assert errors == []
    with session_factory(engine)() as session:
        rows = {r.type: r for r in session.scalars(select(EventRow))}
    assert sorted(rows) == ["alias", "group", "identify", "page", "track"]
    assert rows["track"].event == "Whitepaper Downloaded"
    assert rows["track"].properties == {"title": "智能工厂白皮书", "pages": 12}
    assert ["email", "Han.Meimei@Example.com"] in rows["identify"].identifiers
    assert rows["page"].name == "Pricing"
    assert rows["group"].group_id == "acme"
    assert (rows["alias"].previous_id, rows["alias"].user_id) == ("anon-7", "u-42")
    assert all(r.sent_at is not None and r.message_id for r in rows.values())
    assert {r.user_id for r in rows.values()} == {"u-42"}


def test_an_sdk_is_told_why_a_call_was_refused(served: tuple[str, str, Engine]) -> None:
    base, key, engine = served
    batch = [
        {"type": "track", "event": "Ok", "userId": "u-1", "messageId": "ok"},
        {"type": "track", "event": "Nobody", "messageId": "nobody"},
    ]
    with pytest.raises(APIError) as refused:
        segment_post(key, host=base, batch=batch)
    # The SDK reads `code` and `message` from the error body and logs them.
    assert refused.value.status == 400 and refused.value.code == "invalid-payload"
    assert "batch[1].userId" in refused.value.message
    with pytest.raises(APIError) as unknown:
        segment_post("olk_wrong", host=base, batch=batch)
    assert unknown.value.status == 401
    with session_factory(engine)() as session:
        assert [r.event for r in session.scalars(select(EventRow))] == ["Ok"]
        letter = session.scalars(select(DeadLetterRow)).one()
        assert letter.message_id == "nobody"
