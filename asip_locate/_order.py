"""Pure ordering rules: NAPTR (RFC 3403 §4.1), SRV (RFC 2782), addresses (RFC 7984)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Protocol, TypeVar

from asip_locate._model import NaptrRecord, SrvRecord, Transport

_T = TypeVar("_T")


class Rng(Protocol):
    """The randomness the core needs; ``random.Random`` satisfies it."""

    def randint(self, a: int, b: int) -> int:
        """Return a uniform integer N with a <= N <= b."""
        ...

    def random(self) -> float:
        """Return a uniform float in [0.0, 1.0)."""
        ...


def naptr_order(
    records: Iterable[tuple[NaptrRecord, Transport]], preferred: Sequence[Transport]
) -> list[tuple[NaptrRecord, Transport]]:
    """Order usable NAPTR records: ORDER, then PREFERENCE (RFC 3403 §4.1).

    Ties are broken by the caller's transport preference (RFC 3263 leaves them open).
    """
    return sorted(records, key=lambda rt: (rt[0].order, rt[0].preference, preferred.index(rt[1])))


def srv_order(records: Sequence[SrvRecord], rng: Rng) -> list[SrvRecord]:
    """Order SRV records: priority ascending, weighted random within one priority.

    RFC 2782 "Weight": put weight-0 records first, draw R uniformly in [0, total] and
    take the first record whose running weight sum reaches R; repeat. When every
    remaining weight is 0 the pick is uniform, so load still spreads.
    """
    return srv_draw(srv_groups(records), rng)


@dataclass(frozen=True, slots=True)
class SrvGroup:
    """The records of one SRV priority, arranged for the RFC 2782 draw.

    Weight-0 records come first, then the others, each in RRset order.
    """

    records: tuple[SrvRecord, ...]
    weights: tuple[int, ...]


def srv_groups(records: Sequence[SrvRecord]) -> tuple[SrvGroup, ...]:
    """Split ``records`` by priority (ascending, compared as numbers) for ``srv_draw``."""
    by_priority: dict[int, list[SrvRecord]] = {}
    for record in records:
        by_priority.setdefault(record.priority, []).append(record)
    groups = []
    for priority in sorted(by_priority):
        group = by_priority[priority]
        arranged = tuple([r for r in group if r.weight == 0] + [r for r in group if r.weight])
        groups.append(SrvGroup(arranged, tuple(r.weight for r in arranged)))
    return tuple(groups)


def srv_draw(groups: Sequence[SrvGroup], rng: Rng, *, forced_draws: bool = True) -> list[SrvRecord]:
    """One RFC 2782 weighted order of prepared groups (the only copy of the draw).

    ``forced_draws=False`` skips the draws whose outcome is forced (a record left
    alone): the same distribution, fewer draws, but a seeded sequence differs, so
    only for unseeded sources.
    """
    ordered: list[SrvRecord] = []
    randint = rng.randint
    for group in groups:
        records, weights = group.records, group.weights
        size = len(records)
        if size == 1:
            # The lone record is drawn for too, as in the RFC's loop: a seeded order
            # must not depend on how the records were grouped.
            if forced_draws:
                randint(0, weights[0])
            ordered.append(records[0])
        elif size == 2:  # the common pair, unrolled (the same draws as the scan)
            index = 0 if pair_first(weights, rng) else 1
            if forced_draws:
                randint(0, weights[1 - index])
            ordered += (records[index], records[1 - index])
        elif size <= _SMALL:
            ordered += _draw_scan(group.records, group.weights, rng)
        else:
            ordered += _draw_tree(group.records, group.weights, rng)
    return ordered


def pair_first(weights: Sequence[int], rng: Rng) -> bool:
    """The RFC 2782 draw for a group of two records: True if the first comes first.

    The same draws as the scan makes for two records (``srv_draw`` uses it).
    """
    first, second = weights
    total = first + second
    if total == 0:
        return rng.randint(0, 1) == 0
    return rng.randint(0, total) <= first


def pair_chance(weights: Sequence[int]) -> float:
    """The chance that ``pair_first`` is True: one ``random()`` below it draws the pair.

    R is uniform over the total + 1 integers 0..total, and the first record wins for
    R <= its weight (RFC 2782); with both weights 0 the pick is uniform.
    """
    first, second = weights
    total = first + second
    return 0.5 if total == 0 else (first + 1) / (total + 1)


_SMALL = 64
"""Up to this many records of one priority, running sums in C beat the tree."""


def _draw_scan(
    records: tuple[SrvRecord, ...], weights: tuple[int, ...], rng: Rng
) -> list[SrvRecord]:
    # Running sums of the remaining weights, searched with bisect: the first record
    # whose running sum reaches R (R = 0 gives the first one, whatever its weight).
    # Each pick is O(n) in C, which beats the tree's O(log n) in Python for small n.
    pending = list(records)
    left = list(weights)
    total = sum(left)
    ordered = []
    while pending:
        if total == 0:
            index = rng.randint(0, len(pending) - 1)
        else:
            index = bisect_left(list(accumulate(left)), rng.randint(0, total))
        ordered.append(pending.pop(index))
        total -= left.pop(index)
    return ordered


def _draw_tree(
    records: tuple[SrvRecord, ...], weights: tuple[int, ...], rng: Rng
) -> list[SrvRecord]:
    # The same draws, with the running sums over the remaining records kept in two
    # Fenwick trees (weights and counts): each pick is a search down the tree and an
    # update, O(log n), so a large RRset costs O(n log n).
    n = len(records)
    tree_w = [0] * (n + 1)
    tree_c = [0] * (n + 1)
    for i in range(1, n + 1):
        tree_w[i] += weights[i - 1]
        tree_c[i] += 1
        j = i + (i & -i)
        if j <= n:
            tree_w[j] += tree_w[i]
            tree_c[j] += tree_c[i]
    top = 1 << (n.bit_length() - 1)
    total = sum(weights)
    removed = [False] * n
    first = 0
    ordered: list[SrvRecord] = []
    for left in range(n, 0, -1):
        if total == 0:
            index = _search(tree_c, n, top, rng.randint(0, left - 1) + 1)
        else:
            draw = rng.randint(0, total)
            if draw == 0:  # reached by the first remaining record, whatever its weight
                while removed[first]:
                    first += 1
                index = first
            else:
                index = _search(tree_w, n, top, draw)
        removed[index] = True
        ordered.append(records[index])
        weight = weights[index]
        total -= weight
        i = index + 1
        while i <= n:
            tree_w[i] -= weight
            tree_c[i] -= 1
            i += i & -i
    return ordered


def _search(tree: list[int], n: int, top: int, target: int) -> int:
    """The 0-based position of the first running sum >= ``target`` (> 0)."""
    position = 0
    step = top
    while step:
        following = position + step
        if following <= n and tree[following] < target:
            position = following
            target -= tree[following]
        step >>= 1
    return position


def address_order(ipv6: Sequence[_T], ipv4: Sequence[_T], *, prefer_ipv6: bool) -> list[_T]:
    """Order one host's addresses: the preferred family first, RRset order inside.

    The items may carry more than the address (e.g. (address, answer) pairs).
    """
    first, second = (ipv6, ipv4) if prefer_ipv6 else (ipv4, ipv6)
    return [*first, *second]
