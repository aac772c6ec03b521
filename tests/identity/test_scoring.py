"""Scoring against the demo's truth: the planted identity groups (which of one person's records
any evidence can join) and the pairwise scores against them, on a truth small enough to check
by hand."""

from __future__ import annotations

import pytest

from oneloop.identity.scoring import Key, planted_groups, reachable

COOKIE, USER, EMAIL = ("anonymous_id", "c1"), ("user_id", "shop:u1"), ("email", "a@x.cn")
OPENID, UNIONID = ("wechat_openid", "wxapp:o1"), ("wechat_unionid", "un1")
SWITCHBOARD = ("phone", "+862168880000")  # a company line: Ann's and Bob's records carry it
WORK = ("email", "ann@corp.cn")
CRM = ("crm_id", "003B")

# Ann: one identity on the web shop (a1-a3), one on WeChat (a4, a5) that nothing joins to it,
# one at work (a7, a8) joined by her work e-mail, a visit from a fresh cookie (a6) and a form
# with only the switchboard (a9). Bob: a CRM contact on the switchboard and its opportunity.
PERSON = {
    **{f"a{i}": "ann" for i in range(1, 10)},
    "b1": "bob",
    "b2": "bob",
}
KEYS: dict[str, list[Key]] = {
    "a1": [COOKIE],
    "a2": [COOKIE, USER],
    "a3": [USER, EMAIL],
    "a4": [OPENID],
    "a5": [OPENID, UNIONID],
    "a6": [("anonymous_id", "fresh")],
    "a7": [SWITCHBOARD, WORK],
    "a8": [WORK],
    "a9": [SWITCHBOARD],
    "b1": [CRM, SWITCHBOARD],
    "b2": [CRM],
}


def partition(groups: dict[str, str]) -> set[frozenset[str]]:
    found: dict[str, set[str]] = {}
    for record, group in groups.items():
        found.setdefault(group, set()).add(record)
    return {frozenset(members) for members in found.values()}


def test_planted_groups_join_a_persons_records_on_identifiers_only_she_carries() -> None:
    groups = planted_groups(PERSON, KEYS)
    assert partition(groups) == {
        frozenset({"a1", "a2", "a3"}),
        frozenset({"a4", "a5"}),
        frozenset({"a7", "a8"}),  # not with a9 nor b1: the switchboard is evidence of nothing
        frozenset({"b1", "b2"}),
        frozenset({"a6"}),
        frozenset({"a9"}),
    }
    assert groups["a6"].startswith("alone\t") and groups["a9"].startswith("alone\t")
    assert not groups["a1"].startswith("alone\t")


def test_other_records_of_the_data_are_evidence_when_the_truth_gives_them_one_person() -> None:
    # The truth names a record only where an identifier first shows: the later login that
    # carried both Ann's cookie and her openid joins her two identities.
    login = [COOKIE, OPENID]
    assert partition(planted_groups(PERSON, KEYS, [login])) == {
        frozenset({"a1", "a2", "a3", "a4", "a5"}),
        frozenset({"a7", "a8"}),
        frozenset({"b1", "b2"}),
        frozenset({"a6"}),
        frozenset({"a9"}),
    }
    # Evidence the truth contradicts (Ann's e-mail, then her openid, with Bob's crm_id), or
    # only through an identifier the truth gives to nobody, or the switchboard, joins nobody.
    ignored = [[EMAIL, CRM], [OPENID, CRM]]
    ignored += [[WORK, ("device_id", "unknown")], [("device_id", "unknown"), USER]]
    ignored.append([SWITCHBOARD, ("anonymous_id", "fresh")])
    assert partition(planted_groups(PERSON, KEYS, ignored)) == partition(
        planted_groups(PERSON, KEYS)
    )


def test_reachable_scores_count_pairs_within_planted_groups_and_skip_lone_records() -> None:
    groups = planted_groups(PERSON, KEYS)
    predicted = {
        **dict.fromkeys(["a1", "a2", "a3", "a4", "a5", "a6"], "X"),  # a6 is alone: not scored
        "a7": "W",
        "b1": "W",
        "b2": "W",
        "a9": "W",  # alone: its wrong pairs with Bob are not scored either
        "a8": "Z",
    }
    found = reachable(predicted, PERSON, groups)
    assert (found.records, found.groups, found.pairs) == (9, 4, 6)
    # recall: a1-a2, a1-a3, a2-a3, a4-a5 and b1-b2 of the 6 reachable pairs (a7-a8 missed);
    # the pairs across Ann's two identities in X are right but reachable by no evidence.
    assert found.recall == pytest.approx(5 / 6)
    # precision: X's 10 pairs are all Ann's; of W's 3 scored pairs only b1-b2 is one person.
    assert found.precision == pytest.approx(11 / 13)
    assert found.f1 == pytest.approx(2 * (11 / 13) * (5 / 6) / (11 / 13 + 5 / 6))


def test_reachable_scores_of_the_truth_itself_are_perfect() -> None:
    groups = planted_groups(PERSON, KEYS)
    found = reachable(groups, PERSON, groups)
    assert (found.precision, found.recall, found.f1) == (1.0, 1.0, 1.0)
    everyone = reachable(dict.fromkeys(PERSON, "one"), PERSON, groups)
    assert everyone.recall == 1.0 and everyone.precision == pytest.approx((21 + 1) / 36)
    assert reachable({}, {}, {}).records == 0
