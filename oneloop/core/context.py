"""The tenancy context every service function takes explicitly.

It names who acts (user), for which business unit, with which permissions, under which request
id, by which clock. Services put ``bu_id == ctx.bu_id`` into their queries, so a forgotten check
cannot leak another BU's rows. Group HQ acts with ``bu_id`` of the group and ``is_group_wide``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oneloop.core.clock import Clock, SystemClock
from oneloop.core.errors import Forbidden
from oneloop.core.ids import BusinessUnitId, UserId, new_id

SYSTEM_USER = UserId("system")
ALL_PERMISSIONS = "*"


@dataclass(frozen=True)
class Context:
    bu_id: BusinessUnitId | None
    user_id: UserId
    permissions: frozenset[str] = frozenset()
    is_group_wide: bool = False
    request_id: str = field(default_factory=new_id)
    clock: Clock = field(default_factory=SystemClock)
    # Where the act comes from, for the audit log: "cli", "api 10.0.0.7", "worker".
    origin: str | None = None

    def can(self, permission: str) -> bool:
        return ALL_PERMISSIONS in self.permissions or permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise Forbidden(
                f"this action needs the permission {permission!r}", permission=permission
            )


def system_context(clock: Clock | None = None, bu_id: BusinessUnitId | None = None) -> Context:
    """The context of the platform itself (CLI admin commands, migrations, demo load): all
    permissions, group-wide. Its acts are still attributed, to the user ``system``."""
    return Context(
        bu_id=bu_id,
        user_id=SYSTEM_USER,
        permissions=frozenset({ALL_PERMISSIONS}),
        is_group_wide=True,
        clock=clock or SystemClock(),
    )
