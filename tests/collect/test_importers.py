"""File importers: encodings, formats, mappings, idempotency, resuming, dead letters, the CLI."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.collect import deadletters
from oneloop.collect import service as collect
from oneloop.collect.importers import (
    import_file,
    load_mapping,
    map_row,
    parse_mapping,
    remap_payload,
    reparse_import,
    shipped_mappings,
)
from oneloop.collect.importers.readers import inspect_file, open_rows
from oneloop.collect.log import Position, read_after
from oneloop.collect.models import DeadLetterRow, EventRow, ImportRunRow
from oneloop.collect.schemas import SourceIn
from oneloop.collect.spec import Invalid, identifiers_of
from oneloop.core.context import Context
from oneloop.core.errors import NotFound, ValidationFailed
from oneloop.core.ids import BusinessUnitId, UserId
from oneloop.governance import service as governance
from oneloop.identity.resolver import extract, unit_codes
from oneloop.identity.rules import DEFAULT_RULES
from tests.factories import make_group

CONTACTS_YAML = """
name: test-contacts
call: identify
key: [客户编号]
timestamp: {column: 创建时间, format: "%Y/%m/%d %H:%M", timezone: Asia/Shanghai}
identifiers:
  crm_id: 客户编号
  phone: 手机
traits:
  name: 姓名
"""

ORDERS_YAML = """
name: test-orders
call: track
event: Order Completed
key: [order_no]
timestamp: {column: order_time, format: "%Y-%m-%d %H:%M:%S", timezone: Asia/Shanghai}
identifiers:
  phone: phone
properties:
  order_id: order_no
  amount: {column: amount, type: number}
  currency: {value: CNY}
"""

ORDERS_HEADER = "order_no,phone,order_time,amount\n"


def _source(session: Session, ctx: Context) -> str:
    make_group(session, ctx)
    new = collect.create_source(session, ctx, SourceIn(bu="north", name="CRM", kind="file"))
    session.commit()
    return new.id


def _yaml(tmp_path: Path, text: str, name: str = "mapping.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _orders(tmp_path: Path, rows: list[str], name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(ORDERS_HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def _order_rows(n: int) -> list[str]:
    return [f"A{i:03d},1380013{i:04d},2026-03-0{1 + i % 9} 10:00:00,{i}.50" for i in range(n)]


def _events(session: Session) -> list[EventRow]:
    return list(session.scalars(select(EventRow).order_by(EventRow.seq)))


def test_gb18030_csv_with_chinese_headers_imports_chinese_names(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_bytes(
        "客户编号,姓名,手机,创建时间\r\nKH001,张伟,138 0013 8000,2026/01/14 19:37\r\n"
        "KH002,欧阳娜娜,13900139000,2026/02/01 08:05\r\n".encode("gb18030")
    )
    report = import_file(session, ctx, source, csv_path, _yaml(tmp_path, CONTACTS_YAML))
    assert (report.rows_read, report.accepted, report.dead_lettered) == (2, 2, 0)
    first, second = _events(session)
    assert first.type == "identify" and first.traits is not None
    assert first.traits["name"] == "张伟" and second.traits["name"] == "欧阳娜娜"  # type: ignore[index]
    assert ["crm_id", "KH001"] in first.identifiers
    assert ["phone", "138 0013 8000"] in first.identifiers
    # Beijing wall time 19:37 is 11:37 UTC.
    assert first.timestamp.isoformat().startswith("2026-01-14T11:37")


def test_encoding_is_checked_over_the_whole_file_not_a_sample(tmp_path: Path) -> None:
    path = tmp_path / "late-chinese.csv"
    path.write_bytes(b"name\n" + b"ascii\n" * 300_000 + "王芳\n".encode("gb18030"))
    assert inspect_file(path, "csv").encoding == "gb18030"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"name\nok\n\xff\xfe\xff\n")
    with pytest.raises(ValidationFailed, match="neither UTF-8 nor GB18030"):
        inspect_file(bad, "csv")


@pytest.mark.parametrize("declared", ["auto", "utf-8"])
def test_a_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path, declared: str) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("Contact ID,Full Name\nC1,Lin Zhang\n", encoding="utf-8-sig")
    info = inspect_file(path, "csv", declared)
    with open_rows(info) as (header, rows):
        assert header == ["Contact ID", "Full Name"]
        assert list(rows) == [(2, {"Contact ID": "C1", "Full Name": "Lin Zhang"})]


def test_xlsx_cells_are_typed_by_the_mapping(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["order_no", "phone", "order_time", "amount"])
    sheet.append(["X1", 13800138000, datetime(2026, 5, 1, 20, 0), 1299])
    sheet.append(["X2", "13900139000", "2026-05-02 09:30:00", "2,499.00"])
    path = tmp_path / "orders.xlsx"
    book.save(path)
    report = import_file(session, ctx, source, path, _yaml(tmp_path, ORDERS_YAML))
    assert (report.accepted, report.dead_lettered) == (2, 0)
    first, second = _events(session)
    assert ["phone", "13800138000"] in first.identifiers  # not 13800138000.0
    assert first.timestamp.isoformat().startswith("2026-05-01T12:00")
    assert first.properties == {"order_id": "X1", "amount": 1299.0, "currency": "CNY"}
    assert second.properties is not None and second.properties["amount"] == 2499.0


def test_jsonl_rows_import_and_a_broken_line_is_dead_lettered(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    mapping = _yaml(
        tmp_path,
        """
name: test-surveys
call: track
event: Survey Answered
key: [ticket_no]
timestamp: {column: answered_at, timezone: UTC}
anonymous_id: {column: ticket_no, prefix: "ticket:"}
properties:
  csat: {column: csat, type: integer}
  tags: {column: tags, type: any}
""",
    )
    path = tmp_path / "surveys.jsonl"
    path.write_text(
        '{"ticket_no": "T1", "answered_at": "2026-02-17T01:16:35Z", "csat": 5, "tags": ["快"]}\n'
        "\n"
        "{not json\n"
        '{"ticket_no": "T2", "answered_at": "2026-02-18T00:00:00Z", "csat": "4"}\n',
        encoding="utf-8",
    )
    report = import_file(session, ctx, source, path, mapping)
    assert (report.rows_read, report.accepted, report.dead_lettered) == (3, 2, 1)
    first, second = _events(session)
    assert first.anonymous_id == "ticket:T1"
    assert first.properties == {"csat": 5, "tags": ["快"]}
    assert second.properties == {"csat": 4}
    letter = session.scalars(select(DeadLetterRow)).one()
    assert letter.reason == "unreadable_row" and letter.ref.endswith(":row 3")
    assert json.loads(letter.payload)["text"] == "{not json"


def test_importing_the_same_file_twice_adds_nothing(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    path = _orders(tmp_path, _order_rows(5))
    mapping = _yaml(tmp_path, ORDERS_YAML)
    first = import_file(session, ctx, source, path, mapping)
    again = import_file(session, ctx, source, path, mapping)
    assert (first.accepted, first.duplicates) == (5, 0)
    assert (again.rows_read, again.accepted, again.duplicates) == (5, 0, 5)
    assert again.run_id != first.run_id
    assert len(_events(session)) == 5
    skipped = import_file(session, ctx, source, path, mapping, skip_if_loaded=True)
    assert skipped.status == "skipped" and skipped.rows_read == 0


@pytest.mark.parametrize("keyed", [True, False], ids=["key", "content"])
def test_a_reexport_with_rows_added_and_reordered_still_dedupes(
    session: Session, ctx: Context, tmp_path: Path, keyed: bool
) -> None:
    source = _source(session, ctx)
    text = ORDERS_YAML if keyed else ORDERS_YAML.replace("key: [order_no]\n", "")
    mapping = _yaml(tmp_path, text)
    rows = _order_rows(6)
    import_file(session, ctx, source, _orders(tmp_path, rows[:4], "v1.csv"), mapping)
    reexport = _orders(tmp_path, [rows[5], *reversed(rows[:4]), rows[4]], "v2.csv")
    report = import_file(session, ctx, source, reexport, mapping)
    assert (report.accepted, report.duplicates) == (2, 4)


def test_an_interrupted_import_resumes_after_its_last_committed_chunk(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    path = _orders(tmp_path, _order_rows(7))
    mapping = _yaml(tmp_path, ORDERS_YAML)

    def crash(done: int, total: int) -> None:
        raise KeyboardInterrupt  # the process dies right after the first chunk's commit

    with pytest.raises(KeyboardInterrupt):
        import_file(session, ctx, source, path, mapping, chunk_size=3, on_progress=crash)
    run = session.scalars(select(ImportRunRow)).one()
    assert (run.status, run.last_row, run.accepted) == ("running", 4, 3)  # rows 2-4 committed
    assert len(_events(session)) == 3

    resumed = import_file(session, ctx, source, path, mapping, chunk_size=3)
    assert resumed.run_id == run.id and resumed.resumed_after_row == 4
    assert (resumed.rows_read, resumed.accepted, resumed.duplicates) == (7, 7, 0)
    assert len(_events(session)) == 7
    assert session.scalars(select(ImportRunRow)).one().status == "finished"


def test_an_unmappable_row_is_dead_lettered_with_the_column_named(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    rows = _order_rows(3)
    rows[1] = "A001,13800130001,2026-03-02 10:00:00,about twelve"
    rows.append("A009,,2026-03-02 10:00:00,1.00")  # no identifier at all
    path = _orders(tmp_path, rows)
    report = import_file(session, ctx, source, path, _yaml(tmp_path, ORDERS_YAML))
    assert (report.accepted, report.dead_lettered) == (2, 2)
    letters = list(session.scalars(select(DeadLetterRow).order_by(DeadLetterRow.ref)))
    bad_amount, no_id = letters
    assert bad_amount.reason == "unmappable_row" and bad_amount.origin == "import"
    assert bad_amount.errors == [{"path": "row[3].amount", "msg": "'about twelve' is not a number"}]
    assert bad_amount.ref == f"import:{report.run_id}:row 3"
    assert json.loads(bad_amount.payload) == {
        "row": {
            "order_no": "A001",
            "phone": "13800130001",
            "order_time": "2026-03-02 10:00:00",
            "amount": "about twelve",
        },
        "row_number": 3,
        "mapping": "test-orders",
    }
    assert bad_amount.message_id is not None and bad_amount.message_id.startswith("imp-")
    assert "no identifier: phone is empty" in no_id.detail


def test_a_dead_lettered_row_replays_once_its_mapping_is_fixed(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    path = _orders(tmp_path, ["A1,13800138000,2026-03-01 10:00:00,12.50"])
    strict = ORDERS_YAML.replace("type: number", "type: integer")
    mapping = _yaml(tmp_path, strict)
    assert import_file(session, ctx, source, path, mapping).dead_lettered == 1
    assert deadletters.replay(session, ctx, source=source).still_refused == 1

    mapping.write_text(ORDERS_YAML, encoding="utf-8")  # the fix
    report = deadletters.replay(session, ctx, source=source)
    session.commit()
    assert (report.replayed, report.still_refused) == (1, 0)
    (event,) = _events(session)
    assert event.properties is not None and event.properties["amount"] == 12.5
    again = import_file(session, ctx, source, path, mapping)
    assert (again.accepted, again.duplicates) == (0, 1)  # the replayed row has the same id


def test_a_kept_call_replays_as_a_call_and_a_kept_row_by_its_mapping(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    """A mapped event that a tracking plan blocked is kept as the call, not the row."""
    source = _source(session, ctx)
    path = _orders(tmp_path, ["A1,13800138000,2026-03-01 10:00:00,oops"])
    report = import_file(session, ctx, source, path, _yaml(tmp_path, ORDERS_YAML))
    row_letter = session.scalars(select(DeadLetterRow)).one()
    assert reparse_import(session, row_letter).refused is not None  # the mapping still fails
    call = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m1"}
    call_letter = DeadLetterRow(
        ref=f"import:{report.run_id}:rows 2-2",
        payload=json.dumps(call),
        received_at=row_letter.received_at,
        message_id="m1",
    )
    again = reparse_import(session, call_letter)
    assert again.message is not None and again.message.message_id == "m1"
    stray = DeadLetterRow(ref="import:nope:row 2", payload="{}", message_id=None)
    assert again.refused is None
    refused = reparse_import(session, stray).refused
    assert refused is not None and refused.reason == "import_run_not_found"


def test_map_row_is_pure_and_remaps_a_kept_payload() -> None:
    mapping = load_mapping("demo-pos-orders")
    row: dict[str, object] = {
        "order_no": "GW1", "channel": "官网", "store": "Galaxy", "member_no": "8866",
        "phone": "", "order_time": "2026-01-14 22:03:57", "sku": "GA-1",
        "product_name": "扫地机器人", "quantity": "1", "amount": "332.99", "tax": "55.50",
        "currency": "EUR",
    }  # fmt: skip
    call = map_row(mapping, row, 2)
    assert not isinstance(call, Invalid)
    assert call == map_row(mapping, dict(row), 99)  # the position is not in the id
    assert call["event"] == "Order Completed" and call["timestamp"] == "2026-01-14T14:03:57.000Z"
    assert call["properties"]["products"] == [
        {"sku": "GA-1", "product_id": "GA-1", "name": "扫地机器人", "quantity": 1,
         "price": 332.99, "tax": 55.5},
    ]  # fmt: skip
    broken = map_row(mapping, {**row, "quantity": "one"}, 7)
    assert isinstance(broken, Invalid) and broken.errors[0].path == "row[7].quantity"
    assert isinstance(broken.raw, dict)
    assert remap_payload(mapping, {**broken.raw, "row": row}) == call


POS = load_mapping("demo-pos-orders")
CELL = st.one_of(st.none(), st.text(max_size=12), st.integers(), st.floats(), st.booleans())


@given(st.fixed_dictionaries({column: CELL for column in sorted(POS.columns())}))
def test_map_row_never_crashes_on_junk_and_is_stable(row: dict[str, object]) -> None:
    call = map_row(POS, row, 2)
    assert isinstance(call, Invalid | dict)
    assert call == map_row(POS, dict(row), 2)


@pytest.mark.parametrize("junk", [float("nan"), float("inf")])
def test_a_spreadsheets_nan_or_inf_is_refused_not_stored(junk: float) -> None:
    keys = ("amount", "channel", "currency", "member_no", "order_time", "phone",
            "product_name", "quantity", "sku", "store")  # fmt: skip
    call = map_row(POS, {**dict.fromkeys(keys), "order_no": "0", "tax": junk}, 2)
    assert isinstance(call, Invalid) and any("tax" in e.path for e in call.errors)


def test_order_lines_become_one_order_with_its_products(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    path = tmp_path / "pos.csv"
    path.write_text(
        "order_no,channel,store,member_no,phone,order_time,sku,product_name,quantity,amount,tax,currency\n"
        "O1,天猫,旗舰店,,138****8000,2026-03-01 10:00:00,S1,冰箱,1,4299.00,494.58,CNY\n"
        "O1,天猫,旗舰店,,138****8000,2026-03-01 10:00:00,S2,净水器,2,598.00,68.80,CNY\n"
        "O2,门店,上海店,886600001,,2026-03-01 11:00:00,S3,空调,1,2999.00,345.02,CNY\n",
        encoding="utf-8",
    )
    report = import_file(session, ctx, source, path, "demo-pos-orders")
    assert (report.rows_read, report.accepted) == (3, 2)
    first, _ = _events(session)
    assert first.properties is not None
    assert first.properties["total"] == 4897.0 and first.properties["tax"] == 563.38
    assert [p["sku"] for p in first.properties["products"]] == ["S1", "S2"]


def test_rows_about_a_campaign_carry_no_identifiers(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    path = tmp_path / "costs.csv"
    path.write_text(
        "channel,campaign,date,impressions,clicks,cost,currency\n"
        "baidu_sem,工业机器人_品牌词,2026-01-01,2751,60,362.07,CNY\n",
        encoding="utf-8",
    )
    report = import_file(session, ctx, source, path, "demo-marketing-costs")
    assert report.accepted == 1
    (event,) = _events(session)
    assert event.identifiers == []
    assert event.anonymous_id == "campaign:baidu_sem/工业机器人_品牌词"
    assert event.context is not None and event.context["oneloop"]["subject"] == "campaign"
    assert event.properties is not None and event.properties["amount"] == 362.07
    # The rule lives in the spec, whatever door the event came in by.
    person = {"library": {"name": "x"}}
    assert identifiers_of(None, "a1", None, {"email": "a@b.c"}, person) != []
    assert identifiers_of(None, "a1", None, {"email": "a@b.c"}, {"oneloop": {"subject": "x"}}) == []


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("name: x\ncall: track\n", "event", "needs the event name"),
        ("name: x\ncall: identify\nidentifiers: {phonee: 手机}\n", "identifiers.phonee", "not an"),
        ("name: x\ncall: identify\npropertes: {a: b}\n", "propertes", "Extra inputs"),
        ("name: x\ncall: identify\ntraits: {email: Email}\n", "traits.email", "identifier trait"),
        ("name: x\ncall: track\nevent: E\ntimestamp: When\n", "timestamp", "timezone"),
        ("name: x\ncall: track\nevent: E\nlines: {fields: {a: b}}\n", "key", "lines needs key"),
        ("name: x\ncall: tracks\n", "call", "Input should be"),
        (
            "name: x\ncall: track\nevent: E\nsubject: {kind: campaign, id: [c]}\n"
            "identifiers: {email: e}\n",
            "identifiers",
            "subject",
        ),
    ],
)
def test_a_bad_mapping_fails_naming_the_path(
    tmp_path: Path, text: str, path: str, message: str
) -> None:
    file = _yaml(tmp_path, text, "bad.yaml")
    with pytest.raises(ValidationFailed) as caught:
        load_mapping(file)
    assert str(file) in caught.value.detail
    assert any(e.path == path and message in e.msg for e in caught.value.errors), [
        (e.path, e.msg) for e in caught.value.errors
    ]


def test_a_mapping_that_is_not_yaml_says_where(tmp_path: Path) -> None:
    file = _yaml(tmp_path, "name: x\ncall: [track\n", "broken.yaml")
    with pytest.raises(ValidationFailed, match=r"broken.yaml is not valid YAML at line 3"):
        load_mapping(file)
    with pytest.raises(ValidationFailed, match="must be a YAML mapping"):
        parse_mapping(["a list"], "inline")


def test_a_column_the_file_lacks_fails_before_any_row(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)
    path = tmp_path / "orders.csv"
    path.write_text("order_no,phone,amount\nA1,1,2\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="no column 'order_time'"):
        import_file(session, ctx, source, path, _yaml(tmp_path, ORDERS_YAML))
    assert _events(session) == []
    assert session.scalars(select(ImportRunRow)).all() == []  # no half-started run to resume


def test_a_unit_cannot_import_into_another_units_source(
    session: Session, ctx: Context, tmp_path: Path
) -> None:
    source = _source(session, ctx)  # in north
    south = governance.get_business_unit(session, ctx, "south")
    south_admin = Context(
        bu_id=BusinessUnitId(south.id),
        user_id=UserId("u-south"),
        permissions=frozenset({"collect.source.read", "collect.source.manage"}),
    )
    path = _orders(tmp_path, _order_rows(1))
    with pytest.raises(NotFound):
        import_file(session, south_admin, source, path, _yaml(tmp_path, ORDERS_YAML))
    assert _events(session) == []


def test_every_shipped_mapping_is_valid() -> None:
    names = shipped_mappings()
    assert "demo-crm-contacts" in names and "demo-marketing-costs" in names
    for name in names:
        assert load_mapping(name).name == name


def test_cli_import_end_to_end(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    runner.invoke(app, ["bu", "create", "galaxy", "--name", "星河集团"], env=env)
    runner.invoke(app, ["bu", "create", "north", "--name", "北区", "--parent", "galaxy"], env=env)
    made = runner.invoke(
        app,
        ["sources", "create", "--bu", "north", "--name", "POS", "--kind", "file", "--json"],
        env=env,
    )
    assert made.exit_code == 0, made.output
    source = json.loads(made.stdout)["id"]
    path = _orders(tmp_path, _order_rows(3))
    mapping = _yaml(tmp_path, ORDERS_YAML)
    args = ["import", str(path), "--source", source, "--mapping", str(mapping)]
    first = runner.invoke(app, [*args, "--json"], env=env)
    assert first.exit_code == 0, first.output
    assert orjson.loads(first.stdout)["accepted"] == 3
    again = runner.invoke(app, [*args, "--json"], env=env)
    assert again.exit_code == 0, again.output
    assert orjson.loads(again.stdout) | {"run_id": "-"} == {
        "run_id": "-",
        "file": str(path),
        "mapping": str(mapping.resolve()),
        "source_id": source,
        "status": "finished",
        "resumed_after_row": None,
        "rows_read": 3,
        "accepted": 0,
        "duplicates": 3,
        "dead_lettered": 0,
    }
    table = runner.invoke(app, args, env=env, terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "rows read" in table.stdout and "dead-lettered" in table.stdout
    wrong = runner.invoke(app, [*args[:-1], "no-such-mapping"], env=env)
    assert wrong.exit_code == 1 and "no mapping file or shipped mapping" in wrong.output


@pytest.mark.parametrize(
    ("locale", "read_as"),
    [
        ("  value: en-US\n", "+16466076472"),  # a US export: the number as Americans write it
        ("  column: 地区\n", "+16466076472"),  # or each row says where it comes from
        (None, None),  # no region: no number in China, refused
    ],
)
def test_a_mapping_says_where_its_records_come_from(
    session: Session, ctx: Context, tmp_path: Path, locale: str | None, read_as: str | None
) -> None:
    source = _source(session, ctx)
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_text(
        "客户编号,姓名,手机,创建时间,地区\nUS001,Ann Lee,(646) 607-6472,2026/01/14 19:37,en-US\n",
        encoding="utf-8",
    )
    mapping = CONTACTS_YAML + (f"locale:\n{locale}" if locale else "")
    import_file(session, ctx, source, csv_path, _yaml(tmp_path, mapping))
    session.commit()
    (event,) = read_after(session, Position(), 10)
    assert (event.context or {}).get("locale") == ("en-US" if locale else None)
    found = extract(event, DEFAULT_RULES, unit_codes(session))
    phones = [k.value for k in found.keys if k.type == "phone"]
    assert phones == ([read_as] if read_as else [])
