"""Identity in the console: the data stewards' review queue (pairs the matcher doubted, side
by side, with the weight each comparison gave) and a customer's merge history with unmerge.

Both read with the viewer's Context narrowed to drop ``pii:read`` (``customers.masked``): a
pair or a history is judged on masked values, and clear ones never sit at a GET address. A
steward who needs to see more opens the customer's 360 view and reveals there, audited.
Deciding a pair and unmerging call the same service functions as the REST API with the
viewer's own Context, so permissions, isolation and the audit entries stay the services'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.core.context import Context
from oneloop.core.errors import Conflict, NotFound, ValidationFailed
from oneloop.governance import pii
from oneloop.identity import probabilistic
from oneloop.identity import service as identity
from oneloop.identity.schemas import GoldenRecord, Identifier, Merge, Review, UnmergeIn
from oneloop.web.customers import masked
from oneloop.web.forms import FormErrors, local_path, parse_form
from oneloop.web.nav import N_
from oneloop.web.paging import cursor_pager
from oneloop.web.templating import render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

REVIEW_PAGE = 10
NOTE_MAX = 500  # ReviewDecision.note
REVIEWS = "/identity/reviews"
STATUSES: tuple[tuple[str, str], ...] = (
    ("open", N_("Waiting")),
    ("accepted", N_("Accepted")),
    ("rejected", N_("Rejected")),
)
Text = Annotated[str, Query(max_length=200)]


# --- the review queue -------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One profile of a pair as the steward sees it; ``golden`` None: no longer visible."""

    requested_id: str
    profile_id: str
    golden: GoldenRecord | None
    identifiers: list[Identifier]


@dataclass(frozen=True)
class Comparison:
    name: str
    level: str
    weight: float
    left: object
    right: object
    # The bar's length, in per cent of the pair's strongest comparison either way.
    share: int


@dataclass(frozen=True)
class Pair:
    review: Review
    left: Side
    right: Side
    comparisons: list[Comparison]

    @property
    def is_one_profile(self) -> bool:
        """Merged since it was queued (by later evidence, or another steward)."""
        return self.left.profile_id == self.right.profile_id


@router.get(REVIEWS, response_class=HTMLResponse)
def review_queue(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    status: Annotated[str, Query(max_length=16)] = "open",
    cursor: Text = "",
) -> Response:
    return _queue(request, session, viewer, status, cursor, FormErrors(), 200)


def _queue(
    request: Request,
    session: Session,
    viewer: Viewer,
    status: str,
    cursor: str,
    errors: FormErrors,
    status_code: int,
) -> Response:
    if status not in dict(STATUSES):
        status = "open"
    ctx = masked(viewer.ctx)
    found = probabilistic.page_reviews(
        session, ctx, status=status, cursor=cursor or None, limit=REVIEW_PAGE
    )
    pairs = _pairs(session, ctx, found.items)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        "identity/reviews.html",
        {
            "pairs": pairs,
            "status": status,
            "statuses": STATUSES,
            "pager": cursor_pager(request.url, found.next_cursor),
            "may_decide": viewer.can("identity.unmerge"),
            "may_open": viewer.can("profiles.read"),
            "errors": errors,
            "here": here,
        },
        viewer=viewer,
        status_code=status_code,
    )


def _pairs(session: Session, ctx: Context, reviews: list[Review]) -> list[Pair]:
    """Each pair's two profiles, masked, read once each however many pairs name them."""
    view = pii.view(session, ctx)  # ctx has no pii:read: nothing is shown, nothing to audit
    wanted = {p for r in reviews for p in (r.left_id, r.right_id)}
    golden: dict[str, GoldenRecord | None] = {}
    for profile_id in sorted(wanted):
        try:
            golden[profile_id] = identity.golden(session, ctx, profile_id, view=view)
        except NotFound:
            golden[profile_id] = None
    current = {p: g.profile_id for p, g in golden.items() if g is not None}
    held = identity.identifiers_of(session, ctx, sorted(set(current.values())), view=view)

    def side(profile_id: str) -> Side:
        now = current.get(profile_id, profile_id)
        return Side(profile_id, now, golden[profile_id], held.get(now, []))

    pairs = []
    for review in reviews:
        left, right = side(review.left_id), side(review.right_id)
        pairs.append(Pair(review, left, right, _comparisons(review, left, right)))
    return pairs


def _comparisons(review: Review, left: Side, right: Side) -> list[Comparison]:
    """Strongest evidence first, for or against."""
    found = []
    for name, evidence in review.comparisons.items():
        if not isinstance(evidence, dict):
            continue
        weight = evidence.get("match_weight")
        found.append(
            (
                str(name),
                str(evidence.get("level", "")),
                float(weight) if isinstance(weight, int | float) else 0.0,
            )
        )
    strongest = max((abs(w) for _, _, w in found), default=0.0) or 1.0
    return [
        Comparison(
            name,
            level,
            weight,
            _field(left.golden, name),
            _field(right.golden, name),
            round(100 * abs(weight) / strongest),
        )
        for name, level, weight in sorted(found, key=lambda c: -abs(c[2]))
    ]


def _field(golden: GoldenRecord | None, comparison: str) -> object:
    """The golden-record value the comparison looked at: the matcher reads the same traits
    under the names ``probabilistic.FIELDS`` lists."""
    if golden is None:
        return None
    for trait in probabilistic.FIELDS.get(comparison, (comparison,)):
        if trait in golden.fields:
            return golden.fields[trait].value
    return None


@router.post(REVIEWS + "/{review_id}", response_class=HTMLResponse)
def decide(
    request: Request,
    review_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    decision: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = REVIEWS,
) -> Response:
    """Accept merges the two (reversible by unmerge); reject pins them apart for good."""
    viewer.ctx.require("identity.unmerge")
    back = local_path(next, REVIEWS)
    if not back.startswith(REVIEWS):
        back = REVIEWS
    try:
        if decision not in ("accept", "reject"):
            raise ValidationFailed(N_("Choose accept or reject."))
        if len(note) > NOTE_MAX:
            raise ValidationFailed(N_("The note is too long (at most 500 characters)."))
        with session.begin_nested():  # a refused merge is undone whole
            probabilistic.decide_review(
                session,
                viewer.ctx,
                identity.active_rules(session),
                review_id,
                accept=decision == "accept",
                note=note.strip() or None,
            )
    except (ValidationFailed, Conflict) as exc:
        code = 422 if isinstance(exc, ValidationFailed) else 409
        return _queue(request, session, viewer, "open", "", FormErrors(general=[exc.detail]), code)
    return RedirectResponse(back, status_code=303)


# --- a customer's merge history and unmerge -----------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    merge: Merge
    # The two identifiers whose link caused it (the evidence edge), as (type, masked value).
    evidence: list[tuple[str, str]]
    # The identifiers that moved, as (type, masked value); an id this profile no longer holds
    # shows as its id.
    moved: list[tuple[str, str]]

    @property
    def may_undo(self) -> bool:
        return self.merge.kind == "merge" and self.merge.undone_at is None


@router.get("/customers/{profile_id}/identity", response_class=HTMLResponse)
def identity_page(
    request: Request, profile_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    ctx = masked(viewer.ctx)
    explained = identity.explain(session, ctx, profile_id)
    by_id = {i.id: (i.type, str(i.value)) for i in explained.identifiers}
    links = {link.id: link for link in explained.links}

    def named(ids: list[str]) -> list[tuple[str, str]]:
        return [by_id.get(i, ("", i)) for i in ids]

    history = [
        HistoryRow(
            m,
            named([links[m.edge_id].a, links[m.edge_id].b]) if m.edge_id in links else [],
            named(m.identifiers),
        )
        for m in reversed(explained.history)
    ]
    return render(
        request,
        "identity/profile_identity.html",
        {
            "explained": explained,
            "history": history,
            "identifier_names": by_id,
            "may_unmerge": viewer.can("identity.unmerge"),
            "may_open": viewer.can("profiles.read"),
        },
        viewer=viewer,
    )


def _unmerge_path(profile_id: str, merge_id: str) -> str:
    return f"/customers/{profile_id}/identity/merges/{merge_id}/unmerge"


@router.get("/customers/{profile_id}/identity/merges/{merge_id}/unmerge")
def confirm_unmerge(
    request: Request, profile_id: str, merge_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    return _confirm_unmerge(request, session, viewer, profile_id, merge_id, FormErrors(), 200)


def _confirm_unmerge(
    request: Request,
    session: Session,
    viewer: Viewer,
    profile_id: str,
    merge_id: str,
    errors: FormErrors,
    status_code: int,
) -> Response:
    viewer.ctx.require("identity.unmerge")
    explained = identity.explain(session, masked(viewer.ctx), profile_id)
    merge = next((m for m in explained.history if m.id == merge_id and m.kind == "merge"), None)
    if merge is None:
        raise NotFound(f"no merge {merge_id} in this customer's history", merge_id=merge_id)
    context: dict[str, Any] = {  # Any: template values
        "title": N_("Undo a merge"),
        "message": N_(
            "Split %(absorbed)s out of %(profile)s again? Their link is cut and the two are "
            "pinned apart, so later evidence does not join them."
        ),
        "message_args": {"absorbed": merge.absorbed_id, "profile": explained.profile_id},
        "action": _unmerge_path(explained.profile_id, merge.id),
        "cancel": f"/customers/{explained.profile_id}/identity",
        "button": N_("Unmerge"),
        "reason_label": N_("Why (kept in the merge history and the audit log)"),
        "errors": errors,
    }
    return render(request, "confirm.html", context, viewer=viewer, status_code=status_code)


@router.post("/customers/{profile_id}/identity/merges/{merge_id}/unmerge")
def unmerge(
    request: Request,
    profile_id: str,
    merge_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        data = parse_form(UnmergeIn, {"merge_id": merge_id, "reason": reason.strip()})
        with session.begin_nested():
            out = identity.unmerge(session, viewer.ctx, profile_id, data)
    except (ValidationFailed, Conflict) as exc:
        errors = (
            FormErrors.of(exc, {"reason"})
            if isinstance(exc, ValidationFailed)
            else FormErrors(general=[exc.detail])
        )
        code = 422 if isinstance(exc, ValidationFailed) else 409
        return _confirm_unmerge(request, session, viewer, profile_id, merge_id, errors, code)
    return RedirectResponse(f"/customers/{out.profile_id}/identity#history", status_code=303)
