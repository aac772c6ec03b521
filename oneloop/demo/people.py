"""The demo population: people, the companies they work for, the households they share.

Every person is drawn from their own random stream (`person_rng(seed, i)`), so person 42 is
the same whatever the customer count. A few things are shared between people on purpose,
because they make identity resolution hard: company switchboards and household devices
(junk e-mail addresses are in `mess`, with the other ways sources garble identifiers).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import accumulate

from oneloop.demo import vocab
from oneloop.demo.devices import Device
from oneloop.demo.draw import OPENID_ALPHABET, Registry, person_rng, shared_rng, token, weighted
from oneloop.demo.vocab import City, Industry

_SURNAME_VALUES = tuple((s, p) for s, p, _ in vocab.SURNAMES)
_SURNAME_CUM = list(accumulate(w for _, _, w in vocab.SURNAMES))
_CITY_CUM_CN = list(accumulate(c.weight for c in vocab.CITIES_CN))
_CITY_CUM_FOREIGN = list(accumulate(c.weight for c in vocab.CITIES_FOREIGN))
_MAIL_CN, _MAIL_CN_CUM = weighted(vocab.PERSONAL_MAIL_CN)


# --- companies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Company:
    code: str  # 客户编号 in the CRM, also the Segment groupId
    name: str
    industry: Industry
    city: City
    employees: int
    revenue_wan: int  # annual revenue in 10,000 CNY (万元), as Chinese CRMs record it
    switchboard: tuple[str, str]  # (country code, national number): one line, many people
    domain: str
    owner: str

    @property
    def country(self) -> str:
        return self.city.country


def build_companies(seed: int, count: int) -> tuple[list[Company], list[Company]]:
    """Chinese and foreign customer companies, most popular first (see `zipf_cum_weights`)."""
    rng = shared_rng(seed, "companies")
    taken = Registry()
    cn: list[Company] = []
    foreign: list[Company] = []
    n_foreign = max(2, count // 10)
    for i in range(count + n_foreign):
        is_foreign = i >= count
        employees = int(rng.lognormvariate(5.5, 1.2)) + 20
        for _ in range(1000):  # draw again until the name is free
            industry = rng.choice(vocab.INDUSTRIES)
            if is_foreign:
                city = rng.choices(vocab.CITIES_FOREIGN, cum_weights=_CITY_CUM_FOREIGN)[0]
                form, tld = vocab.COMPANY_FORMS[city.country]
                trade = rng.choice(vocab.TRADE_NAMES_FOREIGN)
                name = f"{trade} {industry.company_word_en} {form}"
                domain = f"{trade.lower()}-{industry.domain_tag}.{tld}"
            else:
                city = rng.choices(vocab.CITIES_CN, cum_weights=_CITY_CUM_CN)[0]
                trade, trade_py = rng.choice(vocab.TRADE_NAMES_CN)
                form = "有限公司" if rng.random() < 0.8 else "股份有限公司"
                name = f"{city.zh}{trade}{industry.company_suffix_zh}{form}"
                domain = f"{trade_py}-{industry.domain_tag}.com.cn"
            if domain in taken:
                domain = domain.replace("-", f"-{city.en.lower().replace(chr(39), '')}-", 1)
            if name not in taken and domain not in taken:
                break
        else:
            raise RuntimeError("ran out of company names; add trade names to vocab")
        taken.claim(lambda n=name: n)
        taken.claim(lambda d=domain: d)
        if is_foreign:
            country = city.country
            switchboard = (city.area_code, taken.claim(lambda c=country: _foreign_landline(rng, c)))
            owner = rng.choice(vocab.SALES_REPS_FOREIGN)
        else:
            local = taken.claim(lambda: f"{rng.randint(5, 8)}{rng.randint(0, 9_999_999):07d}")
            switchboard = ("86", city.area_code[1:] + local)
            owner = rng.choice(vocab.SALES_REPS_CN)
        company = Company(
            code=f"KH{26_000_000 + i * 37 + rng.randint(0, 36):08d}",
            name=name,
            industry=industry,
            city=city,
            employees=employees,
            revenue_wan=int(employees * rng.uniform(40, 160)),
            switchboard=switchboard,
            domain=domain,
            owner=owner,
        )
        (foreign if is_foreign else cn).append(company)
    return cn, foreign


def zipf_cum_weights(n: int, exponent: float = 0.5) -> list[float]:
    """A few big accounts with many contacts, a long tail with one or two."""
    return list(accumulate(1.0 / (rank + 1) ** exponent for rank in range(n)))


def _foreign_landline(rng: random.Random, country: str) -> str:
    if country == "GB":
        return f"2079460{rng.randint(0, 999):03d}"  # Ofcom's range reserved for drama
    if country == "US":
        area = rng.choice(("212", "312", "415", "617"))
        return f"{area}555{rng.randint(100, 199):04d}"  # 555-01xx: reserved for fiction
    return f"89{rng.randint(1000000, 9999999)}"


@dataclass(slots=True)
class Household:
    """People who share one family computer: one cookie, several people."""

    city: City
    device: Device
    members: int = 1


@dataclass(slots=True)
class Person:
    pid: str
    index: int
    rng: random.Random
    country: str
    gender: str
    family: str
    given: str
    family_latin: str
    given_latin: str
    city: City
    phone: tuple[str, str]  # (country code, national number), e.g. ("86", "13800138000")
    email: str
    work_email: str | None
    segment: str  # consumer (appliances), pro (industrial) or both
    company: Company | None
    title: tuple[str, str] | None
    engagement: float  # scales how many sessions this person has; heavy-tailed
    unionid: str
    household: Household | None
    openids: dict[str, str] = field(default_factory=dict)  # business unit -> openid
    member_no: str | None = None  # the appliances loyalty number, once they have one

    @property
    def is_foreign(self) -> bool:
        return self.country != "CN"

    @property
    def name(self) -> str:
        """As the person writes it: 张伟, or Thomas Müller."""
        if self.is_foreign:
            return f"{self.given} {self.family}"
        return self.family + self.given

    @property
    def name_latin(self) -> str:
        """What a Chinese person types into an English form: Wei Zhang."""
        if self.is_foreign:
            return self.name
        return f"{self.given_latin.capitalize()} {self.family_latin.capitalize()}"

    @property
    def locale(self) -> str:
        return vocab.LOCALES[self.country]

    def openid(self, bu: str) -> str:
        """An openid exists per official account (app id): the same person has one per BU."""
        if bu not in self.openids:
            self.openids[bu] = "o" + token(self.rng, 27, OPENID_ALPHABET)
        return self.openids[bu]


def build_person(
    seed: int,
    index: int,
    registry: Registry,
    companies_cn: list[Company],
    companies_foreign: list[Company],
    company_cum_cn: list[float],
    company_cum_foreign: list[float],
) -> Person:
    """One customer; identifiers are claimed in `registry` so no two people share by accident."""
    rng = person_rng(seed, index)
    is_foreign = rng.random() < 0.1
    segment = rng.choices(("consumer", "pro", "both"), cum_weights=(0.58, 0.9, 1.0))[0]
    if is_foreign and segment == "consumer" and rng.random() < 0.7:
        segment = "pro"  # abroad the group sells mostly machines
    gender = "female" if rng.random() < 0.5 else "male"
    if is_foreign:
        city = rng.choices(vocab.CITIES_FOREIGN, cum_weights=_CITY_CUM_FOREIGN)[0]
        given, given_latin = rng.choice(vocab.FIRST_NAMES_EN)
        family, family_latin = rng.choice(vocab.LAST_NAMES_EN)
    else:
        city = rng.choices(vocab.CITIES_CN, cum_weights=_CITY_CUM_CN)[0]
        family, family_latin = rng.choices(_SURNAME_VALUES, cum_weights=_SURNAME_CUM)[0]
        given = rng.choice(vocab.GIVEN_FEMALE if gender == "female" else vocab.GIVEN_MALE)
        given_latin = "".join(vocab.PINYIN[ch] for ch in given)
    country = city.country
    phone = (city.area_code if is_foreign else "86", registry.claim(lambda: _mobile(rng, country)))
    email = registry.claim(lambda: _personal_email(rng, country, given_latin, family_latin))

    company: Company | None = None
    title: tuple[str, str] | None = None
    work_email: str | None = None
    if segment != "consumer":
        pool, cum = (
            (companies_foreign, company_cum_foreign)
            if is_foreign
            else (companies_cn, company_cum_cn)
        )
        company = rng.choices(pool, cum_weights=cum)[0]
        if company.country == country and rng.random() < 0.85:
            city = company.city  # most work at the head office; the rest at a branch
        title = rng.choice(vocab.JOB_TITLES)
        work_email = registry.claim(
            lambda c=company: _work_email(rng, given_latin, family_latin, c.domain)
        )
    return Person(
        pid=f"P{index + 1:06d}",
        index=index,
        rng=rng,
        country=country,
        gender=gender,
        family=family,
        given=given,
        family_latin=family_latin,
        given_latin=given_latin,
        city=city,
        phone=phone,
        email=email,
        work_email=work_email,
        segment=segment,
        company=company,
        title=title,
        engagement=min(8.0, rng.lognormvariate(0.0, 0.85)),
        unionid="o" + token(rng, 27, OPENID_ALPHABET),
        household=None,
    )


def _mobile(rng: random.Random, country: str) -> str:
    if country == "CN":
        return rng.choice(vocab.MOBILE_PREFIXES_CN) + f"{rng.randint(0, 99_999_999):08d}"
    if country == "GB":
        return f"7{rng.randint(400, 999)}{rng.randint(0, 999_999):06d}"
    if country == "US":
        return (
            f"{rng.choice(('212', '312', '415', '617', '646'))}{rng.randint(2_000_000, 9_999_999)}"
        )
    return f"15{rng.choice('1279')}{rng.randint(0, 99_999_999):08d}"


def _personal_email(rng: random.Random, country: str, given: str, family: str) -> str:
    if country != "CN":
        domain = rng.choice(vocab.PERSONAL_MAIL_FOREIGN[country])
        local = rng.choice(
            (f"{given}.{family}", f"{given}{family[0]}{rng.randint(1, 99)}", f"{given[0]}{family}")
        )
        return f"{local}@{domain}"
    domain = rng.choices(_MAIL_CN, cum_weights=_MAIL_CN_CUM)[0]
    if domain == "qq.com" and rng.random() < 0.6:
        return f"{rng.randint(10_000_000, 3_999_999_999)}@qq.com"  # QQ numbers as addresses
    style = rng.random()
    if style < 0.4:
        local = f"{family}{given}{rng.randint(1, 999)}"
    elif style < 0.6:
        local = f"{given}.{family}"
    elif style < 0.8:
        local = f"{family}_{given}{rng.randint(1970, 2005)}"
    else:
        local = f"{family[0]}{given[0]}{rng.randint(1000, 999_999)}"
    return f"{local}@{domain}"


def _work_email(rng: random.Random, given: str, family: str, domain: str) -> str:
    style = rng.random()
    if style < 0.5:
        local = f"{given}.{family}"
    elif style < 0.8:
        local = f"{family}{given[0]}"
    else:
        local = f"{given[0]}{family}{rng.randint(1, 9)}"
    return f"{local}@{domain}"
