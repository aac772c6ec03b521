"""Identifier normalisation: every ``[type, raw]`` an event carries becomes one canonical string,
or a rejection with a reason, before it may become a node of the identity graph.

Three promises the resolver builds on:

- **Never raises.** Identifiers are hostile input (anyone with a write key sets them), and a
  rejection is data: the caller dead-letters it with ``reason`` (a stable machine code, see
  ``REASONS``) and ``detail`` (English for a human). ``type_code`` must be a ``str``; ``raw``
  may be anything.
- **Idempotent.** ``normalize(t, normalize(t, raw).value)`` gives the same value for the same
  options and scope, so values already stored in the database pass through unchanged and
  re-normalising the whole graph after an upgrade is a no-op.
- **Conservative.** A false merge (two customers made one) is worse than a missed one, so a
  value is accepted only when it is unambiguous: junk around a phone number is refused rather
  than guessed away, and provider-specific email rules are opt-in.

Which normaliser reads a type is its *kind*: built-in types are in ``BUILTIN_KINDS``; a group's
own types name their kind in the identity rules (``rules.yaml``). Placeholder values typed into
forms (``test@test.com``) are not refused here: they are valid identifiers that the rules'
``blocked`` lists mark as nobody's.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType


@dataclass(frozen=True, slots=True)
class NormalizeOptions:
    """Per-group choices; the defaults suit a Chinese business that does not want to guess."""

    default_region: str = "CN"  # ISO 3166-1 alpha-2, upper case: phones without a country code
    email_gmail_dots: bool = False  # j.o.h.n@gmail.com == john@gmail.com, googlemail → gmail
    email_plus_tags: bool = False  # john+news@gmail.com == john@gmail.com (PLUS_TAG_DOMAINS)


DEFAULT_OPTIONS = NormalizeOptions()


@dataclass(frozen=True, slots=True)
class Normalized:
    type: str  # the identifier type code as given (built-in or the group's own)
    value: str | None  # canonical value; None when rejected
    reason: str | None  # None when accepted, else one of REASONS
    detail: str | None  # why, in English, for the dead-letter view

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class _Rejected:
    reason: str
    detail: str


REASONS = frozenset(
    {
        "not_a_string",
        "empty",
        "too_long",
        "control_chars",
        "unknown_type",
        "unknown_kind",
        "phone_invalid",
        "phone_masked",
        "phone_masked_invalid",
        "email_invalid",
        "openid_invalid",
        "openid_without_app",
    }
)

BUILTIN_KINDS: dict[str, str] = {
    "user_id": "opaque",
    "anonymous_id": "opaque",
    "previous_id": "opaque",
    "device_id": "opaque_ci",
    "crm_id": "opaque",
    "member_no": "digits_or_opaque",
    "email": "email",
    "phone": "phone",
    "phone_masked": "phone_masked",
    "wechat_unionid": "opaque",
    "wechat_openid": "wechat_openid",
}

# Domains whose mail servers deliver local+tag to local (sub-addressing, RFC 5233). QQ Mail and
# NetEase (163/126) document no such rule, so their "+" is part of the mailbox name.
PLUS_TAG_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "fastmail.com",
    }
)
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

MAX_LENGTH = 255  # of a canonical value: the identity_node column
_MAX_RAW = 1024  # longer input is refused before any Unicode work, so junk costs little
_MAX_PHONE_RAW = 64  # bounds the memory of the phone cache
_MAX_EMAIL_RAW = 320  # an address is at most 254; room for padding; bounds the email cache
_CACHE_SIZE = 65_536
_SHOWN = 64  # characters of the input quoted in a detail
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

_E164 = re.compile(r"\+[0-9]{8,15}")
_MASK = re.compile(r"\*|[xX]{2,}")
_EXTENSION = re.compile(
    r"\s*(?:转|轉|分机|分機|ext\.?|extn\.?|extension|x|#)\s*:?\s*[0-9]{1,6}\s*$", re.IGNORECASE
)
_DASH_EXTENSION = re.compile(r"(.*[0-9])\s*-\s*[0-9]{1,6}")
_PHONE_CHARS = re.compile(r"[0-9\s+()\-./]+")
_NON_DIGITS = re.compile(r"[^0-9]+")
_CN_MOBILE_WITH_CC = re.compile(r"861[3-9][0-9]{9}")
_CN_MOBILE_E164 = re.compile(r"\+861[3-9][0-9]{9}")
_MASKED_CN_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9][0-9])[*xX]{4}([0-9]{4})")
_MASK_SEPARATORS = re.compile(r"[\s\-()]+")
_MEMBER_SEPARATORS = re.compile(r"[\s\-‐‑–—]+")
_WECHAT_APPID = re.compile(r"wx[0-9a-f]{16}")
_OPENID = re.compile(r"[A-Za-z0-9_\-]{6,64}")
_SCOPED_OPENID = re.compile(r"([Ww][Xx][0-9A-Fa-f]{16}):([A-Za-z0-9_\-]{6,64})")
# A subset of what email-validator accepts whose canonical form is itself: values we stored
# skip the library (~20 µs). Labels with "--" (Punycode, R-LDH) and long local parts take the
# slow path; a test holds the two paths to the same answer.
_CANONICAL_EMAIL = re.compile(
    r"(?=.{6,254}\Z)(?=[^@]{1,64}@)[a-z0-9_+\-]+(?:\.[a-z0-9_+\-]+)*"
    r"@(?!.*--)(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_SPECIAL_USE = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)


def normalize(
    type_code: str,
    raw: object,
    *,
    scope: str | None = None,
    options: NormalizeOptions = DEFAULT_OPTIONS,
    kind: str | None = None,
) -> Normalized:
    """Canonical value of one identifier, or why it cannot be one.

    ``kind`` names the normaliser for a group's own type; built-in types find theirs in
    ``BUILTIN_KINDS``. ``scope`` is the WeChat app id that an unscoped openid belongs to; other
    kinds ignore it.
    """
    kind = kind if kind is not None else BUILTIN_KINDS.get(type_code)
    if kind is None:
        detail = f"no kind configured for type {_show(type_code)!r}"
        return Normalized(type_code, None, "unknown_type", detail)
    normaliser = _NORMALISERS.get(kind)
    if normaliser is None:
        return Normalized(type_code, None, "unknown_kind", f"no normaliser named {_show(kind)!r}")
    text = _as_text(raw)
    if isinstance(text, _Rejected):
        return Normalized(type_code, None, text.reason, text.detail)
    result = normaliser(text, scope, options)
    if isinstance(result, _Rejected):
        return Normalized(type_code, None, result.reason, result.detail)
    return Normalized(type_code, result, None, None)


def normalize_many(
    pairs: Iterable[tuple[str, object]],
    *,
    scope: str | None = None,
    options: NormalizeOptions = DEFAULT_OPTIONS,
    kinds: Mapping[str, str] | None = None,
) -> tuple[list[Normalized], list[Normalized]]:
    """(accepted, rejected) for an event's identifiers.

    Accepted values keep input order with repeats of the same (type, value) dropped, so an
    event that sends one phone in two spellings adds one node. ``kinds`` (the group's
    type → kind) wins over ``BUILTIN_KINDS``.
    """
    accepted: list[Normalized] = []
    rejected: list[Normalized] = []
    seen: set[tuple[str, str | None]] = set()
    for type_code, raw in pairs:
        kind = kinds.get(type_code) if kinds is not None else None
        found = normalize(type_code, raw, scope=scope, options=options, kind=kind)
        if not found.ok:
            rejected.append(found)
        elif (found.type, found.value) not in seen:
            seen.add((found.type, found.value))
            accepted.append(found)
    return accepted, rejected


def mask_matches(masked: str, e164: str) -> bool:
    """Whether a CN mobile in E.164 (``+8613800138000``) fits a mask (``138****8000``).

    A fit is weak evidence only: some ten thousand numbers share each mask.
    """
    canonical = _phone_masked(masked, None, DEFAULT_OPTIONS)
    if isinstance(canonical, _Rejected) or not _CN_MOBILE_E164.fullmatch(e164):
        return False
    return e164[3:6] == canonical[:3] and e164[-4:] == canonical[-4:]


# --- the kinds ------------------------------------------------------------------------------


def _opaque(text: str, scope: str | None, options: NormalizeOptions) -> str | _Rejected:
    """Case is kept: systems that mint these ids (user ids, CRM keys) may be case-sensitive."""
    return _clean(text)


def _opaque_ci(text: str, scope: str | None, options: NormalizeOptions) -> str | _Rejected:
    """Device ids (IDFA, OAID, Android ids) are hex or UUIDs that SDKs send in either case."""
    cleaned = _clean(text)
    return cleaned if isinstance(cleaned, _Rejected) else _lower(cleaned)


def _digits_or_opaque(text: str, scope: str | None, options: NormalizeOptions) -> str | _Rejected:
    """Member numbers are printed in groups (``8801 2345 6789``) and typed back either way."""
    cleaned = _clean(text)
    if isinstance(cleaned, _Rejected):
        return cleaned
    compact = _MEMBER_SEPARATORS.sub("", cleaned)
    return compact if compact.isascii() and compact.isdigit() else cleaned


def _phone(text: str, scope: str | None, options: NormalizeOptions) -> str | _Rejected:
    if len(text) > _MAX_PHONE_RAW:
        return _Rejected("too_long", f"a phone number longer than {_MAX_PHONE_RAW} characters")
    return _phone_cached(text, options.default_region.upper())  # phonenumbers wants "CN"


@lru_cache(maxsize=_CACHE_SIZE)
def _phone_cached(text: str, region: str) -> str | _Rejected:
    """E.164 of a phone number written any way people write one in China.

    An extension (``转8001``, ``ext. 8001``, ``-8001`` after a landline) is dropped: the
    identifier is the switchboard's number, shared by everyone behind it, and the graph's
    limits treat it as such. Letters are refused, not read as a keypad (``1-800-FLOWERS``):
    ``13800138000abc`` is more likely junk than a vanity number.
    """
    if _E164.fullmatch(text):
        number = text
    else:
        cleaned = _clean(text)
        if isinstance(cleaned, _Rejected):
            return cleaned
        if _MASK.search(cleaned):
            return _Rejected(
                "phone_masked", f"masked digits belong to kind phone_masked: {cleaned}"
            )
        number = _EXTENSION.sub("", cleaned)
        if not _PHONE_CHARS.fullmatch(number):
            return _Rejected("phone_invalid", f"unexpected characters in a phone number: {cleaned}")
        digits = _NON_DIGITS.sub("", number)
        if not number.startswith("+") and _CN_MOBILE_WITH_CC.fullmatch(digits):
            number = "+" + digits  # 86 typed without the plus: no national number looks like it
    parsed = _parse_valid(number, region)
    if parsed is None and (dashed := _DASH_EXTENSION.fullmatch(number)):
        parsed = _parse_valid(dashed.group(1), region)
        if parsed is not None and phonenumbers.number_type(parsed) == PhoneNumberType.MOBILE:
            parsed = None  # a mobile has no extension: the trailing group is a typo
    if parsed is None:
        return _Rejected(
            "phone_invalid", f"not a valid number for region {region}: {_show(text.strip())}"
        )
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def _parse_valid(number: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except NumberParseException:
        return None  # the caller reports the number with its region; the library's text adds little
    return parsed if phonenumbers.is_valid_number(parsed) else None


def _phone_masked(text: str, scope: str | None, options: NormalizeOptions) -> str | _Rejected:
    """CN mobiles only, as apps and receipts print them; ``138****8000`` is kept apart from
    phones because it fits some ten thousand people."""
    cleaned = _clean(text)
    if isinstance(cleaned, _Rejected):
        return cleaned
    found = _MASKED_CN_MOBILE.fullmatch(_MASK_SEPARATORS.sub("", cleaned))
    if found is None:
        return _Rejected(
            "phone_masked_invalid", f"expected a CN mobile masked like 138****8000: {cleaned}"
        )
    return f"{found.group(1)}****{found.group(2)}"


def _email(text: str, scope: str | None, options: NormalizeOptions) -> str | _Rejected:
    if len(text) > _MAX_EMAIL_RAW:
        return _Rejected("too_long", f"an email address longer than {_MAX_EMAIL_RAW} characters")
    return _email_cached(text, options.email_gmail_dots, options.email_plus_tags)


@lru_cache(maxsize=_CACHE_SIZE)
def _email_cached(text: str, gmail_dots: bool, plus_tags: bool) -> str | _Rejected:
    """``local@domain`` with both parts lower-cased and the domain in Unicode (U-labels).

    RFC 5321 lets a server treat ``Zhang.Wei`` and ``zhang.wei`` as two mailboxes, but no
    provider our customers use does, and forms and CRMs change case freely
    (``ZHANG.WEI@QQ.COM``): keeping case would split one person into two. The domain is kept
    in Unicode because a local part may be Unicode too, so an all-ASCII form does not always
    exist; the library decodes Punycode input, so ``xn--fiqs8s.cn`` and ``中国.cn`` meet.
    """
    if _CANONICAL_EMAIL.fullmatch(text) and not _is_special_use(text.rpartition("@")[2]):
        local, _, domain = text.rpartition("@")
    else:
        cleaned = _clean(text)
        if isinstance(cleaned, _Rejected):
            return cleaned
        try:
            found = validate_email(cleaned, check_deliverability=False)
        except EmailNotValidError as exc:
            return _Rejected("email_invalid", f"{exc} ({_show(cleaned)})")
        local, domain = _lower(found.local_part), found.domain
    if gmail_dots and domain in _GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    if plus_tags and domain in PLUS_TAG_DOMAINS:
        base = local.partition("+")[0]
        if base and not base.endswith("."):  # "+x" and "a.+x" have no valid mailbox without it
            local = base
    value = f"{local}@{domain}"
    if not local.isascii():
        # Lower-casing can lengthen Unicode (İ → i̇): make sure what we return is accepted too.
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            return _Rejected("email_invalid", f"{exc} after lower-casing ({_show(value)})")
    return value


def _is_special_use(domain: str) -> bool:
    return any(domain == name or domain.endswith("." + name) for name in _SPECIAL_USE)


def _wechat_openid(text: str, scope: str | None, options: NormalizeOptions) -> str | _Rejected:
    """``<appid>:<openid>``: an openid names a user within one official account or mini
    program only, so without its app it would merge strangers across apps.

    An already scoped value keeps its own app, which makes stored values pass through.
    """
    cleaned = _clean(text)
    if isinstance(cleaned, _Rejected):
        return cleaned
    scoped = _SCOPED_OPENID.fullmatch(cleaned)
    if scoped is not None:
        return f"{scoped.group(1).lower()}:{scoped.group(2)}"
    if not _OPENID.fullmatch(cleaned):
        return _Rejected(
            "openid_invalid", f"expected 6-64 letters, digits, '_' or '-': {_show(cleaned)}"
        )
    appid = scope.strip().lower() if isinstance(scope, str) else ""
    if not _WECHAT_APPID.fullmatch(appid):
        return _Rejected(
            "openid_without_app",
            f"an openid needs its WeChat app id (wx + 16 hex) as scope, got {_show(repr(scope))}",
        )
    return f"{appid}:{cleaned}"


_NORMALISERS: dict[str, Callable[[str, str | None, NormalizeOptions], str | _Rejected]] = {
    "opaque": _opaque,
    "opaque_ci": _opaque_ci,
    "digits_or_opaque": _digits_or_opaque,
    "email": _email,
    "phone": _phone,
    "phone_masked": _phone_masked,
    "wechat_openid": _wechat_openid,
}
KINDS = frozenset(_NORMALISERS)


# --- shared steps ---------------------------------------------------------------------------


def _as_text(raw: object) -> str | _Rejected:
    """Strings as they are, integers in decimal; anything else is refused, floats too
    (``1.38e10`` from a spreadsheet has lost its digits)."""
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, int) and not isinstance(raw, bool):
        try:
            text = str(raw)
        except ValueError:  # beyond sys.get_int_max_str_digits()
            return _Rejected("too_long", "an integer too large to be an identifier")
    else:
        return _Rejected("not_a_string", f"expected a string, got {type(raw).__name__}")
    if len(text) > _MAX_RAW:
        return _Rejected("too_long", f"{len(text)} characters, more than {_MAX_RAW}")
    return text


def _clean(text: str) -> str | _Rejected:
    """NFKC, so what a Chinese IME types in full width (``１３８``, ``＠``, U+3000) reads as
    ASCII, then trimmed; invisible characters inside are refused, not dropped, since two ids
    that differ by one are not known to be the same."""
    cleaned = (text if text.isascii() else unicodedata.normalize("NFKC", text)).strip()
    if not cleaned:
        return _Rejected("empty", "empty or only whitespace")
    if len(cleaned) > MAX_LENGTH:
        return _Rejected("too_long", f"{len(cleaned)} characters, more than {MAX_LENGTH}")
    if not cleaned.isprintable():
        for char in cleaned:
            if unicodedata.category(char) in _BAD_CATEGORIES:
                return _Rejected("control_chars", f"contains U+{ord(char):04X}")
    return cleaned


def _lower(text: str) -> str:
    """Lower case that stays in NFKC, so a second pass changes nothing."""
    for _ in range(4):
        lowered = text.lower()
        if lowered == text and (text.isascii() or unicodedata.is_normalized("NFKC", text)):
            break
        text = lowered if lowered.isascii() else unicodedata.normalize("NFKC", lowered)
    return text


def _show(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
