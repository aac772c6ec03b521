"""The fictional group the demo is about, shared by the generator and the loader.

Kept as data in one place so that `demo generate` and `demo load` cannot disagree on which
business units exist.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoUnit:
    code: str
    name_zh: str
    name_en: str
    kind: str
    parent: str | None


GROUP = DemoUnit(
    code="galaxy",
    name_zh="星河集团",
    name_en="Galaxy Group",
    kind="group",
    parent=None,
)

UNITS: tuple[DemoUnit, ...] = (
    DemoUnit(
        code="appliances",
        name_zh="消费电器事业部",
        name_en="Consumer Appliances",
        kind="b2c",
        parent=GROUP.code,
    ),
    DemoUnit(
        code="industrial",
        name_zh="工业设备事业部",
        name_en="Industrial Equipment",
        kind="b2b",
        parent=GROUP.code,
    ),
    DemoUnit(
        code="service",
        name_zh="售后服务事业部",
        name_en="After-sales Service",
        kind="service",
        parent=GROUP.code,
    ),
)
