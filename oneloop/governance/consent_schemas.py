"""The consent registry's vocabulary and its shapes at the edges (issue 7, part 4).

Purposes, channels, statuses and legal bases are closed lists: a code the registry does not
know is refused (422 over HTTP, a dead letter from tracking), never stored. Each carries its
zh-CN and English label for the console. Purposes that are not about contacting someone
(analytics, sharing, transfer abroad) have no channel: they are recorded for the channel
``any``, which also lets a person grant or withdraw marketing as a whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Purpose = Literal["marketing", "analytics", "third_party_sharing", "cross_border_transfer"]
Channel = Literal["email", "sms", "wechat", "phone", "any"]
Status = Literal["granted", "withdrawn", "denied"]
LegalBasis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interest",
]
# Where a record came from; a tracking source's id otherwise.
RecordedVia = Literal["api", "cli", "import"]
# What answered ``may_contact``: the channel's own record, the purpose's any-channel record,
# or the default of the purpose.
DecidedBy = Literal["channel", "purpose", "default"]

ANY: Channel = "any"
GRANTED: Status = "granted"
PURPOSE_CODES: tuple[str, ...] = get_args(Purpose)
CHANNEL_CODES: tuple[str, ...] = get_args(Channel)
STATUS_CODES: tuple[str, ...] = get_args(Status)
LEGAL_BASIS_CODES: tuple[str, ...] = get_args(LegalBasis)

# code -> (中文, English): the console shows these; the API and the CLI speak the codes.
PURPOSE_LABELS: dict[str, tuple[str, str]] = {
    "marketing": ("营销", "Marketing"),
    "analytics": ("分析与画像", "Analytics and profiling"),
    "third_party_sharing": ("第三方共享", "Third-party sharing"),
    "cross_border_transfer": ("跨境传输", "Cross-border transfer"),
}
CHANNEL_LABELS: dict[str, tuple[str, str]] = {
    "email": ("邮件", "Email"),
    "sms": ("短信", "SMS"),
    "wechat": ("微信", "WeChat"),
    "phone": ("电话", "Phone"),
    "any": ("所有渠道", "Any channel"),
}
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "granted": ("已同意", "Granted"),
    "withdrawn": ("已撤回", "Withdrawn"),
    "denied": ("已拒绝", "Denied"),
}
# PIPL Art. 13 and GDPR Art. 6; "legitimate interest" is GDPR's only (PIPL has no such basis).
LEGAL_BASIS_LABELS: dict[str, tuple[str, str]] = {
    "consent": ("个人同意", "Consent"),
    "contract": ("订立、履行合同所必需", "Contract"),
    "legal_obligation": ("履行法定职责或义务", "Legal obligation"),
    "vital_interests": ("保护生命健康和财产安全", "Vital interests"),
    "public_task": ("公共利益", "Public task"),
    "legitimate_interest": ("正当利益（GDPR）", "Legitimate interest (GDPR)"),
}
# Which channels a purpose is recorded for: only marketing reaches a person through one.
PURPOSE_CHANNELS: dict[str, tuple[str, ...]] = {
    "marketing": ("email", "sms", "wechat", "phone", "any"),
    "analytics": ("any",),
    "third_party_sharing": ("any",),
    "cross_border_transfer": ("any",),
}

Proof = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    Field(
        description="the form, document or call that recorded it (a reference, not its text)",
        examples=["form:newsletter-2026-03#v2"],
    ),
]


class ConsentIn(BaseModel):
    """A grant or a withdrawal recorded on the person's behalf (a service desk call, a signed
    form): ``given_at`` is when the person said it, default now."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    channel: Channel = ANY
    status: Status
    legal_basis: LegalBasis = "consent"
    proof: Proof | None = None
    given_at: datetime | None = Field(
        default=None, description="when the person gave it, with an offset; default: now"
    )
    source: RecordedVia | None = Field(
        default=None, description="api, cli or import; default: the door it came in by"
    )


class ConsentRecord(BaseModel):
    """One entry of a person's consent history. ``is_current`` marks the record in force for
    its purpose and channel. A record another business unit made shows its decision but not
    where it came from (``recorded_elsewhere``): a unit does not learn of another's contact."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    profile_id: str
    purpose: Purpose
    channel: Channel
    status: Status
    legal_basis: LegalBasis
    given_at: datetime
    recorded_at: datetime
    bu_id: str | None
    source: str | None
    event_seq: int | None
    message_id: str | None
    proof: str | None
    recorded_by: str | None
    is_current: bool = False
    recorded_elsewhere: bool = False


class ConsentStateItem(BaseModel):
    """Where one purpose × channel stands: the record in force, or the default
    (``is_default``); ``allowed`` is what ``may_contact`` answers for it now."""

    purpose: Purpose
    channel: Channel
    status: Status | None
    legal_basis: LegalBasis | None
    given_at: datetime | None
    record_seq: int | None
    is_default: bool
    allowed: bool
    decided_by: DecidedBy


class ConsentState(BaseModel):
    profile_id: str
    items: list[ConsentStateItem]


class ConsentHistoryPage(BaseModel):
    profile_id: str
    items: list[ConsentRecord]
    next_cursor: str | None = None


class ContactDecision(BaseModel):
    """``may_contact``'s answer and why: which record decided (or that the default did)."""

    profile_id: str
    purpose: Purpose
    channel: Channel
    allowed: bool
    decided_by: DecidedBy
    reason: str
    record: ConsentRecord | None = None


class ConsentSummaryItem(BaseModel):
    """Per purpose × channel over the profiles the caller may see: the records in force by
    status, and how many ``may_contact`` allows (which also counts any-channel grants)."""

    purpose: Purpose
    channel: Channel
    granted: int
    withdrawn: int
    denied: int
    allowed: int
    opt_in_rate: float


class ConsentSummary(BaseModel):
    bu: str | None
    profiles: int
    items: list[ConsentSummaryItem]


class Label(BaseModel):
    code: str
    name_zh: str
    name_en: str


class PurposeInfo(Label):
    channels: list[str]
    default_allowed: bool
    default_reason: str


class Vocabulary(BaseModel):
    purposes: list[PurposeInfo]
    channels: list[Label]
    statuses: list[Label]
    legal_bases: list[Label]
