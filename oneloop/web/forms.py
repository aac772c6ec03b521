"""HTML forms: read into the same pydantic shapes the REST API takes, and errors shown beside
the field they name.

A page parses a form with ``parse_form`` (a pydantic error becomes the domain's
``ValidationFailed``), calls the service, and on ``ValidationFailed`` renders the form again
with ``FormErrors.of(exc)``: the domain names bad fields by path (``FieldError.loc``), the
template's ``field`` macro looks its own name up. ``aliases`` maps a domain path onto the
form's field name when they differ (the service's ``value`` is the search form's ``q``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.web.nav import N_

M = TypeVar("M", bound=BaseModel)

# pydantic's error types a form shows in the reader's language; others show pydantic's text.
MESSAGES: dict[str, str] = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "string_too_long": N_("This is too long."),
    "extra_forbidden": N_("This field is not expected here."),
}


@dataclass
class FormErrors:
    """Messages by field name; ``general`` holds what names no field of the form."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def get(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    @classmethod
    def of(
        cls, exc: ValidationFailed, names: set[str], aliases: Mapping[str, str] | None = None
    ) -> FormErrors:
        """The error's field errors placed on the form's fields ``names``; an error that names
        none of them, or none at all, is shown above the form with the error's detail."""
        found = cls()
        for error in exc.errors:
            path = (aliases or {}).get(error.path, error.path)
            if path in names:
                found.fields.setdefault(path, []).append(error.msg)
            else:
                found.general.append(error.msg)
        if not exc.errors:
            found.general.append(exc.detail)
        return found


def parse_form(model: type[M], data: Mapping[str, object]) -> M:
    """``model`` from a form's fields; an empty field counts as left out."""
    values = {k: v for k, v in data.items() if v != ""}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = [
            FieldError(
                tuple(str(p) if not isinstance(p, int) else p for p in e["loc"]),
                MESSAGES.get(e["type"], e["msg"]),
            )
            for e in exc.errors()
        ]
        raise ValidationFailed("the form has errors", errors) from exc


def local_path(target: str | None, default: str = "/") -> str:
    """A redirect target that stays on this site: a path, never ``//host`` or a URL."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
