"""The OpenAPI document of ``/api/v1``, served at ``/api/v1/openapi.json`` with interactive
docs at ``/api/v1/docs`` (Swagger UI) and ``/api/v1/redoc``; the old ``/openapi.json``,
``/docs`` and ``/redoc`` redirect there, so bookmarks and generated clients keep working.

FastAPI documents the success answers from the routes' return types. What no route states,
the error contract, is added here once (issue 8): every ``/api/v1`` operation lists the
problem+json answers it can give, with the ``Problem`` shape from ``oneloop.api.errors``,
instead of FastAPI's default 422 body, which this API never sends. A page of a list is named
after what it lists (``SegmentPage``), not as pydantic spells a generic (``Page_Segment_``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from oneloop.api.errors import PROBLEM_JSON

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
REDOC_URL = "/api/v1/redoc"
OLD_URLS = {"/openapi.json": OPENAPI_URL, "/docs": DOCS_URL, "/redoc": REDOC_URL}
API_PREFIX = "/api/v1/"
MUTATING = ("post", "put", "patch", "delete")
REF_PREFIX = "#/components/schemas/"
# pydantic names a component of ``Page[Segment]`` after the generic and its argument
GENERIC_PAGE = re.compile(r"Page_\w+_")


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    type: str = Field(examples=["/problems/not-found"], description="/problems/<code>")
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no segment with id '01J…'"], description="what to do")
    instance: str = Field(examples=["/api/v1/segments/01J…"], description="the request's path")


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "rule", "and", 1, "op"]])
    path: str = Field(examples=["body.rule.and[1].op"])
    msg: str = Field(examples=["not one of eq, ne, gt, gte, lt, lte, in"])


class ValidationProblem(Problem):
    errors: list[FieldProblem] = Field(description="each bad field, by path")


ERRORS: dict[int, tuple[str, str]] = {
    401: ("Problem", "not signed in, or the API key or token is unknown, expired or revoked"),
    403: ("Problem", "you may not do this (a permission, or a missing X-CSRF-Token)"),
    404: ("Problem", "no such object, or it belongs to a unit you cannot see"),
    409: ("Problem", "it conflicts with the current state, or an Idempotency-Key is in use"),
    412: ("Problem", "If-Match names a version the object no longer has"),
    422: ("ValidationProblem", "a bad field, named in errors (or a reused Idempotency-Key)"),
    428: ("Problem", "If-Match is required (ONELOOP_REQUIRE_IF_MATCH)"),
    429: ("Problem", "too many requests; retry after Retry-After seconds"),
    503: ("Problem", "temporarily unavailable; retry after Retry-After seconds"),
}


def _errors_of(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    names = {p.get("name") for p in operation.get("parameters", [])}
    statuses = [401, 403, 422, 429, 503]
    if "{" in path:
        statuses.append(404)
    if method in MUTATING:
        statuses.append(409)
    if "If-Match" in names:
        statuses += [412, 428]
    return sorted(statuses)


def document(app: FastAPI) -> dict[str, Any]:  # Any: the OpenAPI document, JSON
    """The schema FastAPI builds, with the problem answers added; built once, then cached."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, FieldProblem, ValidationProblem):
        components[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components[model.__name__].pop("$defs", None)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)  # FastAPI's 422 shape: this API answers problem+json
    _name_pages(schema, components)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            wanted = _errors_of(path, method, operation) if path.startswith(API_PREFIX) else []
            if "422" in responses:
                wanted.append(422)
            for status in wanted:
                shape, description = ERRORS[status]
                answer = responses.get(str(status), {})
                responses[str(status)] = {
                    "description": answer.get("description") or description,
                    "content": {
                        PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{shape}"}}
                    },
                }
    app.openapi_schema = schema
    return schema


def _name_pages(schema: dict[str, Any], components: dict[str, Any]) -> None:
    """Rename each ``Page_X_`` component to its model's own name, ``XPage`` (the title
    ``Page.model_parametrized_name`` gives it), unless another model has that name."""
    renamed: dict[str, str] = {}
    for name, component in list(components.items()):
        title = component.get("title")
        if GENERIC_PAGE.fullmatch(name) and isinstance(title, str) and title not in components:
            components[title] = components.pop(name)
            renamed[f"{REF_PREFIX}{name}"] = f"{REF_PREFIX}{title}"
    if not renamed:
        return
    ordered = dict(sorted(components.items()))
    components.clear()
    components.update(ordered)

    def point(node: Any) -> None:  # Any: a JSON node of the document
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref in renamed:
                node["$ref"] = renamed[ref]
            for value in node.values():
                point(value)
        elif isinstance(node, list):
            for value in node:
                point(value)

    point(schema)


def install(app: FastAPI) -> None:
    """Use this document for the app, and send the old addresses to the new ones."""
    app.openapi = lambda: document(app)  # type: ignore[method-assign]  # FastAPI's documented hook

    for old, new in OLD_URLS.items():
        app.add_api_route(old, _redirect(new), methods=["GET"], include_in_schema=False)


def _redirect(target: str) -> Callable[[], RedirectResponse]:
    """A fixed target, never one read from the request: no open redirect."""

    def moved() -> RedirectResponse:
        return RedirectResponse(target, status_code=308)

    return moved
