"""``oneloop bus`` as an operator runs it: tail a topic as a consumer group, list topics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.core.context import Context
from oneloop.core.ids import new_id
from oneloop.segments.models import ChangeRow, SegmentRow
from tests.factories import make_group
from tests.servers import RedisServer

runner = CliRunner()
AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def env(db_url: str, session: Session, ctx: Context) -> dict[str, str]:
    """A migrated database holding one segment's entry and exit of one profile (the CLI
    reads them; how they are made is the segments suites' business)."""
    group = make_group(session, ctx)[0]
    segment = SegmentRow(
        id=new_id(),
        bu_id=group.id,
        code="[bold]vip",  # a name someone typed: printed as text, never as markup
        name="VIP",
        description="",
        owner="t",
        rule={"tag": "vip"},
        is_live=True,
        size=0,
        version=1,
        evaluated_at=AT,
        created_at=AT,
        updated_at=AT,
    )
    session.add(segment)
    for n, kind in enumerate(["enter", "exit"]):
        session.add(
            ChangeRow(
                segment_id=segment.id,
                profile_id="01JPROFILE0000000000000000",
                kind=kind,
                cause="tag",
                at=AT + timedelta(minutes=n),
            )
        )
    session.commit()
    return {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}


def tail(env: dict[str, str], *args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["bus", "tail", "segments.membership", "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_tail_prints_what_the_group_has_not_seen_and_acknowledges_it(
    env: dict[str, str],
) -> None:
    first = tail(env, "--group", "ops")
    assert [(m["seq"], m["body"]["kind"]) for m in first] == [(1, "entered"), (2, "exited")]  # type: ignore[index]
    assert first[0]["key"] == "01JPROFILE0000000000000000"
    assert first[0]["body"]["segment_code"] == "[bold]vip"  # type: ignore[index]
    assert tail(env, "--group", "ops") == []  # acknowledged
    assert len(tail(env, "--group", "audit")) == 2  # another group

    text = runner.invoke(app, ["bus", "tail", "segments.membership", "--group", "t2"], env=env)
    assert text.exit_code == 0 and "[bold]vip" in text.stdout and "exited" in text.stdout


def test_tail_of_an_unknown_topic_names_it_and_exits_1(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["bus", "tail", "segments.nope"], env=env)
    assert result.exit_code == 1
    assert "segments.nope" in result.output and "segments.membership" in result.output


def test_tail_with_a_bad_group_exits_1(env: dict[str, str]) -> None:
    result = runner.invoke(
        app, ["bus", "tail", "segments.membership", "--group", "has space"], env=env
    )
    assert result.exit_code == 1 and "group" in result.output


def test_topics_lists_each_feed_with_its_latest_seq_and_groups(env: dict[str, str]) -> None:
    tail(env, "--group", "ops")
    result = runner.invoke(app, ["bus", "topics", "--json"], env=env)
    assert result.exit_code == 0, result.output
    found = {t["topic"]: t for t in json.loads(result.stdout)}
    assert set(found) >= {"segments.membership", "identity.profiles"}
    membership = found["segments.membership"]
    assert membership["latest_seq"] == 2
    assert [(g["name"], g["acked_seq"]) for g in membership["groups"]] == [("ops", 2)]
    table = runner.invoke(app, ["bus", "topics"], env=env, terminal_width=200)
    assert table.exit_code == 0 and "segments.membership" in table.stdout


def test_on_redis_the_worker_relays_and_tail_reads_the_stream(
    env: dict[str, str], redis_server: RedisServer
) -> None:
    on_redis = {**env, "ONELOOP_BUS_URL": redis_server.url}
    assert tail(on_redis, "--group", "ops") == []  # nothing relayed yet
    worker = runner.invoke(app, ["worker", "--once"], env=on_redis)
    assert worker.exit_code == 0, worker.output
    assert [m["seq"] for m in tail(on_redis, "--group", "ops")] == [1, 2]
    assert tail(on_redis, "--group", "ops") == []

    result = runner.invoke(app, ["bus", "topics", "--json"], env=on_redis)
    assert result.exit_code == 0, result.output
    membership = {t["topic"]: t for t in json.loads(result.stdout)}["segments.membership"]
    assert (membership["relayed_seq"], membership["stream_length"]) == (2, 2)
    assert [(g["name"], g["pending"]) for g in membership["groups"]] == [("ops", 0)]


def test_on_redis_an_unreachable_server_is_a_clear_error(
    env: dict[str, str], redis_server: RedisServer
) -> None:
    redis_server.stop()
    on_redis = {**env, "ONELOOP_BUS_URL": redis_server.url}
    for command in (["bus", "tail", "segments.membership"], ["bus", "topics"]):
        result = runner.invoke(app, command, env=on_redis)
        assert result.exit_code == 1
        assert f"127.0.0.1:{redis_server.port}" in result.output and "retry" in result.output
