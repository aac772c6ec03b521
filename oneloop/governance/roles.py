"""What each role may do: the permission catalogue and the built-in roles, as a matrix.

A permission is the name a service function checks (``ctx.require("segments.manage")``);
every name a service checks is in ``PERMISSIONS`` (a test reads the source to hold us to it).
Roles say which permissions, memberships say where: the same role in the group (HQ) acts
across every unit, in a unit only there. Admins extend the matrix with custom roles
(``governance_role``); the built-in ones live here, so a permission added by a release
reaches them without a migration.
"""

from __future__ import annotations

from dataclasses import dataclass

from oneloop.core.context import ALL_PERMISSIONS

# Reading unmasked personal information. Spelt as the governance issue names it, so that
# it stands out from the domain permissions in a role's list and in an API key's scopes.
PII_READ = "pii:read"

# name -> (中文, English)
PERMISSIONS: dict[str, tuple[str, str]] = {
    "collect.source.read": ("查看数据源", "see sources, their health and dead letters"),
    "collect.source.manage": (
        "管理数据源",
        "create, change and delete sources; rotate write keys; replay dead letters",
    ),
    "collect.plan.read": ("查看追踪计划", "see tracking plans and violations"),
    "collect.plan.manage": ("管理追踪计划", "create, change and delete tracking plans"),
    "identity.read": ("查看身份图谱", "see identity graphs, merge history and the review queue"),
    "identity.match": ("身份匹配与审核", "run probabilistic matching and review its pairs"),
    "identity.rules.write": ("修改身份规则", "change identity limits, priorities, blocked values"),
    "identity.unmerge": ("拆分与固定", "unmerge profiles and pin do-not-merge pairs"),
    "profiles.read": ("查看客户", "see profiles, timelines, traits, tags and scores"),
    "profiles.tag": ("打标签", "set and remove manual tags"),
    "profiles.admin": (
        "管理画像定义",
        "define computed traits, tag categories, rule tags and score models",
    ),
    "segments.read": ("查看人群", "see segments, their members and history"),
    "segments.manage": ("管理人群", "create, change, evaluate and delete segments"),
    "segments.export": ("导出人群", "export segment members as CSV"),
    "consent.read": ("查看授权", "see consent by purpose and channel, and its history"),
    "consent.manage": ("管理授权", "record consent and withdrawals on a customer's behalf"),
    "privacy.manage": ("隐私请求", "handle access, erasure and objection requests"),
    "dictionary.manage": ("管理数据字典", "define fields and metrics in the data dictionary"),
    "sales.lead.read": ("查看线索", "see your own leads and the pool"),
    "sales.lead.read_all": ("查看全部线索", "see every lead of the unit"),
    "sales.lead.work": ("跟进线索", "claim and return leads; record contact, qualification"),
    "sales.lead.manage": (
        "管理线索",
        "create, reassign and recall leads; convert and close opportunities of any rep",
    ),
    "sales.config.manage": (
        "管理销售配置",
        "lead triggers, SLA and calendar, teams and reps, routing tables",
    ),
    "sales.report.read": ("查看销售报表", "see the lead funnel and the hand-off report"),
    PII_READ: ("查看明文个人信息", "read personal information unmasked (audited)"),
    "governance.audit.read": ("查看审计日志", "search and verify the audit log"),
    "governance.bu.read": ("查看事业部", "see business units"),
    "governance.bu.create": ("创建事业部", "create business units"),
    "governance.bu.update": ("修改事业部", "change a unit's names and time zone"),
    "governance.user.read": ("查看用户", "see users, their roles and API keys"),
    "governance.user.manage": (
        "管理用户",
        "create users, grant and revoke roles, unlock, deactivate, revoke API keys",
    ),
    "governance.role.manage": ("管理角色", "create, change and delete custom roles"),
    "governance.sharing.manage": (
        "管理数据共享",
        "let another unit read some of your unit's traits, tags, scores or events",
    ),
}

_MARKETING = {
    "collect.source.read",
    "collect.plan.read",
    "identity.read",
    "profiles.read",
    "profiles.tag",
    "segments.read",
    "segments.manage",
    "segments.export",
    "consent.read",
    "governance.bu.read",
}
_LEADS = {"sales.lead.read", "sales.lead.work"}
_SALES_MANAGER = _LEADS | {
    "sales.lead.read_all",
    "sales.lead.manage",
    "sales.config.manage",
    "sales.report.read",
}
# The 360 view shows a customer's identifiers and golden record (identity's), so whoever
# reads profiles reads identity too.
_SALES = {
    "profiles.read",
    "identity.read",
    "profiles.tag",
    "segments.read",
    "consent.read",
    "governance.bu.read",
}


@dataclass(frozen=True)
class BuiltinRole:
    code: str
    name_zh: str
    name_en: str
    permissions: frozenset[str]
    # Only meaningful in the group (HQ): granting it in a unit is refused.
    group_only: bool = False


BUILTIN_ROLES: dict[str, BuiltinRole] = {
    r.code: r
    for r in (
        BuiltinRole("group_admin", "集团管理员", "Group admin", frozenset({ALL_PERMISSIONS}), True),
        BuiltinRole(
            "bu_admin",
            "事业部管理员",
            "BU admin",
            frozenset(PERMISSIONS)
            - {"governance.bu.create", "governance.role.manage", "dictionary.manage"},
        ),
        BuiltinRole(
            "marketer", "市场专员", "Marketer", frozenset(_MARKETING | {"sales.report.read"})
        ),
        BuiltinRole(
            "sales_manager",
            "销售经理",
            "Sales manager",
            frozenset(
                _SALES | _SALES_MANAGER | {"segments.export", PII_READ, "governance.user.read"}
            ),
        ),
        BuiltinRole("sales_rep", "销售代表", "Sales rep", frozenset(_SALES | _LEADS | {PII_READ})),
        BuiltinRole(
            "service_agent",
            "客服专员",
            "Service agent",
            frozenset(_SALES | {PII_READ, "consent.manage"}),
        ),
        BuiltinRole(
            "analyst",
            "数据分析师",
            "Analyst",
            frozenset(_MARKETING - {"profiles.tag", "segments.export"} | {"sales.report.read"}),
        ),
        BuiltinRole(
            "compliance_officer",
            "合规官",
            "Compliance officer",
            frozenset(
                {
                    "governance.audit.read",
                    "governance.bu.read",
                    "governance.user.read",
                    "identity.read",
                    "profiles.read",
                    "consent.read",
                    "consent.manage",
                    "privacy.manage",
                    "dictionary.manage",
                    PII_READ,
                }
            ),
        ),
    )
}


def unknown_permissions(names: set[str] | frozenset[str]) -> list[str]:
    """The names that are not permissions: a custom role or an API key scope with a typo
    would otherwise grant nothing, silently."""
    return sorted(n for n in names if n not in PERMISSIONS and n != ALL_PERMISSIONS)


def expand(permissions: frozenset[str]) -> frozenset[str]:
    """Every permission ``permissions`` stands for: ``*`` is all of them."""
    return frozenset(PERMISSIONS) if ALL_PERMISSIONS in permissions else permissions
