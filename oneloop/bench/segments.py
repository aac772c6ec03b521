"""``bench segments``: segment evaluation over 10^6 profiles, the size estimate, and the live
path from a committed event to a segment entry (the issue's goals on 2 cores: a full evaluation
≤ 5 s on SQLite, an estimate ≤ 300 ms, event-to-entry p99 ≤ 1 s at the demo's event rate).

Data. A scratch SQLite database (or ``--db``), migrated; the group, a retail unit (``shop``)
and a service unit (``care``), their HTTP sources, two computed traits, a score model and a
manual tag are created through the service functions. Then ``--profiles`` people are written
straight into the tables in batched Core inserts from a seeded RNG, because replaying 10^6
people's history through the pipeline would take hours. What is written is what the pipeline
would have written, so the tables keep their meaning:

* ``profiles_event``: about 6 events a person over the last 360 days (page views with a path,
  product views with a category, carts and orders with a whole-yuan total, coupons, WeChat
  follows; a ticket in ``care`` for 10 %). These events are older than the log (they have no
  ``collect_event`` row), so their positions are negative: below every logged event, so they
  can never collide with one and sort first;
* ``profiles_profile``, ``profiles_profile_unit`` and ``profiles_event_count``: first, last and
  count from those events (per person, per unit, per unit and name);
* ``identity_profile`` and one ``user_id`` identifier each (``m0000042``, stored as the
  resolver stores it: ``shop:m0000042``), so that a new event of an existing person resolves
  to their profile as it would in production;
* computed traits (``orders_365d``, ``revenue_365d``: 40 % of people ordered) with the values
  ``traits.recompute`` computes from those events, ``golden:city`` for 80 % (the identify calls
  it came from are not generated), and ``intent`` scores with their history for about a third,
  given by the score engine itself (``score_rules.apply``); the ``vip`` tag for 5 %.

The test checks the first claim: recomputing every trait and score from the events changes
nothing. ``--db`` with a database a previous run filled reuses its people (adding those
missing up to ``--profiles``) and replaces the bench's segments.

(a) Full evaluation. Five rules of the realistic kinds (``RULES``) are created as segments
with ``is_live: false``: creation runs the first full evaluation, which writes every member
and every entry, and that is what a marketer waits for; then ``service.evaluate`` runs a full
re-evaluation (nothing changes; the diff is what costs). ``full_eval_s_max`` is the slowest of
both over the five rules. Each rule's compiled query is also counted alone (``select_s``:
the SQL without the writes), which splits where time goes. The baseline is a hand-written SQL
``COUNT(*)`` of the same rule (``BASELINE_SQL``), timed the same way; its count must equal the
members, or the run fails. All of it runs at one fixed "now", so windows agree.

(b) Estimate: ``service.estimate`` of each rule ``ESTIMATE_RUNS`` times; the slowest call.

(c) Live path. The five segments are made live. The registered consumers and tasks are what
the server runs; their periodic sweep (windows, decay, relative segments) is run first and
timed (``sweep_s``): it runs in the consumers' thread every five minutes, so while it runs
events wait (and, on SQLite, ingest waits for its write lock). Throughput: ``--events``
tracking calls (80 % existing people, 20 % new) are ingested, then the consumers drain the log
(``events_per_s``: events / drain time, through resolution, traits, scores and live
membership; the tasks are not in it). Latency: the tasks run again if due
(``sweep_before_latency_s``), so that the window is between two sweeps; then the consumers
run in a background thread exactly as ``oneloop serve`` runs them (``run_forever``, its
default idle wait), while events come at ``--rate`` for ``--seconds``, each a product view by
a new person, which makes them enter ``negated_event`` ("viewed products, never ordered").
The delay of each is the entry's ``segments_change.at`` minus the commit time of its event.
``at`` is stamped when the consumer starts handling its batch, so an observer also polls for
the entry to become visible (``event_to_visible_*``: handling and commit included, ±20 ms).
``latency_rate_per_s`` is the rate the sender achieved: below ``--rate`` when ingest had to
wait for the database.

The rate. The demo's tracking history is 48,753 events for 2,000 customers over 273 days
(``oneloop demo generate --customers 2000``): about 1 event/s on average at 10^6 customers.
The default ``--rate`` of 50/s is that with a wide margin for a busy hour.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import yaml
from sqlalchemy import Engine, Table, event, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker
from ulid import ULID

from oneloop.bench.harness import (
    NO_PROGRESS,
    BenchFailed,
    BenchReport,
    Metrics,
    Progress,
    consumers_at_work,
    ingest_calls,
    paced,
    percentiles,
    rate,
    ratio,
    timed,
)
from oneloop.collect import consumers
from oneloop.collect import service as collect
from oneloop.collect.models import CursorRow
from oneloop.collect.schemas import Source, SourceIn
from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.context import Context, system_context
from oneloop.core.db import create_db_engine, session_factory
from oneloop.core.errors import Conflict
from oneloop.governance import service as governance
from oneloop.governance.schemas import BusinessUnitIn
from oneloop.identity import service as identity
from oneloop.identity.models import IdentifierRow
from oneloop.identity.models import ProfileRow as IdentityProfileRow
from oneloop.migrations import upgrade
from oneloop.profiles import departments, score_models, service, trait_defs
from oneloop.profiles.filters import Relative, When, zone_of
from oneloop.profiles.live import SWEEP
from oneloop.profiles.models import (
    EventCountRow,
    ProfileEventRow,
    ProfileRow,
    ProfileTagRow,
    ProfileUnitRow,
    ScoreHistoryRow,
    ScoreRow,
    TagHistoryRow,
    TraitRow,
)
from oneloop.profiles.schemas import TagCategoryIn, TagIn
from oneloop.profiles.score_rules import ModelDoc, Running, apply, parse_model, value_now
from oneloop.profiles.values import typed
from oneloop.segments import language
from oneloop.segments import service as segments
from oneloop.segments.compile import Scope, bind, matching
from oneloop.segments.models import ChangeRow
from oneloop.segments.schemas import SegmentIn, SegmentUpdate

log = logging.getLogger(__name__)

Say = Callable[[str], None]

GROUP, SHOP, CARE = "bench", "shop", "care"
SOURCE_NAME = "基准 Web Bench"
GENERATED = "bench:generated"  # first_message_id of the generated people's identifiers
CHUNK = 10_000  # people per generated transaction
INGEST_BATCH = 100  # calls per tracking batch, as SDKs send them
ESTIMATE_RUNS = 5
POLL_S = 0.02
ENTRY_WAIT_S = 120.0  # how long latency events may take to show up before the run fails
HISTORY_DAYS = 360  # inside every 365-day window: trait values do not depend on the hour

# What the generated people do, and what the bench defines on top of them: weights for the
# random draws, two computed traits, a score model, and the five kinds of rule the issue names
# as a retail marketer would write them (in the segment language, as data).
DEFINITIONS: dict[str, Any] = yaml.safe_load("""
cities: {上海: 16, 北京: 14, 深圳: 10, 广州: 9, 杭州: 8, 成都: 8, 南京: 6, 武汉: 6, 苏州: 5,
         西安: 5, 重庆: 5, 天津: 4}
categories: {厨房电器: 22, 冰箱: 18, 洗衣机: 16, 空调: 15, 电视: 14, 小家电: 15}
paths: {/: 30, /products: 30, /promo: 15, /support: 10, /stores: 10, /about: 5}
channels: [官网, 天猫, 京东, 门店]
live_events: {Page Viewed: 45, Product Viewed: 30, Product Added: 10, Order Completed: 5,
              Coupon Claimed: 5, WeChat Followed: 5}
traits:
  - {name: orders_365d, description: "近一年订单数 · orders in the last year",
     event: Order Completed, aggregate: count, window: {amount: 365, unit: days}}
  - {name: revenue_365d, description: "近一年消费(元) · spend in the last year, CNY",
     event: Order Completed, aggregate: sum, property: total, window: {amount: 365, unit: days}}
score_model:
  code: intent
  name_zh: 购买意向
  name_en: Purchase intent
  description: "价格页、领券、关注公众号 · pricing page, coupons, WeChat follows"
  half_life_days: 90
  rules:
    - {id: pricing_page, event: Page Viewed, points: 10, cap: {times: 1, per: day},
       where: [{property: path, op: eq, value: /pricing}]}
    - {id: coupon, event: Coupon Claimed, points: 8}
    - {id: wechat_follow, event: WeChat Followed, points: 10, cap: {times: 1, per: ever}}
rules:
  trait_only:     # spent 3,000 or more in a year, in a tier-1 city
    {and: [{trait: revenue_365d, op: gte, value: 3000},
           {trait: city, op: in, value: [上海, 北京, 深圳]}]}
  event_window:   # viewed kitchen appliances twice or more in 90 days
    {event: Product Viewed, where: [{property: category, op: eq, value: 厨房电器}],
     count: {op: gte, value: 2}, within: {amount: 90, unit: days}}
  score_tag:      # a VIP, or warm
    {or: [{tag: vip}, {score: intent, op: gte, value: 15}]}
  nested:         # Yangtze delta; a repeat buyer, or warm and no VIP yet; no support visit lately
    {and: [{trait: city, op: in, value: [上海, 杭州, 南京, 苏州]},
           {or: [{trait: orders_365d, op: gte, value: 2},
                 {and: [{score: intent, op: gte, value: 8}, {not: {tag: vip}}]}]},
           {not: {event: Page Viewed, where: [{property: path, op: eq, value: /support}],
                  within: {amount: 30, unit: days}}}]}
  negated_event:  # browsed products, never ordered
    {and: [{event: Product Viewed}, {event: Order Completed, did: false}]}
""")
RULES: dict[str, dict[str, Any]] = DEFINITIONS["rules"]  # Any: segment-language documents
LIVE_SEGMENT = "negated_event"  # a product view by someone new makes them enter it

# The same rules as a person fluent in SQL would count them; :unit is the retail unit, the
# cutoffs are the rules' windows at the run's "now". SQLite's JSON functions (as the product,
# this bench measures SQLite).
BASELINE_SQL: dict[str, str] = {
    "trait_only": """
        SELECT COUNT(*) FROM profiles_profile_unit u
        JOIN profiles_trait r ON r.profile_id = u.profile_id AND r.key = :revenue AND r.num >= 3000
        JOIN profiles_trait c ON c.profile_id = u.profile_id AND c.key = 'golden:city'
             AND c.text IN ('上海', '北京', '深圳')
        WHERE u.bu_id = :unit""",
    "event_window": """
        SELECT COUNT(*) FROM (
            SELECT e.profile_id FROM profiles_event e
            WHERE e.name = 'Product Viewed' AND e.bu_id = :unit AND e.at >= :cutoff_90
              AND json_extract(e.properties, '$.category') = '厨房电器'
            GROUP BY e.profile_id HAVING COUNT(*) >= 2) k
        JOIN profiles_profile_unit u ON u.profile_id = k.profile_id AND u.bu_id = :unit""",
    "score_tag": """
        SELECT COUNT(*) FROM (
            SELECT profile_id FROM profiles_profile_tag WHERE tag_id = :vip
            UNION
            SELECT profile_id FROM profiles_score WHERE model_id = :intent AND value >= 15) x
        JOIN profiles_profile_unit u ON u.profile_id = x.profile_id AND u.bu_id = :unit""",
    "nested": """
        SELECT COUNT(*) FROM profiles_profile_unit u
        JOIN profiles_trait c ON c.profile_id = u.profile_id AND c.key = 'golden:city'
             AND c.text IN ('上海', '杭州', '南京', '苏州')
        WHERE u.bu_id = :unit
          AND (u.profile_id IN (SELECT profile_id FROM profiles_trait
                                WHERE key = :orders AND num >= 2)
               OR (u.profile_id IN (SELECT profile_id FROM profiles_score
                                    WHERE model_id = :intent AND value >= 8)
                   AND u.profile_id NOT IN (SELECT profile_id FROM profiles_profile_tag
                                            WHERE tag_id = :vip)))
          AND NOT EXISTS (SELECT 1 FROM profiles_event e
                          WHERE e.profile_id = u.profile_id AND e.at >= :cutoff_30
                            AND e.name = 'Page Viewed' AND e.bu_id = :unit
                            AND json_extract(e.properties, '$.path') = '/support')""",
    "negated_event": """
        SELECT COUNT(*) FROM (
            SELECT profile_id FROM profiles_event WHERE name = 'Product Viewed' AND bu_id = :unit
            EXCEPT
            SELECT profile_id FROM profiles_event WHERE name = 'Order Completed' AND bu_id = :unit
        ) x
        JOIN profiles_profile_unit u ON u.profile_id = x.profile_id AND u.bu_id = :unit""",
}


def run(
    *,
    profiles: int = 1_000_000,
    events: int = 20_000,
    rate_per_s: float = 50.0,
    seconds: float = 30.0,
    seed: int = 7,
    db_url: str | None = None,
    on_progress: Progress = NO_PROGRESS,
    say: Say | None = None,
) -> BenchReport:
    """The whole bench; ``on_progress`` follows the generation, ``say`` names each phase."""
    tell = say or (lambda message: log.info("bench.segments", extra={"phase": message}))
    with tempfile.TemporaryDirectory(prefix="oneloop-bench-segments-") as tmp:
        url = db_url or f"sqlite:///{tmp}/bench.db"
        if not url.startswith("sqlite"):
            raise BenchFailed(
                "bench segments measures SQLite (the issue's goals); give a sqlite URL"
            )
        settings = Settings(database_url=url)
        engine = create_db_engine(settings)
        try:
            upgrade(engine)
            setup, made = populate(engine, profiles, seed=seed, on_progress=on_progress, say=tell)
        finally:
            engine.dispose()  # measure on fresh connections, without the loader's large cache
        engine = create_db_engine(settings)
        try:
            report = _measure(
                session_factory(engine), setup, made, events, rate_per_s, seconds, seed, tell
            )
        finally:
            engine.dispose()
    report.notes.insert(0, f"database: {db_url or 'scratch SQLite file'}")
    return report


def populate(
    engine: Engine,
    profiles: int,
    *,
    seed: int = 7,
    on_progress: Progress = NO_PROGRESS,
    say: Say | None = None,
) -> tuple[Setup, Made]:
    """The bench's units, sources and definitions (through the services), and generated people
    up to ``profiles`` in the migrated database behind ``engine``."""
    tell = say or (lambda message: log.info("bench.segments", extra={"phase": message}))
    sessions = session_factory(engine)
    setup = _setup(sessions)
    return setup, _fill(engine, sessions, setup, profiles, seed, on_progress, tell)


# --- set-up: units, sources and definitions through the services ------------------------------


@dataclass(frozen=True)
class Setup:
    group: str
    shop: str
    care: str
    shop_source: Source
    care_source: Source
    orders_key: str
    revenue_key: str
    vip_tag: str
    intent_model: str
    intent: ModelDoc


def _setup(sessions: sessionmaker[Session]) -> Setup:
    ctx = system_context()
    with sessions() as session:
        group = _group_code(session, ctx)
        for code, zh, en in ((SHOP, "零售事业部", "Retail"), (CARE, "服务事业部", "Service")):
            _quietly(
                session,
                lambda c=code, z=zh, e=en: governance.create_business_unit(
                    session, ctx, BusinessUnitIn(code=c, name_zh=z, name_en=e, parent=group)
                ),
            )
        shop_source, care_source = _source(session, ctx, SHOP), _source(session, ctx, CARE)
        category = TagCategoryIn(
            code="value_tier", name_zh="价值分层", name_en="Value tier", bu=SHOP
        )
        _quietly(session, lambda: service.create_category(session, ctx, category))
        vip = TagIn(
            code="vip",
            category="value_tier",
            name_zh="高价值客户",
            name_en="VIP",
            description="导入的名单 · an imported list",
            bu=SHOP,
        )
        _quietly(session, lambda: service.create_tag(session, ctx, vip))
        for document in DEFINITIONS["traits"]:
            _quietly(session, lambda d=document: trait_defs.create_trait(session, ctx, d, bu=SHOP))
        _quietly(
            session,
            lambda: score_models.create_model(session, ctx, DEFINITIONS["score_model"], bu=SHOP),
        )
        session.commit()
        names = {t.name: t.id for t in trait_defs.list_traits(session, ctx, bu=SHOP)}
        model = score_models.get_model(session, ctx, "intent", bu=SHOP)
        shop = governance.unit_id(session, ctx, SHOP)
        tag = next(
            t.id for t in service.list_tags(session, ctx) if t.code == "vip" and t.bu_id == shop
        )
        return Setup(
            group=governance.group_id(session),
            shop=shop,
            care=governance.unit_id(session, ctx, CARE),
            shop_source=shop_source,
            care_source=care_source,
            orders_key=names["orders_365d"],
            revenue_key=names["revenue_365d"],
            vip_tag=tag,
            intent_model=model.id,
            intent=parse_model(model.definition),
        )


def _group_code(session: Session, ctx: Context) -> str:
    """The group's code: the bench's own in a fresh database, else the one already there."""
    units = governance.list_business_units(session, ctx)
    if units and units[0].parent_id is None:
        return units[0].code
    governance.create_business_unit(
        session, ctx, BusinessUnitIn(code=GROUP, name_zh="基准集团", name_en="Bench Group")
    )
    session.commit()
    return GROUP


def _source(session: Session, ctx: Context, bu: str) -> Source:
    """The unit's bench source, created when missing."""
    unit = governance.unit_id(session, ctx, bu)
    for found in collect.list_sources(session, ctx):
        if found.bu_id == unit and found.name == SOURCE_NAME:
            return collect.get_source(session, ctx, found.id)
    made = collect.create_source(session, ctx, SourceIn(bu=bu, name=SOURCE_NAME))
    session.commit()
    return collect.get_source(session, ctx, made.id)


def _quietly(session: Session, create: Callable[[], object]) -> None:
    """Create something unless it exists already (a reused database)."""
    try:
        with session.begin_nested():
            create()
    except Conflict:
        pass


# --- the people: written straight into the tables, as the pipeline would have -----------------


def _table(model: Any) -> Table:  # Any: a mapped class
    return model.__table__  # type: ignore[no-any-return]  # a mapped class's Table


# The generated rows, per table, parents first, and the columns of their tuples.
COLUMNS: dict[Table, tuple[str, ...]] = {
    _table(IdentityProfileRow): ("id", "created_at", "updated_at", "merged_into"),
    _table(IdentifierRow): ("id", "type", "value", "profile_id", "degree", "shared_reason",
                            "first_seen_at", "last_seen_at", "first_bu_id", "first_source_id",
                            "first_message_id"),
    _table(ProfileRow): ("id", "first_seen_at", "last_seen_at", "events", "updated_at"),
    _table(ProfileUnitRow): ("profile_id", "bu_id", "first_at", "last_at"),
    _table(ProfileEventRow): ("seq", "profile_id", "bu_id", "source_id", "type", "name",
                              "department", "at", "properties"),
    _table(EventCountRow): ("profile_id", "name", "bu_id", "count", "first_at", "last_at"),
    _table(TraitRow): ("profile_id", "key", "value", "num", "text", "at", "updated_at"),
    _table(ScoreRow): ("profile_id", "model_id", "value", "as_of", "updated_at"),
    _table(ScoreHistoryRow): ("profile_id", "model_id", "seq", "rule", "points", "value_after",
                              "at"),
    _table(ProfileTagRow): ("profile_id", "tag_id", "source", "set_by", "set_at", "reason",
                            "expires_at"),
    _table(TagHistoryRow): ("profile_id", "tag_id", "action", "source", "by", "reason", "at"),
}  # fmt: skip
Rows = dict[str, list[tuple[Any, ...]]]  # Any: column values; by table name


Draft = tuple[datetime, str, dict[str, Any], str]  # Any: JSON; time, name, properties, unit


class _Event(NamedTuple):
    """A generated event; also what the score engine reads (``ScoredEvent``)."""

    seq: int
    at: datetime
    name: str
    properties: dict[str, Any]  # Any: JSON
    unit: str


@dataclass(frozen=True)
class Made:
    """The generated people in the database (``profiles``) and what this run added."""

    profiles: int
    added: int = 0
    events: int = 0
    seconds: float = 0.0


def _fill(
    engine: Engine,
    sessions: sessionmaker[Session],
    setup: Setup,
    profiles: int,
    seed: int,
    on_progress: Progress,
    tell: Say,
) -> Made:
    """Generate the people missing up to ``profiles``, a chunk per transaction."""
    with sessions() as session:
        have = session.scalar(
            select(func.count())
            .select_from(IdentifierRow)
            .where(IdentifierRow.first_message_id == GENERATED)
        )
        lowest = session.scalar(select(func.min(ProfileEventRow.seq))) or 0
        mapping = departments.current(session)
        rules = identity.active_rules(session)
    have = have or 0
    missing = max(profiles - have, 0)
    if not missing:
        tell(f"reusing {have:,} generated people")
        return Made(profiles=have)
    tell(f"generating {missing:,} people")

    def stored(user: str) -> str:  # as the resolver stores a user id: per unit, normalised
        value = rules.read("user_id", user, unit=SHOP).value
        assert value is not None
        return value

    maker = _Maker(setup, mapping.of, stored, seed, first=have, count=missing)
    maker.next_seq = min(lowest, 0) - 1
    on_progress(0, missing)
    with timed() as watch, engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA cache_size = -1048576")  # 1 GiB: index pages stay in memory
        conn.commit()
        for low in range(have, have + missing, CHUNK):
            rows = maker.chunk(low, min(low + CHUNK, have + missing))
            with conn.begin():
                for table, columns in COLUMNS.items():
                    if values := rows[table.name]:
                        conn.execute(
                            insert(table), [dict(zip(columns, v, strict=True)) for v in values]
                        )
            on_progress(min(low + CHUNK, have + missing) - have, missing)
    tell(f"generated {missing:,} people, {maker.events:,} events in {watch.seconds:,.1f} s")
    return Made(profiles=have + missing, added=missing, events=maker.events, seconds=watch.seconds)


class _Maker:
    """One person at a time from a seeded RNG: the same seed and counts give the same rows
    (ids included: ULIDs from the person's first-seen time and the RNG)."""

    def __init__(
        self,
        setup: Setup,
        department_of: Callable[[str], str],
        stored_user_id: Callable[[str], str],
        seed: int,
        *,
        first: int,
        count: int,
    ) -> None:
        self.setup = setup
        self.rng = random.Random(f"{seed}:{first}")  # noqa: S311 - synthetic data
        self.first, self.count = first, count
        self.next_seq = -1  # positions go down from here: older than the log
        self.stored_user_id = stored_user_id
        self.now = datetime.now(UTC)
        self.end = self.now - timedelta(hours=1)
        self.start = self.now - timedelta(days=HISTORY_DAYS)
        self.when = When(self.now, zone_of(None))
        self.scored = {n for r in setup.intent.rules for n in r.filter.names}
        self.departments: dict[str, str] = {}
        self.department_of = department_of
        self.events = 0
        self.cities = _weighted(self.rng, DEFINITIONS["cities"])
        self.categories = _weighted(self.rng, DEFINITIONS["categories"])
        self.paths = _weighted(self.rng, DEFINITIONS["paths"])

    def chunk(self, low: int, high: int) -> Rows:
        rows: Rows = {table.name: [] for table in COLUMNS}
        for index in range(low, high):
            self.person(index, rows)
        return rows

    def person(self, index: int, rows: Rows) -> None:
        s, span = self.setup, self.end - self.start
        first = self.start + span * ((index - self.first + self.rng.random()) / self.count)
        profile_id = self.ulid(first)
        drafts = sorted(self.history(index, first), key=lambda d: d[0])
        low = self.next_seq - len(drafts) + 1  # a block of positions, in time order
        self.next_seq = low - 1
        events = [_Event(low + i, *draft) for i, draft in enumerate(drafts)]
        self.events += len(events)
        last = events[-1].at
        rows["profiles_event"] += [
            (e.seq, profile_id, e.unit, s.shop_source.id if e.unit == s.shop else s.care_source.id,
             "page" if e.name == "Page Viewed" else "track", e.name, self.department(e.name),
             e.at, e.properties)
            for e in events
        ]  # fmt: skip
        rows["profiles_profile"].append((profile_id, first, last, len(events), self.now))
        for unit in sorted({e.unit for e in events}):
            times = [e.at for e in events if e.unit == unit]
            rows["profiles_profile_unit"].append((profile_id, unit, times[0], times[-1]))
        for unit, name in sorted({(e.unit, e.name) for e in events}):
            times = [e.at for e in events if (e.unit, e.name) == (unit, name)]
            rows["profiles_event_count"].append(
                (profile_id, name, unit, len(times), times[0], times[-1])
            )
        rows["identity_profile"].append((profile_id, first, first, None))
        user = self.stored_user_id(user_id(index))
        rows["identity_identifier"].append(
            (self.ulid(first), "user_id", user, profile_id, {}, None, first, last, s.shop,
             s.shop_source.id, GENERATED)
        )  # fmt: skip
        self.traits(profile_id, events, rows)
        self.score(profile_id, events, rows)

    def history(self, index: int, first: datetime) -> list[Draft]:
        """About six events over the year since ``first``: (time, name, properties, unit)."""
        rng, shop = self.rng, self.setup.shop

        def later() -> datetime:
            return first + (self.end - first) * rng.random()

        def page(path: str, at: datetime) -> Draft:
            return (at, "Page Viewed", {"path": path}, shop)

        out = [page(self.paths(), first)]
        out += [page(self.paths(), later()) for _ in range(_geometric(rng, 0.45))]
        if rng.random() < 0.15:
            out += [page("/pricing", later()) for _ in range(1 + _geometric(rng, 0.5))]
        viewer = rng.random() < 0.75
        if viewer:
            for _ in range(1 + _geometric(rng, 0.4)):
                props = {"category": self.categories(), "sku": f"SKU-{rng.randrange(4000):04d}"}
                out.append((later(), "Product Viewed", props, shop))
        orders = 1 + _geometric(rng, 0.6) if rng.random() < 0.4 else 0
        for n in range(orders):
            at, total = later(), min(round(math.exp(rng.gauss(7.3, 0.8))), 200_000)
            out.append((at, "Product Added", {"category": self.categories(), "price": total}, shop))
            paid = min(at + timedelta(minutes=rng.uniform(1, 30)), self.end)
            order = {
                "order_id": f"O{index:07d}-{n}",
                "total": total,
                "channel": rng.choice(DEFINITIONS["channels"]),
            }
            out.append((paid, "Order Completed", order, shop))
        if viewer and not orders and rng.random() < 0.2:
            out.append(
                (later(), "Product Added", {"category": self.categories(), "price": 999}, shop)
            )
        if rng.random() < 0.10:
            out.append((later(), "Coupon Claimed", {"coupon": "C618"}, shop))
        if rng.random() < 0.12:
            out.append((later(), "WeChat Followed", {"account": "星河零售"}, shop))
        if rng.random() < 0.10:
            ticket = {"channel": "400热线", "category": self.categories()}
            out.append((later(), "Ticket Opened", ticket, self.setup.care))
        return out

    def traits(self, profile_id: str, events: list[_Event], rows: Rows) -> None:
        """What ``traits.recompute`` would store: every order is inside the 365-day window."""
        totals = [e.properties["total"] for e in events if e.name == "Order Completed"]
        values: list[tuple[str, object]] = []
        if totals:
            values += [(self.setup.orders_key, len(totals)), (self.setup.revenue_key, sum(totals))]
            if self.rng.random() < 0.125:  # 5 % of everyone: a VIP list from the CRM
                self.vip(profile_id, events[0].at, rows)
        if self.rng.random() < 0.8:
            values.append(("golden:city", self.cities()))
        for key, value in values:
            t = typed(value)
            rows["profiles_trait"].append((profile_id, key, t.value, t.num, t.text, t.at, self.now))

    def vip(self, profile_id: str, at: datetime, rows: Rows) -> None:
        tag, why = self.setup.vip_tag, "CRM VIP list"
        rows["profiles_profile_tag"].append((profile_id, tag, "import", "bench", at, why, None))
        rows["profiles_tag_history"].append((profile_id, tag, "set", "import", "bench", why, at))

    def score(self, profile_id: str, events: list[_Event], rows: Rows) -> None:
        """The score engine over the person's events, stored as a rebuild stores it."""
        counted = [e for e in events if e.name in self.scored and e.unit == self.setup.shop]
        model, state, model_id = self.setup.intent, Running(), self.setup.intent_model
        awards = apply(model, state, counted, self.when) if counted else []
        if not awards or state.at is None:
            return
        value = value_now(state.value, state.at, self.now, model.half_life_days)
        as_of = max(state.at, self.now)
        rows["profiles_score"].append((profile_id, model_id, value, as_of, self.now))
        rows["profiles_score_history"] += [
            (profile_id, model_id, a.seq, a.rule, a.points, a.value_after, a.at) for a in awards
        ]

    def department(self, name: str) -> str:
        if name not in self.departments:
            self.departments[name] = self.department_of(name)
        return self.departments[name]

    def ulid(self, at: datetime) -> str:
        stamp = int(at.timestamp() * 1000).to_bytes(6, "big")
        return str(ULID.from_bytes(stamp + self.rng.getrandbits(80).to_bytes(10, "big")))


def user_id(index: int) -> str:
    """The ``userId`` of the generated person ``index``."""
    return f"m{index:07d}"


def _geometric(rng: random.Random, p: float) -> int:
    """Failures before the first success: 0, 1, 2 … with mean (1 - p) / p."""
    return int(math.log(1.0 - rng.random()) / math.log(1.0 - p))


def _weighted(rng: random.Random, weights: dict[str, int]) -> Callable[[], str]:
    values = list(weights)
    cumulative = list(itertools.accumulate(weights.values()))

    def draw() -> str:
        return rng.choices(values, cum_weights=cumulative)[0]

    return draw


# --- (a) full evaluation and (b) the estimate ------------------------------------------------


@dataclass
class RuleResult:
    segment_id: str
    members: int
    first_s: float  # creation: the first full evaluation, members and entries written
    reeval_s: float  # service.evaluate: a full re-evaluation that changes nothing
    select_s: float  # the compiled rule counted alone, no writes
    compile_ms: float  # binding names and compiling the rule to SQL
    baseline_s: float
    baseline_count: int
    estimate_ms: float  # the slowest of ESTIMATE_RUNS calls
    estimate_error_pct: float  # the last estimate against the exact count, of all candidates
    statement: tuple[str, Any] | None = None  # Any: the driver's parameters, for the plan


def _measure(
    sessions: sessionmaker[Session],
    setup: Setup,
    made: Made,
    events: int,
    rate_per_s: float,
    seconds: float,
    seed: int,
    tell: Say,
) -> BenchReport:
    now = datetime.now(UTC)
    ctx = system_context(clock=FixedClock(now))  # one "now": ours and the baseline agree
    params = _params(setup, now)
    candidates = _profiles_in(sessions, setup.shop)
    with sessions() as session:
        _drop_segments(session, ctx)
        candidates = session.scalar(
            select(func.count())
            .select_from(ProfileUnitRow)
            .where(ProfileUnitRow.bu_id == setup.shop)
        )
        tell("warming the caches: each baseline query once")
        for sql in BASELINE_SQL.values():
            session.execute(text(sql), params).scalar_one()
    results = {}
    for code, rule in RULES.items():
        tell(f"evaluating {code}")
        results[code] = _evaluate(sessions, ctx, setup, code, rule, params, candidates)
    live = _live(sessions, setup, results, made, events, rate_per_s, seconds, seed, tell)
    slowest = max(results, key=lambda c: max(results[c].first_s, results[c].reeval_s))
    worst = results[slowest]
    metrics: Metrics = {
        "profiles": candidates,
        "full_eval_s_max": round(max(worst.first_s, worst.reeval_s), 3),
        "estimate_ms_max": round(max(r.estimate_ms for r in results.values()), 1),
        "events_per_s": live.pop("events_per_s"),
        "event_to_entry_p99_ms": live.pop("event_to_entry_p99_ms"),
        "generated_profiles": made.profiles,
        "generate_s": round(made.seconds, 1) if made.added else None,
        "generated_events_per_profile": round(made.events / made.added, 2) if made.added else None,
    }
    for code, r in results.items():
        metrics |= {
            f"{code}_members": r.members,
            f"{code}_first_eval_s": round(r.first_s, 3),
            f"{code}_reeval_s": round(r.reeval_s, 3),
            f"{code}_select_s": round(r.select_s, 3),
            f"{code}_compile_ms": round(r.compile_ms, 2),
            f"{code}_estimate_ms": round(r.estimate_ms, 1),
            f"{code}_estimate_error_pct": round(r.estimate_error_pct, 2),
        }
    metrics |= live
    baseline: Metrics = {"full_eval_s_max": round(max(r.baseline_s for r in results.values()), 3)}
    for code, r in results.items():
        baseline |= {f"{code}_members": r.baseline_count, f"{code}_count_s": round(r.baseline_s, 3)}
    notes = [
        f"full_eval_s_max: {slowest}, the slower of its first evaluation (at creation: members "
        "and entries written) and a re-evaluation; *_select_s is its SQL alone, no writes",
        "baseline: a hand-written SQL COUNT(*) of the same rule; its counts equal the members",
        f"estimate: service.estimate, the slowest of {ESTIMATE_RUNS} calls per rule; its error "
        "is in points of all candidates",
        "sweep: the consumers' periodic task; it runs in their thread every 5 minutes, and "
        "live entries wait while it runs",
        "latency: entry = segments_change.at (stamped as the consumer starts the batch); "
        "visible = seen by a reader polling every 20 ms (handling and commit included)",
        *_plan(sessions, slowest, worst),
    ]
    return BenchReport(
        name="segments",
        metrics=metrics,
        baseline=baseline,
        ratio=ratio(metrics["full_eval_s_max"], baseline["full_eval_s_max"]),
        notes=notes,
    )


def _params(setup: Setup, now: datetime) -> dict[str, Any]:  # Any: bound values
    zone = zone_of(None)
    return {
        "unit": setup.shop,
        "revenue": setup.revenue_key,
        "orders": setup.orders_key,
        "intent": setup.intent_model,
        "vip": setup.vip_tag,
        "cutoff_90": _stored(Relative(90, "days").cutoff(now, zone)),
        "cutoff_30": _stored(Relative(30, "days").cutoff(now, zone)),
    }


def _stored(at: datetime) -> str:
    """A time as the UTCDateTime column stores it on SQLite: naive UTC text."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _drop_segments(session: Session, ctx: Context) -> None:
    """A reused database: the previous run's segments go (their history stays)."""
    for segment in segments.list_segments(session, ctx, bu=SHOP):
        if segment.code.removeprefix("bench_") in RULES:
            segments.delete_segment(session, ctx, segment.id)
    session.commit()


def _evaluate(
    sessions: sessionmaker[Session],
    ctx: Context,
    setup: Setup,
    code: str,
    rule: dict[str, Any],  # Any: a segment-language document
    params: dict[str, Any],  # Any: bound values
    candidates: int,
) -> RuleResult:
    data = SegmentIn(code=f"bench_{code}", name=f"bench {code}", rule=rule, bu=SHOP, is_live=False)
    with sessions() as session:
        with timed() as first:
            made = segments.create_segment(session, ctx, data)
            session.commit()
        with timed() as again:
            evaluated = segments.evaluate(session, ctx, made.id)
            session.commit()
        with timed() as compiling:
            bound = bind(session, language.parse_rule(rule), Scope(setup.shop, setup.group))
            query = select(func.count()).select_from(
                matching(bound, segments.when_of(ctx)).subquery()
            )
            query.compile(session.get_bind())
        with _captured(session) as statements, timed() as alone:
            ours = session.scalar(query)
        with timed() as hand:
            theirs = session.execute(text(BASELINE_SQL[code]), params).scalar_one()
        if not made.size == evaluated.size == ours == theirs:
            raise BenchFailed(
                f"{code}: members {made.size:,}, re-evaluated {evaluated.size:,}, "
                f"compiled count {ours:,}, hand-written SQL {theirs:,}: they must agree"
            )
        slowest, estimate = 0.0, None
        for _ in range(ESTIMATE_RUNS):
            with timed() as guessing:
                estimate = segments.estimate(session, ctx, rule, bu=SHOP)
            slowest = max(slowest, guessing.seconds)
        assert estimate is not None
    return RuleResult(
        segment_id=made.id,
        members=made.size,
        first_s=first.seconds,
        reeval_s=again.seconds,
        select_s=alone.seconds,
        compile_ms=compiling.seconds * 1000,
        baseline_s=hand.seconds,
        baseline_count=theirs,
        estimate_ms=slowest * 1000,
        estimate_error_pct=100 * abs(estimate.count - made.size) / max(candidates, 1),
        statement=statements[-1] if statements else None,
    )


@contextmanager
def _captured(session: Session) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and driver parameters) the block sends, for EXPLAIN QUERY PLAN."""
    found: list[tuple[str, Any]] = []  # Any: the DBAPI's parameters
    engine = session.get_bind()

    def grab(_c: object, _cur: object, statement: str, parameters: Any, *_: object) -> None:
        found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def _plan(sessions: sessionmaker[Session], code: str, result: RuleResult) -> list[str]:
    """SQLite's plan for the slowest rule's compiled query, one note line per step."""
    if result.statement is None:
        return []
    statement, parameters = result.statement
    with sessions() as session:
        rows = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        steps = [f"  {row[3]}" for row in rows]
    return [f"plan of {code} (compiled):", *steps]


# --- (c) the live path -----------------------------------------------------------------------


def _live(
    sessions: sessionmaker[Session],
    setup: Setup,
    results: dict[str, RuleResult],
    made: Made,
    events: int,
    rate_per_s: float,
    seconds: float,
    seed: int,
    tell: Say,
) -> Metrics:
    ctx = system_context()  # the real clock from here on, as the consumers have
    tell("making the five segments live")
    with sessions() as session:
        for result in results.values():
            found = segments.get_segment(session, ctx, result.segment_id)
            change = SegmentUpdate(
                name=found.name, description=found.description, rule=found.rule, is_live=True
            )
            segments.update_segment(session, ctx, found.id, change)
            session.commit()
    tell("running the consumers' periodic tasks (the sweep)")
    first_sweep = _run_tasks(sessions)
    rng = random.Random(f"{seed}:live")  # noqa: S311 - synthetic data
    tag = uuid.uuid4().hex[:8]  # new people's ids differ from a previous run's
    calls = [_call(rng, made.profiles, tag, events) for _ in range(events)]
    before = _profiles_in(sessions, setup.shop)
    tell(f"ingesting {events:,} events, then draining them through the consumers")
    with timed() as ingesting:
        for low in range(0, events, INGEST_BATCH):
            ingest_calls(sessions, setup.shop_source, calls[low : low + INGEST_BATCH])
    with timed() as draining:  # the consumers only: the tasks are timed on their own
        totals = consumers.drain(sessions, consumers.registered())
    done = totals.get("profiles")
    if done is None or done.processed != events or done.failed:
        raise BenchFailed(f"the profiles consumer handled {done} of {events:,} events")
    newcomers = len({c["userId"] for c in calls if c["userId"].startswith("new-")})
    if _profiles_in(sessions, setup.shop) - before != newcomers:
        raise BenchFailed(f"{newcomers} new people should have made as many new profiles")
    tell("running the periodic tasks again if due, so the latency is measured between sweeps")
    second_sweep = _run_tasks(sessions)
    segment = results[LIVE_SEGMENT].segment_id
    tell(f"feeding {rate_per_s:g} events/s for {seconds:g} s with the consumers running")
    latency = _latency(sessions, setup.shop_source, segment, rate_per_s, seconds, tag)
    return {
        "events_per_s": rate(events, draining.seconds),
        **latency,
        "sweep_s": round(first_sweep, 2),
        "sweep_before_latency_s": round(second_sweep, 2),
        "live_events": events,
        "ingest_events_per_s": rate(events, ingesting.seconds),
        "drain_s": round(draining.seconds, 2),
    }


def _run_tasks(sessions: sessionmaker[Session]) -> float:
    """Each registered task until it has nothing to do now; the seconds it took. The sweep
    runs when five minutes have passed since its last run."""
    with timed() as watch:
        for task in consumers.registered_tasks():
            while consumers.run_task(sessions, task) > 0:
                pass
    return watch.seconds


def _call(rng: random.Random, people: int, tag: str, events: int) -> dict[str, Any]:
    """A tracking call: 80 % from generated people, 20 % from new ones (a few calls each)."""
    if people and rng.random() < 0.8:
        user = user_id(rng.randrange(people))
    else:
        user = f"new-{tag}-{rng.randrange(max(events // 20, 1))}"
    names: dict[str, int] = DEFINITIONS["live_events"]
    name = rng.choices(list(names), list(names.values()))[0]
    props: dict[str, Any] = {  # Any: JSON
        "Page Viewed": {"path": rng.choice(["/", "/products", "/pricing", "/support"])},
        "Product Viewed": {"category": rng.choice(list(DEFINITIONS["categories"]))},
        "Product Added": {"category": "冰箱", "price": 3999},
        "Order Completed": {"order_id": uuid.uuid4().hex, "total": 3999, "channel": "官网"},
        "Coupon Claimed": {"coupon": "C618"},
        "WeChat Followed": {"account": "星河零售"},
    }[name]
    base = {"messageId": str(uuid.uuid4()), "userId": user, "properties": props}
    if name == "Page Viewed":
        return {**base, "type": "page"}
    return {**base, "type": "track", "event": name}


def _latency(
    sessions: sessionmaker[Session],
    source: Source,
    segment_id: str,
    rate_per_s: float,
    seconds: float,
    tag: str,
) -> Metrics:
    """Product views by new people at a steady rate, the consumers running as the server runs
    them; each view makes its person enter ``segment_id``."""
    total = max(2, round(rate_per_s * seconds))
    with sessions() as session:
        mark = session.scalar(select(func.coalesce(func.max(ChangeRow.seq), 0))) or 0
        sweeps = _sweeps(session)
    stop, finished = threading.Event(), threading.Event()
    failures: list[BaseException] = []
    seen: dict[str, datetime] = {}

    def observe() -> None:
        last = mark
        with sessions() as session:
            while not finished.is_set():
                rows = session.execute(_entries(segment_id, last)).all()
                now = datetime.now(UTC)
                for seq, profile_id, _at in rows:
                    seen.setdefault(profile_id, now)
                    last = max(last, seq)
                session.rollback()  # end the read: the next poll sees what committed since
                finished.wait(POLL_S)

    threads = [
        threading.Thread(target=consumers_at_work, args=(sessions, stop, failures), daemon=True),
        threading.Thread(target=observe, daemon=True),
    ]
    for thread in threads:
        thread.start()
    committed: dict[str, datetime] = {}
    retries = 0
    started = time.perf_counter()
    try:
        for k in paced(total, rate_per_s):
            user = f"live-{tag}-{k}"
            call = {"type": "track", "event": "Product Viewed", "userId": user,
                    "messageId": str(uuid.uuid4()), "properties": {"category": "冰箱"}}  # fmt: skip
            retries += ingest_calls(sessions, source, [call])
            committed[user] = datetime.now(UTC)
        fed = time.perf_counter() - started
        deadline = time.monotonic() + ENTRY_WAIT_S
        while len(seen) < total and time.monotonic() < deadline and not failures:
            time.sleep(POLL_S)  # the consumers' thread is catching up
    finally:
        stop.set()
        finished.set()
        for thread in threads:
            thread.join(timeout=60)
    if failures:
        raise BenchFailed(f"the consumers stopped: {failures[0]!r}") from failures[0]
    with sessions() as session:
        ctx = system_context()
        profile_of = {
            u: identity.find_profile(session, ctx, "user_id", f"{SHOP}:{u}") for u in committed
        }
        entered = {p: at for _seq, p, at in session.execute(_entries(segment_id, mark))}
        swept = _sweeps(session) - sweeps
    at_delays, seen_delays = [], []
    for user, profile_id in profile_of.items():
        if profile_id in entered and profile_id in seen:
            at_delays.append((entered[profile_id] - committed[user]).total_seconds())
            seen_delays.append((seen[profile_id] - committed[user]).total_seconds())
    if len(at_delays) < total:
        raise BenchFailed(
            f"{total - len(at_delays)} of {total} events did not make their person enter the "
            f"segment within {ENTRY_WAIT_S:.0f} s"
        )
    at_cuts, seen_cuts = percentiles(at_delays), percentiles(seen_delays)
    return {
        "event_to_entry_p50_ms": at_cuts["p50_ms"],
        "event_to_entry_p95_ms": at_cuts["p95_ms"],
        "event_to_entry_p99_ms": at_cuts["p99_ms"],
        "event_to_entry_max_ms": round(max(at_delays) * 1000, 1),
        "event_to_visible_p50_ms": seen_cuts["p50_ms"],
        "event_to_visible_p99_ms": seen_cuts["p99_ms"],
        "latency_events": total,
        "latency_rate_per_s": rate(total, fed),
        "latency_ingest_retries": retries,
        "sweeps_during_latency": swept,
    }


def _entries(segment_id: str, after: int) -> Any:  # Any: a three-column select
    return (
        select(ChangeRow.seq, ChangeRow.profile_id, ChangeRow.at)
        .where(ChangeRow.seq > after, ChangeRow.segment_id == segment_id, ChangeRow.kind == "enter")
        .order_by(ChangeRow.seq)
    )


def _profiles_in(sessions: sessionmaker[Session], unit: str) -> int:
    with sessions() as session:
        query = select(func.count()).select_from(ProfileUnitRow)
        return session.scalar(query.where(ProfileUnitRow.bu_id == unit)) or 0


def _sweeps(session: Session) -> int:
    found = session.scalar(select(CursorRow.processed).where(CursorRow.name == SWEEP))
    return found or 0
