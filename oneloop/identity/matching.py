"""Probabilistic matching (Fellegi–Sunter, Splink 5) of profiles the identity graph left apart.

The deterministic graph links profiles that share an identifier; this module proposes links
between profiles that only *look* alike: a CRM contact and a POS buyer with the same name, a
similar address and a phone one digit off. Decisions a caller must know:

- Everything that varies by tenant or data set is YAML (``match_profiles.yaml`` documents the
  language): derived features, comparisons, blocking, the prior, thresholds and the backend.
  Code knows a closed set of transforms and level kinds, so a config cannot inject SQL.
- Thresholds are **match weights** (log2 Bayes factor, prior included), not probabilities:
  weights add up, so the per-comparison weights a steward sees on a review item plus the
  prior are exactly the number compared with the threshold, and they keep separating strong
  from overwhelming evidence where a probability is already 0.99999.
- A model is Splink's own settings JSON plus a content hash (``TrainedModel.version``). The
  JSON holds SQL rendered for one dialect: a model trained on DuckDB must be retrained to
  score on Spark, and scoring refuses the mismatch instead of failing deep inside Splink.
- Incremental scoring: Splink 5 removed ``find_matches_to_new_records`` (splink PR #3091).
  Its replacement is ``linker.inference.predict_between(new, existing)``: new records are
  blocked against existing ones with the trained rules, existing pairs are never re-scored;
  ``predict_within(new)`` adds the pairs inside the arriving batch.
- The backend is built in one place (``_db_api``). ``backend: spark`` needs pyspark and a
  Spark session configured by the deployment (``SparkSession.builder.getOrCreate()``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic import dataclasses as pdc

from oneloop.core.clock import Clock, SystemClock
from oneloop.core.errors import FieldError, OneLoopError, ValidationFailed

if TYPE_CHECKING:  # pandas, pypinyin and Splink load on first use: every `oneloop` command
    # imports this module (through the CLI), and only matching needs them
    import pandas as pd
    from splink import Linker, SettingsCreator
    from splink.internals.database_api import DatabaseAPISubClass
    from splink.internals.splink_dataframe import SplinkDataFrame

log = logging.getLogger(__name__)

MODEL_FORMAT = "oneloop.match-model/1"
Decision = Literal["merge", "review", "ignore"]


class MatchingBackendUnavailable(OneLoopError):
    code = "matching-backend-unavailable"
    title = "Matching backend unavailable"


class TrainingFailed(OneLoopError):
    """These records cannot train this config; ``step`` says where. Nothing was saved."""

    code = "matching-training-failed"
    title = "Match model training failed"


# --- configuration: validated once at the edge, frozen afterwards ----------------------------

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
"""Feature and comparison names become Splink column names, so they stay plain identifiers."""
Rule = Annotated[tuple[Identifier, ...], Field(min_length=1)]
"""A blocking rule: the features that must be equal (and not null) on both records."""
Rules = Annotated[tuple[Rule, ...], Field(min_length=1)]

_spec = pdc.dataclass(frozen=True, config=ConfigDict(extra="forbid"))


@_spec
class Feature:
    """A column derived from raw ``columns`` (joined by a space) by one closed-set transform."""

    transform: Literal["text", "name_pinyin", "digits", "email", "email_local", "date"]
    columns: Annotated[tuple[str, ...], Field(min_length=1)]
    last: Annotated[int, Field(gt=0)] | None = None  # keep the tail: phone last 4 for blocking


@_spec
class ExactLevel:
    kind: Literal["exact"]
    column: Identifier
    tf: bool = False  # term-frequency adjusted: sharing 张伟 says less than sharing a rare name
    label: str | None = None


@_spec
class EditDistanceLevel:
    kind: Literal["levenshtein", "damerau_levenshtein"]
    column: Identifier
    max: Annotated[int, Field(ge=1)]
    label: str | None = None


@_spec
class SimilarityLevel:
    kind: Literal["jaro_winkler", "jaro"]
    column: Identifier
    min: Annotated[float, Field(gt=0, le=1)]
    label: str | None = None


@_spec
class ReversedLevel:
    """``column`` and ``other`` swapped between the records (given name entered as surname)."""

    kind: Literal["reversed"]
    column: Identifier
    other: Identifier
    label: str | None = None


Level = Annotated[
    ExactLevel | EditDistanceLevel | SimilarityLevel | ReversedLevel, Field(discriminator="kind")
]


@_spec
class ComparisonSpec:
    """Levels from most to least specific. A null level (on ``null_column``, by default the
    first level's column) and an else level are added, so a config lists evidence only."""

    name: Identifier
    levels: Annotated[tuple[Level, ...], Field(min_length=1)]
    null_column: Identifier | None = None


@_spec
class Blocking:
    predict: Rules  # OR-ed: the pairs that get scored
    train: Rules  # one EM session per rule; each learns the comparisons its rule leaves free


@_spec
class Prior:
    """Deterministic rules whose matches, divided by ``recall``, estimate how many pairs match."""

    rules: Rules
    recall: Annotated[float, Field(gt=0, le=1)]


@_spec
class Training:
    u_max_pairs: Annotated[int, Field(ge=1000)] = 2_000_000
    max_iterations: Annotated[int, Field(ge=1)] = 25
    convergence: Annotated[float, Field(gt=0)] = 1e-4


@_spec
class Thresholds:
    """Match weights: ``>= auto_merge`` merges, ``>= review`` queues for a steward."""

    review: float
    auto_merge: float


@_spec
class MatchConfig:
    features: dict[Identifier, Feature]
    comparisons: Annotated[tuple[ComparisonSpec, ...], Field(min_length=1)]
    blocking: Blocking
    prior: Prior
    thresholds: Thresholds
    training: Training = Training()
    backend: Literal["duckdb", "spark"] = "duckdb"
    link_type: Literal["dedupe_only", "link_only", "link_and_dedupe"] = "dedupe_only"
    source_column: str | None = None  # the raw column naming a record's source, when linking


_CONFIG = TypeAdapter(MatchConfig)
_RESERVED = {"unique_id", "source", "source_dataset", "match_key"}


def load_config(source: str | Path | Mapping[str, object]) -> MatchConfig:
    """Read a YAML file (or an already parsed document); every error names its key path."""
    if isinstance(source, Mapping):
        document: object = dict(source)
    else:
        try:
            document = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValidationFailed(f"match config {source} is not valid YAML: {exc}") from exc
    try:
        config = _CONFIG.validate_python(document)
    except ValidationError as exc:
        raise _invalid([FieldError(tuple(e["loc"]), e["msg"]) for e in exc.errors()]) from exc
    if errors := _reference_errors(config):
        raise _invalid(errors)
    return config


def _invalid(errors: list[FieldError]) -> ValidationFailed:
    detail = "; ".join(f"{e.path or '(root)'}: {e.msg}" for e in errors)
    return ValidationFailed(f"match config is invalid: {detail}", errors=errors)


def _reference_errors(config: MatchConfig) -> list[FieldError]:
    """What pydantic cannot see: names must resolve, thresholds and link type must agree."""
    uses: list[tuple[tuple[str | int, ...], str]] = []
    for i, comparison in enumerate(config.comparisons):
        if comparison.null_column:
            uses.append((("comparisons", i, "null_column"), comparison.null_column))
        for j, level in enumerate(comparison.levels):
            uses.append((("comparisons", i, "levels", j, "column"), level.column))
            if isinstance(level, ReversedLevel):
                uses.append((("comparisons", i, "levels", j, "other"), level.other))
    for where, rules in [
        (("blocking", "predict"), config.blocking.predict),
        (("blocking", "train"), config.blocking.train),
        (("prior", "rules"), config.prior.rules),
    ]:
        uses += [
            ((*where, i, k), col) for i, rule in enumerate(rules) for k, col in enumerate(rule)
        ]
    errors = [
        FieldError(loc, f"unknown feature '{c}'") for loc, c in uses if c not in config.features
    ]
    errors += [
        FieldError(("features", n), "is reserved") for n in config.features if n in _RESERVED
    ]
    names = [c.name for c in config.comparisons]
    errors += [
        FieldError(("comparisons", i, "name"), f"repeats '{name}'")
        for i, name in enumerate(names)
        if name in names[:i]
    ]
    if config.thresholds.review > config.thresholds.auto_merge:
        errors.append(FieldError(("thresholds", "review"), "must not exceed auto_merge"))
    if (config.link_type == "dedupe_only") != (config.source_column is None):
        errors.append(
            FieldError(("source_column",), "needed exactly when link_type is not dedupe_only")
        )
    return errors


def _features_hash(config: MatchConfig) -> str:
    """A model is only valid with the features it was trained on; this pins them."""
    features = {name: asdict(f) for name, f in sorted(config.features.items())}
    return _digest({"features": features, "source_column": config.source_column})


def _digest(document: object) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --- features: raw records to the normalised columns Splink compares --------------------------

_HAN = "\u3400-\u9fff\uf900-\ufaff"
_RUNS = re.compile(f"[{_HAN}]+|[^{_HAN}]+")
_COMPOUND_SURNAMES = frozenset(
    ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "夏侯",
     "长孙", "宇文", "司徒", "端木", "南宫", "万俟", "单于"]
)  # fmt: skip
# pypinyin reads characters as words; as surnames these read differently.
_SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "区": "ou", "仇": "qiu", "解": "xie", "查": "zha", "朴": "piao",
    "盖": "ge", "乐": "yue", "缪": "miao", "翟": "zhai", "覃": "qin", "尉迟": "yuchi",
    "万俟": "moqi", "长孙": "zhangsun", "单于": "chanyu",
}  # fmt: skip
_SOURCE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # becomes a SQL literal inside Splink


def normalise_text(value: str) -> str:
    """NFKC, case-folded, accents and punctuation dropped, spaces collapsed: 'José-M.' → 'jose m'"""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", value).casefold())
    plain = "".join(
        " " if unicodedata.category(ch)[0] in "PSZC" else ch
        for ch in folded
        if not unicodedata.combining(ch)
    )
    return " ".join(unicodedata.normalize("NFC", plain).split())


@lru_cache(maxsize=65536)
def name_pinyin(value: str) -> str:
    """A name as sorted pinyin words, so 张伟, 'Zhang Wei' and 'WEI ZHANG' all give 'wei zhang'.

    A Han run reads as surname + given name, one word each, as passports romanise it
    (张小明 → 'zhang xiaoming'); sorting makes Western and Chinese word order equal.
    """
    joined = re.sub(r"[-'’·]", "", value)  # a hyphenated given name is one word: Wei-Ming
    words: list[str] = []
    for token in normalise_text(joined).split():
        for run in _RUNS.findall(token):
            words += _han_name_words(run) if re.match(f"[{_HAN}]", run) else [run]
    return " ".join(sorted(words))


def _han_name_words(run: str) -> list[str]:
    split = 2 if run[:2] in _COMPOUND_SURNAMES and len(run) > 2 else 1
    surname, given = run[:split], run[split:]
    words = [_SURNAME_READINGS.get(surname) or _syllables(surname)]
    return [*words, _syllables(given)] if given else words


def _syllables(han: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(han)).replace("v", "u")  # ü: 吕 'lv' and passport 'Lu' agree


def _ascii_digits(value: str) -> str:
    """Decimal digits of any script as ASCII: full-width ０１３８ from a CJK keyboard included."""
    return "".join(
        str(unicodedata.decimal(ch)) if unicodedata.category(ch) == "Nd" else ch for ch in value
    )


def _digits(value: str) -> str:
    return re.sub(r"[^0-9]", "", _ascii_digits(value))


def _email(value: str) -> str | None:
    address = unicodedata.normalize("NFKC", value).strip().casefold()
    local, at, domain = address.rpartition("@")
    return address if at and local and domain and " " not in address else None


def _email_local(value: str) -> str | None:
    """The mailbox name without a +tag: the same person across providers (wei.z@qq, @163)."""
    address = _email(value)
    if address is None:
        return None
    return address.rpartition("@")[0].partition("+")[0] or None


def _date(value: str) -> str | None:
    """ISO 'YYYY-MM-DD' from 19560409, 1956-4-9 or 1956年4月9日. Only the shape is checked,
    not the calendar: a typo'd date (1956-04-90) still compares by edit distance."""
    groups = re.findall(r"[0-9]+", _ascii_digits(value))
    if len(groups) == 1 and len(groups[0]) == 8:
        return f"{groups[0][:4]}-{groups[0][4:6]}-{groups[0][6:]}"
    if len(groups) >= 3 and len(groups[0]) == 4 and all(len(g) <= 2 for g in groups[1:3]):
        return f"{groups[0]}-{int(groups[1]):02d}-{int(groups[2]):02d}"
    return None


_TRANSFORMS = {
    "text": normalise_text,
    "name_pinyin": name_pinyin,
    "digits": _digits,
    "email": _email,
    "email_local": _email_local,
    "date": _date,
}


def _as_text(value: object) -> str | None:
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip() or None


def _derive(feature: Feature, record: Mapping[str, object]) -> str | None:
    raw = " ".join(filter(None, (_as_text(record.get(c)) for c in feature.columns)))
    value = _TRANSFORMS[feature.transform](raw) if raw else None
    return (value[-feature.last :] if value and feature.last else value) or None


def prepare(records: Iterable[Mapping[str, object]], config: MatchConfig) -> pd.DataFrame:
    """One row per record: ``unique_id``, ``source`` (when linking) and every feature.

    Raw columns stop here: nothing but normalised features reaches the matcher.
    """
    import pandas as pd

    rows: list[dict[str, str | None]] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        uid = _as_text(record.get("unique_id"))
        if uid is None or uid in seen:
            problem = "is missing" if uid is None else f"repeats '{uid}'"
            raise ValidationFailed(
                f"record {i}: unique_id {problem}", errors=[FieldError((i, "unique_id"), problem)]
            )
        seen.add(uid)
        row = {"unique_id": uid}
        if config.source_column is not None:
            source = _as_text(record.get(config.source_column))
            if source is None or not _SOURCE.match(source):
                problem = "missing or not a plain name (letters, digits, '_', '-')"
                raise ValidationFailed(
                    f"record {uid}: source {problem}",
                    errors=[FieldError((i, config.source_column), problem)],
                )
            row["source"] = source
        row.update((name, _derive(f, record)) for name, f in config.features.items())
        rows.append(row)
    columns = ["unique_id", *(["source"] if config.source_column else []), *config.features]
    return pd.DataFrame(rows, columns=columns, dtype="string")


# --- Splink: the only part of this module that knows it ---------------------------------------


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink narrates every step at INFO and WARNING; a library call should not print.
    The level is process-wide while a call runs, and restored after it."""
    splink_log = logging.getLogger("splink")
    before = splink_log.level
    splink_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        splink_log.setLevel(before)


def _db_api(config: MatchConfig) -> DatabaseAPISubClass:
    """The one place a backend is built, so Spark is a config switch and not a rewrite."""
    if config.backend == "duckdb":
        from splink.backends.duckdb import DuckDBAPI

        return DuckDBAPI()
    try:
        from pyspark.sql import SparkSession
        from splink.backends.spark import SparkAPI
    except ImportError as exc:
        raise MatchingBackendUnavailable(
            "backend 'spark' needs pyspark installed and Spark configured; "
            "install it or set 'backend: duckdb'",
            backend="spark",
        ) from exc
    return SparkAPI(spark_session=SparkSession.builder.getOrCreate())


def _register(
    db_api: DatabaseAPISubClass, frame: pd.DataFrame, config: MatchConfig, role: str
) -> list[SplinkDataFrame]:
    """Dedupe takes one table; linking takes one table per source, named after it."""
    if config.source_column is None:
        return [db_api.register(frame, table_name=f"oneloop_{role}")]
    return [
        db_api.register(
            part.drop(columns=["source"]),
            table_name=f"oneloop_{role}_{i}",
            dataset_display_name=str(source),
        )
        for i, (source, part) in enumerate(frame.groupby("source", sort=True))
    ]


def _linker(inputs: list[SplinkDataFrame], settings: SettingsCreator | dict[str, Any]) -> Linker:
    from splink import Linker

    return Linker(inputs[0] if len(inputs) == 1 else inputs, settings, log_level=None)


def _splink_settings(config: MatchConfig) -> SettingsCreator:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def level(spec: Level) -> Any:  # Any: Splink's level creators share no public base type
        match spec:
            case ExactLevel():
                made = cll.ExactMatchLevel(spec.column, term_frequency_adjustments=spec.tf)
            case EditDistanceLevel(kind="levenshtein"):
                made = cll.LevenshteinLevel(spec.column, spec.max)
            case EditDistanceLevel():
                made = cll.DamerauLevenshteinLevel(spec.column, spec.max)
            case SimilarityLevel(kind="jaro_winkler"):
                made = cll.JaroWinklerLevel(spec.column, spec.min)
            case SimilarityLevel():
                made = cll.JaroLevel(spec.column, spec.min)
            case ReversedLevel():
                made = cll.ColumnsReversedLevel(spec.column, spec.other, symmetrical=True)
        return made.configure(label_for_charts=spec.label) if spec.label else made

    def levels(c: ComparisonSpec) -> list[Any]:
        null = cll.NullLevel(c.null_column or c.levels[0].column)
        return [null, *map(level, c.levels), cll.ElseLevel()]

    comparisons = [
        cl.CustomComparison(
            levels(c),
            output_column_name=c.name,
            comparison_description=c.name,
        )
        for c in config.comparisons
    ]
    return SettingsCreator(
        link_type=config.link_type,
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[block_on(*r) for r in config.blocking.predict],
        max_iterations=config.training.max_iterations,
        em_convergence=config.training.convergence,
        retain_matching_columns=True,  # Splink 5 emits gamma_* (the level) only with these
        retain_intermediate_calculation_columns=True,  # mw_* per comparison: the steward's "why"
    )


# --- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedModel:
    """What a DB row stores. ``version`` is a content hash: equal training runs give equal ones."""

    version: str
    settings_json: dict[str, Any]  # Any: Splink's own model document, opaque to OneLoop
    trained_at: datetime
    record_count: int
    features_hash: str

    def to_json(self) -> str:
        document = {
            "format": MODEL_FORMAT,
            "version": self.version,
            "trained_at": self.trained_at.isoformat(),
            "record_count": self.record_count,
            "features_hash": self.features_hash,
            "settings": self.settings_json,
        }
        return json.dumps(document, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainedModel:
        """Refuses another format, and a document whose content no longer matches its version."""
        try:
            doc = json.loads(text)
            if doc.get("format") != MODEL_FORMAT:
                raise ValueError(f"format is not {MODEL_FORMAT}")
            model = cls(
                version=doc["version"],
                settings_json=doc["settings"],
                trained_at=datetime.fromisoformat(doc["trained_at"]),
                record_count=int(doc["record_count"]),
                features_hash=doc["features_hash"],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValidationFailed(f"not a OneLoop match model: {exc}") from exc
        if _model_version(model.settings_json, model.features_hash) != model.version:
            raise ValidationFailed("match model content does not match its version")
        return model


def _rounded(value: Any) -> Any:  # Any: Splink's settings JSON
    """Floats to 10 significant digits: DuckDB sums in parallel, in whatever order its threads
    finish, so the last bits of an estimate vary between equal runs (and so would the version)."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _model_version(settings_json: Mapping[str, Any], features_hash: str) -> str:
    return "m-" + _digest({"settings": settings_json, "features": features_hash})


def train(
    records: Iterable[Mapping[str, object]],
    config: MatchConfig,
    *,
    seed: int = 42,
    clock: Clock | None = None,
) -> TrainedModel:
    """Fit the model on the tenant's own records, without labels; deterministic for a seed.

    The prior comes from the deterministic ``prior`` rules (pairs found / recall), u from
    seeded random pairs, m from one EM session per ``blocking.train`` rule.
    """
    from splink import block_on

    frame = prepare(records, config)
    with _quiet_splink():
        tables = _register(_db_api(config), frame, config, "train")
        linker = _linker(tables, _splink_settings(config))
        try:
            linker.training.estimate_probability_two_random_records_match(
                [block_on(*rule) for rule in config.prior.rules], recall=config.prior.recall
            )
        except ValueError as exc:  # the rules found more pairs than their recall allows
            raise TrainingFailed(str(exc), step="prior") from exc
        prior = linker.misc.save_model_to_json()["probability_two_random_records_match"]
        if not 0 < prior < 1:
            raise TrainingFailed("prior.rules find no matching pair in these records", step="prior")
        linker.training.estimate_u_using_random_sampling(
            max_pairs=config.training.u_max_pairs, seed=seed
        )
        for i, rule in enumerate(config.blocking.train):
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
            except ValueError as exc:  # Splink 5 refuses an m that EM drove to exactly 0
                raise TrainingFailed(
                    f"EM degenerated: {exc} Some level is never seen among matches: drop it, "
                    "or train on more (and more varied) records",
                    step=f"blocking.train[{i}]",
                ) from exc
        settings = linker.misc.save_model_to_json()
    settings.pop("linker_uid", None)  # random per linker: would make equal models differ
    settings = _rounded(settings)
    features_hash = _features_hash(config)
    model = TrainedModel(
        version=_model_version(settings, features_hash),
        settings_json=settings,
        trained_at=(clock or SystemClock()).now(),
        record_count=len(frame),
        features_hash=features_hash,
    )
    log.info("matching.trained", extra={"model_version": model.version, "records": len(frame)})
    return model


# --- scoring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """One comparison's say in a candidate: the level reached and its log2 Bayes factor."""

    level: str
    match_weight: float


@dataclass(frozen=True)
class Candidate:
    left_id: str
    right_id: str
    match_weight: float  # prior + the comparisons' weights; what thresholds compare
    match_probability: float
    comparisons: dict[str, Evidence]


def predict(
    records: Iterable[Mapping[str, object]],
    model: TrainedModel,
    config: MatchConfig,
    *,
    do_not_merge: Collection[frozenset[str]] = frozenset(),
) -> list[Candidate]:
    """Every blocked pair at or above the review threshold, strongest first, pins removed."""
    frame = prepare(records, config)
    _check_compatible(model, config)
    with _quiet_splink():
        linker = _linker(_register(_db_api(config), frame, config, "all"), model.settings_json)
        scored = linker.inference.predict(
            threshold_match_weight=config.thresholds.review, warning_mode="never"
        )
        tables = [scored.as_pandas_dataframe()]
    return _candidates(tables, model, do_not_merge)


def score_new(
    new_records: Iterable[Mapping[str, object]],
    existing_records: Iterable[Mapping[str, object]],
    model: TrainedModel,
    config: MatchConfig,
    *,
    do_not_merge: Collection[frozenset[str]] = frozenset(),
) -> list[Candidate]:
    """Score arriving (new or changed) profiles against their blocking candidates, now.

    A changed profile replaces its stored version (same ``unique_id``). Pairs among existing
    profiles are not re-scored: the nightly batch owns those. Term frequencies come from
    existing and new records together, as a batch run over both would see them.
    """
    import pandas as pd

    new = prepare(new_records, config)
    existing = prepare(existing_records, config)
    existing = existing[~existing["unique_id"].isin(new["unique_id"])]
    _check_compatible(model, config)
    if new.empty:
        return []
    threshold = config.thresholds.review
    with _quiet_splink():
        db_api = _db_api(config)
        everyone = pd.concat([existing, new], ignore_index=True)
        linker = _linker(_register(db_api, everyone, config, "all"), model.settings_json)
        for column in _tf_columns(model.settings_json):
            linker.table_management.compute_tf_table(column)
        new_tables = _register(db_api, new, config, "new")
        scored = []
        if not existing.empty:
            existing_tables = _register(db_api, existing, config, "existing")
            scored.append(
                linker.inference.predict_between(
                    new_tables,
                    existing_tables,
                    threshold_match_weight=threshold,
                    warning_mode="never",
                )
            )
        if len(new) > 1 and (config.link_type != "link_only" or len(new_tables) > 1):
            scored.append(
                linker.inference.predict_within(
                    new_tables, threshold_match_weight=threshold, warning_mode="never"
                )
            )
        tables = [s.as_pandas_dataframe() for s in scored]
    return _candidates(tables, model, do_not_merge)


def count_pairs(records: Iterable[Mapping[str, object]], config: MatchConfig) -> int:
    """How many pairs ``blocking.predict`` makes ``predict`` score: size the rules before a
    tenant grows into them (a batch run costs roughly this many comparisons)."""
    from splink import block_on
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    frame = prepare(records, config)
    with _quiet_splink():
        counts = count_comparisons_from_blocking_rules(
            _register(_db_api(config), frame, config, "count"),
            blocking_rules=[block_on(*rule) for rule in config.blocking.predict],
            link_type=config.link_type,
            record_sample_proportion=1.0,
        )
    return int(counts[-1]["cumulative_comparison_count"])


def _check_compatible(model: TrainedModel, config: MatchConfig) -> None:
    if model.features_hash != _features_hash(config):
        raise ValidationFailed(
            "match model was trained with other feature definitions; retrain it",
            model_version=model.version,
        )
    if (trained_on := model.settings_json.get("sql_dialect")) != config.backend:
        raise ValidationFailed(
            f"match model was trained on {trained_on}, the config uses {config.backend}; "
            "retrain it on this backend",
            model_version=model.version,
        )


def _tf_columns(settings_json: Mapping[str, Any]) -> list[str]:
    levels = (lv for c in settings_json["comparisons"] for lv in c["comparison_levels"])
    return sorted({lv["tf_adjustment_column"] for lv in levels if lv.get("tf_adjustment_column")})


def _level_labels(settings_json: Mapping[str, Any]) -> dict[str, dict[int, str]]:
    """gamma value → label, per comparison, numbered as Splink numbers them: the null level
    is -1, the others count down to 0 from the most specific."""
    labels: dict[str, dict[int, str]] = {}
    for comparison in settings_json["comparisons"]:
        levels = comparison["comparison_levels"]
        gamma = sum(not level.get("is_null_level") for level in levels)
        by_gamma = labels[comparison["output_column_name"]] = {}
        for level in levels:
            if not level.get("is_null_level"):
                gamma -= 1
            by_gamma[-1 if level.get("is_null_level") else gamma] = level["label_for_charts"]
    return labels


def _candidates(
    tables: list[pd.DataFrame], model: TrainedModel, do_not_merge: Collection[frozenset[str]]
) -> list[Candidate]:
    labels = _level_labels(model.settings_json)
    found: dict[frozenset[str], Candidate] = {}
    for table in tables:
        for row in table.to_dict("records"):
            left, right = str(row["unique_id_l"]), str(row["unique_id_r"])
            pair = frozenset((left, right))
            if len(pair) < 2 or pair in do_not_merge or pair in found:
                continue
            evidence = {
                name: Evidence(
                    level=by_gamma[int(row[f"gamma_{name}"])],
                    match_weight=float(row[f"mw_{name}"]) + float(row.get(f"mw_tf_adj_{name}", 0)),
                )
                for name, by_gamma in labels.items()
            }
            found[pair] = Candidate(
                left, right, float(row["match_weight"]), float(row["match_probability"]), evidence
            )
    return sorted(found.values(), key=lambda c: (-c.match_weight, c.left_id, c.right_id))


def decide(candidate: Candidate, config: MatchConfig) -> Decision:
    if candidate.match_weight >= config.thresholds.auto_merge:
        return "merge"
    if candidate.match_weight >= config.thresholds.review:
        return "review"
    return "ignore"


# --- clusters ------------------------------------------------------------------------------------


def link_clusters(candidates: Iterable[Candidate], threshold: float) -> dict[str, str]:
    """Connected components of the pairs at or above ``threshold``: id → smallest id of its
    cluster. Transitive: two pinned ids can still share a cluster through a third profile."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for c in candidates:
        if c.match_weight >= threshold:
            a, b = root(c.left_id), root(c.right_id)
            parent[max(a, b)] = min(a, b)
    return {x: root(x) for x in parent}
