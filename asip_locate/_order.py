"""Pure ordering rules: NAPTR (RFC 3403 §4.1), SRV (RFC 2782), addresses (RFC 7984)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    ordered: list[SrvRecord] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        pending = [r for r in group if r.weight == 0] + [r for r in group if r.weight]
        while pending:
            total = sum(r.weight for r in pending)
            if total == 0:
                index = rng.randint(0, len(pending) - 1)
            else:
                draw = rng.randint(0, total)
                running = 0
                for index, record in enumerate(pending):  # noqa: B007
                    running += record.weight
                    if running >= draw:
                        break
            ordered.append(pending.pop(index))
    return ordered


def address_order(ipv6: Sequence[_T], ipv4: Sequence[_T], *, prefer_ipv6: bool) -> list[_T]:
    """Order one host's addresses: the preferred family first, RRset order inside.

    The items may carry more than the address (e.g. (address, answer) pairs).
    """
    first, second = (ipv6, ipv4) if prefer_ipv6 else (ipv4, ipv6)
    return [*first, *second]
