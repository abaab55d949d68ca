"""Pure ordering rules: NAPTR (RFC 3403 §4.1), SRV (RFC 2782), addresses (RFC 7984)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from asip_locate._model import NaptrRecord, SrvRecord, Transport

_T = TypeVar("_T")


class Rng(Protocol):
    """The randomness the core needs; ``random.Random`` satisfies it."""

    def randint(self, a: int, b: int) -> int:
        """Return a uniform integer N with a <= N <= b."""
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


def srv_draw(groups: Sequence[SrvGroup], rng: Rng) -> list[SrvRecord]:
    """One RFC 2782 weighted order of prepared groups (the only copy of the draw)."""
    ordered: list[SrvRecord] = []
    for group in groups:
        if len(group.records) == 1:
            # The lone record is drawn for too, as in the RFC's loop: a seeded order
            # must not depend on how the records were grouped.
            rng.randint(0, group.weights[0])
            ordered.append(group.records[0])
        else:
            ordered += _draw_group(group.records, group.weights, rng)
    return ordered


def _draw_group(
    records: tuple[SrvRecord, ...], weights: tuple[int, ...], rng: Rng
) -> list[SrvRecord]:
    # Running sums over the remaining records, kept in two Fenwick trees (weights and
    # counts): each pick is a search down the tree and an update, O(log n).
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
