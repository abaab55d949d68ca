"""Answer building at the backend seam: which records of a reply are trusted, and how many.

Pure functions over decoded resource records (``RR``), with no resolver types, so any
backend (c-ares, an in-memory zone, a test double) builds its Answers the same way:

* **Owner check.** Only class-IN records owned by the query name, or by a name on the
  CNAME chain that starts at it (each CNAME owned by the previous link, RFC 1034
  §3.6.2), are used. Everything else in the reply — records of other owners, other
  classes, other types, CNAMEs off the chain, data of the wrong shape — is dropped
  and counted. A hostile or broken server can therefore not plant data for a name
  that was not asked through the answer section.
* **Bounded work.** The records kept are capped at ``max_records`` where the Answer
  is built, so nothing downstream (ordering, the cache) ever sees more: NAPTR sorted
  by (order, preference) and then capped; SRV the lowest priorities first (stable,
  wire order within a priority), capped, leaving the RFC 2782 weighted draw to the
  planner; A/AAAA capped in wire order. Every step is O(n log n) at most.
* **Additional data** (RFC 2782, RFC 2181 §5.4.1): for an SRV answer, A/AAAA records
  of the additional section owned by a target named in the (capped) SRV records become
  one Answer per (target, type). Nothing else from the additional section is used.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import NamedTuple

from asip_locate._model import Answer, NaptrRecord, Query, Record, RType, SrvRecord, Status

log = logging.getLogger("asip_locate")

CLASS_IN = 1
TYPE_CODE = {RType.A: 1, RType.NAPTR: 35, RType.SRV: 33, RType.AAAA: 28}
"""The TYPE value of each record type the library asks for (RFC 1035, 2782, 3403, 3596)."""
TYPE_CNAME = 5
MAX_CNAME_CHAIN = 16
"""Links of a CNAME chain followed inside one reply (longer chains are cut there)."""
MAX_TTL = 2**31 - 1
"""RFC 2181 §8: a TTL with the top bit set is treated as 0."""

_SHAPE: dict[RType, type | tuple[type, ...]] = {
    RType.NAPTR: NaptrRecord,
    RType.SRV: SrvRecord,
    RType.A: ipaddress.IPv4Address,
    RType.AAAA: ipaddress.IPv6Address,
}
_A_SHAPE, _AAAA_SHAPE = ipaddress.IPv4Address, ipaddress.IPv6Address
_NAPTR_KEY = attrgetter("order", "preference")
_NAPTR, _SRV, _A, _AAAA = RType.NAPTR, RType.SRV, RType.A, RType.AAAA
_NOERROR, _NODATA = Status.NOERROR, Status.NODATA
_SRV_KEY = attrgetter("priority")


class RR(NamedTuple):
    """One decoded resource record as a backend received it.

    Attributes:
        name: The owner name, normalized (``normalize_name``).
        rtype: The TYPE code (1 A, 5 CNAME, 28 AAAA, 33 SRV, 35 NAPTR, ...).
        rclass: The CLASS code (1 IN).
        ttl: The TTL as received (values with the top bit set count as 0).
        data: The RDATA: a Record for NAPTR/SRV/A/AAAA, the normalized canonical
            name (str) for a CNAME, None for anything the backend did not decode.
    """

    name: str
    rtype: int
    rclass: int
    ttl: int
    data: Record | str | None


class Built(NamedTuple):
    """An Answer and what was left out of it.

    Attributes:
        answer: The Answer (NOERROR with records, else NODATA).
        dropped: Records of the answer section not used: foreign owners, other
            classes or types, CNAMEs off the chain, malformed data.
        dropped_additional: Records of the additional section not used.
        capped: Valid records left out because of ``max_records``.
    """

    answer: Answer
    dropped: int
    dropped_additional: int
    capped: int


def cname_chain(owner: str, records: Sequence[RR]) -> list[RR]:
    """The CNAME records of ``records`` that form the chain starting at ``owner``.

    Link i is the class-IN CNAME owned by the target of link i-1 (the first one by
    ``owner``); when a name owns several CNAMEs (not legal, RFC 2181 §10.1) the first
    is the link. The chain stops at a loop or after ``MAX_CNAME_CHAIN`` links.
    """
    by_owner: dict[str, RR] = {}
    for rr in records:
        if rr.rtype == TYPE_CNAME and rr.rclass == CLASS_IN and isinstance(rr.data, str):
            by_owner.setdefault(rr.name, rr)
    if not by_owner:
        return []
    chain: list[RR] = []
    seen = {owner}
    name = owner
    while len(chain) < MAX_CNAME_CHAIN:
        link = by_owner.get(name)
        if link is None:
            break
        chain.append(link)
        name = link.data  # type: ignore[assignment]  # a str, checked above
        if name in seen:
            break
        seen.add(name)
    return chain


def build_answer(
    query: Query,
    records: Iterable[RR],
    additional: Iterable[RR] = (),
    *,
    max_records: int,
    owner: str | None = None,
) -> Built:
    """Build the Answer to ``query`` from a NOERROR reply's answer and additional RRs.

    Args:
        query: The question asked.
        records: The answer section, decoded.
        additional: The additional section, decoded (used for SRV queries only).
        max_records: The most records of the asked type kept (also per additional
            Answer).
        owner: The query name as it went on the wire, normalized, when it differs
            from ``query.name`` (an IDNA-encoded name); default ``query.name``.

    Returns:
        The Answer (NOERROR, or NODATA when no usable record is left) and the counts
        of what was dropped or capped.
    """
    if type(records) is not list:
        records = list(records)
    if owner is None:
        owner = query.name
    rtype = query.rtype
    wanted = TYPE_CODE[rtype]
    shape = _SHAPE[rtype]
    chain = cname_chain(owner, records)
    if chain:
        names = {owner, *(link.data for link in chain)}
        kept = [
            rr
            for rr in records
            if rr.rtype == wanted
            and rr.rclass == CLASS_IN
            and rr.name in names
            and isinstance(rr.data, shape)
        ]
        cnames = tuple(link.name for link in chain)
    else:
        kept = [
            rr
            for rr in records
            if rr.rtype == wanted
            and rr.rclass == CLASS_IN
            and rr.name == owner
            and isinstance(rr.data, shape)
        ]
        cnames = ()
    dropped = len(records) - len(kept) - len(chain)
    if not kept:
        detail = f"{dropped} record(s) dropped" if dropped else ""
        return Built(Answer(query, _NODATA, cnames=cnames, detail=detail), dropped, 0, 0)
    ttls = [rr.ttl for rr in kept]
    if chain:
        ttls += [link.ttl for link in chain]
    ttl = answer_ttl(min(ttls), max(ttls))
    data: list[Record] = [rr.data for rr in kept]  # type: ignore[misc]  # shapes checked
    order_records(rtype, data)
    capped = len(data) - max_records
    if capped > 0:
        del data[max_records:]
    else:
        capped = 0
    if rtype is _SRV and additional:
        extra, dropped_additional = additional_answers(data, additional, max_records)  # type: ignore[arg-type]
        answer = Answer(query, _NOERROR, tuple(data), ttl, cnames, additional=extra)
        return Built(answer, dropped, dropped_additional, capped)
    return Built(Answer(query, _NOERROR, tuple(data), ttl, cnames), dropped, 0, capped)


def answer_ttl(lowest: int, highest: int) -> int:
    """The TTL of an RRset whose records' TTLs range from ``lowest`` to ``highest``.

    The minimum, or 0 when any TTL has the top bit set (RFC 2181 §8).
    """
    return 0 if lowest < 0 or highest > MAX_TTL else lowest


def order_records(rtype: RType, data: list[Record]) -> None:
    """Sort NAPTR data by (order, preference) and SRV data by priority, in place.

    Stable (wire order otherwise); A/AAAA data keeps its wire order.
    """
    if rtype is _NAPTR:
        data.sort(key=_NAPTR_KEY)
    elif rtype is _SRV:
        data.sort(key=_SRV_KEY)


def additional_answers(
    srv: Sequence[SrvRecord], additional: Iterable[RR], max_records: int
) -> tuple[tuple[Answer, ...], int]:
    """A/AAAA Answers for the targets of ``srv`` from an additional section.

    Only class-IN A/AAAA records owned by a target named in ``srv`` are used (no
    CNAMEs are followed there); one NOERROR Answer per (target, type), in the order
    first seen, with the minimum TTL and at most ``max_records`` addresses. Returns
    the Answers and the number of additional records not used.
    """
    targets = {record.target for record in srv if record.target}
    groups: dict[tuple[str, int], list[RR]] = {}
    dropped = 0
    for rr in additional:
        kind = rr.rtype
        if (
            (kind == 1 or kind == 28)
            and rr.rclass == CLASS_IN
            and rr.name in targets
            and isinstance(rr.data, _A_SHAPE if kind == 1 else _AAAA_SHAPE)
        ):
            key = (rr.name, kind)
            group = groups.get(key)
            if group is None:
                groups[key] = [rr]
            else:
                group.append(rr)
        else:
            dropped += 1
    answers = []
    for (name, kind), rrs in groups.items():
        if len(rrs) > max_records:
            del rrs[max_records:]
        ttls = [rr.ttl for rr in rrs]
        ttl = answer_ttl(min(ttls), max(ttls))
        addresses: tuple[Record, ...] = tuple([rr.data for rr in rrs])  # type: ignore[misc]
        query = Query(name, _A if kind == 1 else _AAAA)
        answers.append(Answer(query, _NOERROR, addresses, ttl))
    return tuple(answers), dropped


def answer_from_records(
    query: Query,
    records: Iterable[RR],
    additional: Iterable[RR] = (),
    *,
    max_records: int,
    owner: str | None = None,
) -> Answer:
    """``build_answer`` for in-memory backends: the Answer, drops logged at debug level."""
    built = build_answer(query, records, additional, max_records=max_records, owner=owner)
    if built.dropped or built.dropped_additional:
        log.debug(
            "%s: dropped %d answer and %d additional record(s) not owned by the name, "
            "its CNAME chain or its SRV targets",
            query,
            built.dropped,
            built.dropped_additional,
        )
    return built.answer
