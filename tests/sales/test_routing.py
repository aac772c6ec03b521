"""Routing tables: the shipped demo table row by row, the cell grammar, bad uploads with
their locations, and cells that try to run code."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from oneloop.core.errors import ValidationFailed
from oneloop.demo import vocab
from oneloop.sales.routing import (
    DMN_DIR,
    FACTS,
    CellError,
    OverlappingRules,
    RoutingTable,
    compile_cell,
    decide,
    load_table,
    parse_table,
    region_of,
)

NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"


def dmn(
    rows: Sequence[Sequence[str]],
    inputs: Sequence[str] = ("province",),
    outputs: Sequence[str] = ("team",),
    hit_policy: str | None = "FIRST",
    decisions: int = 1,
) -> bytes:
    """A DMN 1.3 document as bpmn.io saves it; each row lists its input cells, then outputs."""
    policy = f' hitPolicy="{hit_policy}"' if hit_policy else ""
    body = ""
    for d in range(decisions):
        body += f'<decision id="decision_{d}" name="Routing {d}">'
        body += f'<decisionTable id="table_{d}"{policy}>'
        for i, name in enumerate(inputs):
            body += f'<input id="in_{d}_{i}" label="{name}">'
            body += f'<inputExpression id="ie_{d}_{i}" typeRef="string">'
            body += f"<text>{escape(name)}</text></inputExpression></input>"
        for i, name in enumerate(outputs):
            body += f'<output id="out_{d}_{i}" name="{name}" typeRef="string"/>'
        for r, cells in enumerate(rows):
            body += f'<rule id="rule_{d}_{r}"><description>row {r + 1}</description>'
            for c, cell in enumerate(cells):
                tag = "inputEntry" if c < len(inputs) else "outputEntry"
                body += f'<{tag} id="e_{d}_{r}_{c}"><text>{escape(cell)}</text></{tag}>'
            body += "</rule>"
        body += "</decisionTable></decision>"
    defs = f'<definitions xmlns="{NS}" id="defs" name="Routing" namespace="https://x">'
    return f"{defs}{body}</definitions>".encode()


def locations(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str | int, ...]]:
    return [e.loc for e in exc.value.errors]


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return load_table("industrial_routing")


# --- the shipped table, one case per row --------------------------------------------------

ROW_CASES = [
    # (facts, team, row)
    ({"province": "Bavaria", "employees": 5000, "score": 99}, "overseas_industrial", 1),
    ({"province": "纽约州", "industry": "化工"}, "overseas_industrial", 1),
    ({"province": "巴伐利亚州", "country": "DE"}, "overseas_industrial", 1),
    ({"province": "上海市", "employees": 5000}, "key_accounts", 2),
    ({"province": "Beijing", "employees": 1000, "score": 95}, "key_accounts", 2),
    ({"province": "Sichuan", "employees": 999, "score": 80}, "fast_lane", 3),
    ({"province": "四川省", "score": 95}, "fast_lane", 3),
    (
        {
            "province": "江苏省",
            "industry": "汽车零部件",
            "employees": 100,
            "product_line": "工业机器人",
            "score": 79,
        },
        "east_automation",
        4,
    ),
    (
        {
            "province": "Zhejiang",
            "industry": "New Energy",
            "employees": 999,
            "product_line": "Motion Control",
        },
        "east_automation",
        4,
    ),
    ({"province": "广东省", "industry": "电子制造", "employees": 300}, "south_electronics", 5),
    ({"province": "Guangdong", "industry": "Electronics Manufacturing"}, "south_electronics", 5),
    (
        {"province": "广东", "industry": "电子制造", "product_line": "激光设备"},
        "south_electronics",
        5,
    ),
    (
        {
            "province": "江苏省",
            "industry": "汽车零部件",
            "employees": 99,
            "product_line": "工业机器人",
        },
        "east_industrial",
        6,
    ),
    ({"province": "浙江省", "industry": "化工", "employees": 300}, "east_industrial", 6),
    ({"province": "Shandong", "industry": "Chemicals"}, "east_industrial", 6),
    ({"province": "广东省", "industry": "化工"}, "south_industrial", 7),
    ({"province": "Guangdong", "industry": "Textiles", "score": 79}, "south_industrial", 7),
    ({"province": "北京市", "industry": "物流仓储"}, "north_industrial", 8),
    ({"province": "Hubei", "industry": "Logistics"}, "north_industrial", 8),
    ({"province": "辽宁省"}, "north_industrial", 8),
    ({"province": "陕西省", "employees": 50}, "west_industrial", 9),
    ({"province": "Chongqing"}, "west_industrial", 9),
    ({"province": "Yunnan", "score": 10}, "west_industrial", 9),
]


@pytest.mark.parametrize(("facts", "team", "row"), ROW_CASES)
def test_shipped_table_routes_each_row(
    table: RoutingTable, facts: dict[str, object], team: str, row: int
) -> None:
    decision = decide(table, facts)
    assert decision is not None
    assert (decision.team, decision.rule_row) == (team, row)
    assert decision.rule_id == table.rules[row - 1].rule_id
    assert decision.annotation == table.rules[row - 1].annotation
    assert decision.outputs == {"priority": table.rules[row - 1].outputs["priority"]}


def test_every_row_of_the_shipped_table_is_covered(table: RoutingTable) -> None:
    assert {row for _, _, row in ROW_CASES} == {r.row for r in table.rules}


@pytest.mark.parametrize(
    "facts",
    [
        {"province": "火星", "employees": 50, "score": 10},  # not a place: no region
        {"province": "广州", "industry": "化工"},  # a city, not a province
        {"province": "Bavaria", "country": "中国"},  # said to be in China: cannot tell where
        {},
    ],
)
def test_no_row_matches_so_the_lead_goes_to_the_pool(
    table: RoutingTable, facts: dict[str, object]
) -> None:
    assert decide(table, facts) is None


@pytest.mark.parametrize(
    ("facts", "team"),
    [
        ({"province": "湖北省", "employees": None, "score": "abc"}, "north_industrial"),
        ({"province": "湖北省", "employees": "1,200"}, "key_accounts"),  # numeric text counts
        ({"province": "湖北省", "employees": [5000], "score": float("nan")}, "north_industrial"),
        ({"province": "湖北省", "employees": True}, "north_industrial"),  # not a number
        ({"province": "  Hubei  ", "industry": 42}, "north_industrial"),
        ({"employees": 5000}, "key_accounts"),  # no province: rows that test it do not match
    ],
)
def test_missing_or_odd_facts_never_raise_and_never_match(
    table: RoutingTable, facts: dict[str, object], team: str
) -> None:
    decision = decide(table, facts)
    assert decision is not None and decision.team == team


@given(
    st.dictionaries(
        st.sampled_from(sorted(FACTS)),
        st.one_of(
            st.none(),
            st.text(max_size=20),
            st.integers(),
            st.floats(),
            st.booleans(),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
@settings(max_examples=200, deadline=None)
def test_decide_never_raises_on_junk_facts(facts: dict[str, object]) -> None:
    decision = decide(load_table(), facts)
    assert decision is None or decision.team


def test_every_demo_province_reaches_a_team_in_both_languages(table: RoutingTable) -> None:
    for city in vocab.CITIES_CN + vocab.CITIES_FOREIGN:
        for province in (city.province_zh, city.province_en):
            decision = decide(table, {"province": province, "employees": 50, "score": 10})
            assert decision is not None, province
            assert (decision.team == "overseas_industrial") == (city.country != "CN"), province


def test_every_team_the_table_names_is_defined_with_a_strategy(table: RoutingTable) -> None:
    teams = yaml.safe_load((DMN_DIR / "teams.yaml").read_text(encoding="utf-8"))["teams"]
    defined = {t["code"]: t for t in teams}
    assert {str(r.outputs["team"]) for r in table.rules} <= set(defined)
    for team in teams:
        assert team["name_zh"] and team["name_en"]
        assert team["strategy"] in ("round_robin", "least_loaded", "capacity_weighted")


def test_shipped_table_is_bilingual_dmn_13(table: RoutingTable) -> None:
    assert table.hit_policy == "FIRST"
    assert table.decision_id == "industrial_routing"
    assert table.outputs == ("team", "priority")
    for rule in table.rules:
        zh, en = rule.annotation.split(" · ")
        assert zh and en and not zh.isascii()
    text = (DMN_DIR / "industrial_routing.dmn").read_text(encoding="utf-8")
    assert "dmndi:DMNShape" in text and 'typeRef="number"' in text


# --- regions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("province", "country", "region"),
    [
        ("广东省", None, "south"),
        ("广东", None, "south"),
        ("Guangdong", None, "south"),
        ("guangdong province", None, "south"),
        ("Guangdong Sheng", None, "south"),
        ("CN-GD", None, "south"),
        ("上海", None, "east"),
        ("Shanghai Shi", None, "east"),
        ("内蒙古自治区", None, "north"),
        ("Inner Mongolia", None, "north"),
        ("新疆维吾尔自治区", None, "west"),
        ("Xinjiang", None, "west"),
        ("Shaanxi", None, "west"),
        ("Shanxi", None, "north"),
        ("湖南省", None, "central"),
        ("香港特别行政区", None, "south"),
        ("Hong Kong", None, "south"),
        ("England", None, "overseas"),
        ("Bavaria", None, "overseas"),
        ("California", None, "overseas"),
        ("Somewhere", "US", "overseas"),
        ("广东省", "CN", "south"),
        (None, "HK", "south"),
        ("Bavaria", "CN", None),
        ("广州", None, None),
        ("", None, None),
        (None, None, None),
        (42, None, None),
    ],
)
def test_region_of_reads_provinces_in_either_language(
    province: object, country: str | None, region: str | None
) -> None:
    assert region_of(province, country) == region


@given(st.text(max_size=40), st.one_of(st.none(), st.text(max_size=10)))
def test_region_of_never_raises(province: str, country: str | None) -> None:
    assert region_of(province, country) in (
        None,
        "east",
        "south",
        "north",
        "central",
        "west",
        "overseas",
    )


def test_a_passed_region_wins_over_the_province() -> None:
    table = parse_table(dmn([['"east"', '"t"']], inputs=("region",)))
    assert decide(table, {"region": "east", "province": "四川省"}) is not None
    assert decide(table, {"province": "浙江省"}) is not None
    assert decide(table, {"province": "四川省"}) is None


# --- the cell grammar -------------------------------------------------------------------------

CELL_CASES = [
    # (column, cell, value, matches)
    ("region", '"east","south"', "south", True),
    ("region", '"east","south"', "north", False),
    ("region", '"east","south"', None, False),
    ("province", '"广东省"', "广东省", True),
    ("province", '= "广东省"', "广东省", True),
    ("employees", ">= 50", 50, True),
    ("employees", ">= 50", 49, False),
    ("employees", ">= 50", "50", True),
    ("employees", ">= 50", None, False),
    ("employees", "< 200", 199.5, True),
    ("employees", "> -5", -4, True),
    ("employees", "1.5", 1.5, True),
    ("employees", "[50..100]", 50, True),
    ("employees", "[50..100]", 100, True),
    ("employees", "[50..100]", 101, False),
    ("employees", "]50..100[", 50, False),
    ("employees", "(50..100]", 100, True),
    ("employees", "10, [50..100], >= 1000", 75, True),
    ("employees", "10, [50..100], >= 1000", 20, False),
    ("industry", 'not("化工")', "食品饮料", True),
    ("industry", 'not("化工")', "化工", False),
    ("industry", 'not("化工")', None, False),
    ("industry", 'not("a", "b")', "b", False),
    ("score", "-", None, True),
    ("score", "", 3, True),
    ("employees", "employees >= 50 and employees < 200", 100, True),
    ("employees", "employees >= 50 and employees < 200", 200, False),
    ("employees", "not (employees == 7) or employees > 100", 7, False),
    ("employees", "50 <= employees <= 100", 60, True),
    ("source", 'in ["event", "import"]', "import", True),
    ("source", 'not in ["event", "import"]', "import", False),
    ("source", "source == 'segment'", "segment", True),
    ("source", '"it\'s ? \\"quoted\\""', 'it\'s ? "quoted"', True),
    ("source", '"dmninputexpr"', "dmninputexpr", True),
    ("source", '"dmninputexpr"', "x", False),
]


@pytest.mark.parametrize(("column", "cell", "value", "matches"), CELL_CASES)
def test_cell_syntax(column: str, cell: str, value: object, matches: bool) -> None:
    table = parse_table(dmn([[cell, '"t"']], inputs=(column,)))
    assert (decide(table, {column: value}) is not None) is matches


@pytest.mark.parametrize(
    ("column", "cell", "message"),
    [
        ("employees", '"many"', "employees is a number"),
        ("industry", ">= 5", "compares numbers"),
        ("industry", "[1..5]", "needs numbers"),
        ("employees", "[9..5]", "starts above its end"),
        ("industry", "true", "is text"),
        ("industry", '"a" "b"', "not a bare value"),
        ("industry", '"a" or', "not a valid test"),
        ("industry", "industry == province", "on one side and a literal"),
        ("industry", "province == 'x'", "may only test industry"),
        ("industry", "industry", "not a bare value"),
        ("industry", "industry + 'x' == 'y'", "arithmetic"),
        ("employees", "employees == 1e999", "finite"),
        ("industry", "not " * 240 + "industry == 'x'", "nested too deeply"),
        ("industry", '"' + "x" * 1000 + '"', "longer than"),
    ],
)
def test_bad_cells_are_refused_with_a_reason(column: str, cell: str, message: str) -> None:
    with pytest.raises(CellError, match=message):
        compile_cell(cell, column)


_SAFE_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.Compare,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Tuple,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.USub,
)


@given(st.text(max_size=60), st.sampled_from(sorted(FACTS)))
@settings(max_examples=500)
def test_any_text_compiles_to_a_safe_test_or_is_refused(text: str, column: str) -> None:
    try:
        expr = compile_cell(text, column)
    except CellError:
        return
    if expr is None:
        return
    tree = ast.parse(f"{column} is not None and {expr}", mode="eval")
    for node in ast.walk(tree):
        assert isinstance(node, (*_SAFE_NODES, ast.Is, ast.IsNot)), ast.dump(node)
        assert not isinstance(node, ast.Name) or node.id == column


# --- bad uploads --------------------------------------------------------------------------

GOOD_ROW = ['"广东省"', '"south_industrial"']


@pytest.mark.parametrize(
    ("xml", "loc", "message"),
    [
        (b"<definitions", ("xml",), "not well-formed"),
        (b"", ("xml",), "not well-formed"),
        (
            b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
            ("xml",),
            "not a DMN 1.3 document",
        ),
        (b"<html><body>hi</body></html>", ("xml",), "not a DMN 1.3 document"),
        (
            f'<definitions xmlns="{NS}" id="d" name="n" namespace="x"><oops/>'
            "</definitions>".encode(),
            ("xml",),
            "not a valid DMN 1.3 document",
        ),
        (
            f'<definitions xmlns="{NS}" id="d" name="n" namespace="x"/>'.encode(),
            ("decisions",),
            "no decision",
        ),
        (dmn([GOOD_ROW], decisions=2), ("decisions",), "decision_0, decision_1"),
        (
            f'<definitions xmlns="{NS}" id="d" name="n" namespace="x"><decision id="x" name="x">'
            "<literalExpression><text>1</text></literalExpression></decision>"
            "</definitions>".encode(),
            ("decisionTable",),
            "not a decision table",
        ),
        (dmn([GOOD_ROW], hit_policy="COLLECT"), ("hitPolicy",), "COLLECT is not supported"),
        (dmn([GOOD_ROW], hit_policy="ANY"), ("hitPolicy",), "ANY is not supported"),
        (dmn([['"x"', '"t"']], outputs=("queue",)), ("outputs",), "needs an output named team"),
        (dmn([['"x"', '"t"']], outputs=("Team",)), ("outputs", 1), "lower-case identifier"),
        (
            dmn([['"x"', "-", '"t"']], inputs=("province", "revenue")),
            ("inputs", 2),
            "unknown input 'revenue'",
        ),
        (
            dmn([['"x"', "-", '"t"']], inputs=("province", "province")),
            ("inputs", 2),
            "appears twice",
        ),
        (
            dmn([['"x"', '"t"']]).replace(
                b"<outputEntry", b'<inputEntry id="x"><text>-</text></inputEntry><outputEntry', 1
            ),
            ("rules", 1),
            "one cell per column",
        ),
        (
            dmn([GOOD_ROW, GOOD_ROW, ['>= "a"', '"t"']]),
            ("rules", 3, "province"),
            "compares numbers",
        ),
        (dmn([['"x"', "east_team"]]), ("rules", 1, "team"), "one literal"),
        (dmn([['"x"', '""']]), ("rules", 1, "team"), "team must be a code"),
        (dmn([['"x"', "-"]]), ("rules", 1, "team"), "one literal"),
        (b"<x>" + b" " * 1_000_001 + b"</x>", ("xml",), "larger than"),
    ],
)
def test_bad_uploads_are_refused_with_their_location(
    xml: bytes, loc: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_table(xml)
    assert loc in locations(exc)
    assert any(message in e.msg for e in exc.value.errors if e.loc == loc), exc.value.errors


def test_a_prefixed_dmn_namespace_reads_like_the_default_one() -> None:
    xml = dmn([GOOD_ROW]).decode()
    xml = xml.replace(f'xmlns="{NS}"', f'xmlns:m="{NS}"')
    xml = re.sub(r"<(/?)(?!m:)(\w)", r"<\1m:\2", xml)
    decision = decide(parse_table(xml.encode()), {"province": "广东省"})
    assert decision is not None and decision.team == "south_industrial"


def test_all_problems_of_an_upload_are_reported_at_once() -> None:
    xml = dmn(
        [['"x"', '"many"', '"t"'], ["-", ">= 5", "t()"]],
        inputs=("province", "employees"),
        hit_policy="ANY",
    )
    with pytest.raises(ValidationFailed) as exc:
        parse_table(xml)
    assert set(locations(exc)) == {
        ("hitPolicy",),
        ("rules", 1, "employees"),
        ("rules", 2, "team"),
    }
    assert exc.value.detail.startswith("the routing table has 3 problem(s)")


def test_external_entities_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    row = dmn([["&xxe;", '"t"']]).decode().replace("&amp;xxe;", "&xxe;")
    xml = f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">]>{row}'.encode()
    with pytest.raises(ValidationFailed) as exc:
        parse_table(xml)
    assert locations(exc) == [("xml",)]
    assert "DOCTYPE" in exc.value.detail and "TOP-SECRET" not in exc.value.detail


# --- cells that try to run code -----------------------------------------------------------

ATTACKS = [
    ("__import__('os').system('touch {marker}')", "function calls"),
    ("().__class__.__bases__", "attribute access"),
    ("open('/etc/passwd')", "function calls"),
    ("open('{marker}', 'w')", "function calls"),
    ("lambda: __import__('os').system('touch {marker}')", "lambdas"),
    ("[__import__('os').system('touch {marker}') for _ in [1]]", "comprehensions"),
    ("f\"{{__import__('os').system('touch {marker}')}}\"", "f-strings"),
    ("province[0] == 'a'", "subscripts"),
    ("(province := 'x') == 'x'", "assignments"),
    ("__builtins__", "bare value"),
    ("__builtins__ == 1", "unknown name"),
    ("province == __import__('os').system('touch {marker}')", "function calls"),
    ("province.upper() == 'A'", "function calls"),
    ("{{'a': 1}} == province", "dictionaries"),
]


@pytest.mark.parametrize(("cell", "refusal"), ATTACKS)
def test_cells_that_run_code_are_refused_at_parse_time(
    tmp_path: Path, cell: str, refusal: str
) -> None:
    marker = tmp_path / "pwned"
    cell = cell.format(marker=marker)
    xml = dmn([GOOD_ROW, [cell, '"t"'], ['"x"', cell]])
    with pytest.raises(ValidationFailed) as exc:
        parse_table(xml)
    errors = {e.loc: e.msg for e in exc.value.errors}
    assert refusal in errors[("rules", 2, "province")]
    assert ("rules", 3, "team") in errors
    assert not marker.exists()


def test_the_expression_environment_has_no_builtins(table: RoutingTable) -> None:
    environment = table._script.environment
    with pytest.raises(NameError):
        environment.evaluate("open('/etc/passwd')", {})
    with pytest.raises(PermissionError):
        environment.execute("x = 1", {})


# --- hit policies ---------------------------------------------------------------------------


def test_first_takes_the_first_matching_row() -> None:
    table = parse_table(dmn([['"a","b"', '"t1"'], ['"b"', '"t2"']]))
    decision = decide(table, {"province": "b"})
    assert decision is not None and (decision.team, decision.rule_row) == ("t1", 1)
    assert decision.annotation == "row 1"


def test_unique_routes_when_exactly_one_row_matches() -> None:
    table = parse_table(dmn([['"a"', '"t1"'], ['"b"', '"t2"']], hit_policy=None))
    assert table.hit_policy == "UNIQUE"
    decision = decide(table, {"province": "b"})
    assert decision is not None and (decision.team, decision.rule_row) == ("t2", 2)


def test_unique_refuses_overlapping_rows_naming_them() -> None:
    rows = [['"a","b"', '"t1"'], ['"c"', '"t3"'], ['"b"', '"t2"']]
    table = parse_table(dmn(rows, hit_policy="UNIQUE"))
    with pytest.raises(OverlappingRules, match="rows 1, 3") as exc:
        decide(table, {"province": "b"})
    assert exc.value.context == {"decision_id": "decision_0", "rows": "1, 3"}
    assert decide(table, {"province": "a"}) is not None


def test_other_outputs_come_back_as_values() -> None:
    xml = dmn([['"a"', '"t"', "2", "true", ""]], outputs=("team", "priority", "vip", "queue"))
    decision = decide(parse_table(xml), {"province": "a"})
    assert decision is not None
    assert decision.outputs == {"priority": 2, "vip": True, "queue": None}


def test_rules_keep_the_cells_as_written() -> None:
    table = parse_table(dmn([['"a", "b"', '"t"'], ["-", '"pool_watch"']]))
    assert table.rules[0].tests == {"province": '"a", "b"'}
    assert table.rules[1].tests == {"province": ""}
    assert table.rules[1].outputs == {"team": "pool_watch"}
