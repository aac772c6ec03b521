"""The data dictionary: every field and metric with what it means and how personal it is
(``pii``, ``sensitive_pii``: what masking follows), and editing an entry.

Every signed-in user reads the dictionary (a definition is about no one); an entry changes
with ``dictionary.manage`` (compliance officers), the group's entries by the group and a
unit's by that unit, as ``governance.dictionary`` decides. Each change is a new version kept
with why; the entry page shows them. The form edits what a person decides about an entry;
its kind, owner and lineage are kept as they are (the API and CLI change those).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.governance import dictionary
from oneloop.governance.dictionary_schemas import (
    CLASSIFICATIONS,
    ENTRY_KINDS,
    Entry,
    EntryIn,
)
from oneloop.governance.masking import PII_KINDS
from oneloop.web.forms import FormErrors, parse_form
from oneloop.web.governance_pages import REFUSALS, refusal
from oneloop.web.nav import N_
from oneloop.web.paging import cursor_pager
from oneloop.web.templating import page_lang, render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

PAGE = 50
DATA_TYPES: tuple[tuple[str, str], ...] = (
    ("string", N_("text")),
    ("integer", N_("whole number")),
    ("number", N_("number")),
    ("boolean", N_("yes or no")),
    ("date", N_("date")),
    ("datetime", N_("date and time")),
    ("money", N_("money")),
    ("percent", N_("percentage")),
    ("object", N_("object")),
)
TAX: tuple[tuple[str, str], ...] = (("true", N_("tax included")), ("false", N_("tax excluded")))
FIELDS = {
    "name_zh",
    "name_en",
    "description_zh",
    "description_en",
    "data_type",
    "unit",
    "currency",
    "includes_tax",
    "classification",
    "pii_kind",
    "note",
}
Text = Annotated[str, Query(max_length=100)]
Short = Annotated[str, Form(max_length=600)]
Long = Annotated[str, Form(max_length=8000)]


def _labels(table: dict[str, tuple[str, str]], lang: str) -> list[tuple[str, str]]:
    """A service's (中文, English) labels as select options in the reader's language."""
    pick = 0 if lang == "zh-CN" else 1
    return [(value, names[pick]) for value, names in table.items()]


@router.get("/dictionary", response_class=HTMLResponse)
def dictionary_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    kind: Text = "",
    classification: Text = "",
    cursor: Text = "",
) -> Response:
    lang = page_lang(request)
    found = dictionary.list_entries(
        session,
        viewer.ctx,
        kind=kind if kind in ENTRY_KINDS else None,
        classification=classification if classification in CLASSIFICATIONS else None,
        cursor=cursor or None,
        limit=PAGE,
    )
    return render(
        request,
        "governance/dictionary.html",
        {
            "entries": found.items,
            "pager": cursor_pager(request.url, found.next_cursor),
            "kind": kind,
            "classification": classification,
            "kinds": _labels(ENTRY_KINDS, lang),
            "classifications": _labels(CLASSIFICATIONS, lang),
            "editable": {e.key for e in found.items if _may_edit(viewer, e)},
        },
        viewer=viewer,
    )


def _may_edit(viewer: Viewer, entry: Entry) -> bool:
    """What the service would allow, to offer the link only where it leads somewhere."""
    if not viewer.can(dictionary.MANAGE):
        return False
    return viewer.ctx.is_group_wide or entry.owner_bu == viewer.unit.code


def _entry_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    entry: Entry,
    values: dict[str, str],
    errors: FormErrors,
    status_code: int,
) -> Response:
    lang = page_lang(request)
    return render(
        request,
        "governance/dictionary_entry.html",
        {
            "entry": entry,
            "versions": dictionary.list_versions(session, viewer.ctx, entry.key),
            "may_edit": _may_edit(viewer, entry),
            "values": values,
            "errors": errors,
            "data_types": DATA_TYPES,
            "classifications": _labels(CLASSIFICATIONS, lang),
            "pii_kinds": _labels(PII_KINDS, lang),
            "tax": TAX,
        },
        viewer=viewer,
        status_code=status_code,
    )


def _values_of(entry: Entry) -> dict[str, str]:
    """The entry as the form shows it: every value a string, none as empty."""
    values = {name: getattr(entry, name) for name in FIELDS - {"note"}}
    shown = {k: "" if v is None else str(v) for k, v in values.items()}
    if entry.includes_tax is not None:
        shown["includes_tax"] = "true" if entry.includes_tax else "false"
    return shown


@router.get("/dictionary/{key}", response_class=HTMLResponse)
def entry_page(request: Request, key: str, viewer: ViewerDep, session: SessionDep) -> Response:
    entry = dictionary.get_entry(session, viewer.ctx, key)
    return _entry_page(request, session, viewer, entry, _values_of(entry), FormErrors(), 200)


@router.post("/dictionary/{key}", response_class=HTMLResponse)
def edit_entry(
    request: Request,
    key: str,
    viewer: ViewerDep,
    session: SessionDep,
    name_zh: Short = "",
    name_en: Short = "",
    description_zh: Long = "",
    description_en: Long = "",
    data_type: Short = "",
    unit: Short = "",
    currency: Short = "",
    includes_tax: Short = "",
    classification: Short = "",
    pii_kind: Short = "",
    note: Short = "",
) -> Response:
    viewer.ctx.require(dictionary.MANAGE)
    entry = dictionary.get_entry(session, viewer.ctx, key)
    values = {
        "name_zh": name_zh,
        "name_en": name_en,
        "description_zh": description_zh,
        "description_en": description_en,
        "data_type": data_type,
        "unit": unit.strip(),
        "currency": currency.strip(),
        "includes_tax": includes_tax,
        "classification": classification,
        "pii_kind": pii_kind,
        "note": note.strip(),
    }
    kept: dict[str, Any] = {  # Any: what the form does not change, as the entry has it
        "kind": entry.kind,
        "owner_bu": entry.owner_bu,
        "lineage": [item.model_dump() for item in entry.lineage],
    }
    try:
        data = parse_form(EntryIn, {**values, **kept})
        with session.begin_nested():
            dictionary.set_entry(session, viewer.ctx, key, data)
    except REFUSALS as exc:
        errors, code = refusal(exc, FIELDS)
        return _entry_page(request, session, viewer, entry, values, errors, code)
    return RedirectResponse(f"/dictionary/{key}#versions", status_code=303)
