"""Sales set-up for a manager or an admin: the unit's settings (lead triggers, the first-contact
SLA, recall and claim limits, notices, the working calendar), its teams and reps, and the
routing table (download the DMN file, upload a new version).

Every read and change is a call of ``oneloop/sales/config.py`` with the viewer's Context, the
same as the REST API's (``/api/v1/sales/settings``, ``…/teams``, ``…/routing-table``): the
service checks ``sales.config.manage``, validates and audits. The pages only turn form fields
into the service's shapes and its refusals back into errors beside the fields they name.

A rep's duty and capacity are also on the team board (``sales_board_pages``); the teams page
links there rather than repeating the board's forms, and adds what the board does not do:
create a team, add a rep, change a rep's weight, take a rep out of a team.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.core.context import SYSTEM_USER
from oneloop.core.errors import FieldError, NotFound, ValidationFailed
from oneloop.governance import users
from oneloop.sales import config
from oneloop.sales.routing import RoutingTable
from oneloop.sales.schemas import (
    CODE_PATTERN,
    Member,
    MemberIn,
    SalesSettings,
    Strategy,
    Team,
    TeamIn,
)
from oneloop.segments import service as segments
from oneloop.web.forms import MESSAGES, FormErrors, parse_form
from oneloop.web.governance_pages import Confirmation, confirm_page
from oneloop.web.nav import N_
from oneloop.web.sales_board_pages import _capacity
from oneloop.web.sales_pages import STRATEGY_LABELS, in_unit_only, manages, people, team_names
from oneloop.web.templating import page_lang, render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

Short = Annotated[str, Form(max_length=400)]
Number = Annotated[str, Form(max_length=20)]
Rows = Annotated[list[str], Form(max_length=50)]
MAX_TRIGGERS = 50
MAX_CALENDAR = 20_000
MAX_DMN_BYTES = 1024 * 1024  # as PUT /api/v1/sales/routing-table

# --- labels and messages (message ids, translated where shown) -------------------------------

BOARD = "/sales/board"
SETUP_TABS: tuple[tuple[str, str], ...] = (
    ("/sales/settings", N_("Settings")),
    ("/sales/teams", N_("Teams")),
    ("/sales/routing", N_("Routing table")),
    (BOARD, N_("Team board")),
)
KIND_LABELS: dict[str, str] = {
    "segment_entered": N_("Enters a segment"),
    "score_at_least": N_("A score reaches a threshold"),
    "event": N_("Does an event"),
}
# The Trigger field each kind names, and the message when it is left empty.
TARGET_OF: dict[str, str] = {
    "segment_entered": "segment",
    "score_at_least": "score",
    "event": "event",
}
NEED_TARGET: dict[str, str] = {
    "segment_entered": N_("Enter the segment's code."),
    "score_at_least": N_("Enter the score model's code."),
    "event": N_("Enter the event's name, such as Demo Requested."),
}
NEED_KIND = N_("Choose what starts a lead, or clear the row.")
BAD_THRESHOLD = N_("Enter a number, such as 80.")
BAD_FIRST_CONTACT = N_("Enter a whole number of working minutes from 1 to 43,200.")
BAD_WARN = N_("Enter a whole number of minutes, 0 or more.")
BAD_REASSIGN = N_("Enter a whole number of minutes, 1 or more, or leave it empty.")
BAD_MAX_OPEN = N_("Enter a whole number from 1 to 10,000.")
BAD_RECALL = N_("Enter a number of hours above 0 and at most 8,760.")
BAD_CALENDAR = N_("Enter the calendar as a JSON object, or leave it empty for the default.")
BAD_CODE = N_("Use lower-case letters, digits and _, starting with a letter (east_industrial).")
BAD_WEIGHT = N_("Enter a weight above 0 and at most 100, such as 1 or 1.5.")
NO_TEAM = N_("Choose a team.")
NO_FILE = N_("Choose a DMN file to upload.")
TOO_BIG = N_("The file is larger than 1 MB.")
NOT_UTF8 = N_("Save the file as UTF-8 text (bpmn.io's DMN editor does).")
# The services' own words for a bad field, so a Chinese reader sees them translated too.
SERVICE_MESSAGES = (
    N_("no such segment in the unit"),
    N_("no such score model"),
    N_("a team with this code exists"),
)

SETTINGS_FIELDS = {
    "first_contact_minutes",
    "warn_before_minutes",
    "escalate_on_breach",
    "reassign_after_breach_minutes",
    "max_open_per_rep",
    "recall_after_hours",
    "notify_channel",
    "calendar",
}
TEAM_FIELDS = {"code", "name_zh", "name_en", "strategy", "manager"}
MEMBER_FIELDS = {"team", "email", "capacity", "weight", "on_duty"}
TEAM_DONE = {
    "created": N_("The team %(team)s was created."),
    "member_set": N_("The rep was saved in the team %(team)s."),
    "member_removed": N_("The rep was taken out of the team %(team)s."),
}


def _require_configure(request: Request, viewer: Viewer) -> Response | None:
    """The set-up pages are for whoever may change the set-up; a group-wide viewer is asked to
    switch to a unit first, like on the other sales pages."""
    viewer.ctx.require(config.CONFIGURE)
    return in_unit_only(request, viewer)


def _context(viewer: Viewer, **values: object) -> dict[str, object]:
    tabs = [(path, label) for path, label in SETUP_TABS if path != BOARD or manages(viewer)]
    return {
        "setup_tabs": tabs,
        "may_board": manages(viewer),
        "strategy_labels": STRATEGY_LABELS,
        **values,
    }


# --- settings --------------------------------------------------------------------------------


@dataclass
class TriggerRow:
    kind: str = ""
    target: str = ""  # the segment's code, the score model's code or the event's name
    at_least: str = ""


@dataclass
class SettingsForm:
    """The settings as the form shows and sends them: text as typed, one row per trigger."""

    triggers: list[TriggerRow]
    first_contact_minutes: str
    warn_before_minutes: str
    escalate_on_breach: bool
    reassign_after_breach_minutes: str
    max_open_per_rep: str
    recall_after_hours: str
    notify_channel: str
    calendar: str
    # The row of the form of each trigger sent to the service (empty rows are left out).
    sent_rows: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, settings: SalesSettings) -> SettingsForm:
        return cls(
            triggers=[
                TriggerRow(
                    t.kind,
                    getattr(t, TARGET_OF[t.kind]) or "",
                    "" if t.at_least is None else f"{t.at_least:g}",
                )
                for t in settings.triggers
            ],
            first_contact_minutes=str(settings.sla.first_contact_minutes),
            warn_before_minutes=str(settings.sla.warn_before_minutes),
            escalate_on_breach=settings.sla.escalate_on_breach,
            reassign_after_breach_minutes=_text(settings.sla.reassign_after_breach_minutes),
            max_open_per_rep=str(settings.max_open_per_rep),
            recall_after_hours=f"{settings.recall_after_hours:g}",
            notify_channel=settings.notify_channel,
            calendar=(
                ""
                if settings.calendar is None
                else json.dumps(settings.calendar, indent=2, ensure_ascii=False)
            ),
        )

    def with_blank_row(self) -> SettingsForm:
        """One more, empty, row to add a trigger in (up to ``MAX_TRIGGERS`` rows)."""
        if len(self.triggers) < MAX_TRIGGERS:
            self.triggers = [*self.triggers, TriggerRow()]
        return self

    def document(self) -> dict[str, Any]:  # Any: the settings document the service validates
        """The settings document, or ``ValidationFailed`` naming the form's fields with a
        message the reader's language has (before the service's English words would be)."""
        errors: list[FieldError] = []
        triggers: list[dict[str, object]] = []
        self.sent_rows = []
        for i, row in enumerate(self.triggers):
            kind, target, at_least = row.kind, row.target.strip(), row.at_least.strip()
            if not kind:
                if target or at_least:
                    errors.append(FieldError((f"trigger-{i}-kind",), NEED_KIND))
                continue
            trigger: dict[str, object] = {"kind": kind}
            if kind not in TARGET_OF:
                errors.append(FieldError((f"trigger-{i}-kind",), NEED_KIND))
                continue
            if not target:
                errors.append(FieldError((f"trigger-{i}-target",), NEED_TARGET[kind]))
            elif len(target) > 255:
                errors.append(FieldError((f"trigger-{i}-target",), MESSAGES["string_too_long"]))
            trigger[TARGET_OF[kind]] = target
            if kind == "score_at_least":
                threshold = _number(at_least)
                if threshold is None:
                    errors.append(FieldError((f"trigger-{i}-at_least",), BAD_THRESHOLD))
                trigger["at_least"] = threshold
            triggers.append(trigger)
            self.sent_rows.append(i)
        sla: dict[str, object] = {
            "first_contact_minutes": _whole(
                self.first_contact_minutes, "first_contact_minutes", 1, 60 * 24 * 30,
                BAD_FIRST_CONTACT, errors,
            ),
            "warn_before_minutes": _whole(
                self.warn_before_minutes, "warn_before_minutes", 0, None, BAD_WARN, errors
            ),
            "escalate_on_breach": self.escalate_on_breach,
            "reassign_after_breach_minutes": (
                _whole(
                    self.reassign_after_breach_minutes, "reassign_after_breach_minutes", 1,
                    None, BAD_REASSIGN, errors,
                )
                if self.reassign_after_breach_minutes.strip()
                else None
            ),
        }  # fmt: skip
        recall = _number(self.recall_after_hours)
        if recall is None or not 0 < recall <= 24 * 365:
            errors.append(FieldError(("recall_after_hours",), BAD_RECALL))
        notify = self.notify_channel.strip()
        if not notify:
            errors.append(FieldError(("notify_channel",), MESSAGES["missing"]))
        elif len(notify) > 64:
            errors.append(FieldError(("notify_channel",), MESSAGES["string_too_long"]))
        calendar: object = None
        if self.calendar.strip():
            try:
                calendar = json.loads(self.calendar)
            except (ValueError, RecursionError):
                calendar = None
            if not isinstance(calendar, dict):
                errors.append(FieldError(("calendar",), BAD_CALENDAR))
        max_open = _whole(
            self.max_open_per_rep, "max_open_per_rep", 1, 10_000, BAD_MAX_OPEN, errors
        )
        if errors:
            raise ValidationFailed("the form has errors", errors)
        return {
            "triggers": triggers,
            "sla": sla,
            "calendar": calendar,
            "max_open_per_rep": max_open,
            "recall_after_hours": recall,
            "notify_channel": notify,
        }

    def errors_of(self, exc: ValidationFailed) -> FormErrors:
        """The service's refusal on the form's fields: ``triggers[2].segment`` is the row of
        the form that sent the service's third trigger; a calendar's own paths stay in its
        message (the calendar is one field)."""
        aliases = {
            "sla.first_contact_minutes": "first_contact_minutes",
            "sla.warn_before_minutes": "warn_before_minutes",
            "sla.escalate_on_breach": "escalate_on_breach",
            "sla.reassign_after_breach_minutes": "reassign_after_breach_minutes",
        }
        names = SETTINGS_FIELDS | {
            f"trigger-{row}-{part}"
            for row in range(len(self.triggers))
            for part in ("kind", "target", "at_least")
        }
        for sent, row in enumerate(self.sent_rows):
            aliases[f"triggers[{sent}]"] = f"trigger-{row}-kind"
            aliases[f"triggers[{sent}].kind"] = f"trigger-{row}-kind"
            aliases[f"triggers[{sent}].at_least"] = f"trigger-{row}-at_least"
            for target in TARGET_OF.values():
                aliases[f"triggers[{sent}].{target}"] = f"trigger-{row}-target"
        placed = [
            FieldError(("calendar",), f"{e.path.removeprefix('calendar.')}: {e.msg}")
            if e.loc[:1] == ("calendar",) and len(e.loc) > 1
            else e
            for e in exc.errors
        ]
        return FormErrors.of(ValidationFailed(exc.detail, placed), names, aliases=aliases)


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def _number(raw: str) -> float | None:
    try:
        value = float(raw.strip().replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _whole(
    raw: str, name: str, low: int, high: int | None, message: str, errors: list[FieldError]
) -> int:
    text = raw.strip().replace(",", "")
    if (
        not (text.isascii() and text.isdigit())
        or int(text) < low
        or (high is not None and int(text) > high)
    ):
        errors.append(FieldError((name,), message))
        return low
    return int(text)


@router.get("/sales/settings", response_class=HTMLResponse)
def settings_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    saved: Annotated[str, Query(max_length=1)] = "",
) -> Response:
    if (away := _require_configure(request, viewer)) is not None:
        return away
    form = SettingsForm.of(config.get_settings(session, viewer.ctx)).with_blank_row()
    return _settings(request, session, viewer, form, FormErrors(), saved == "1")


def _settings(
    request: Request,
    session: Session,
    viewer: Viewer,
    form: SettingsForm,
    errors: FormErrors,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    known = (
        [s.code for s in segments.list_segments(session, viewer.ctx)]
        if viewer.can(segments.READ)
        else []
    )
    context = _context(
        viewer,
        form=form,
        errors=errors,
        saved=saved,
        kind_labels=KIND_LABELS,
        segment_codes=known,
        max_triggers=MAX_TRIGGERS,
    )
    return render(request, "sales/settings.html", context, viewer=viewer, status_code=status_code)


@router.post("/sales/settings", response_class=HTMLResponse)
def save_settings(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    kind: Rows = [],  # noqa: B006  (FastAPI copies defaults per request)
    target: Rows = [],  # noqa: B006
    at_least: Rows = [],  # noqa: B006
    first_contact_minutes: Number = "",
    warn_before_minutes: Number = "",
    escalate_on_breach: Annotated[str, Form(max_length=5)] = "",
    reassign_after_breach_minutes: Number = "",
    max_open_per_rep: Number = "",
    recall_after_hours: Number = "",
    notify_channel: Annotated[str, Form(max_length=200)] = "",
    calendar: Annotated[str, Form(max_length=MAX_CALENDAR)] = "",
    action: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Save the whole settings document (the service replaces it, as ``PUT``); "add a row"
    shows the form again with one more empty trigger row and saves nothing."""
    if (away := _require_configure(request, viewer)) is not None:
        return away
    rows = [
        TriggerRow(k, t, a)
        for k, t, a in zip(
            kind, _padded(target, len(kind)), _padded(at_least, len(kind)), strict=True
        )
    ]
    form = SettingsForm(
        triggers=rows,
        first_contact_minutes=first_contact_minutes,
        warn_before_minutes=warn_before_minutes,
        escalate_on_breach=escalate_on_breach == "1",
        reassign_after_breach_minutes=reassign_after_breach_minutes,
        max_open_per_rep=max_open_per_rep,
        recall_after_hours=recall_after_hours,
        notify_channel=notify_channel,
        calendar=calendar,
    )
    if action == "add_row":
        return _settings(request, session, viewer, form.with_blank_row(), FormErrors())
    try:
        document = form.document()
        with session.begin_nested():
            config.set_settings(session, viewer.ctx, document)
    except ValidationFailed as exc:
        return _settings(request, session, viewer, form, form.errors_of(exc), status_code=422)
    return RedirectResponse("/sales/settings?saved=1", status_code=303)


def _padded(values: list[str], length: int) -> list[str]:
    return (values + [""] * length)[:length]


# --- teams -----------------------------------------------------------------------------------


@router.get("/sales/teams", response_class=HTMLResponse)
def teams_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    done: Annotated[str, Query(max_length=16)] = "",
    team: Annotated[str, Query(max_length=64)] = "",
    email: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    """``team`` and ``email`` fill the member form in (a row's "change" link)."""
    if (away := _require_configure(request, viewer)) is not None:
        return away
    member = {"team": team, "email": email}
    current = _member_of(config.list_teams(session, viewer.ctx), team, email)
    if current is not None:
        member |= {
            "capacity": str(current.capacity),
            "weight": f"{current.weight:g}",
            "on_duty": "1" if current.on_duty else "",
        }
    else:
        member |= {"on_duty": "1"}
    notice = (TEAM_DONE[done], team) if done in TEAM_DONE else None
    return _teams(request, session, viewer, member_values=member, notice=notice)


def _member_of(teams: list[Team], code: str, email: str) -> Member | None:
    wanted = email.strip().lower()
    for team in teams:
        if team.code == code:
            return next((m for m in team.members if m.email == wanted), None)
    return None


def _teams(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    team_values: dict[str, str] | None = None,
    team_errors: FormErrors | None = None,
    member_values: dict[str, str] | None = None,
    member_errors: FormErrors | None = None,
    notice: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    teams = config.list_teams(session, viewer.ctx)
    lang = page_lang(request)
    context = _context(
        viewer,
        teams=teams,
        team_names=team_names(teams, lang),
        names=people(session, viewer, teams),
        team_options=[(t.code, f"{team_names(teams, lang)[t.id]} ({t.code})") for t in teams],
        strategy_options=[(k, STRATEGY_LABELS[k]) for k in get_args(Strategy)],
        team_values=team_values or {"strategy": "round_robin"},
        team_errors=team_errors or FormErrors(),
        member_values=member_values or {"on_duty": "1"},
        member_errors=member_errors or FormErrors(),
        notice=notice,
    )
    return render(request, "sales/teams.html", context, viewer=viewer, status_code=status_code)


@router.post("/sales/teams", response_class=HTMLResponse)
def create_team(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    code: Annotated[str, Form(max_length=64)] = "",
    name_zh: Short = "",
    name_en: Short = "",
    strategy: Annotated[str, Form(max_length=32)] = "",
    manager: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    if (away := _require_configure(request, viewer)) is not None:
        return away
    values = {
        "code": code.strip(),
        "name_zh": name_zh.strip(),
        "name_en": name_en.strip(),
        "strategy": strategy,
        "manager": manager.strip(),
    }
    try:
        if values["code"] and not re.fullmatch(CODE_PATTERN, values["code"]):
            raise ValidationFailed("bad code", [FieldError(("code",), BAD_CODE)])
        data = parse_form(TeamIn, values)
        with session.begin_nested():
            made = config.create_team(session, viewer.ctx, data)
    except ValidationFailed as exc:
        errors = FormErrors.of(exc, TEAM_FIELDS)
        return _teams(
            request, session, viewer, team_values=values, team_errors=errors, status_code=422
        )
    return RedirectResponse(
        f"/sales/teams?done=created&team={made.code}#team-{made.code}", status_code=303
    )


@router.post("/sales/teams/members", response_class=HTMLResponse)
def set_member(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    team: Annotated[str, Form(max_length=64)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    capacity: Number = "",
    weight: Number = "",
    on_duty: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Add a rep to a team, or change their capacity, weight or duty (``PUT …/members``). An
    empty weight keeps the rep's (a new rep: 1)."""
    if (away := _require_configure(request, viewer)) is not None:
        return away
    values = {
        "team": team,
        "email": email.strip(),
        "capacity": capacity,
        "weight": weight,
        "on_duty": "1" if on_duty == "1" else "",
    }
    try:
        errors: list[FieldError] = []
        try:
            current = config.get_team(session, viewer.ctx, team) if team else None
        except NotFound:
            current = None
        if current is None:
            errors.append(FieldError(("team",), NO_TEAM))
        was = _member_of([current], team, email) if current is not None else None
        try:
            cap = _capacity(capacity) if capacity.strip() else (was.capacity if was else 30)
        except ValidationFailed as exc:
            errors += exc.errors
            cap = 0
        if weight.strip():
            parsed = _number(weight)
            if parsed is None or not 0 < parsed <= 100:
                errors.append(FieldError(("weight",), BAD_WEIGHT))
                parsed = 1.0
        else:
            parsed = was.weight if was else 1.0
        if not values["email"]:
            errors.append(FieldError(("email",), MESSAGES["missing"]))
        if errors:
            raise ValidationFailed("the form has errors", errors)
        data = parse_form(
            MemberIn,
            {
                "email": values["email"],
                "capacity": cap,
                "weight": parsed,
                "on_duty": on_duty == "1",
            },
        )
        with session.begin_nested():
            config.set_member(session, viewer.ctx, team, data)
    except ValidationFailed as exc:
        found = FormErrors.of(exc, MEMBER_FIELDS)
        return _teams(
            request, session, viewer, member_values=values, member_errors=found, status_code=422
        )
    return RedirectResponse(
        f"/sales/teams?done=member_set&team={team}#team-{team}", status_code=303
    )


def _removal(team: Team, email: str, lang: str) -> Confirmation:
    rep = next((m for m in team.members if m.email == email.strip().lower()), None)
    if rep is None:
        raise NotFound("the user is not in this team", email=email)
    return Confirmation(
        title=N_("Take a rep out of a team"),
        message=N_(
            "Take %(rep)s out of %(team)s? New leads of the team no longer go to them; "
            "the leads they hold stay theirs."
        ),
        action=f"/sales/teams/{quote(team.code)}/members/{quote(rep.email)}/remove",
        cancel=f"/sales/teams#team-{team.code}",
        button=N_("Take out of the team"),
        args={
            "rep": f"{rep.display_name} <{rep.email}>",
            "team": team.name_zh if lang == "zh-CN" else team.name_en,
        },
    )


@router.get("/sales/teams/{team}/members/{email}/remove", response_class=HTMLResponse)
def confirm_remove(
    request: Request, team: str, email: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    if (away := _require_configure(request, viewer)) is not None:
        return away
    found = config.get_team(session, viewer.ctx, team)
    return confirm_page(request, viewer, _removal(found, email, page_lang(request)))


@router.post("/sales/teams/{team}/members/{email}/remove", response_class=HTMLResponse)
def remove_member(
    request: Request, team: str, email: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    if (away := _require_configure(request, viewer)) is not None:
        return away
    config.remove_member(session, viewer.ctx, team, email)
    return RedirectResponse(
        f"/sales/teams?done=member_removed&team={team}#team-{team}", status_code=303
    )


# --- the routing table -----------------------------------------------------------------------


@dataclass(frozen=True)
class UploadError:
    """A refusal of an upload: the table's row and column when it names them (shown in the
    reader's language), and the service's words without the row it says again."""

    row: int | None
    column: str | None
    message: str


@router.get("/sales/routing", response_class=HTMLResponse)
def routing_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    uploaded: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> Response:
    if (away := _require_configure(request, viewer)) is not None:
        return away
    return _routing(request, session, viewer, uploaded=uploaded)


def _routing(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    uploaded: int | None = None,
    errors: list[UploadError] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        info = config.table_info(session, viewer.ctx)
        table: RoutingTable | None = config.loaded_table(config.current_table(session, viewer.ctx))
    except NotFound:
        info, table = None, None
    context = _context(
        viewer,
        info=info,
        table=table,
        uploader=_who(session, info.created_by) if info else None,
        uploaded=uploaded,
        upload_errors=errors or [],
        max_kb=MAX_DMN_BYTES // 1024,
    )
    return render(request, "sales/routing.html", context, viewer=viewer, status_code=status_code)


def _who(session: Session, user_id: str) -> str | None:
    """The uploader's name; None for the platform itself (the demo's load, the CLI)."""
    if user_id == SYSTEM_USER:
        return None
    try:
        user = users.user_of(session, user_id)
    except NoResultFound:
        return user_id
    return f"{user.display_name} <{user.email}>"


@router.post("/sales/routing", response_class=HTMLResponse)
def upload_table(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    table: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """A new version of the table (``PUT /api/v1/sales/routing-table``): validated by the
    service, every problem shown beside the file field with the row and column it names."""
    if (away := _require_configure(request, viewer)) is not None:
        return away
    xml = table.file.read(MAX_DMN_BYTES + 1) if table is not None else b""
    if not xml:
        return _routing(request, session, viewer, errors=[UploadError(None, None, NO_FILE)],
                        status_code=422)  # fmt: skip
    if len(xml) > MAX_DMN_BYTES:
        return _routing(request, session, viewer, errors=[UploadError(None, None, TOO_BIG)],
                        status_code=422)  # fmt: skip
    try:
        xml.decode("utf-8")  # the service stores the text as UTF-8
    except UnicodeDecodeError:
        return _routing(request, session, viewer, errors=[UploadError(None, None, NOT_UTF8)],
                        status_code=422)  # fmt: skip
    try:
        with session.begin_nested():
            info = config.upload_table(session, viewer.ctx, xml)
    except ValidationFailed as exc:
        return _routing(request, session, viewer, errors=_upload_errors(exc), status_code=422)
    return RedirectResponse(f"/sales/routing?uploaded={info.version}", status_code=303)


def _upload_errors(exc: ValidationFailed) -> list[UploadError]:
    found = []
    for error in exc.errors:
        loc = error.loc
        row = loc[1] if len(loc) > 1 and loc[0] == "rules" and isinstance(loc[1], int) else None
        column = str(loc[2]) if row is not None and len(loc) > 2 else None
        message = error.msg
        if row is not None:  # the location is shown beside it: not twice
            message = re.sub(rf"^row {row}(, [^:]+)?: ", "", message)
        found.append(UploadError(row, column, message))
    return found or [UploadError(None, None, exc.detail)]
