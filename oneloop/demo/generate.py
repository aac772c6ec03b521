"""Deterministic, bilingual demo data for the Galaxy Group (星河集团).

`generate(out_dir, customers=N, seed=S)` writes what the group's real sources would hand
OneLoop: Segment-style tracking events per business unit, CRM, POS, ticketing, survey and
ad-spend exports, plus `truth/identities.csv` (who every identifier really belongs to) and
`manifest.json`. The same N and S always give byte-identical files: every random draw comes
from seeded streams, and every date from the fixed period 2026-01-01..2026-09-30 UTC.

The modules split by concept: `people` (population), `mess` (how sources garble
identifiers), `devices` and `events` (the Segment spec and event files), `shopping` (B2C),
`pipeline` and `crm` (B2B and the hand-off to sales), `aftersales` (tickets and surveys),
`records` (CSV exports), `costs` (ad spend), `world` (what journeys share), `clock`, `draw`
(seeded randomness) and `vocab` (the bilingual word lists).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oneloop.demo import vocab
from oneloop.demo.aftersales import simulate_aftersales
from oneloop.demo.catalog import GROUP, UNITS
from oneloop.demo.clock import PERIOD_END, PERIOD_START
from oneloop.demo.costs import build_costs
from oneloop.demo.devices import new_device
from oneloop.demo.draw import Registry
from oneloop.demo.events import Emitter, EventFile, Truth
from oneloop.demo.people import Household, Person, build_companies, build_person, zipf_cum_weights
from oneloop.demo.pipeline import simulate_prospect
from oneloop.demo.shopping import simulate_shopper
from oneloop.demo.world import Purchase, World

PROGRESS_EVERY = 500
MANIFEST = "manifest.json"

# relative path -> (encoding, one-line description)
FILES: dict[str, tuple[str, str]] = {
    "events/appliances.jsonl": (
        "utf-8",
        "Segment-spec tracking events of the appliances BU (web, app, WeChat), by timestamp",
    ),
    "events/industrial.jsonl": (
        "utf-8",
        "Segment-spec tracking events of the industrial BU (web forms, summits, sales trace)",
    ),
    "events/service.jsonl": (
        "utf-8",
        "Segment-spec tracking events of the service BU (service portal, service WeChat)",
    ),
    "crm/contacts.csv": (
        "utf-8-sig",
        "CRM contact export with a UTF-8 BOM; Created Date in Beijing time (YYYY/MM/DD HH:MM)",
    ),
    "crm/companies.csv": (
        "gb18030",
        "CRM account export, GB18030 with Chinese headers (客户编号, 公司名称, ...)",
    ),
    "crm/opportunities.csv": (
        "utf-8-sig",
        "CRM opportunities: stage (Chinese, or English for foreign accounts), amount, close date",
    ),
    "pos/orders.csv": (
        "utf-8",
        "Appliance order lines from 官网, 天猫, 京东 and stores; order_time in Beijing time",
    ),
    "service/tickets.csv": (
        "utf-8",
        "Service tickets from 400热线, 微信, 邮件 and web; times in Beijing time",
    ),
    "service/surveys.jsonl": (
        "utf-8",
        "Survey answers after resolved tickets: CSAT 1-5, NPS 0-10, comment (zh or en)",
    ),
    "marketing/costs.csv": (
        "utf-8",
        "Ad spend per channel, campaign and Beijing day in CNY (clicks include untracked ones)",
    ),
    "truth/identities.csv": (
        "utf-8",
        "Ground truth: which person each identifier occurrence belongs to (events: first "
        "occurrence per person and file, record_key = messageId)",
    ),
}

IDENTITY_MESS: tuple[dict[str, str], ...] = (
    {
        "code": "phone_formats",
        "en": "One person's phone is written differently per source: 138 0013 8000, "
        "+86 13800138000, 8613800138000, +86-138-0013-8000, 13800138000.",
        "zh": "同一手机号在不同来源中格式不同：138 0013 8000、+86 13800138000、8613800138000、"
        "+86-138-0013-8000、13800138000。",
    },
    {
        "code": "email_case_spaces",
        "en": "E-mails in upper, lower and mixed case, some with stray leading or trailing spaces.",
        "zh": "邮箱大小写混杂，部分前后带有多余空格。",
    },
    {
        "code": "wechat_openid_unionid",
        "en": "WeChat: the appliances account only sees a per-app openid; the service account "
        "(and half of the industrial one) also sends the unionid.",
        "zh": "微信：消费电器公众号只有该应用的 openid；"
        "售后服务号（以及一半的工业设备号）同时带有 unionid。",
    },
    {
        "code": "name_typos",
        "en": "CRM names with typos against the tracked ones: a same-sounding wrong character "
        "(张伟 → 张玮) or two swapped Latin letters (Müller → Mülelr).",
        "zh": "CRM 中的姓名与埋点数据不一致：同音错字（张伟 → 张玮）或英文字母颠倒。",
    },
    {
        "code": "shared_switchboard",
        "en": "A company switchboard (e.g. 021-6888 0000 / +86 21 68880000) entered as the "
        "phone of many different people in forms, CRM contacts and tickets.",
        "zh": "公司总机（如 021-6888 0000 / +86 21 68880000）被当作多人的电话，"
        "出现在表单、CRM 联系人和工单中。",
    },
    {
        "code": "household_device",
        "en": "A household shares one computer: several people behind one anonymousId, each "
        "logging in with their own account.",
        "zh": "一家人共用一台电脑：同一 anonymousId 背后有多人，各自用自己的账号登录。",
    },
    {
        "code": "junk_email",
        "en": "Placeholder e-mails such as test@test.com typed into forms by several people.",
        "zh": "多人在表单中填写 test@test.com 之类的占位邮箱。",
    },
    {
        "code": "masked_phone",
        "en": "Marketplace orders (天猫, 京东) carry masked phones such as 138****8000.",
        "zh": "天猫、京东订单中的手机号是脱敏的，如 138****8000。",
    },
    {
        "code": "cookie_reset",
        "en": "People clear cookies or change browsers: one person, several anonymousIds.",
        "zh": "用户清除 Cookie 或更换浏览器：同一人有多个 anonymousId。",
    },
    {
        "code": "company_name_variants",
        "en": "Sales reps type short account names (鼎泰精密机械 for 苏州鼎泰精密机械有限公司).",
        "zh": "销售录入公司简称（如「鼎泰精密机械」而非「苏州鼎泰精密机械有限公司」）。",
    },
)


@dataclass(frozen=True)
class GenerateSummary:
    """What `generate` wrote; `manifest.json` in `out_dir` says the same, for the loader."""

    out_dir: Path
    seed: int
    customers: int
    files: dict[str, int]  # relative file name -> number of records written

    @property
    def events(self) -> int:
        """Tracking events written, over all business units."""
        return sum(n for name, n in self.files.items() if name.startswith("events/"))


def generate(
    out_dir: Path,
    *,
    customers: int,
    seed: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> GenerateSummary:
    """Write the demo data set into `out_dir` (created if needed; our files are replaced).

    `on_progress(done_customers, total_customers)` is called every 500 customers and at the
    end. Nothing here reads the clock or the global random state.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    registry = Registry()
    # About 16 B2B contacts per account, as groups of buyers, engineers and managers.
    companies_cn, companies_foreign = build_companies(seed, min(2000, max(6, customers // 40)))
    cum_cn = zipf_cum_weights(len(companies_cn))
    cum_foreign = zipf_cum_weights(len(companies_foreign))
    truth = Truth(out_dir / "truth/identities.csv")
    try:
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".spill-") as spill:
            sinks = {unit.code: EventFile(Path(spill), unit.code) for unit in UNITS}
            emitters = {code: Emitter(code, sink, truth) for code, sink in sinks.items()}
            world = World(registry, emitters, truth)
            for i in range(customers):
                person = build_person(
                    seed, i, registry, companies_cn, companies_foreign, cum_cn, cum_foreign
                )
                _simulate(person, world)
                if on_progress is not None and (
                    (i + 1) % PROGRESS_EVERY == 0 or i + 1 == customers
                ):
                    on_progress(i + 1, customers)
            files = {
                f"events/{code}.jsonl": sink.finish(out_dir / "events" / f"{code}.jsonl")
                for code, sink in sinks.items()
            }
    finally:
        truth.close()
    world.records.costs = build_costs(seed, world.ad_clicks)
    files |= world.records.write(out_dir)
    files["truth/identities.csv"] = truth.rows
    files = {name: files[name] for name in FILES}  # the manifest's order
    _write_manifest(out_dir, seed, customers, files, world)
    return GenerateSummary(out_dir=out_dir, seed=seed, customers=customers, files=files)


def _simulate(person: Person, world: World) -> None:
    """One person through every business unit they deal with."""
    _place_in_household(person, world)
    purchases: list[Purchase] = []
    if person.segment != "pro":
        purchases += simulate_shopper(person, world)
    if person.segment != "consumer":
        purchases += simulate_prospect(person, world)
    simulate_aftersales(person, world, purchases)


def _place_in_household(person: Person, world: World) -> None:
    """Some consumers move into the household opened before them and share its computer."""
    if person.segment == "pro" or person.is_foreign:
        return
    rng = person.rng
    household = world.household
    if household is not None and rng.random() < 0.15:
        person.household = household
        person.city = household.city
        household.members += 1
        if household.members >= 4:
            world.household = None
    elif rng.random() < 0.2:
        device = new_device(rng, person.country, "web", person.locale)
        device.shared = True
        world.household = person.household = Household(person.city, device)


def _write_manifest(
    out_dir: Path, seed: int, customers: int, files: dict[str, int], world: World
) -> None:
    ratio = world.leads_followed / world.leads if world.leads else 0.0
    manifest = {
        "generator": "oneloop.demo.generate",
        "seed": seed,
        "customers": customers,
        "period": {
            "start": PERIOD_START.isoformat(),
            "end": PERIOD_END.isoformat(),
            "time_zone": "UTC",
        },
        "group": {"code": GROUP.code, "name_zh": GROUP.name_zh, "name_en": GROUP.name_en},
        "units": [
            {
                "code": u.code,
                "name_zh": u.name_zh,
                "name_en": u.name_en,
                "kind": u.kind,
                "parent": u.parent,
                "wechat_app_id": vocab.WECHAT_APP_IDS[u.code],
            }
            for u in UNITS
        ],
        "files": [
            {"path": name, "records": n, "encoding": FILES[name][0], "description": FILES[name][1]}
            for name, n in files.items()
        ],
        "events": sum(n for name, n in files.items() if name.startswith("events/")),
        "lead_followup_ratio": round(ratio, 4),
        "journeys": {
            "leads": world.leads,
            "leads_followed_up": world.leads_followed,
            **dict(sorted(world.tallies.items())),
        },
        "identity_mess": list(IDENTITY_MESS),
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    (out_dir / MANIFEST).write_text(text, encoding="utf-8")
