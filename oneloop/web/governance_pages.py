"""What the governance pages (users and roles, privacy requests, the data dictionary) share:
turning a service's refusal of a form into errors beside its fields with the status the
service meant, and the confirmation page every destructive action goes through.

The pages themselves live by concept in ``users_pages``, ``privacy_pages`` and
``dictionary_pages``; each is one router in ``pages.ROUTERS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from oneloop.core.errors import Conflict, Forbidden, OneLoopError, ValidationFailed
from oneloop.web.forms import FormErrors
from oneloop.web.templating import render
from oneloop.web.viewer import Viewer

# What a form answers when the service refuses it (docs/console.md: "status codes tell the
# truth"); anything else is not the form's fault and goes to the error page.
FORM_STATUS: dict[type[OneLoopError], int] = {ValidationFailed: 422, Conflict: 409, Forbidden: 403}
REFUSALS = (ValidationFailed, Conflict, Forbidden)


def refusal(
    exc: OneLoopError,
    names: set[str],
    *,
    aliases: Mapping[str, str] | None = None,
    messages: Mapping[str, str] | None = None,
) -> tuple[FormErrors, int]:
    """The errors to show and the status to answer with. A conflict or a refusal that names
    a field (``field="email"`` in its context) is shown beside it; ``messages`` replaces a
    field's service text with a message id the reader's language has."""
    status = next((FORM_STATUS[c] for c in type(exc).__mro__ if c in FORM_STATUS), 422)
    if isinstance(exc, ValidationFailed):
        return FormErrors.of(exc, names, aliases=aliases), status
    field = exc.context.get("field")
    field = (aliases or {}).get(str(field), field)
    text = (messages or {}).get(str(field), exc.detail)
    if isinstance(field, str) and field in names:
        return FormErrors(fields={field: [text]}), status
    return FormErrors(general=[text]), status


@dataclass(frozen=True)
class Confirmation:
    """What ``confirm.html`` asks: message ids for the title, message and button (the
    message's placeholders filled from ``args``), where the form posts and where cancel goes;
    ``reason_label`` asks for a reason too."""

    title: str
    message: str
    action: str
    cancel: str
    button: str
    args: Mapping[str, object]
    reason_label: str | None = None


def confirm_page(
    request: Request,
    viewer: Viewer,
    asked: Confirmation,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "confirm.html",
        {
            "title": asked.title,
            "message": asked.message,
            "message_args": dict(asked.args),
            "action": asked.action,
            "cancel": asked.cancel,
            "button": asked.button,
            "reason_label": asked.reason_label,
            "errors": errors or FormErrors(),
        },
        viewer=viewer,
        status_code=status_code,
    )
