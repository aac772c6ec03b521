"""The app tries routers in turn, busiest first (``api_routers``): that is safe only while no
path of one router can be taken by a route of another, which is what this checks."""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.routing import compile_path

from oneloop.api.app import api_routers
from oneloop.web.pages import ROUTERS as CONSOLE

PARAM = re.compile(r"\{[^}]+\}")


def _paths(router: APIRouter) -> list[str]:
    return [str(getattr(r, "path", "")) for r in router.routes]  # the prefix is in each path


def test_no_path_of_one_router_is_taken_by_another() -> None:
    routers = [*api_routers(), *CONSOLE]
    taken = []
    for i, router in enumerate(routers):
        for j, other in enumerate(routers):
            if i == j:
                continue
            for template in _paths(router):
                pattern = compile_path(template)[0]
                for path in _paths(other):
                    if pattern.match(PARAM.sub("p1", path)):
                        taken.append((template, path))
    assert taken == []


def test_the_check_sees_a_clash() -> None:
    pattern = compile_path("/api/v1/profiles/{profile_id}")[0]
    assert pattern.match(PARAM.sub("p1", "/api/v1/profiles/search"))
