"""How each source garbles a clean identifier: the identity mess the demo is about.

A person has one phone, one or two e-mail addresses and one name; what the web forms, the
CRM, the tills and the call centre write down differs from source to source, on purpose.
"""

from __future__ import annotations

import random

from oneloop.demo import vocab
from oneloop.demo.draw import weighted
from oneloop.demo.people import Person

# Per source, the phone formats its users or systems produce, with weights.
# CN styles: plain 13800138000, spaced `138 0013 8000`, `+86 13800138000`, `8613800138000`,
# `+86-138-0013-8000`, E.164 `+8613800138000`, dashed `138-0013-8000`.
PHONE_STYLES: dict[str, tuple[tuple[str, float], ...]] = {
    "form": (("plain", 0.8), ("e164", 0.1), ("spaced", 0.1)),
    "crm": (("spaced", 0.35), ("plus_space", 0.25), ("plain", 0.25), ("plus_dash", 0.15)),
    "pos": (("plain", 0.7), ("dashed", 0.2), ("cc", 0.1)),
    "ticket": (("cc", 0.35), ("plain", 0.45), ("plus_space", 0.2)),
}
_PHONE_STYLES_CUM = {k: weighted(v) for k, v in PHONE_STYLES.items()}


def format_phone(rng: random.Random, phone: tuple[str, str], source: str) -> str:
    """The phone as `source` writes it down; the digits always stay the person's."""
    styles, cum = _PHONE_STYLES_CUM[source]
    return render_phone(phone, rng.choices(styles, cum_weights=cum)[0])


def render_phone(phone: tuple[str, str], style: str) -> str:
    cc, n = phone
    if cc == "86" and len(n) == 11 and n[0] == "1":
        return {
            "plain": n,
            "spaced": f"{n[:3]} {n[3:7]} {n[7:]}",
            "plus_space": f"+86 {n}",
            "cc": f"86{n}",
            "plus_dash": f"+86-{n[:3]}-{n[3:7]}-{n[7:]}",
            "e164": f"+86{n}",
            "dashed": f"{n[:3]}-{n[3:7]}-{n[7:]}",
        }[style]
    if cc == "86":  # a landline: area code without the trunk 0, then the local number
        area = n[:2] if n[0] in "12" else n[:3]
        local = n[len(area) :]
        return {
            "plain": f"0{area}{local}",
            "spaced": f"0{area}-{local[:4]} {local[4:]}",
            "plus_space": f"+86 {area} {local}",
            "cc": f"86{area}{local}",
            "plus_dash": f"+86-{area}-{local[:4]}-{local[4:]}",
            "e164": f"+86{n}",
            "dashed": f"0{area}-{local}",
        }[style]
    if cc == "1":
        return {
            "plain": f"{n[:3]}-{n[3:6]}-{n[6:]}",
            "spaced": f"({n[:3]}) {n[3:6]}-{n[6:]}",
            "plus_space": f"+1 ({n[:3]}) {n[3:6]}-{n[6:]}",
            "cc": f"1{n}",
            "plus_dash": f"+1-{n[:3]}-{n[3:6]}-{n[6:]}",
            "e164": f"+1{n}",
            "dashed": f"{n[:3]}.{n[3:6]}.{n[6:]}",
        }[style]
    split = 4 if cc == "44" else 3
    return {
        "plain": f"0{n}",
        "spaced": f"0{n[:split]} {n[split:]}",
        "plus_space": f"+{cc} {n[:split]} {n[split:]}",
        "cc": f"00{cc}{n}",
        "plus_dash": f"+{cc}-{n[:split]}-{n[split:]}",
        "e164": f"+{cc}{n}",
        "dashed": f"0{n[:split]}/{n[split:]}",
    }[style]


def mask_phone(phone: tuple[str, str]) -> str:
    """Marketplaces (天猫, 京东) hand merchants `138****8000`, never the full number."""
    n = phone[1]
    return f"{n[:3]}****{n[-4:]}"


def mess_email(rng: random.Random, email: str, rate: float) -> str:
    """Upper case, capitalised parts and stray spaces, as typed into forms and CRMs."""
    if rng.random() >= rate:
        return email
    local, _, domain = email.partition("@")
    kind = rng.randrange(4)
    if kind == 0:
        return email.upper()
    if kind == 1:
        return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.upper()
    if kind == 2:
        return " " + email + " "
    return local.capitalize() + "@" + domain + " "


def typo_name(rng: random.Random, person: Person) -> str:
    """A wrong but same-sounding character (张伟 → 张玮), or two swapped Latin letters."""
    if person.is_foreign:
        first, last = person.given, person.family
        in_last = rng.random() < 0.6
        word = last if in_last else first
        if len(word) < 4:
            return person.name
        i = rng.randrange(1, len(word) - 2)
        swapped = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return f"{first} {swapped}" if in_last else f"{swapped} {last}"
    name = person.name
    spots = [i for i, ch in enumerate(name) if ch in vocab.TYPO_CHARS]
    if not spots:
        return name
    i = rng.choice(spots)
    return name[:i] + vocab.TYPO_CHARS[name[i]] + name[i + 1 :]
