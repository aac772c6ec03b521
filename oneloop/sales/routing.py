"""Lead routing by DMN decision tables (issue 9): which team a new lead goes to.

A sales manager draws the table in bpmn.io's DMN editor and uploads it as DMN 1.3 XML; it is
evaluated by SpiffWorkflow's DMN engine. Spiff evaluates every cell as Python, and DESIGN.md
rules out rule languages that can call code. So no text of an upload ever reaches Spiff: each
cell is parsed against a small allow-list grammar (FEEL unary tests, or comparisons of the
column's input with literals joined by and/or/not), and Spiff gets the expression we re-render
from that parse, evaluated with no builtins. Parse once at upload (`parse_table`), then
`decide` many times: Spiff's compiled expressions are cached per table.

Facts are the names in `FACTS`; the leads service builds them from the customer's traits. A
fact that is missing, None or of the wrong type is None, and a row that tests it does not
match (never an error). `region` is derived from `province` (and `country`) by `region_of`
when the caller does not pass it, so a table can say "华东" once instead of listing provinces
in two languages. See docs/routing.md for the cell syntax a table may use.
"""

from __future__ import annotations

import ast
import gettext
import json
import math
import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal, NoReturn

import pycountry
from lxml import etree
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser

from oneloop.core.errors import Conflict, FieldError, ValidationFailed

FactType = Literal["string", "number"]
OutputValue = str | int | float | bool | None
HitPolicy = Literal["UNIQUE", "FIRST"]
Region = Literal["east", "south", "north", "central", "west", "overseas"]

# The facts a routing table may test; any other input expression is refused at upload.
FACTS: dict[str, FactType] = {
    "region": "string",  # derived: region_of(province, country) unless passed, see REGIONS
    "country": "string",  # ISO 3166 code or name, when known: anything but China is overseas
    "province": "string",  # as the customer typed it, Chinese or English (广东省, Guangdong)
    "city": "string",
    "industry": "string",  # the company's industry trait, Chinese or English
    "employees": "number",  # company size
    "product_line": "string",  # product line (catalogue category) of interest
    "score": "number",  # the intent score
    "source": "string",  # lead source: segment, event, import, demo_request ...
}
REGIONS: dict[Region, tuple[str, str]] = {
    "east": ("华东", "East China"),
    "south": ("华南", "South China"),
    "north": ("华北及东北", "North and Northeast China"),
    "central": ("华中", "Central China"),
    "west": ("西部", "West China"),
    "overseas": ("海外", "Overseas"),
}
MAX_BYTES = 1_000_000
MAX_CELL = 1_000
DMN13 = "https://www.omg.org/spec/DMN/20191111/MODEL/"


@dataclass(frozen=True)
class RoutingRule:
    """One row as uploaded: `tests` keeps each input cell as written ("" for any)."""

    row: int  # 1-based, as the editor numbers rows
    rule_id: str
    annotation: str
    tests: dict[str, str]
    outputs: dict[str, OutputValue]


@dataclass(frozen=True)
class RoutingTable:
    name: str
    decision_id: str
    hit_policy: HitPolicy
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    rules: tuple[RoutingRule, ...]
    _engine: DMNEngine = field(repr=False, compare=False)
    _script: PythonScriptEngine = field(repr=False, compare=False)


@dataclass(frozen=True)
class Decision:
    team: str
    rule_row: int
    rule_id: str
    annotation: str
    outputs: dict[str, OutputValue]  # every output column but `team`, e.g. priority


class OverlappingRules(Conflict):
    """A UNIQUE table where two rows match the same lead: the table is wrong, not the lead.
    DMN leaves the result undefined, so we refuse rather than guess; the leads service can
    send the lead to the pool and tell the table's owner which rows overlap."""

    code = "routing-overlap"
    title = "Routing rules overlap"


# --- parsing an upload ----------------------------------------------------------------------


def parse_table(xml: bytes) -> RoutingTable:
    """Every problem is reported at once, each with its location: ("rules", 3, "industry") is
    row 3 of the editor, column `industry`. Rows and columns count from 1, like the editor."""
    root = _parse_xml(xml)
    ns = etree.QName(root).namespace
    decisions = root.findall(f"{{{ns}}}decision")
    if not decisions:
        _fail("the document holds no decision", ("decisions",))
    if len(decisions) > 1:
        ids = ", ".join(d.get("id", "?") for d in decisions)
        _fail(f"a routing file holds exactly one decision; this one holds {ids}", ("decisions",))
    decision = decisions[0]
    tables = decision.findall(f"{{{ns}}}decisionTable")
    if len(tables) != 1:
        _fail("the decision is not a decision table (draw it as a table)", ("decisionTable",))
    table = tables[0]
    policy = table.get("hitPolicy", "UNIQUE").upper()
    errors: list[FieldError] = []
    if policy not in ("UNIQUE", "FIRST"):
        _add(errors, ("hitPolicy",), f"hit policy {policy} is not supported; use UNIQUE or FIRST")
    inputs = _read_inputs(table, ns, errors)
    outputs = _read_outputs(table, ns, errors)
    rules = [
        _read_rule(row, element, ns, inputs, outputs, errors)
        for row, element in enumerate(table.findall(f"{{{ns}}}rule"), 1)
    ]
    if errors:
        raise ValidationFailed(
            f"the routing table has {len(errors)} problem(s): {errors[0].path}: {errors[0].msg}",
            errors=errors,
        )
    return RoutingTable(
        name=decision.get("name", ""),
        decision_id=decision.get("id", ""),
        hit_policy="FIRST" if policy == "FIRST" else "UNIQUE",
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        rules=tuple(r.rule for r in rules),
        _engine=_spiff_engine(decision.get("id", ""), rules, inputs, outputs, policy),
        _script=_ScriptEngine(),
    )


def _fail(msg: str, loc: tuple[str | int, ...]) -> NoReturn:
    raise ValidationFailed(msg, errors=[FieldError(loc, msg)])


def _add(errors: list[FieldError], loc: tuple[str | int, ...], msg: str) -> None:
    errors.append(FieldError(loc, msg))


def _parse_xml(xml: bytes) -> etree._Element:
    """No DTDs, entities or network: an upload must not read files or call out (XXE)."""
    if len(xml) > MAX_BYTES:
        _fail(f"the file is larger than {MAX_BYTES} bytes", ("xml",))
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        _fail(f"not well-formed XML: {exc.msg}", ("xml",))
    if root is None or not isinstance(root.tag, str):
        _fail("not well-formed XML: no root element", ("xml",))
    if root.getroottree().docinfo.doctype:
        _fail("a DMN document has no DOCTYPE (DTDs and entities are refused)", ("xml",))
    qname = etree.QName(root)
    if qname.localname != "definitions" or qname.namespace != DMN13:
        _fail(
            "not a DMN 1.3 document: the root must be <definitions> in the namespace "
            f"{DMN13} (save it from bpmn.io's DMN editor)",
            ("xml",),
        )
    schema = _schema()
    if not schema.validate(root):
        err = schema.error_log.last_error
        _fail(f"not a valid DMN 1.3 document (line {err.line}): {err.message}", ("xml",))
    return root


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(DMN_SCHEMAS[DMN13]))


def _text(element: etree._Element | None, ns: str | None) -> str:
    node = None if element is None else element.find(f"{{{ns}}}text")
    return (node.text or "").strip() if node is not None else ""


def _read_inputs(table: etree._Element, ns: str | None, errors: list[FieldError]) -> list[str]:
    names: list[str] = []
    for i, element in enumerate(table.findall(f"{{{ns}}}input"), 1):
        name = _text(element.find(f"{{{ns}}}inputExpression"), ns)
        label = element.get("label") or str(i)
        if name not in FACTS:
            known = ", ".join(FACTS)
            _add(errors, ("inputs", i), f"unknown input {name!r} (column {label}); use {known}")
        elif name in names:
            _add(errors, ("inputs", i), f"input {name!r} appears twice")
        names.append(name)
    return names


def _read_outputs(table: etree._Element, ns: str | None, errors: list[FieldError]) -> list[str]:
    names = [element.get("name", "") for element in table.findall(f"{{{ns}}}output")]
    for i, name in enumerate(names, 1):
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            msg = f"output name {name!r} must be a lower-case identifier (team, priority)"
            _add(errors, ("outputs", i), msg)
        elif name in names[: i - 1]:
            _add(errors, ("outputs", i), f"output {name!r} appears twice")
    if "team" not in names:
        _add(errors, ("outputs",), "the table needs an output named team")
    return names


@dataclass(frozen=True)
class _Row:
    rule: RoutingRule
    compiled: list[str | None]  # per input: the expression Spiff joins to the input name


def _read_rule(
    row: int,
    element: etree._Element,
    ns: str | None,
    inputs: list[str],
    outputs: list[str],
    errors: list[FieldError],
) -> _Row:
    in_cells = [_text(e, ns) for e in element.findall(f"{{{ns}}}inputEntry")]
    out_cells = [_text(e, ns) for e in element.findall(f"{{{ns}}}outputEntry")]
    if len(in_cells) != len(inputs) or len(out_cells) != len(outputs):
        shape = f"{len(inputs)} inputs, {len(outputs)} outputs"
        _add(errors, ("rules", row), f"row {row} does not have one cell per column ({shape})")
    tests: dict[str, str] = {}
    compiled: list[str | None] = []
    for name, text in zip(inputs, in_cells, strict=False):
        tests[name] = "" if text == "-" else text
        try:
            compiled.append(compile_cell(text, name) if name in FACTS else None)
        except CellError as exc:
            _add(errors, ("rules", row, name), f"row {row}, {name}: {exc}")
            compiled.append(None)
    values: dict[str, OutputValue] = {}
    for name, text in zip(outputs, out_cells, strict=False):
        try:
            values[name] = compile_output(text)
        except CellError as exc:
            _add(errors, ("rules", row, name), f"row {row}, {name}: {exc}")
            continue
        team = values[name]
        if name == "team" and not (isinstance(team, str) and team.strip()):
            _add(errors, ("rules", row, "team"), f"row {row}: team must be a code in quotes")
    description = element.find(f"{{{ns}}}description")
    rule = RoutingRule(
        row=row,
        rule_id=element.get("id") or f"row{row}",
        annotation=(description.text or "").strip() if description is not None else "",
        tests=tests,
        outputs=values,
    )
    return _Row(rule, compiled)


def _sub(parent: etree._Element, tag: str, text: str | None = None, **at: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{DMN13}}}{tag}", at)
    if text is not None:
        etree.SubElement(element, f"{{{DMN13}}}text").text = text
    return element


def _spiff_engine(
    decision_id: str, rows: list[_Row], inputs: list[str], outputs: list[str], policy: str
) -> DMNEngine:
    """Spiff's parser reads a clean copy of the table's shape that we write ourselves (default
    namespace, every id present, cells blank), so no uploaded text reaches it; the cells it
    then evaluates are the ones we compiled."""
    root = etree.Element(f"{{{DMN13}}}definitions", nsmap={None: DMN13})
    table = _sub(_sub(root, "decision", id=decision_id or "routing"), "decisionTable", id="t")
    for i, name in enumerate(inputs):
        _sub(_sub(table, "input", id=f"i{i}"), "inputExpression", name, id=f"ie{i}")
    for i, name in enumerate(outputs):
        _sub(table, "output", id=f"o{i}", name=name)
    for r, row in enumerate(rows):
        rule = _sub(table, "rule", id=row.rule.rule_id)
        etree.SubElement(rule, f"{{{DMN13}}}description").text = row.rule.annotation
        for i in range(len(inputs)):
            _sub(rule, "inputEntry", "-", id=f"r{r}i{i}")
        for i in range(len(outputs)):
            _sub(rule, "outputEntry", "None", id=f"r{r}o{i}")
    parser = BpmnDmnParser()
    parser.add_dmn_xml(root)
    engine = parser.get_engine(next(iter(parser.dmn_parsers)), root)
    spiff = engine.decision_table
    for spiff_rule, row in zip(spiff.rules, rows, strict=True):
        for entry, compiled in zip(spiff_rule.inputEntries, row.compiled, strict=True):
            # Spiff joins a test that does not parse on its own to the input's name:
            # "province" + " is not None and (...)". None never matches a test.
            entry.lhs = [None if compiled is None else f" is not None and {compiled}"]
        for entry in spiff_rule.outputEntries:
            entry.text = _py_literal(row.rule.outputs[entry.output.name])
    # Spiff's UNIQUE stops at the first match (DMN's FIRST); any other policy collects every
    # match in rule order, which is what checking DMN's UNIQUE needs.
    spiff.hit_policy = "UNIQUE" if policy == "FIRST" else "RULE ORDER"
    return engine


# --- the cell grammar -------------------------------------------------------------------------


class CellError(ValueError):
    """A cell outside the allowed syntax; the message says what was found."""


def compile_cell(text: str, column: str) -> str | None:
    """An input cell as a Python expression over `column`, or None for "any" (`-` or empty).

    Two forms are allowed: FEEL unary tests as bpmn.io writes them (`"华东","华南"`, `>= 50`,
    `[50..100]`, `not("x")`), or a comparison of the column with literals joined by and/or/not
    (`employees >= 50 and employees < 200`, `in ["a", "b"]`). The result is rendered from our
    own parse, never copied from `text`, and always starts with the column's name.
    """
    text = text.strip()
    if text in ("", "-"):
        return None
    if len(text) > MAX_CELL:
        raise CellError(f"the cell is longer than {MAX_CELL} characters")
    kind = FACTS[column]
    expr = _feel_cell(text, column, kind) or _python_cell(text, column, kind)
    try:  # what Spiff will compile: deep nesting can pass our parse and still fail there
        compile(f"{column} is not None and {expr}", "<cell>", "eval", dont_inherit=True)
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise CellError("the cell is nested too deeply") from exc
    return expr


def compile_output(text: str) -> OutputValue:
    """An output cell holds one literal: "east_industrial", 2, true; empty means None."""
    if text == "":
        return None
    try:
        tokens = _tokens(text)
    except _NotFeel:
        tokens = []
    if len(tokens) == 1 and tokens[0][0] in ("string", "number", "word"):
        value = _literal_value(tokens[0])
        if value is not _NO:
            return value  # type: ignore[return-value]
    if len(tokens) == 1 and tokens[0] == ("word", "null"):
        return None
    example = '"east_industrial" or 2'
    raise CellError(f"an output cell holds one literal such as {example}, not {text[:80]!r}")


class _NotFeel(Exception):
    pass


def _feel_cell(text: str, column: str, kind: FactType) -> str | None:
    """None when the text is not FEEL at all (it may be the comparison form); a CellError
    when it is FEEL that breaks a rule (a string in a number column)."""
    try:
        return _Feel(_tokens(text), column, kind).cell()
    except _NotFeel:
        return None


_NO = object()
_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)(?!\w)
    |(?P<op><=|>=|!=|<|>|=)|(?P<range>\.\.)|(?P<punct>[\[\]\(\),])|(?P<word>[A-Za-z_]\w*))""",
    re.X,
)
Token = tuple[str, str]


def _tokens(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise _NotFeel
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _literal_value(token: Token) -> object:
    kind, raw = token
    if kind == "string":
        try:
            return json.loads(raw)  # FEEL string escapes are JSON's
        except ValueError as exc:
            raise CellError(f"bad string literal {raw[:40]}") from exc
    if kind == "number":
        return float(raw) if "." in raw else int(raw)
    return {"true": True, "false": False}.get(raw, _NO)


class _Feel:
    """Recursive descent over FEEL unary tests (DMN 1.3 §9.5): `not(tests)` or `test, test`
    where a test is a literal, a comparison with a literal, or an interval."""

    def __init__(self, tokens: list[Token], column: str, kind: FactType) -> None:
        self.tokens, self.pos, self.column, self.kind = tokens, 0, column, kind

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _NotFeel
        self.pos += 1
        return token

    def cell(self) -> str:
        negate = self.peek() == ("word", "not")
        if negate:
            self.take()
            if self.take() != ("punct", "("):
                raise _NotFeel
        tests = [self.test()]
        while self.peek() == ("punct", ","):
            self.take()
            tests.append(self.test())
        if negate and self.take() != ("punct", ")"):
            raise _NotFeel
        if self.peek() is not None:
            raise _NotFeel
        equal = f"({self.column} == "
        if len(tests) > 1 and all(t.startswith(equal) for t in tests):  # a list of values
            values = "".join(t.removeprefix(equal)[:-1] + ", " for t in tests)
            expr = f"({self.column} in ({values}))"
        else:
            expr = tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"
        return f"(not {expr})" if negate else expr

    def literal(self) -> str:
        token = self.take()
        value = _literal_value(token) if token[0] in ("string", "number", "word") else _NO
        if value is _NO:
            raise _NotFeel
        _check_type(value, self.column, self.kind)
        return _py_literal(value)  # type: ignore[arg-type]

    def test(self) -> str:
        token = self.peek()
        col = self.column
        if token is not None and token[0] == "op":
            op = {"=": "=="}.get(self.take()[1], token[1])
            if op not in ("==", "!=") and self.kind != "number":
                raise CellError(f"{token[1]} compares numbers; {col} is text")
            return f"({col} {op} {self.literal()})"
        if token is not None and token[1] in "[(]" and token[0] == "punct":
            return self.interval()
        return f"({col} == {self.literal()})"

    def interval(self) -> str:
        opening = self.take()[1]
        if self.kind != "number":
            raise CellError(f"a range [a..b] needs numbers; {self.column} is text")
        low = self.literal()
        if self.take() != ("range", ".."):
            raise _NotFeel
        high = self.literal()
        closing = self.take()
        if closing[0] != "punct" or closing[1] not in "])[":
            raise _NotFeel
        if float(low) > float(high):
            raise CellError(f"the range starts above its end: {low} > {high}")
        lo_op = ">=" if opening == "[" else ">"
        hi_op = "<=" if closing[1] == "]" else "<"
        return f"({self.column} {lo_op} {low} and {self.column} {hi_op} {high})"


def _check_type(value: object, column: str, kind: FactType) -> None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "number" and not is_number:
        raise CellError(f"{column} is a number; {value!r} is not")
    if kind == "string" and not isinstance(value, str):
        raise CellError(f"{column} is text; write {value!r} in double quotes")
    if isinstance(value, float) and not math.isfinite(value):
        raise CellError(f"{value!r} is not a finite number")


_COMPARE_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}  # fmt: skip
_REFUSED: dict[type[ast.AST], str] = {
    ast.Call: "function calls",
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    **dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "comprehensions"),
    ast.JoinedStr: "f-strings",
    ast.NamedExpr: "assignments",
    ast.Starred: "unpacking",
    ast.IfExp: "if-expressions",
    ast.BinOp: "arithmetic",
    ast.Dict: "dictionaries",
    **dict.fromkeys((ast.Tuple, ast.List, ast.Set), "lists outside a comparison"),
    ast.UnaryOp: "signs other than a minus before a number",
}
_ALLOWED = "only literals, comparisons of the column with literals, and and/or/not are allowed"


def _python_cell(text: str, column: str, kind: FactType) -> str:
    """The comparison form, checked node by node with `ast`: parsing never executes."""
    for source in (text, f"{column} {text}"):  # `in ["a", "b"]`: the column is implied
        try:
            tree = ast.parse(source, mode="eval")
            break
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
    else:
        raise CellError(f"not a valid test: {text[:80]!r}; {_ALLOWED}")
    return _py_test(tree.body, column, kind)


def _py_test(node: ast.expr, column: str, kind: FactType) -> str:
    if isinstance(node, ast.BoolOp):
        op = " and " if isinstance(node.op, ast.And) else " or "
        return "(" + op.join(_py_test(v, column, kind) for v in node.values) + ")"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return f"(not {_py_test(node.operand, column, kind)})"
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        parts = [_py_operand(operands[0], column, kind)]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            symbol = _COMPARE_OPS.get(type(op))
            if symbol is None:
                raise CellError(f"the operator {type(op).__name__} is not allowed; {_ALLOWED}")
            is_name = [isinstance(x, ast.Name) for x in (left, right)]
            if sum(is_name) != 1:
                raise CellError(f"each comparison has {column} on one side and a literal on "
                                "the other")  # fmt: skip
            if symbol in ("in", "not in") and not isinstance(right, ast.List | ast.Tuple | ast.Set):
                raise CellError(f"{symbol} needs a list of literals on its right")
            if symbol in ("<", "<=", ">", ">=") and kind != "number":
                raise CellError(f"{symbol} compares numbers; {column} is text")
            parts += [symbol, _py_operand(right, column, kind)]
        return "(" + " ".join(parts) + ")"
    if isinstance(node, ast.Name | ast.Constant):
        raise CellError(f'a cell is a test such as "x" or {column} == "x", not a bare value')
    raise CellError(_refusal(node, column))


def _py_operand(node: ast.expr, column: str, kind: FactType) -> str:
    if isinstance(node, ast.Name):
        if node.id != column:
            raise CellError(_refusal(node, column))
        return column
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = [_py_operand_literal(e, column, kind) for e in node.elts]
        return "(" + "".join(f"{i}, " for i in items) + ")"
    return _py_operand_literal(node, column, kind)


def _py_operand_literal(node: ast.expr, column: str, kind: FactType) -> str:
    operand = node.operand if isinstance(node, ast.UnaryOp) else None
    if isinstance(operand, ast.Constant) and type(operand.value) in (int, float):
        value = -operand.value if isinstance(node.op, ast.USub) else _NO  # type: ignore[attr-defined]
    elif isinstance(node, ast.Constant) and type(node.value) in (str, int, float, bool):
        value = node.value
    else:
        value = _NO
    if value is _NO:
        raise CellError(_refusal(node, column))
    _check_type(value, column, kind)
    return _py_literal(value)  # type: ignore[arg-type]


def _refusal(node: ast.AST, column: str) -> str:
    if isinstance(node, ast.Name):
        return f"unknown name {node.id!r}: a cell in column {column} may only test {column}"
    if isinstance(node, ast.Constant):
        return f"{node.value!r} is not a literal a cell may hold; {_ALLOWED}"
    what = _REFUSED.get(type(node), type(node).__name__)
    return f"{what} are not allowed; {_ALLOWED}"


_SAFE_CHARS = frozenset(string.ascii_letters + string.digits + " _-.,:/&+@#%()[]")


def _py_literal(value: OutputValue) -> str:
    """Python source for a literal. Strings escape everything but plain ASCII, so no quote,
    backslash or `?` (Spiff's input placeholder) can appear in what Spiff evaluates."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float):
        return repr(value)
    # Spiff treats an expression naming `dmninputexpr` as its `?` form: never let one read so.
    plain = _SAFE_CHARS if "dmninputexpr" not in value.casefold() else frozenset()
    chars = (c if c in plain else f"\\U{ord(c):08x}" for c in value)
    return '"' + "".join(chars) + '"'


# --- evaluation ------------------------------------------------------------------------------


class _Environment(BasePythonScriptEngineEnvironment):
    """Evaluates our own compiled expressions only, with no builtins, each compiled once."""

    def __init__(self) -> None:
        super().__init__({"__builtins__": {}})
        self._code: dict[str, object] = {}

    def evaluate(
        self,
        expression: str,
        context: dict[str, object],
        external_context: dict[str, object] | None = None,
    ) -> object:
        code = self._code.get(expression)
        if code is None:
            code = self._code[expression] = compile(expression, "<routing>", "eval")
        scope = {**context, **(external_context or {})} if external_context else context
        # Safe: every expression was rendered by compile_cell/_py_literal from an allow-listed
        # parse (literals, comparisons, and/or/not over the table's inputs), never user text.
        return eval(code, self.globals, scope)  # noqa: S307

    def execute(self, script: str, context: object, external_context: object = None) -> bool:
        raise PermissionError("routing tables run no scripts")


class _ScriptEngine(PythonScriptEngine):
    """Spiff parses each cell twice per evaluation to learn how to join it to its input; the
    answer never changes, so it is remembered, failures included."""

    def __init__(self) -> None:
        super().__init__(environment=_Environment())
        self._parsed: dict[str, str | None] = {}  # expression -> syntax error message

    def validate(self, expression: str) -> None:
        if expression not in self._parsed:
            try:
                ast.parse(expression)
                self._parsed[expression] = None
            except SyntaxError as exc:
                self._parsed[expression] = str(exc.msg)
        error = self._parsed[expression]
        if error is not None:
            raise SyntaxError(error)


class _Task:
    """What Spiff's DMN engine and its errors read of a task, its workflow and its spec: a
    table is evaluated on its own, with no BPMN process around it, so one object is all three."""

    bpmn_name = "routing"
    file = "routing.dmn"

    def __init__(self, data: dict[str, object], script_engine: PythonScriptEngine) -> None:
        self.data = data
        self.script_engine = script_engine
        self.workflow = self.top_workflow = self
        self.task_spec = self.spec = self


def decide(table: RoutingTable, facts: Mapping[str, object]) -> Decision | None:
    """The team for a lead with these facts, or None (the lead goes to the pool, 公海).

    FIRST takes the first matching row. UNIQUE checks every row and raises OverlappingRules
    when two match, naming both rows. Raises nothing for odd facts: see `facts_for`.
    """
    task = _Task(facts_for(table.inputs, facts), table._script)
    matched = table._engine.decide(task)
    if not matched:
        return None
    if table.hit_policy == "UNIQUE" and len(matched) > 1:
        rows = ", ".join(str(r.row_number) for r in matched)
        raise OverlappingRules(
            f"rows {rows} of routing table {table.decision_id} all match this lead; a UNIQUE "
            "table needs rows that never overlap (or use hit policy FIRST)",
            decision_id=table.decision_id,
            rows=rows,
        )
    rule = matched[0]
    out = dict(rule.output_as_dict(task))
    team = out.pop("team")
    return Decision(
        team=str(team),
        rule_row=rule.row_number,
        rule_id=rule.id,
        annotation=(rule.description or "").strip(),
        outputs=out,
    )


def facts_for(inputs: tuple[str, ...], facts: Mapping[str, object]) -> dict[str, object]:
    """Each input's value of the type its cells expect, or None: numbers from numeric text
    ("1200"), text trimmed, anything else (lists, NaN, booleans as numbers) None."""
    data = {name: _coerce(facts.get(name), FACTS[name]) for name in inputs}
    if "region" in data and data["region"] is None:
        data["region"] = region_of(facts.get("province"), facts.get("country"))
    return data


def _coerce(value: object, kind: FactType) -> object:
    if isinstance(value, bool) or value is None:
        return None
    if kind == "string":
        if isinstance(value, int | float):
            return str(value)
        return (value.strip() or None) if isinstance(value, str) else None
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


# --- regions -----------------------------------------------------------------------------------

# The usual sales regions of China by ISO 3166-2 code; 东北 is run from the north.
_REGION_OF_CODE: dict[str, Region] = {
    **dict.fromkeys(("SH", "JS", "ZJ", "AH", "FJ", "JX", "SD", "TW"), "east"),
    **dict.fromkeys(("GD", "GX", "HI", "HK", "MO"), "south"),
    **dict.fromkeys(("BJ", "TJ", "HE", "SX", "NM", "LN", "JL", "HL"), "north"),
    **dict.fromkeys(("HA", "HB", "HN"), "central"),
    **dict.fromkeys(("CQ", "SC", "GZ", "YN", "XZ", "SN", "GS", "QH", "NX", "XJ"), "west"),
}  # type: ignore[arg-type]
# Names people use that ISO 3166-2 (pycountry) does not carry.
_CN_ALIASES = {"innermongolia": "NM", "tibet": "XZ", "macau": "MO", "宁夏": "NX"}
_FOREIGN_ALIASES = frozenset(("bavaria", "巴伐利亚", "英格兰", "苏格兰", "威尔士", "巴登符腾堡"))
_SUFFIXES = (
    "specialadministrativeregion", "autonomousregion", "municipality", "province", "zizhiqu",
    "zhuangzu", "huizu", "uygur", "sheng", "shi", "sar", "特别行政区", "自治区", "壮族", "回族",
    "维吾尔", "省", "市", "州",
)  # fmt: skip


def _key(name: str) -> str:
    key = re.sub(r"[\s\-'’.·]", "", unicodedata.normalize("NFKC", name).casefold())
    stripped = True
    while stripped:
        stripped = False
        for suffix in _SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix) + 1:
                key, stripped = key[: -len(suffix)], True
    return key


@cache
def _place_index() -> tuple[dict[str, str], frozenset[str]]:
    """Chinese province keys → ISO code, and every other country's subdivision and country
    names (English and Chinese), from pycountry's ISO 3166 data."""
    zh2 = gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["zh_CN"])
    zh1 = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"])
    china: dict[str, str] = {k: v for k, v in _CN_ALIASES.items()}
    foreign: set[str] = set(_FOREIGN_ALIASES)
    for sub in pycountry.subdivisions:
        names = {sub.name, zh2.gettext(sub.name)}
        if sub.country_code == "CN":
            code = sub.code.removeprefix("CN-")
            china.update({_key(n): code for n in names} | {_key(sub.code): code})
        else:
            foreign.update(_key(n) for n in names)
    for country in pycountry.countries:
        if country.alpha_2 not in ("CN", "HK", "MO", "TW"):
            foreign.update(_key(n) for n in (country.name, zh1.gettext(country.name)))
    return china, frozenset(foreign - set(china))


def region_of(province: object, country: object = None) -> Region | None:
    """The sales region of a province written in Chinese or English, with or without its
    suffix (广东省, 广东, Guangdong, Guangdong Sheng, CN-GD); "overseas" for a place outside
    mainland China, Hong Kong, Macao and Taiwan; None when it cannot tell (a typo, a city)."""
    code = _country_code(country)
    if code is not None and code not in ("CN", "HK", "MO", "TW"):
        return "overseas"
    if code in ("HK", "MO", "TW"):
        return _REGION_OF_CODE[code]
    if not isinstance(province, str) or not province.strip():
        return None
    return _province_region(province, code is None)


@lru_cache(maxsize=4096)
def _province_region(province: str, may_be_foreign: bool) -> Region | None:
    china, foreign = _place_index()
    key = _key(province)
    if key in china:
        return _REGION_OF_CODE[china[key]]
    if may_be_foreign and key in foreign:
        return "overseas"
    return None


def _country_code(country: object) -> str | None:
    if not isinstance(country, str) or not country.strip():
        return None
    return _country_code_of(country)


@lru_cache(maxsize=1024)
def _country_code_of(country: str) -> str | None:
    if _key(country) in ("中国", "中华人民共和国", "china", "prc"):
        return "CN"
    try:
        return str(pycountry.countries.lookup(country.strip()).alpha_2)
    except LookupError:
        return None


# --- the shipped tables ------------------------------------------------------------------------

DMN_DIR = Path(__file__).parent / "dmn"


def load_table(name: str = "industrial_routing") -> RoutingTable:
    """A table shipped with OneLoop (the demo's), parsed like an upload."""
    return parse_table((DMN_DIR / f"{name}.dmn").read_bytes())
