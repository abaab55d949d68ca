"""Zone: RFC 1035 zone-file text answered like a correct recursive resolver would."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR

from asip_locate._model import Answer, NaptrRecord, Query, Record, RType, SrvRecord, Status
from asip_locate._model import normalize_name as _norm

MAX_CNAME_CHAIN = 16


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "backslashreplace") if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class ZoneAnswer:
    """What a resolver returns for one question: rcode, answer and authority RRs."""

    rcode: int
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)


class Zone:
    """An in-memory DNS world built from zone-file text (owner names absolute).

    A name that owns records, or has records below it (an empty non-terminal), exists:
    a missing type is NODATA; any other name is NXDOMAIN. CNAMEs are followed for every
    type but CNAME (RFC 1034 §3.6.2). Negative answers carry the SOA of the closest
    enclosing zone, whose TTL is min(SOA TTL, MINIMUM) (RFC 2308 §3).

    With ``additional=True`` an SRV answer also carries the A and AAAA records of its
    targets (``Answer.additional``), as authoritative servers such as NSD and Knot
    send them for targets they serve (RFC 2782).
    """

    def __init__(self, text: str, origin: str = ".", *, additional: bool = False) -> None:
        self.additional = additional
        self.records: dict[str, list[RR]] = {}
        for rr in RR.fromZone(text, origin=origin):
            self.records.setdefault(_norm(str(rr.rname)), []).append(rr)
        self._existing: set[str] = set()
        for name in self.records:
            labels = name.split(".")
            self._existing.update(".".join(labels[i:]) for i in range(len(labels)))

    def lookup(self, name: str, qtype: int) -> ZoneAnswer:
        """Answer ``name``/``qtype`` (a dnslib QTYPE number), following CNAMEs."""
        chain: list[RR] = []
        current = _norm(name)
        for _ in range(MAX_CNAME_CHAIN):
            rrs = self.records.get(current, [])
            matching = [rr for rr in rrs if rr.rtype == qtype]
            if matching:
                return ZoneAnswer(RCODE.NOERROR, chain + matching)
            cname = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
            if not cname or qtype == QTYPE.CNAME:
                break
            chain.append(cname[0])
            current = _norm(str(cname[0].rdata.label))
        else:
            return ZoneAnswer(RCODE.SERVFAIL, chain)
        rcode = RCODE.NOERROR if current in self._existing else RCODE.NXDOMAIN
        return ZoneAnswer(rcode, chain, self._soa_for(current))

    def _soa_for(self, name: str) -> list[RR]:
        labels = name.split(".")
        for i in range(len(labels)):
            for rr in self.records.get(".".join(labels[i:]), []):
                if rr.rtype == QTYPE.SOA:
                    ttl = min(rr.ttl, rr.rdata.times[-1])
                    return [RR(rr.rname, QTYPE.SOA, rdata=rr.rdata, ttl=ttl)]
        return []

    def answer(self, query: Query) -> Answer:
        """The library-level Answer for ``query``, as AiodnsBackend would build it."""
        result = self.lookup(query.name, getattr(QTYPE, query.rtype.value))
        cnames = tuple(_norm(str(rr.rname)) for rr in result.answer if rr.rtype == QTYPE.CNAME)
        if result.rcode == RCODE.NXDOMAIN:
            return Answer(query, Status.NXDOMAIN, ttl=_negative_ttl(result), cnames=cnames)
        if result.rcode != RCODE.NOERROR:
            return Answer(query, Status.SERVFAIL, cnames=cnames, detail="CNAME chain too long")
        records = [_record(rr) for rr in result.answer if rr.rtype != QTYPE.CNAME]
        if not records:
            return Answer(query, Status.NODATA, ttl=_negative_ttl(result), cnames=cnames)
        ttl = min(rr.ttl for rr in result.answer)
        extra = self._additional(records) if self.additional and query.rtype is RType.SRV else ()
        return Answer(query, Status.NOERROR, tuple(records), ttl, cnames, additional=extra)

    def _additional(self, records: list[Record]) -> tuple[Answer, ...]:
        """A/AAAA answers for the SRV targets that own such records here (no CNAMEs)."""
        extra = []
        targets = dict.fromkeys(r.target for r in records if isinstance(r, SrvRecord) and r.target)
        for target in targets:
            for rtype, qtype in ((RType.A, QTYPE.A), (RType.AAAA, QTYPE.AAAA)):
                rrs = [rr for rr in self.records.get(target, []) if rr.rtype == qtype]
                if rrs:
                    extra.append(
                        Answer(
                            Query(target, rtype),
                            Status.NOERROR,
                            tuple(_record(rr) for rr in rrs),
                            min(rr.ttl for rr in rrs),
                        )
                    )
        return tuple(extra)


def _negative_ttl(result: ZoneAnswer) -> int | None:
    return result.authority[0].ttl if result.authority else None


def _record(rr: RR) -> Record:
    rdata = rr.rdata
    if rr.rtype == QTYPE.NAPTR:
        return NaptrRecord(
            rdata.order,
            rdata.preference,
            _text(rdata.flags),
            _text(rdata.service),
            _text(rdata.regexp),
            _norm(str(rdata.replacement)),
        )
    if rr.rtype == QTYPE.SRV:
        return SrvRecord(rdata.priority, rdata.weight, rdata.port, _norm(str(rdata.target)))
    return ipaddress.ip_address(str(rdata))
