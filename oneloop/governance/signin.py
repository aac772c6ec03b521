"""Signing in: console sessions and API keys, each turned into the Context services check.

A session or a key names a user and the one unit they act in; the context carries the
permissions of the user's role there (and, for a key, only those among its scopes). A
membership of the group makes the context group-wide. Everything is looked up on every
request, so a revoked role, a deactivated user or a revoked key stops working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, event, func, inspect, select
from sqlalchemy.orm import Session

from oneloop.core.clock import Clock
from oneloop.core.config import Settings
from oneloop.core.context import Context
from oneloop.core.db import in_tenancy
from oneloop.core.errors import FieldError, NotFound, RateLimited, Unauthenticated, ValidationFailed
from oneloop.core.ids import BusinessUnitId, UserId, new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit
from oneloop.governance.audit import Outcome
from oneloop.governance.models import (
    ApiKeyRow,
    BusinessUnitRow,
    LoginAttemptRow,
    MembershipRow,
    RoleRow,
    SessionRow,
    UserRow,
)
from oneloop.governance.roles import expand, unknown_permissions
from oneloop.governance.schemas import ApiKey, ApiKeyIn, ApiKeyMade
from oneloop.governance.service import unit_row
from oneloop.governance.users import (
    MANAGE,
    dummy_verify,
    get_user,
    memberships,
    password_matches,
    role_permissions,
    touch_login,
)

KEY_PREFIX = "ola_"  # write keys (collect) begin "olk_"
WRONG = "the email or the password is wrong"
# A session's last use is written at most this often: a read should not write every time.
SEEN_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    """What a sign-in hands back: the cookie's token (shown once, stored hashed) and the
    CSRF token the console sends back on every change."""

    token: str
    csrf_token: str
    expires_at: datetime
    context: Context


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- sign-in -------------------------------------------------------------------------------


def login(
    session: Session,
    settings: Settings,
    email: str,
    password: str,
    ip: str,
    clock: Clock,
    bu_code: str | None = None,
) -> SignedIn:
    """Check the password and open a session. Too many attempts from one address are refused
    before the password is looked at; an email with ``login_max_failures`` failures in a row
    is locked out for ``login_lockout_minutes``, whether or not such a user exists. The
    attempt is recorded either way, and audited; the caller commits even when this raises,
    so that a failure counts towards the lock-out."""
    email = email.strip().lower()[:320]
    ip, now = ip[:64], clock.now()
    _limit_rate(session, settings, ip, now)
    user = session.scalar(select(UserRow).where(UserRow.email == email))
    locked_until = _locked_until(session, settings, email, now)
    if locked_until is not None:
        _attempt(session, email, ip, now, "failure")
        _audit_login(session, user, ip, clock, "denied", "locked")
        wait = max(1, int((locked_until - now).total_seconds()))
        raise RateLimited(
            "too many failed sign-ins for this email; try again later or ask an admin to unlock it",
            retry_after=wait,
        )
    if user is None:
        dummy_verify()
    if user is None or not password_matches(user, password) or not user.is_active:
        _attempt(session, email, ip, now, "failure")
        _audit_login(session, user, ip, clock, "denied", "wrong password or no such user")
        raise Unauthenticated(WRONG)
    unit = _login_unit(session, user, bu_code)
    _attempt(session, email, ip, now, "success")
    touch_login(session, user.id, now)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.session_hours)
    session.add(
        SessionRow(
            id=digest(token),
            user_id=user.id,
            bu_id=unit,
            csrf_token=csrf,
            origin=f"api {ip}",
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
        )
    )
    session.flush()
    ctx = context_of(session, user.id, unit, clock=clock, origin=f"api {ip}")
    _audit_login(session, user, ip, clock, "ok", None, ctx)
    return SignedIn(token=token, csrf_token=csrf, expires_at=expires, context=ctx)


def _login_unit(session: Session, user: UserRow, bu_code: str | None) -> str:
    """The unit asked for, or the user's first (the group's first): one they belong to."""
    query = (
        select(MembershipRow.bu_id)
        .join(BusinessUnitRow, BusinessUnitRow.id == MembershipRow.bu_id)
        .where(MembershipRow.user_id == user.id)
        .order_by(BusinessUnitRow.parent_id.is_not(None), BusinessUnitRow.code)
    )
    if bu_code is not None:
        query = query.where(BusinessUnitRow.code == bu_code)
    found = session.scalar(query.limit(1))
    if found is None:
        if bu_code is not None:
            raise ValidationFailed(
                "you hold no role in that unit",
                [FieldError(("bu",), f"not a unit of yours: {bu_code!r}")],
            )
        raise Unauthenticated("this user holds no role in any unit; ask an admin")
    return found


def logout(session: Session, token: str) -> None:
    session.execute(delete(SessionRow).where(SessionRow.id == digest(token)))


def switch_unit(session: Session, token: str, bu_code: str, clock: Clock) -> Context:
    """Act in another of the user's units from now on, in the same session."""
    row = session.get(SessionRow, digest(token))
    if row is None:
        raise Unauthenticated("sign in first")
    row.bu_id = _login_unit(session, session.get_one(UserRow, row.user_id), bu_code)
    session.flush()
    return context_of(session, row.user_id, row.bu_id, clock=clock, origin=row.origin)


def unlock(session: Session, ctx: Context, user_id: str) -> None:
    """End a user's lock-out: an unlock ends the run of failures as a success does."""
    ctx.require(MANAGE)
    email = get_user(session, ctx, user_id).email
    _attempt(session, email, ctx.origin or "", ctx.clock.now(), "unlock")
    audit.record(session, ctx, "user.unlocked", "user", user_id)


def _limit_rate(session: Session, settings: Settings, ip: str, now: datetime) -> None:
    recent = session.scalar(
        select(func.count())
        .select_from(LoginAttemptRow)
        .where(LoginAttemptRow.ip == ip, LoginAttemptRow.at > now - timedelta(minutes=1))
    )
    if (recent or 0) >= settings.login_rate_per_minute:
        raise RateLimited(
            "too many sign-in attempts from this address; wait a minute", retry_after=60
        )


def _locked_until(
    session: Session, settings: Settings, email: str, now: datetime
) -> datetime | None:
    """When the lock-out ends, if the last ``login_max_failures`` attempts for the email all
    failed and the last of them is recent enough."""
    kinds = session.execute(
        select(LoginAttemptRow.kind, LoginAttemptRow.at)
        .where(LoginAttemptRow.email == email)
        .order_by(LoginAttemptRow.id.desc())
        .limit(settings.login_max_failures)
    ).all()
    if len(kinds) < settings.login_max_failures or any(k != "failure" for k, _ in kinds):
        return None
    until = kinds[0][1] + timedelta(minutes=settings.login_lockout_minutes)
    return until if until > now else None


def _attempt(session: Session, email: str, ip: str, now: datetime, kind: str) -> None:
    # Attempts older than a day count for nothing; dropping them here keeps the table small.
    session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.at < now - timedelta(days=1)))
    session.add(LoginAttemptRow(at=now, email=email, ip=ip, kind=kind))
    session.flush()


def _audit_login(
    session: Session,
    user: UserRow | None,
    ip: str,
    clock: Clock,
    outcome: Outcome,
    reason: str | None,
    ctx: Context | None = None,
) -> None:
    """Logins are audited under the user's id when there is one; a failed attempt for an
    unknown email names nobody (the email itself is not written: it may be anyone's)."""
    actor = ctx or Context(
        bu_id=None,
        user_id=UserId(user.id if user else "anonymous"),
        clock=clock,
        origin=f"api {ip}",
    )
    audit.record(
        session,
        actor,
        "auth.login",
        "user",
        user.id if user else None,
        outcome=outcome,
        detail={"reason": reason} if reason else None,
    )


# --- contexts ------------------------------------------------------------------------------


def context_of(
    session: Session,
    user_id: str,
    bu_id: str,
    *,
    clock: Clock,
    origin: str | None = None,
    scopes: frozenset[str] | None = None,
) -> Context:
    """The context of ``user_id`` acting in unit ``bu_id``; Unauthenticated when they no
    longer hold a role there or are deactivated."""
    row = session.execute(
        select(MembershipRow.role, UserRow.is_active, BusinessUnitRow.parent_id)
        .join(UserRow, UserRow.id == MembershipRow.user_id)
        .join(BusinessUnitRow, BusinessUnitRow.id == MembershipRow.bu_id)
        .where(MembershipRow.user_id == user_id, MembershipRow.bu_id == bu_id)
    ).one_or_none()
    if row is None or not row.is_active:
        raise Unauthenticated("this sign-in is no longer valid; sign in again")
    permissions = role_permissions(session, row.role) or frozenset()
    if scopes is not None:
        permissions = expand(permissions) & scopes
    return Context(
        bu_id=BusinessUnitId(bu_id),
        user_id=UserId(user_id),
        permissions=permissions,
        is_group_wide=row.parent_id is None,
        clock=clock,
        origin=origin,
    )


def session_context(
    session: Session, settings: Settings, token: str, clock: Clock, origin: str | None
) -> tuple[Context, SessionRow]:
    row, now = session.get(SessionRow, digest(token)), clock.now()
    idle = timedelta(minutes=settings.session_idle_minutes)
    if row is None or row.expires_at <= now or row.last_seen_at + idle <= now:
        raise Unauthenticated("your session has ended; sign in again")
    if now - row.last_seen_at >= SEEN_EVERY:
        row.last_seen_at = now
    ctx = context_of(session, row.user_id, row.bu_id, clock=clock, origin=origin)
    return ctx, row


# --- API keys ------------------------------------------------------------------------------


def create_api_key(session: Session, ctx: Context, data: ApiKeyIn) -> ApiKeyMade:
    """A key for the caller, or (with ``governance.user.manage``) for a user of the caller's
    unit. Its scopes are refused when they exceed what the user may do in that unit: a key
    never grants more than its user holds."""
    now = ctx.clock.now()
    user_id = _key_owner(session, ctx, data.user)
    if data.bu is not None:
        bu_id: str | None = unit_row(session, data.bu).id
    elif ctx.bu_id is not None and user_id == ctx.user_id:
        bu_id = ctx.bu_id
    else:  # the platform (CLI) or an admin making a key for someone: the user's first unit
        held = memberships(session, user_id)
        bu_id = held[0].bu_id if held else None
    if bu_id is None or (not ctx.is_group_wide and bu_id != ctx.bu_id):
        raise ValidationFailed("the key's unit", [FieldError(("bu",), "name a unit of yours")])
    unknown = unknown_permissions(set(data.scopes))
    if unknown:
        raise ValidationFailed(
            "unknown scopes", [FieldError(("scopes",), f"not a permission: {', '.join(unknown)}")]
        )
    try:
        holder = context_of(session, user_id, bu_id, clock=ctx.clock)
    except Unauthenticated:
        raise ValidationFailed(
            "the key's unit", [FieldError(("bu",), "the user holds no role in that unit")]
        ) from None
    lacking = sorted(expand(frozenset(data.scopes)) - expand(holder.permissions))
    if lacking:
        raise ValidationFailed(
            "scopes beyond the user's role",
            [FieldError(("scopes",), f"the user may not: {', '.join(lacking)}")],
        )
    secret = secrets.token_urlsafe(32)
    row = ApiKeyRow(
        id=new_id(now),
        name=data.name,
        user_id=user_id,
        bu_id=bu_id,
        scopes=sorted(set(data.scopes)),
        secret_hash=digest(secret),
        created_at=now,
        expires_at=now + timedelta(days=data.expires_in_days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx,
        "api_key.created",
        "api_key",
        row.id,
        detail={"scopes": row.scopes, "user": user_id},
    )
    return ApiKeyMade(
        **ApiKey.model_validate(row).model_dump(), token=f"{KEY_PREFIX}{row.id}_{secret}"
    )


def list_api_keys(session: Session, ctx: Context) -> list[ApiKey]:
    """The caller's own keys; with ``governance.user.read``, every key of the caller's unit
    (all of them for the group). Newest first."""
    query = _visible_keys(ctx).order_by(ApiKeyRow.created_at.desc())
    return [ApiKey.model_validate(r) for r in session.scalars(query)]


API_KEY_SORTS: dict[str, Column] = {
    "created_at": ApiKeyRow.created_at,
    "expires_at": ApiKeyRow.expires_at,
    "name": ApiKeyRow.name,
}


def page_api_keys(session: Session, ctx: Context, page: PageRequest) -> Page[ApiKey]:
    """``list_api_keys`` a keyset page at a time (issue 8)."""
    return keyset_page(
        session,
        _visible_keys(ctx),
        page,
        API_KEY_SORTS,
        ApiKeyRow.id,
        lambda rows: [ApiKey.model_validate(r) for r in rows],
    )


def _visible_keys(ctx: Context) -> Select[tuple[ApiKeyRow]]:
    query = select(ApiKeyRow)
    if not ctx.can("governance.user.read"):
        return query.where(ApiKeyRow.user_id == ctx.user_id)
    return in_tenancy(query, ApiKeyRow.bu_id, ctx)


def revoke_api_key(session: Session, ctx: Context, key_id: str) -> ApiKey:
    row = session.get(ApiKeyRow, key_id)
    mine = row is not None and row.user_id == ctx.user_id
    managed = row is not None and ctx.can(MANAGE) and (ctx.is_group_wide or row.bu_id == ctx.bu_id)
    if row is None or not (mine or managed):
        raise NotFound(f"no API key {key_id!r}", key_id=key_id)
    if row.revoked_at is None:
        row.revoked_at = ctx.clock.now()
        session.flush()
        audit.record(session, ctx, "api_key.revoked", "api_key", row.id)
    return ApiKey.model_validate(row)


def api_key_grant(
    session: Session, token: str, clock: Clock, origin: str | None
) -> tuple[Context, datetime]:
    """The context an API key acts with, and when the key expires (``KeyContexts`` remembers
    the one until the other)."""
    now = clock.now()
    key_id, _, secret = token.removeprefix(KEY_PREFIX).partition("_")
    row = session.get(ApiKeyRow, key_id) if secret else None
    if row is None or not hmac.compare_digest(row.secret_hash, digest(secret)):
        raise Unauthenticated("the API key is not valid")
    if row.revoked_at is not None:
        raise Unauthenticated("the API key was revoked")
    if row.expires_at <= now:
        raise Unauthenticated("the API key has expired")
    if row.last_used_at is None or now - row.last_used_at >= SEEN_EVERY:
        row.last_used_at = now
    ctx = context_of(
        session, row.user_id, row.bu_id, clock=clock, origin=origin, scopes=frozenset(row.scopes)
    )
    return ctx, row.expires_at


class KeyContexts:
    """A process's memory of the API keys it has checked: the key's context for ``seconds``
    (and never past the key's expiry), so a busy integration's calls skip the three lookups
    a key costs. A change to users, memberships, roles, units or keys flushed in this process
    forgets everything at once (``access_changed``); other processes' changes are seen within
    ``seconds``. Keyed by the secret's digest: the memory holds no credential."""

    def __init__(
        self, seconds: float, size: int = 4096, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.size = size
        self.monotonic = monotonic
        self._held: dict[str, tuple[Context, datetime, float, int]] = {}
        self._lock = threading.Lock()

    def remembered(self, token: str, clock: Clock, origin: str | None) -> Context | None:
        """The key's context if this process checked the key lately and nothing changed."""
        held = self._held.get(digest(token)) if self.seconds > 0 else None
        if held is None:
            return None
        ctx, expires_at, until, seen = held
        if seen != _changes.generation or self.monotonic() >= until or clock.now() >= expires_at:
            return None
        return replace(ctx, clock=clock, origin=origin)

    def context(self, session: Session, token: str, clock: Clock, origin: str | None) -> Context:
        """The key's context: remembered, or looked up (and then remembered)."""
        if (ctx := self.remembered(token, clock, origin)) is not None:
            return ctx
        generation = _changes.generation  # before the lookup: a change meanwhile wins
        ctx, expires_at = api_key_grant(session, token, clock, origin)
        if self.seconds > 0:
            with self._lock:
                if len(self._held) >= self.size:
                    self._held.clear()  # a flood of distinct keys: start again, stay bounded
                until = self.monotonic() + self.seconds
                self._held[digest(token)] = (ctx, expires_at, until, generation)
        return ctx


@dataclass
class _Changes:
    generation: int = 0


_changes = _Changes()
ACCESS_ROWS = (UserRow, MembershipRow, RoleRow, ApiKeyRow, BusinessUnitRow)


BOOKKEEPING = frozenset({"last_used_at", "last_login_at"})  # written by reads: not access


def access_changed(*_: object) -> None:
    """Something a context is made of was written: remembered key contexts are stale."""
    _changes.generation += 1


def _updated(_mapper: object, _connection: object, target: object) -> None:
    if any(a.history.has_changes() for a in inspect(target).attrs if a.key not in BOOKKEEPING):
        access_changed()


for _row in ACCESS_ROWS:
    event.listen(_row, "after_insert", access_changed)
    event.listen(_row, "after_update", _updated)
    event.listen(_row, "after_delete", access_changed)


def _key_owner(session: Session, ctx: Context, email: str | None) -> str:
    if email is None or email.strip().lower() == _email_of(session, ctx.user_id):
        if session.get(UserRow, ctx.user_id) is None:
            raise ValidationFailed(
                "who the key acts as", [FieldError(("user",), "name the user the key acts as")]
            )
        return ctx.user_id
    ctx.require(MANAGE)
    user = session.scalar(select(UserRow.id).where(UserRow.email == email.strip().lower()))
    if user is None or not (
        ctx.is_group_wide or session.get(MembershipRow, (user, ctx.bu_id)) is not None
    ):
        raise ValidationFailed("who the key acts as", [FieldError(("user",), f"no user {email!r}")])
    return user


def _email_of(session: Session, user_id: str) -> str | None:
    return session.scalar(select(UserRow.email).where(UserRow.id == user_id))
