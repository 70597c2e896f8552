"""Gray rollout: stable buckets, an accurate share, allow/deny precedence, independence from other systems/tables."""

from __future__ import annotations

import hashlib

import pytest

from verdict_server.routing import GRAY_EXCLUDED, Message, RouteIndex
from verdict_server.routing.gray import BUCKETS, GrayRule, gray_salt

TABLE = """\
kind: RouteTable
name: orders
topic: order.#
systems:
  - system: pharmacy
    selected: true
    target: pharmacy.in
    gray: {percent: 10, by: key}
"""


def rule(percent: float, by: str = "key", allow=(), deny=(), table="orders", system="pharmacy") -> GrayRule:
    return GrayRule(percent, by, frozenset(allow), frozenset(deny), gray_salt(table, system))


def test_bucket_is_the_documented_sha256_formula():
    # Recomputed here from the documented formula, so a change of formula (which would move every bucket) fails.
    for key in ["pin-1", "pin-2", "用户-3", ""]:
        digest = hashlib.sha256(f"orders/pharmacy/{key}".encode()).digest()
        assert rule(10).bucket(key) == int.from_bytes(digest[:8], "big") % BUCKETS


def test_ten_percent_of_ten_thousand_keys_is_within_one_and_a_half_points():
    gray = rule(10)
    included = sum(gray.exclusion(f"user-{n}", {}) is None for n in range(10_000))
    assert abs(included / 10_000 - 0.10) <= 0.015


def test_each_system_draws_its_own_keys():
    pharmacy, crm = rule(10, system="pharmacy"), rule(10, system="crm")
    keys = [f"user-{n}" for n in range(10_000)]
    in_pharmacy = {k for k in keys if pharmacy.exclusion(k, {}) is None}
    in_crm = {k for k in keys if crm.exclusion(k, {}) is None}
    # Independent 10% draws overlap on about 1% of the keys, not 10%.
    assert len(in_pharmacy & in_crm) < 300


def test_raising_the_percentage_only_adds_keys():
    keys = [f"user-{n}" for n in range(2_000)]
    at_10 = {k for k in keys if rule(10).exclusion(k, {}) is None}
    at_25 = {k for k in keys if rule(25).exclusion(k, {}) is None}
    assert at_10 < at_25


def test_allow_wins_over_deny_and_deny_wins_over_the_percentage():
    assert rule(0, allow=["vip"]).exclusion("vip", {}) is None
    assert rule(0, allow=["vip"], deny=["vip"]).exclusion("vip", {}) is None
    assert "deny list" in rule(100, deny=["blocked"]).exclusion("blocked", {})
    assert rule(100, deny=["blocked"]).exclusion("someone-else", {}) is None


def test_zero_and_hundred_percent():
    keys = [f"user-{n}" for n in range(500)]
    assert all(rule(0).exclusion(k, {}) is not None for k in keys)
    assert all(rule(100).exclusion(k, {}) is None for k in keys)


def test_by_property_and_missing_values():
    gray = rule(50, by="properties.pin")
    assert gray.value_of("key-ignored", {"pin": "p-7"}) == "p-7"
    assert "has no properties.pin" in gray.exclusion("key", {})
    assert rule(100, by="properties.pin").exclusion("key", {}) is None
    assert "has no key" in rule(50).exclusion("", {})


def test_exclusion_detail_names_the_bucket():
    gray = rule(10)
    key = next(f"user-{n}" for n in range(100) if gray.bucket(f"user-{n}") >= 1000)
    assert f"bucket {gray.bucket(key)} of 10000" in gray.exclusion(key, {})


def test_buckets_do_not_move_when_other_systems_and_tables_change(compile_table):
    alone = RouteIndex([compile_table(TABLE)])
    crowded_text = TABLE.replace(
        "systems:\n",
        "systems:\n  - {system: crm, selected: true, target: crm.in, priority: 5, gray: {percent: 50}}\n",
    )
    crowded = RouteIndex(
        [
            compile_table(crowded_text, version=7),
            compile_table(TABLE.replace("name: orders", "name: audit")),
        ]
    )

    def pharmacy_gets(index: RouteIndex, key: str) -> bool:
        outcome = index.route(Message("order.status.paid", key=key))
        return any(d.system == "pharmacy" and d.table == "orders" for d in outcome.destinations)

    keys = [f"user-{n}" for n in range(2_000)]
    assert [pharmacy_gets(alone, k) for k in keys] == [pharmacy_gets(crowded, k) for k in keys]
    assert 100 < sum(pharmacy_gets(alone, k) for k in keys) < 300


def test_gray_excluded_skip_reports_the_reason(compile_table):
    index = RouteIndex([compile_table(TABLE)])
    gray = rule(10)
    key = next(f"user-{n}" for n in range(100) if gray.bucket(f"user-{n}") >= 1000)
    outcome = index.route(Message("order.created", key=key))
    assert outcome.destinations == ()
    (skip,) = outcome.skipped
    assert (skip.system, skip.reason) == ("pharmacy", GRAY_EXCLUDED)


@pytest.mark.parametrize("percent", [0.01, 33.33, 99.99])
def test_fractional_percentages_use_basis_points(percent):
    assert rule(percent).threshold == round(percent * 100)
