"""Which department an event belongs to: configuration, not code.

The timeline shows marketing, sales and service side by side, and the hand-off report (the
leads issue) counts changes of department; both read the department stamped on each projected
event. Changing the mapping re-stamps the events already projected, in one statement per rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from functools import cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.db import in_chunks
from oneloop.profiles.filters import expect_mapping, invalid, only_keys
from oneloop.profiles.models import ProfileEventRow, SettingRow

SETTING = "departments"
CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Department:
    code: str
    name_zh: str
    name_en: str
    color: str


@dataclass(frozen=True)
class Departments:
    default: str
    departments: dict[str, Department]
    rules: tuple[tuple[str, tuple[str, ...]], ...]  # (department, event-name globs)

    def of(self, name: str) -> str:
        for department, patterns in self.rules:
            if any(fnmatchcase(name, p) for p in patterns):
                return department
        return self.default


def parse(document: object) -> Departments:
    """A mapping document, validated; errors name the path (``rules[1].department``)."""
    doc = expect_mapping(document, ())
    only_keys(doc, {"default", "departments", "rules"}, ())
    raw = expect_mapping(doc.get("departments"), ("departments",))
    departments = {}
    for code, spec in raw.items():
        path = ("departments", str(code))
        if not isinstance(code, str) or not CODE.match(code):
            raise invalid(path, "a department code is lower case letters, digits and _")
        spec = expect_mapping(spec, path)
        only_keys(spec, {"name_zh", "name_en", "color"}, path)
        names = [spec.get(k) for k in ("name_zh", "name_en")]
        if not all(isinstance(n, str) and 0 < len(n) <= 100 for n in names):
            raise invalid(path, "needs name_zh and name_en")
        color = spec.get("color", "#888888")
        if not isinstance(color, str) or not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
            raise invalid((*path, "color"), "needs a colour such as #2f6fdf")
        departments[code] = Department(code, names[0], names[1], color)
    if not departments:
        raise invalid(("departments",), "needs at least one department")
    default = doc.get("default")
    if default not in departments:
        raise invalid(("default",), f"must be one of {', '.join(departments)}")
    rules = []
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list):
        raise invalid(("rules",), "expected a list")
    for i, rule in enumerate(raw_rules):
        path = ("rules", i)
        rule = expect_mapping(rule, path)
        only_keys(rule, {"department", "events"}, path)
        if rule.get("department") not in departments:
            raise invalid((*path, "department"), f"must be one of {', '.join(departments)}")
        events = rule.get("events")
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(e, str) and 0 < len(e) <= 255 for e in events)
        ):
            raise invalid((*path, "events"), "needs a list of event names or patterns")
        rules.append((rule["department"], tuple(events)))
    return Departments(default, departments, tuple(rules))


@cache
def default_document() -> dict[str, Any]:  # Any: a YAML document
    text = resources.files("oneloop.profiles").joinpath("departments.yaml").read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def current(session: Session) -> Departments:
    row = session.get(SettingRow, SETTING)
    return parse(row.document if row else default_document())


def document(session: Session, ctx: Context) -> dict[str, Any]:  # Any: the stored document
    ctx.require("profiles.read")
    row = session.get(SettingRow, SETTING)
    return row.document if row else default_document()


def set_document(session: Session, ctx: Context, doc: object) -> int:
    """Store a new mapping and re-stamp every projected event; the number re-stamped."""
    ctx.require("profiles.admin")
    mapping = parse(doc)
    row = session.get(SettingRow, SETTING)
    now: datetime = ctx.clock.now()
    if row is None:
        row = SettingRow(name=SETTING, document=doc, version=0, updated_at=now, updated_by="")
        session.add(row)
    row.document, row.version = doc, row.version + 1  # type: ignore[assignment]
    row.updated_at, row.updated_by = now, str(ctx.user_id)
    return restamp(session, mapping)


def restamp(session: Session, mapping: Departments) -> int:
    """Stamp the mapping on stored events: names are few, so read them and update by name."""
    names = session.scalars(select(ProfileEventRow.name).distinct()).all()
    by_department: dict[str, list[str]] = {}
    for name in names:
        by_department.setdefault(mapping.of(name), []).append(name)
    changed = 0
    for department, members in by_department.items():
        for part in in_chunks(members):
            result = session.execute(
                update(ProfileEventRow)
                .where(ProfileEventRow.name.in_(part), ProfileEventRow.department != department)
                .values(department=department)
            )
            changed += result.rowcount  # type: ignore[attr-defined]
    return changed
