"""The role matrix holds together: every permission a service checks is in the catalogue
(else no role could ever be given it), and the built-in roles are what the issue names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import oneloop
from oneloop.core.context import ALL_PERMISSIONS
from oneloop.governance.roles import BUILTIN_ROLES, PERMISSIONS, PII_READ

PACKAGE = Path(oneloop.__file__).parent


def checked_permissions() -> dict[str, set[str]]:
    """Every permission name passed to ``.require(…)`` or ``.can(…)`` in the package, by the
    module that checks it."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module_name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"require", "can"}
                and node.args
            ):
                continue
            name = _constant(node.args[0], module_name)
            if name is None:
                continue  # a parameter: its callers pass a constant, found where they do
            found.setdefault(name, set()).add(module_name)
    return found


def _constant(arg: ast.expr, module_name: str) -> str | None:
    """A literal, a module constant (``READ``) or a constant of an imported module
    (``audit.READ_PERMISSION``); None for anything else."""
    if isinstance(arg, ast.Constant):
        return arg.value if isinstance(arg.value, str) else None
    module = importlib.import_module(module_name)
    if isinstance(arg, ast.Name):
        value = getattr(module, arg.id, None)
    elif isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name):
        value = getattr(getattr(module, arg.value.id, None), arg.attr, None)
    else:
        return None
    return value if isinstance(value, str) else None


def test_every_checked_permission_is_in_the_catalogue() -> None:
    checked = checked_permissions()
    assert len(checked) >= 20  # the scan finds the services' checks
    unknown = {name: sorted(where) for name, where in checked.items() if name not in PERMISSIONS}
    assert unknown == {}


def test_the_built_in_roles_are_the_issues() -> None:
    assert sorted(BUILTIN_ROLES) == sorted(
        [
            "group_admin",
            "bu_admin",
            "marketer",
            "sales_manager",
            "sales_rep",
            "service_agent",
            "analyst",
            "compliance_officer",
        ]
    )
    for role in BUILTIN_ROLES.values():
        assert role.permissions <= set(PERMISSIONS) | {ALL_PERMISSIONS}, role.code
    assert [r.code for r in BUILTIN_ROLES.values() if r.group_only] == ["group_admin"]
    # Masking is the default: the roles that do not talk to customers see masked values.
    assert PII_READ not in BUILTIN_ROLES["marketer"].permissions
    assert PII_READ not in BUILTIN_ROLES["analyst"].permissions
    assert "governance.audit.read" in BUILTIN_ROLES["compliance_officer"].permissions
