"""Group robots against a local HTTP server standing in for WeChat Work and DingTalk, and the
URL safety rules that keep the server from posting anywhere internal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket
from datetime import UTC, datetime
from ipaddress import ip_network

import pytest

from oneloop.channels.notify import (
    ROBOT,
    Notification,
    PermanentFailure,
    TemporaryFailure,
    channels_from_settings,
)
from oneloop.channels.webhooks import (
    DingTalkRobot,
    UnsafeUrl,
    WeComRobot,
    check_url,
    clip,
)
from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.errors import ValidationFailed
from tests.channels.conftest import RobotServer

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
LOCAL = [ip_network("127.0.0.1/32")]
NORTH = "01J0000000000000000000000N"
SOUTH = "01J0000000000000000000000S"


def note(**changes: str | None) -> Notification:
    values: dict[str, str | None] = {
        "channel": ROBOT,
        "recipient": "sales",
        "subject": "SLA 即将超时 SLA warning",
        "text": "线索「张三」将在 30 分钟后超时。",
        "dedupe_key": "lead:01J0000000000000000000000L:sla-warning",
        "bu_id": NORTH,
        "markdown": None,
    }
    return Notification(**(values | changes))  # type: ignore[arg-type]


def wecom(server: RobotServer, **options: object) -> WeComRobot:
    return WeComRobot(
        f"{server.url}/cgi-bin/webhook/send?key=wecom-secret-key",
        label="sales",
        allowed_networks=LOCAL,
        timeout=5,
        **options,  # type: ignore[arg-type]
    )


# --- WeChat Work ---------------------------------------------------------------------------


def test_wecom_posts_markdown_when_there_is_some(robot_server: RobotServer) -> None:
    wecom(robot_server).send(note(markdown="**SLA 即将超时**\n> 线索：张三"))
    (posted,) = robot_server.posted
    assert posted.path == "/cgi-bin/webhook/send"
    assert posted.query == {"key": ["wecom-secret-key"]}
    assert posted.headers["Content-Type"] == "application/json; charset=utf-8"
    assert posted.body == {
        "msgtype": "markdown",
        "markdown": {"content": "**SLA 即将超时**\n> 线索：张三"},
    }


def test_wecom_posts_subject_and_text_otherwise(robot_server: RobotServer) -> None:
    wecom(robot_server).send(note())
    (posted,) = robot_server.posted
    assert posted.body == {
        "msgtype": "text",
        "text": {"content": "SLA 即将超时 SLA warning\n线索「张三」将在 30 分钟后超时。"},
    }


def test_wecom_text_is_cut_to_its_limit_on_a_character_boundary(
    robot_server: RobotServer,
) -> None:
    wecom(robot_server).send(note(subject="", text="线" * 1000))  # 3000 bytes of UTF-8
    content = robot_server.posted[0].body["text"]["content"]
    assert len(content.encode()) <= 2048
    assert content.endswith("…") and content.startswith("线")


def test_clip_leaves_short_text_alone() -> None:
    assert clip("短", 10) == "短"


def test_a_nonzero_errcode_is_permanent(robot_server: RobotServer) -> None:
    robot_server.answer(200, {"errcode": 93000, "errmsg": "invalid webhook url"})
    with pytest.raises(PermanentFailure, match="errcode 93000") as caught:
        wecom(robot_server).send(note())
    assert "wecom-secret-key" not in caught.value.detail  # the URL's key is a secret


def test_the_rate_limit_errcode_is_temporary(robot_server: RobotServer) -> None:
    robot_server.answer(200, {"errcode": 45009, "errmsg": "api freq out of limit"})
    with pytest.raises(TemporaryFailure, match="45009"):
        wecom(robot_server).send(note())


def test_a_server_error_is_temporary_with_its_retry_hint(robot_server: RobotServer) -> None:
    robot_server.answer(503, {"error": "busy"}, **{"Retry-After": "120"})
    with pytest.raises(TemporaryFailure) as caught:
        wecom(robot_server).send(note())
    assert caught.value.retry_after == 120


def test_a_redirect_is_not_followed(robot_server: RobotServer) -> None:
    robot_server.answer(302, b"", Location="http://169.254.169.254/latest/meta-data")
    with pytest.raises(PermanentFailure, match="redirect"):
        wecom(robot_server).send(note())
    assert len(robot_server.posted) == 1


def test_an_answer_that_is_not_json_is_permanent(robot_server: RobotServer) -> None:
    robot_server.answer(200, b"<html>proxy login</html>")
    with pytest.raises(PermanentFailure, match="not the robot's JSON"):
        wecom(robot_server).send(note())


def test_nobody_listening_is_temporary(robot_server: RobotServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    robot = WeComRobot(f"http://127.0.0.1:{port}/send?key=k", label="gone", allowed_networks=LOCAL)
    with pytest.raises(TemporaryFailure, match="cannot reach"):
        robot.send(note())


# --- DingTalk ------------------------------------------------------------------------------


def test_dingtalk_signs_the_url_with_timestamp_and_hmac(robot_server: RobotServer) -> None:
    secret = "SEC0123456789abcdef"
    robot = DingTalkRobot(
        f"{robot_server.url}/robot/send?access_token=ding-token",
        secret=secret,
        label="managers",
        allowed_networks=LOCAL,
        clock=FixedClock(AT),
    )
    robot.send(note(markdown="### SLA 超时\n线索：张三"))
    (posted,) = robot_server.posted
    timestamp = str(int(AT.timestamp() * 1000))
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()
    assert posted.query == {
        "access_token": ["ding-token"],
        "timestamp": [timestamp],
        "sign": [expected],  # parse_qs undid the URL-encoding of + / =
    }
    assert posted.body == {
        "msgtype": "markdown",
        "markdown": {"title": "SLA 即将超时 SLA warning", "text": "### SLA 超时\n线索：张三"},
    }


def test_dingtalk_without_a_secret_is_not_signed(robot_server: RobotServer) -> None:
    robot = DingTalkRobot(
        f"{robot_server.url}/robot/send?access_token=t", label="m", allowed_networks=LOCAL
    )
    robot.send(note())
    (posted,) = robot_server.posted
    assert set(posted.query) == {"access_token"}
    assert posted.body["msgtype"] == "text"


def test_dingtalk_keyword_refusal_is_permanent(robot_server: RobotServer) -> None:
    robot_server.answer(200, {"errcode": 310000, "errmsg": "keywords not in content"})
    robot = DingTalkRobot(f"{robot_server.url}/send", label="m", allowed_networks=LOCAL)
    with pytest.raises(PermanentFailure, match="310000"):
        robot.send(note())


def test_dingtalk_sending_too_fast_is_temporary(robot_server: RobotServer) -> None:
    robot_server.answer(200, {"errcode": 130101, "errmsg": "send too fast"})
    robot = DingTalkRobot(f"{robot_server.url}/send", label="m", allowed_networks=LOCAL)
    with pytest.raises(TemporaryFailure, match="130101"):
        robot.send(note())


# --- URL safety ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/send", "loopback"),
        ("https://localhost:8443/send", "loopback"),
        ("https://[::1]/send", "loopback"),
        ("https://[::ffff:127.0.0.1]/send", "loopback"),
        ("https://10.1.2.3/send", "private"),
        ("https://192.168.0.10/send", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://100.64.0.1/send", "non-public"),
        ("https://0.0.0.0/send", "unspecified"),
        ("https://224.0.0.1/send", "multicast"),
        ("http://93.184.216.34/send", "only https"),
        ("ftp://93.184.216.34/send", "http(s) URL"),
        ("https://user:pw@93.184.216.34/send", "user name"),
        ("https:///send", "http(s) URL"),
    ],
)
def test_internal_and_plain_http_urls_are_refused_by_default(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match="refused") as caught:
        check_url(url)
    (error,) = caught.value.errors
    assert error.loc == ("url",)
    assert reason in error.msg


def test_a_public_https_address_passes() -> None:
    target = check_url("https://93.184.216.34/cgi-bin/webhook/send?key=k")
    assert target.addresses == ("93.184.216.34",)
    assert target.path == "/cgi-bin/webhook/send?key=k"
    assert target.port == 443


def test_every_resolved_address_is_checked() -> None:
    def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]  # a name with one public, one internal address

    with pytest.raises(UnsafeUrl, match=re.escape("10.0.0.7")):
        check_url("https://robot.example.com/send", resolve=resolve)


def test_the_allow_list_admits_its_networks_only() -> None:
    assert check_url("http://127.0.0.1:8080/send", LOCAL).addresses == ("127.0.0.1",)
    with pytest.raises(UnsafeUrl, match=re.escape("10.0.0.1")):
        check_url("https://10.0.0.1/send", LOCAL)
    with pytest.raises(UnsafeUrl, match=re.escape("http to 93.184.216.34")):
        check_url("http://93.184.216.34/send", LOCAL)


def test_a_robot_refuses_the_local_server_without_the_allow_list(
    robot_server: RobotServer,
) -> None:
    robot = WeComRobot(f"{robot_server.url}/send?key=k", label="sales")
    with pytest.raises(PermanentFailure, match="only https"):
        robot.send(note())
    assert robot_server.posted == []


def test_a_name_that_does_not_resolve_is_temporary() -> None:
    robot = WeComRobot("https://robot.invalid/send?key=k", label="sales")
    with pytest.raises(TemporaryFailure, match="cannot resolve"):
        robot.send(note())


# --- the robot channel and its settings ----------------------------------------------------


def robot_settings(**webhooks: dict[str, str]) -> Settings:
    return Settings(webhooks=webhooks, webhook_allowed_networks=["127.0.0.1/32"])


def test_settings_make_the_robot_channel(robot_server: RobotServer) -> None:
    channels = channels_from_settings(
        robot_settings(sales={"kind": "wecom", "url": f"{robot_server.url}/global"})
    )
    channels[ROBOT].send(note())
    assert [p.path for p in robot_server.posted] == ["/global"]


def test_a_units_own_robot_overrides_the_global_one(robot_server: RobotServer) -> None:
    hooks = {
        "sales": {"kind": "wecom", "url": f"{robot_server.url}/global"},
        f"{NORTH}/sales": {"kind": "dingtalk", "url": f"{robot_server.url}/north"},
    }
    channel = channels_from_settings(robot_settings(**hooks))[ROBOT]
    channel.send(note(bu_id=NORTH))
    channel.send(note(bu_id=SOUTH))
    assert [p.path for p in robot_server.posted] == ["/north", "/global"]


def test_a_recipient_cannot_name_another_units_robot(robot_server: RobotServer) -> None:
    hooks = {f"{NORTH}/sales": {"kind": "wecom", "url": f"{robot_server.url}/north"}}
    channel = channels_from_settings(robot_settings(**hooks))[ROBOT]
    with pytest.raises(PermanentFailure, match="not a robot name"):
        channel.send(note(bu_id=SOUTH, recipient=f"{NORTH}/sales"))
    with pytest.raises(PermanentFailure, match="no robot named 'sales'"):
        channel.send(note(bu_id=SOUTH))
    assert robot_server.posted == []


def test_bad_webhook_settings_are_refused_at_start_naming_the_entry() -> None:
    bad = Settings(
        webhooks={
            "ok": {"kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"},
            "no-url": {"kind": "dingtalk", "url": "oapi.dingtalk.com/robot/send"},
            "signed": {"kind": "wecom", "url": "https://qyapi.weixin.qq.com/x", "secret": "s"},
            "bad name!": {"kind": "wecom", "url": "https://qyapi.weixin.qq.com/x"},
        }
    )
    with pytest.raises(ValidationFailed) as caught:
        channels_from_settings(bad)
    assert [e.loc for e in caught.value.errors] == [
        ("webhooks", "no-url", "url"),
        ("webhooks", "signed", "secret"),
        ("webhooks", "bad name!"),
    ]


def test_no_webhooks_means_no_robot_channel() -> None:
    assert ROBOT not in channels_from_settings(Settings())
