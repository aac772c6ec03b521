"""The console's navigation, declared once: a page appears in the menu only for users whose
permissions allow it (the page itself still checks, through its services).

To add a page to the menu, add one ``NavItem``; its label is an English message id that
``babel.cfg`` extracts (``N_`` marks it) and the template translates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from oneloop.web.viewer import Viewer


def N_(message: str) -> str:  # noqa: N802  (gettext's conventional name, which Babel extracts)
    """Marks a message id for extraction; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    permission: str | None = None
    # Other pages this entry stands for (it is the current one there too).
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class NavLink:
    path: str
    label: str
    is_current: bool


NAV: tuple[NavItem, ...] = (
    NavItem("/", N_("Dashboard")),
    NavItem("/customers", N_("Customers"), "profiles.read"),
    NavItem("/segments", N_("Segments"), "segments.read"),
    NavItem("/sources", N_("Sources"), "collect.source.read"),
    NavItem("/sales", N_("Sales"), "sales.lead.read"),
    # One entry for the sales set-up (settings, teams, routing table: tabs of their own), so
    # the menu still fits a desktop's bar.
    NavItem(
        "/sales/settings",
        N_("Sales setup"),
        "sales.config.manage",
        also=("/sales/teams", "/sales/routing"),
    ),
    NavItem("/reports/sales", N_("Sales reports"), "sales.report.read"),
    NavItem("/identity/reviews", N_("Identity review"), "identity.match"),
    NavItem("/privacy", N_("Privacy requests"), "privacy.manage"),
    NavItem("/users", N_("Users"), "governance.user.read"),
    NavItem("/dictionary", N_("Data dictionary"), "dictionary.manage"),
    NavItem("/audit", N_("Audit log"), "governance.audit.read"),
)


def nav_for(viewer: Viewer | None, current_path: str) -> list[NavLink]:
    """The viewer's menu. The current entry is the one with the longest path the page is
    under (``/sales/teams`` is "Sales setup", not "Sales" as well)."""
    if viewer is None:
        return []
    shown = [i for i in NAV if i.permission is None or viewer.can(i.permission)]
    current, longest = None, 0
    for item in shown:
        for path in (item.path, *item.also):
            if _is_under(current_path, path) and len(path) > longest:
                current, longest = item.path, len(path)
    return [NavLink(i.path, i.label, i.path == current) for i in shown]


def _is_under(path: str, prefix: str) -> bool:
    if prefix == "/":
        return path == "/"
    return path == prefix or path.startswith(prefix + "/")
