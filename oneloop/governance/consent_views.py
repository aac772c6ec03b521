"""What callers read of the consent registry: a person's consent in force with the defaults
filled in, their history, a unit's opt-in summary for the dashboard, and the vocabulary with
its labels. Each read needs ``consent.read`` and checks that the caller may see the profile
(another unit's is NotFound); the decisions themselves come from ``consent``."""

from __future__ import annotations

from sqlalchemy import Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from oneloop.core.context import Context
from oneloop.core.cursor import read_cursor, write_cursor
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import service as governance
from oneloop.governance.consent import (
    DEFAULTS,
    READ,
    check_codes,
    decide,
    decided_by,
    in_force,
    to_record,
    unfollowed,
)
from oneloop.governance.consent_schemas import (
    ANY,
    CHANNEL_CODES,
    CHANNEL_LABELS,
    GRANTED,
    LEGAL_BASIS_LABELS,
    PURPOSE_CHANNELS,
    PURPOSE_CODES,
    PURPOSE_LABELS,
    STATUS_LABELS,
    ConsentHistoryPage,
    ConsentRecord,
    ConsentState,
    ConsentStateItem,
    ConsentSummary,
    ConsentSummaryItem,
    Label,
    PurposeInfo,
    Vocabulary,
)
from oneloop.governance.models import ConsentHistoryRow, ConsentRow
from oneloop.profiles import service as profiles
from oneloop.profiles.models import ProfileRow, ProfileUnitRow

MAX_PAGE = 200
# (the channel's own status, the purpose's any-channel status, whether the latter is newer)
Holding = tuple[str | None, str | None, bool]


def current_state(session: Session, ctx: Context, profile_id: str) -> ConsentState:
    """Every purpose × channel with the decision that answers for it, or the default
    (``is_default``); ``allowed`` is what ``may_contact`` says."""
    ctx.require(READ)
    current = profiles.visible_id(session, ctx, profile_id)
    found = in_force(session, current, None, None)
    items = []
    for purpose in PURPOSE_CODES:
        for channel in PURPOSE_CHANNELS[purpose]:
            decided, by = decide(found, purpose, channel)
            allowed = decided.status == GRANTED if decided else DEFAULTS[purpose].allowed
            items.append(
                ConsentStateItem.model_validate(
                    {
                        "purpose": purpose,
                        "channel": channel,
                        "status": decided.status if decided else None,
                        "legal_basis": decided.legal_basis if decided else None,
                        "given_at": decided.given_at if decided else None,
                        "record_seq": decided.seq if decided else None,
                        "is_default": decided is None,
                        "allowed": allowed,
                        "decided_by": by,
                    }
                )
            )
    return ConsentState(profile_id=current, items=items)


def history(
    session: Session,
    ctx: Context,
    profile_id: str,
    *,
    purpose: str | None = None,
    channel: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ConsentHistoryPage:
    """Every decision of the person, newest first (by ``given_at``, then arrival), the ones
    in force marked; paged by ``cursor`` (``next_cursor`` of the previous page)."""
    ctx.require(READ)
    current = profiles.visible_id(session, ctx, profile_id)
    limit = max(1, min(limit, MAX_PAGE))
    h = ConsentHistoryRow
    query = _history_query(session, current, purpose, channel)
    if cursor:
        at, seq = read_cursor(cursor)
        query = query.where(or_(h.given_at < at, and_(h.given_at == at, h.seq < seq)))
    rows = session.scalars(query.order_by(h.given_at.desc(), h.seq.desc()).limit(limit + 1)).all()
    deciding = {d.seq for d in in_force(session, current, None, None).values()}
    page = rows[:limit]
    return ConsentHistoryPage(
        profile_id=current,
        items=[to_record(r, ctx, deciding) for r in page],
        next_cursor=write_cursor(page[-1].given_at, page[-1].seq) if len(rows) > limit else None,
    )


HISTORY_SORTS: dict[str, Column] = {
    "given_at": ConsentHistoryRow.given_at,
    "recorded_at": ConsentHistoryRow.recorded_at,
}


def page_history(
    session: Session,
    ctx: Context,
    profile_id: str,
    page: PageRequest,
    *,
    purpose: str | None = None,
    channel: str | None = None,
) -> Page[ConsentRecord]:
    """``history`` in the API's common page and cursor format (issue 8), any sort."""
    ctx.require(READ)
    current = profiles.visible_id(session, ctx, profile_id)
    query = _history_query(session, current, purpose, channel)
    deciding = {d.seq for d in in_force(session, current, None, None).values()}
    return keyset_page(
        session,
        query,
        page,
        HISTORY_SORTS,
        ConsentHistoryRow.seq,
        lambda rows: [to_record(r, ctx, deciding) for r in rows],
    )


def _history_query(
    session: Session, current: str, purpose: str | None, channel: str | None
) -> Select[tuple[ConsentHistoryRow]]:
    """The decisions of profile ``current`` (and of the ids it absorbed), filtered."""
    if purpose is not None or channel is not None:
        check_codes(purpose or PURPOSE_CODES[0], channel or ANY)
    h = ConsentHistoryRow
    query = select(h).where(h.profile_id.in_([current, *unfollowed(session, current)]))
    if purpose is not None:
        query = query.where(h.purpose == purpose)
    if channel is not None:
        query = query.where(h.channel == channel)
    return query


def summary(session: Session, ctx: Context, bu: str | None = None) -> ConsentSummary:
    """Opt-in per purpose × channel over the profiles the caller may see: a unit's users
    their unit's; the group every profile, or unit ``bu``'s. Per item, the decisions in
    force by status and how many ``may_contact`` allows, by the same rule. Counted in SQL
    from the consent rows of those profiles, so a unit of a million profiles costs a scan of
    its consent, not of its profiles. (It reads the profiles domain's population tables, as
    segments do: a count over a population needs the join.)"""
    ctx.require(READ)
    unit = governance.get_business_unit(session, ctx, bu).id if bu is not None else None
    if unit is None and not ctx.is_group_wide:
        unit = ctx.bu_id
    population: Select[tuple[str]]
    if unit is None:
        population = select(ProfileRow.id)
    else:
        population = select(ProfileUnitRow.profile_id).where(ProfileUnitRow.bu_id == unit)
    seen = session.scalar(select(func.count()).select_from(population.subquery())) or 0
    items = []
    for purpose in PURPOSE_CODES:
        for channel in PURPOSE_CHANNELS[purpose]:
            holdings = _holdings(session, population, purpose, channel)
            by_status = dict.fromkeys(STATUS_LABELS, 0)
            allowed = 0
            for (own, whole, newer), n in holdings.items():
                if own is not None:
                    by_status[own] += n
                answer = {"channel": own, "purpose": whole, "default": None}[
                    decided_by(own, whole, newer)
                ]
                allowed += n if answer == GRANTED else 0
            if DEFAULTS[purpose].allowed:
                allowed += seen - sum(holdings.values())
            items.append(
                ConsentSummaryItem.model_validate(
                    {
                        "purpose": purpose,
                        "channel": channel,
                        **by_status,
                        "allowed": allowed,
                        "opt_in_rate": round(allowed / seen, 4) if seen else 0.0,
                    }
                )
            )
    return ConsentSummary(bu=bu, profiles=seen, items=items)


def _holdings(
    session: Session, population: Select[tuple[str]], purpose: str, channel: str
) -> dict[Holding, int]:
    """Profiles of ``population`` holding a decision for the channel or for the purpose as a
    whole, counted by what they hold. For the channel ``any`` itself, the any-channel record
    is the channel's own."""
    holders = (
        select(ConsentRow.profile_id)
        .where(
            ConsentRow.purpose == purpose,
            ConsentRow.channel.in_(sorted({channel, ANY})),
            ConsentRow.profile_id.in_(population),
        )
        .distinct()
        .subquery()
    )
    whole = aliased(ConsentRow)
    on_whole = and_(
        whole.profile_id == holders.c.profile_id, whole.purpose == purpose, whole.channel == ANY
    )
    if channel == ANY:
        inner = (
            select(
                whole.status.label("own"),
                literal(None).label("whole"),
                literal(0).label("newer"),
            )
            .select_from(holders)
            .join(whole, on_whole)
        )
    else:
        own = aliased(ConsentRow)
        newer = or_(
            whole.given_at > own.given_at,
            and_(whole.given_at == own.given_at, whole.history_seq > own.history_seq),
        )
        inner = (
            select(
                own.status.label("own"),
                whole.status.label("whole"),
                case((newer, 1), else_=0).label("newer"),
            )
            .select_from(holders)
            .outerjoin(whole, on_whole)
            .outerjoin(
                own,
                and_(
                    own.profile_id == holders.c.profile_id,
                    own.purpose == purpose,
                    own.channel == channel,
                ),
            )
        )
    rows = inner.subquery()
    counted = session.execute(
        select(rows.c.own, rows.c.whole, rows.c.newer, func.count()).group_by(
            rows.c.own, rows.c.whole, rows.c.newer
        )
    )
    return {(own_s, whole_s, bool(is_newer)): n for own_s, whole_s, is_newer, n in counted}


def vocabulary() -> Vocabulary:
    """The closed lists with their labels and the defaults, for the console and the docs."""
    return Vocabulary(
        purposes=[
            PurposeInfo(
                code=code,
                name_zh=PURPOSE_LABELS[code][0],
                name_en=PURPOSE_LABELS[code][1],
                channels=list(PURPOSE_CHANNELS[code]),
                default_allowed=DEFAULTS[code].allowed,
                default_reason=DEFAULTS[code].reason,
            )
            for code in PURPOSE_CODES
        ],
        channels=[_label(c, CHANNEL_LABELS) for c in CHANNEL_CODES],
        statuses=[_label(c, STATUS_LABELS) for c in STATUS_LABELS],
        legal_bases=[_label(c, LEGAL_BASIS_LABELS) for c in LEGAL_BASIS_LABELS],
    )


def _label(code: str, labels: dict[str, tuple[str, str]]) -> Label:
    return Label(code=code, name_zh=labels[code][0], name_en=labels[code][1])
