"""The identity rules document: what a steward writes is checked, with the path of each
mistake, before it can change how people are resolved."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app
from oneloop.core.context import Context
from oneloop.core.errors import ValidationFailed
from oneloop.governance import audit
from oneloop.identity import service
from oneloop.identity.rules import DEFAULT_RULES, default_document, load_yaml, parse
from tests.identity.conftest import ev, profile_of, run


def paths(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[tuple[object, ...], str]:
    return {tuple(e.loc): e.msg for e in exc.value.errors}


def test_the_shipped_rules_hold_what_the_readme_promises() -> None:
    rules = DEFAULT_RULES
    assert rules.limit("user_id") == 1 and rules.limit("email") == 5
    assert rules.types["user_id"].scope == "business_unit"
    assert rules.count_key("user_id", "appliances:42") == "user_id@appliances"
    assert rules.count_key("phone", "+8613800138000") == "phone"
    assert rules.type_of("previous_id") == "anonymous_id"
    assert rules.blocked_reason("email", "test@test.com") == "blocked value"
    assert rules.blocked_reason("email", "nobody@corp.cn") is not None  # a pattern
    assert rules.blocked_reason("phone", "+8613800000000") == "blocked value"
    assert rules.blocked_reason("email", "li.na@163.com") is None
    assert rules.priority("user_id") < rules.priority("anonymous_id")
    assert parse(default_document()).version == rules.version  # same document, same version


@pytest.mark.parametrize(
    ("where", "value", "path", "words"),
    [
        ("types.phone.kind", "telephone", ("types", "phone", "kind"), "unknown kind"),
        ("types.email.limit", 0, ("types", "email", "limit"), "greater than"),
        ("types.email.colour", "red", ("types", "email", "colour"), "not permitted"),
        ("aliases.mobile", "telephone", ("aliases", "mobile"), "unknown type"),
        ("blocked_patterns.email", ["(unclosed"], ("blocked_patterns",), "regular expression"),
        ("golden.fields.name", {"rule": "loudest"}, ("golden", "fields", "name", "rule"), "most_"),
        ("normalize.default_region", "china", ("normalize", "default_region"), "pattern"),
    ],
)
def test_a_bad_document_names_the_path_of_each_mistake(
    where: str, value: object, path: tuple[str, ...], words: str
) -> None:
    document = default_document()
    *parents, last = where.split(".")
    target = document
    for key in parents:
        target = target[key]  # type: ignore[assignment,index]
    target[last] = value  # type: ignore[index]
    with pytest.raises(ValidationFailed) as exc:
        parse(document)
    found = paths(exc)
    assert path in found, found
    assert words in found[path]


def test_yaml_that_is_not_yaml_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        load_yaml("types: [unclosed")


def test_stored_rules_are_in_force_and_versioned(session: Session, ctx: Context) -> None:
    document = default_document()
    document["types"]["phone"]["limit"] = 2  # type: ignore[index]
    stored = service.set_rules(session, ctx, document)
    assert service.active_rules(session).limit("phone") == 2
    assert stored.version != DEFAULT_RULES.version
    assert service.rules_document(session, ctx)["types"]["phone"]["limit"] == 2  # type: ignore[index]
    [entry] = audit.list_entries(session, ctx, action="identity.rules_set").items
    assert entry.object_type == "identity_ruleset" and entry.detail == {"version": stored.version}


def test_rules_set_refuses_a_bad_file_and_stores_a_good_one(
    db_url: str, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONELOOP_DATABASE_URL", db_url)
    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("types:\n  phone: {kind: telephone}\n", encoding="utf-8")
    refused = runner.invoke(app, ["identity", "rules", "set", str(bad)])
    assert refused.exit_code != 0 and "types.phone.kind" in refused.output.replace("/", ".")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(default_document(), allow_unicode=True), encoding="utf-8")
    stored = runner.invoke(app, ["identity", "rules", "set", str(good)])
    assert stored.exit_code == 0 and DEFAULT_RULES.version in stored.output


def test_rebuild_applies_new_rules_to_the_past(session: Session, ctx: Context) -> None:
    """A steward lowers the e-mail limit and blocks the office switchboard: rebuild splits
    the profiles that now break the rules, records why, and keeps the surviving ids."""
    run(
        session,
        [
            ev(1, ("user_id", "u1"), ("email", "a@x.cn"), ("email", "b@x.cn")),
            ev(2, ("crm_id", "C1"), ("phone", "021-6888 0000"), ("email", "c@x.cn")),
            ev(3, ("crm_id", "C1"), ("anonymous_id", "a9")),
        ],
    )
    user = profile_of(session, "user_id", "u1")
    session.commit()
    document = default_document()
    document["types"]["email"]["limit"] = 1  # type: ignore[index]
    document["blocked"]["phone"].append("+86 21 6888 0000")  # type: ignore[index]
    service.set_rules(session, ctx, document)
    out = service.rebuild(session, ctx)
    assert out.splits >= 2
    assert profile_of(session, "user_id", "u1") == user
    assert profile_of(session, "email", "a@x.cn") != profile_of(session, "email", "b@x.cn")
    assert profile_of(session, "phone", "+862168880000") != profile_of(session, "crm_id", "C1")
    assert profile_of(session, "anonymous_id", "a9") == profile_of(session, "crm_id", "C1")
    history = service.explain(session, ctx, user).history
    assert any(m.kind == "split" and "applied by" in m.rule for m in history)
    again = service.rebuild(session, ctx)
    assert (again.merges, again.splits) == (0, 0)
