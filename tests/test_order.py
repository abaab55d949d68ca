from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asip_locate import NaptrRecord, SrvRecord, Transport
from asip_locate._order import _draw_scan, _draw_tree, address_order, naptr_order, srv_order


class ScriptedRng:
    """Returns the given draws in turn and records the ranges asked for."""

    def __init__(self, draws: list[int]) -> None:
        self._draws: Iterator[int] = iter(draws)
        self.asked: list[tuple[int, int]] = []

    def randint(self, a: int, b: int) -> int:
        self.asked.append((a, b))
        value = next(self._draws)
        assert a <= value <= b
        return value

    def random(self) -> float:
        raise AssertionError("srv_draw draws integers only (a seed replays them)")


def srv(priority: int, weight: int, target: str) -> SrvRecord:
    return SrvRecord(priority, weight, 5060, target)


def test_priority_first_then_rfc2782_running_sums() -> None:
    a, b, c, z = srv(10, 60, "a"), srv(10, 40, "b"), srv(20, 5, "c"), srv(10, 0, "z")
    # priority 10, arranged zero-weight first: z(0) a(60) b(40), running 0, 60, 100
    rng = ScriptedRng([61, 0, 1, 0])
    ordered = srv_order([c, a, b, z], rng)
    # draw 61 -> first running sum >= 61 is b (100); then z(0) a(60): draw 0 -> z;
    # then a alone: draw in [0, 60] -> a; then priority 20: c.
    assert ordered == [b, z, a, c]
    assert rng.asked == [(0, 100), (0, 60), (0, 60), (0, 5)]


def test_draw_zero_picks_weight_zero_record() -> None:
    zero, heavy = srv(1, 0, "zero"), srv(1, 100, "heavy")
    assert srv_order([heavy, zero], ScriptedRng([0, 0])) == [zero, heavy]
    assert srv_order([heavy, zero], ScriptedRng([1, 0])) == [heavy, zero]


def test_all_zero_weights_are_shuffled_uniformly() -> None:
    records = [srv(1, 0, name) for name in "abc"]
    rng = ScriptedRng([2, 0, 0])
    assert srv_order(records, rng) == [records[2], records[0], records[1]]
    assert rng.asked == [(0, 2), (0, 1), (0, 0)]


def test_priorities_compared_as_numbers() -> None:
    high, low = srv(100, 0, "high"), srv(9, 0, "low")
    assert srv_order([high, low], ScriptedRng([0, 0])) == [low, high]


def naptr(order: int, pref: int, service: str) -> NaptrRecord:
    return NaptrRecord(order, pref, "s", service, "", "x")


def test_naptr_order_preference_then_client_preference() -> None:
    prefs = [Transport.TCP, Transport.UDP, Transport.TLS]
    records = [
        (naptr(20, 10, "SIP+D2U"), Transport.UDP),
        (naptr(10, 50, "SIP+D2U"), Transport.UDP),
        (naptr(10, 50, "SIP+D2T"), Transport.TCP),
        (naptr(10, 10, "SIPS+D2T"), Transport.TLS),
    ]
    ordered = naptr_order(records, prefs)
    assert [(r.order, r.preference, t) for r, t in ordered] == [
        (10, 10, Transport.TLS),
        (10, 50, Transport.TCP),
        (10, 50, Transport.UDP),
        (20, 10, Transport.UDP),
    ]


@pytest.mark.parametrize("prefer_ipv6", [True, False])
def test_address_order_keeps_rrset_order_within_family(prefer_ipv6: bool) -> None:
    v6 = [ipaddress.ip_address("2001:db8::2"), ipaddress.ip_address("2001:db8::1")]
    v4 = [ipaddress.ip_address("192.0.2.9"), ipaddress.ip_address("192.0.2.1")]
    expected = v6 + v4 if prefer_ipv6 else v4 + v6
    assert address_order(v6, v4, prefer_ipv6=prefer_ipv6) == expected


@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2]), st.sampled_from([0, 0, 1, 5, 60])),
        min_size=1,
        max_size=150,
    ),
    st.integers(0, 2**32),
)
@settings(max_examples=200, deadline=None)
def test_the_scan_and_the_tree_draw_alike(spec: list[tuple[int, int]], seed: int) -> None:
    # Small groups use running sums with bisect, large ones Fenwick trees: the same
    # RFC 2782 draw, so the same order from the same random sequence.
    records = tuple(srv(1, weight, f"h{i}") for i, (_, weight) in enumerate(spec))
    weights = tuple(r.weight for r in records)
    assert _draw_scan(records, weights, random.Random(seed)) == _draw_tree(
        records, weights, random.Random(seed)
    )


def test_a_large_rrset_is_ordered_in_one_pass() -> None:
    records = [srv(i % 3, (i * 7) % 50, f"h{i}") for i in range(3000)]
    ordered = srv_order(records, random.Random(1))
    assert sorted(map(id, ordered)) == sorted(map(id, records))
    assert [r.priority for r in ordered] == sorted(r.priority for r in records)
    assert ordered == srv_order(records, random.Random(1))
