"""HTTP for sales: leads and the pool, claim and return, status and conversion, opportunities,
teams, the routing table (a DMN file), SLA and trigger settings, and the reports. The
services do the checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.paging import Page, PageRequest, list_query
from oneloop.core.errors import PayloadTooLarge
from oneloop.profiles import service as profiles
from oneloop.sales import config, leads, opportunities, reports
from oneloop.sales.schemas import (
    Activity,
    AssignIn,
    FunnelRow,
    HandoffReport,
    LeadIn,
    LeadOut,
    MemberIn,
    Opportunity,
    OpportunityIn,
    ReasonIn,
    RoutingTableInfo,
    SalesSettings,
    StageIn,
    StatusIn,
    Team,
    TeamIn,
)

router = APIRouter(prefix="/api/v1", tags=["sales"])

LeadId = Annotated[str, Path(max_length=64, description="the lead's id")]
TeamCode = Annotated[str, Path(max_length=64, description="the team's code")]
Unit = Annotated[str | None, Query(max_length=64, description="unit code (group-wide callers)")]
MAX_DMN_BYTES = 1024 * 1024
DMN_MEDIA = "application/xml"


# --- leads ------------------------------------------------------------------------------------

LeadList = Annotated[
    PageRequest, Depends(list_query("leads", leads.LEAD_SORTS, default="-created_at"))
]
PoolList = Annotated[
    PageRequest, Depends(list_query("lead-pool", leads.LEAD_SORTS, default="-created_at"))
]
TeamList = Annotated[
    PageRequest, Depends(list_query("sales-teams", config.TEAM_SORTS, default="code"))
]
OpportunityList = Annotated[
    PageRequest,
    Depends(list_query("opportunities", opportunities.OPPORTUNITY_SORTS, default="-created_at")),
]


@router.get("/leads", summary="Leads you may see, newest first (a rep: own and the pool)")
def list_leads(
    session: SessionDep,
    ctx: CallerDep,
    page: LeadList,
    status: Annotated[str | None, Query(max_length=16)] = None,
    owner: Annotated[str | None, Query(max_length=64, description="a user id, or me")] = None,
    team: Annotated[str | None, Query(max_length=64)] = None,
    bu: Unit = None,
) -> Page[LeadOut]:
    return leads.page_leads(session, ctx, page, status=status, owner=owner, team=team, bu=bu)


@router.get("/leads/pool", summary="The pool (公海): leads nobody owns, open to claim")
def pool(
    session: SessionDep,
    ctx: CallerDep,
    page: PoolList,
    bu: Unit = None,
) -> Page[LeadOut]:
    return leads.page_leads(session, ctx, page, status="pooled", bu=bu)


@router.post("/leads", summary="Create a lead by hand or from a CRM import", status_code=201)
def create_lead(
    data: Annotated[
        LeadIn,
        Body(
            openapi_examples={
                "from a CRM export": {
                    "value": {
                        "identifier_type": "phone",
                        "identifier": "13800138000",
                        "source": "crm_import",
                        "campaign": "2026 智能制造峰会",
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> LeadOut:
    profile_id = profiles.find_id(session, ctx, data.identifier_type, data.identifier)
    return leads.create_lead(
        session, ctx, profile_id, data.source, data.campaign, data.note, data.bu
    )


@router.get("/leads/{lead_id}", summary="One lead, with its routing record and context")
def get_lead(lead_id: LeadId, session: SessionDep, ctx: CallerDep) -> LeadOut:
    return leads.get_lead(session, ctx, lead_id)


@router.get("/leads/{lead_id}/activity", summary="The lead's history, oldest first")
def lead_activity(lead_id: LeadId, session: SessionDep, ctx: CallerDep) -> list[Activity]:
    return leads.activity(session, ctx, lead_id)


@router.post("/leads/{lead_id}/claim", summary="Claim a pooled lead (409 when taken)")
def claim(lead_id: LeadId, session: SessionDep, ctx: CallerDep) -> LeadOut:
    return leads.claim(session, ctx, lead_id)


@router.post("/leads/{lead_id}/return", summary="Return your lead to the pool, with a reason")
def return_lead(
    lead_id: LeadId,
    data: Annotated[
        ReasonIn, Body(openapi_examples={"wrong region": {"value": {"reason": "客户在华南"}}})
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> LeadOut:
    return leads.return_to_pool(session, ctx, lead_id, data.reason)


@router.post("/leads/{lead_id}/status", summary="Record contact, qualification or disqualification")
def set_status(
    lead_id: LeadId,
    data: Annotated[
        StatusIn,
        Body(
            openapi_examples={
                "first call made": {"value": {"status": "contacted"}},
                "no budget": {"value": {"status": "disqualified", "reason": "no budget"}},
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> LeadOut:
    return leads.set_status(session, ctx, lead_id, data.status, data.reason)


@router.post("/leads/{lead_id}/assign", summary="Reassign to a rep, or route again (manager)")
def assign(
    lead_id: LeadId,
    data: Annotated[
        AssignIn,
        Body(
            openapi_examples={
                "to a rep": {"value": {"email": "rep@galaxy.example.com"}},
                "route again": {"value": {}},
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> LeadOut:
    return leads.reassign(session, ctx, lead_id, data.email)


@router.post(
    "/leads/{lead_id}/convert", summary="Convert the lead into an opportunity", status_code=201
)
def convert(
    lead_id: LeadId,
    data: Annotated[
        OpportunityIn,
        Body(
            openapi_examples={
                "a line upgrade": {
                    "value": {"name": "产线改造 · Line upgrade", "amount": "480000.00"}
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> Opportunity:
    return opportunities.convert(session, ctx, lead_id, data)


@router.post("/sales/recall", summary="Recall untouched leads to the pool now (manager)")
def recall(session: SessionDep, ctx: CallerDep, bu: Unit = None) -> dict[str, int]:
    return {"recalled": leads.recall(session, ctx, bu)}


# --- opportunities ----------------------------------------------------------------------------


@router.get("/opportunities", summary="Opportunities you may see, newest first")
def list_opportunities(
    session: SessionDep,
    ctx: CallerDep,
    page: OpportunityList,
    status: Annotated[str | None, Query(max_length=8, description="open, won or lost")] = None,
    stage: Annotated[str | None, Query(max_length=32, description="e.g. proposal")] = None,
    bu: Unit = None,
) -> Page[Opportunity]:
    return opportunities.page_opportunities(session, ctx, page, status=status, stage=stage, bu=bu)


@router.post("/opportunities/{opportunity_id}/stage", summary="Move to a stage; won or lost")
def set_stage(
    opportunity_id: Annotated[str, Path(max_length=64)],
    data: Annotated[
        StageIn,
        Body(
            openapi_examples={
                "won": {"value": {"stage": "won", "amount": "500000.00"}},
                "lost": {"value": {"stage": "lost", "reason": "chose a competitor"}},
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> Opportunity:
    return opportunities.set_stage(session, ctx, opportunity_id, data)


# --- configuration ----------------------------------------------------------------------------


@router.get("/sales/settings", summary="The unit's lead triggers, SLA, calendar and pool limits")
def get_settings(session: SessionDep, ctx: CallerDep, bu: Unit = None) -> SalesSettings:
    return config.get_settings(session, ctx, bu)


@router.put("/sales/settings", summary="Replace the unit's sales settings")
def set_settings(
    document: Annotated[
        dict[str, Any],  # Any: validated by the service, errors at their paths
        Body(
            openapi_examples={
                "high intent and demo requests": {
                    "value": {
                        "triggers": [
                            {"kind": "segment_entered", "segment": "high_intent_followup"},
                            {"kind": "event", "event": "Demo Requested"},
                        ],
                        "sla": {"first_contact_minutes": 60, "warn_before_minutes": 15},
                        "max_open_per_rep": 30,
                        "recall_after_hours": 48,
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
    bu: Unit = None,
) -> SalesSettings:
    return config.set_settings(session, ctx, document, bu)


@router.get("/sales/teams", summary="The unit's sales teams with their reps and loads, by code")
def list_teams(session: SessionDep, ctx: CallerDep, page: TeamList, bu: Unit = None) -> Page[Team]:
    return config.page_teams(session, ctx, page, bu)


@router.post("/sales/teams", summary="Create a sales team", status_code=201)
def create_team(
    data: Annotated[
        TeamIn,
        Body(
            openapi_examples={
                "east": {
                    "value": {
                        "code": "east_industrial",
                        "name_zh": "华东工业组",
                        "name_en": "East industrial team",
                        "strategy": "round_robin",
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> Team:
    return config.create_team(session, ctx, data)


@router.get("/sales/teams/{team}", summary="One team")
def get_team(team: TeamCode, session: SessionDep, ctx: CallerDep, bu: Unit = None) -> Team:
    return config.get_team(session, ctx, team, bu)


@router.put("/sales/teams/{team}/members", summary="Add a rep, or change capacity or duty")
def set_member(
    team: TeamCode,
    data: Annotated[
        MemberIn,
        Body(
            openapi_examples={
                "a rep": {"value": {"email": "rep@galaxy.example.com", "capacity": 30}}
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
    bu: Unit = None,
) -> Team:
    return config.set_member(session, ctx, team, data, bu)


@router.delete("/sales/teams/{team}/members/{email}", summary="Take a rep out of a team")
def remove_member(
    team: TeamCode,
    email: Annotated[str, Path(max_length=320)],
    session: SessionDep,
    ctx: CallerDep,
    bu: Unit = None,
) -> Team:
    return config.remove_member(session, ctx, team, email, bu)


@router.get("/sales/routing-table", summary="The routing table in force: version and rules")
def table_info(session: SessionDep, ctx: CallerDep, bu: Unit = None) -> RoutingTableInfo:
    return config.table_info(session, ctx, bu)


@router.get(
    "/sales/routing-table.dmn",
    summary="Download the routing table as DMN (open it in bpmn.io's DMN editor)",
    response_class=Response,
    responses={200: {"content": {DMN_MEDIA: {}}}},
)
def download_table(session: SessionDep, ctx: CallerDep, bu: Unit = None) -> Response:
    row = config.current_table(session, ctx, bu)
    return Response(
        row.xml,
        media_type=DMN_MEDIA,
        headers={"Content-Disposition": f'attachment; filename="routing-v{row.version}.dmn"'},
    )


async def _dmn_body(request: Request) -> bytes:
    """The raw upload, read before the (synchronous) handler runs, with a size limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_DMN_BYTES:
        raise PayloadTooLarge(f"a routing table is at most {MAX_DMN_BYTES // 1024} KB")
    body = await request.body()
    if len(body) > MAX_DMN_BYTES:
        raise PayloadTooLarge(f"a routing table is at most {MAX_DMN_BYTES // 1024} KB")
    return body


@router.put(
    "/sales/routing-table",
    summary="Upload a new version of the routing table (a DMN 1.3 file)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {DMN_MEDIA: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def upload_table(
    body: Annotated[bytes, Depends(_dmn_body)],
    session: SessionDep,
    ctx: CallerDep,
    bu: Unit = None,
) -> RoutingTableInfo:
    return config.upload_table(session, ctx, body, bu)


# --- reports ----------------------------------------------------------------------------------


@router.get("/sales/reports/funnel", summary="Lead funnel per source and campaign")
def funnel(
    session: SessionDep,
    ctx: CallerDep,
    bu: Unit = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[FunnelRow]:
    return reports.funnel(session, ctx, bu, since, until)


@router.get(
    "/sales/reports/handoffs",
    summary="Hand-offs per converted customer, time per hand-off, where leads die",
)
def handoffs(session: SessionDep, ctx: CallerDep, bu: Unit = None) -> HandoffReport:
    return reports.handoffs(session, ctx, bu)
