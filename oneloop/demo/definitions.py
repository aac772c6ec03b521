"""The demo group's tags, computed traits, score models and segments (``definitions.yaml``),
installed through the same service functions the API and the CLI call.

They are installed before the demo's events are loaded, so the live pipeline computes every
trait, score, tag and membership as the events flow in, as it would for a real group. A second
install finds everything in place and adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.errors import Conflict
from oneloop.profiles import score_models, service, trait_defs
from oneloop.profiles.schemas import TagCategoryIn, TagIn
from oneloop.segments import service as segments
from oneloop.segments.schemas import SegmentIn


@dataclass
class Installed:
    created: int = 0
    existing: int = 0


def document() -> dict[str, Any]:  # Any: the YAML document
    text = resources.files("oneloop.demo").joinpath("definitions.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def install(session: Session, ctx: Context) -> Installed:
    doc = document()
    done = Installed()
    steps: list[tuple[str, Any]] = [
        *(("category", item) for item in doc["tag_categories"]),
        *(("tag", item) for item in doc["tags"]),
        *(("trait", item) for item in doc["traits"]),
        *(("score", item) for item in doc["score_models"]),
        *(("segment", item) for item in doc["segments"]),
    ]
    for kind, item in steps:
        item = dict(item)
        bu = item.pop("bu", None)
        try:
            with session.begin_nested():
                _create(session, ctx, kind, item, bu)
            done.created += 1
        except Conflict:
            done.existing += 1
    return done


def _create(
    session: Session, ctx: Context, kind: str, item: dict[str, Any], bu: str | None
) -> None:
    if kind == "category":
        service.create_category(session, ctx, TagCategoryIn(**item, bu=bu))
    elif kind == "tag":
        service.create_tag(session, ctx, TagIn(**item, bu=bu))
    elif kind == "trait":
        trait_defs.create_trait(session, ctx, item, bu=bu)
    elif kind == "score":
        score_models.create_model(session, ctx, item, bu=bu)
    else:
        segments.create_segment(session, ctx, SegmentIn(**item, bu=bu))
