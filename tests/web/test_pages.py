from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oneloop.api.app import create_app
from oneloop.core.config import Settings
from oneloop.core.context import Context
from oneloop.governance import service
from oneloop.governance.schemas import BusinessUnitIn
from tests.factories import make_group


def _client(settings: Settings, engine: Engine) -> TestClient:
    return TestClient(create_app(settings, engine))


def test_index_shows_the_group_in_both_languages(
    settings: Settings, engine: Engine, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    with _client(settings, engine) as client:
        zh = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        en = client.get("/?lang=en", headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 200 and "星河集团" in zh.text and "事业部" in zh.text
    assert '<html lang="zh-CN">' in zh.text
    assert "Galaxy Group" in en.text and "Business units" in en.text
    assert en.cookies.get("lang") == "en"


def test_index_escapes_hostile_names(
    settings: Settings, engine: Engine, session: Session, ctx: Context
) -> None:
    make_group(session, ctx, units=())
    service.create_business_unit(
        session,
        ctx,
        BusinessUnitIn(
            code="evil", name_zh="<script>alert(1)</script>", name_en="x", parent="galaxy"
        ),
    )
    session.commit()
    with _client(settings, engine) as client:
        page = client.get("/")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_index_without_a_group_says_what_to_run(settings: Settings, engine: Engine) -> None:
    with _client(settings, engine) as client:
        page = client.get("/?lang=zh-CN")
    assert "oneloop demo load" in page.text
