"""The one error hierarchy of OneLoop.

Policy: services raise these, never HTTP exceptions; each carries a stable ``code`` (the last
part of the problem ``type``), a human ``title``, a specific ``detail`` that says what to do,
and context keywords (ids, field paths) that are safe to show to the caller. The HTTP layer
(``oneloop/api/errors.py``) maps them to RFC 9457 problem+json once; the CLI prints them and
exits 1. Anything that is not a ``OneLoopError`` is a bug: logged with its stack, answered as a
plain 500 without one.

Another business unit's record is ``NotFound``, never ``Forbidden``: we do not confirm it exists.
A temporary condition (database locked, overload) is ``Unavailable`` or ``RateLimited`` with a
retry hint, never a 4xx that a tracking SDK would treat as final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from pydantic import ValidationError as PydanticError


@dataclass(frozen=True)
class FieldError:
    """One bad field: ``loc`` is the path from the document root, e.g. ``("batch", 3, "type")``."""

    loc: tuple[str | int, ...]
    msg: str

    @property
    def path(self) -> str:
        """A JSON-path-like rendering: ``batch[3].type``."""
        out = ""
        for part in self.loc:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out


class OneLoopError(Exception):
    code: ClassVar[str] = "error"
    title: ClassVar[str] = "OneLoop error"

    def __init__(self, detail: str, **context: str | int | float | bool | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context


class NotFound(OneLoopError):
    code = "not-found"
    title = "Not found"


class Conflict(OneLoopError):
    code = "conflict"
    title = "Conflict"


class ValidationFailed(OneLoopError):
    code = "validation-failed"
    title = "Validation failed"

    def __init__(
        self,
        detail: str,
        errors: list[FieldError] | None = None,
        **context: str | int | float | bool | None,
    ) -> None:
        super().__init__(detail, **context)
        self.errors = errors or []

    @classmethod
    def from_pydantic(cls, exc: PydanticError, detail: str) -> ValidationFailed:
        """A pydantic model's refusal of a document, each error at its path."""
        return cls(detail, [FieldError(tuple(e["loc"]), e["msg"]) for e in exc.errors()])


class InvalidPayload(ValidationFailed):
    """A received document that is not acceptable as sent (HTTP 400, which tracking SDKs treat
    as final): what was refused is kept as a dead letter, so the caller is told, not retried."""

    code = "invalid-payload"
    title = "Invalid payload"


class PreconditionFailed(OneLoopError):
    """A change was made against a version the object no longer has (``If-Match``): someone
    changed it since the caller read it. Read it again, then decide."""

    code = "precondition-failed"
    title = "Precondition failed"


class PreconditionRequired(OneLoopError):
    """A change came without the version it was made against, where one is required."""

    code = "precondition-required"
    title = "Precondition required"


class PayloadTooLarge(OneLoopError):
    code = "payload-too-large"
    title = "Payload too large"


class Unauthenticated(OneLoopError):
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(OneLoopError):
    code = "forbidden"
    title = "Forbidden"


class Retryable(OneLoopError):
    """Temporary: the caller should try again after ``retry_after`` seconds."""

    def __init__(
        self, detail: str, retry_after: int = 1, **context: str | int | float | bool | None
    ) -> None:
        super().__init__(detail, **context)
        self.retry_after = retry_after


class RateLimited(Retryable):
    code = "rate-limited"
    title = "Too many requests"


class Unavailable(Retryable):
    """A temporary failure the caller should retry: the database is locked, down or migrating."""

    code = "unavailable"
    title = "Service temporarily unavailable"
