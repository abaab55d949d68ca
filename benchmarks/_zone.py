"""The benchmark zone: many copies of one RFC 3263 domain, so every run can be cold.

Each ``d{i}.bench.test`` has 3 NAPTR -> 3 SRV owners (2 records each) -> 6 hosts,
each with one A and one AAAA record: a full locate is 16 queries (1 NAPTR, 3 SRV,
6 A, 6 AAAA) and gives 12 targets (6 hosts x 2 addresses).

Each ``s{i}.bench.test`` (SRV-only) has the same SRV owners and hosts but no NAPTR: a
locate asks the NAPTR (NODATA), then the 3 SRV names of the no-NAPTR fallback.

Each ``r{n}x{k}.bench.test`` (big SRV sets, issue 11) has one SRV owner
``_sip._udp.r{n}x{k}`` with ``n`` records (priorities 10..14, distinct ports) over the
4 shared hosts ``bh{j}.bench.test``: 1,500 records are ~35 KB, so c-ares gets a
truncated UDP reply and asks again over TCP.
"""

from __future__ import annotations

import ipaddress

from asip_locate import Answer, NaptrRecord, Query, RType, SrvRecord, Status
from asip_locate._model import Record

ORIGIN = "bench.test"
QUERIES_PER_LOCATE = 16
TARGETS_PER_LOCATE = 12
TTL = 3600

_HEADER = f"""\
$ORIGIN {ORIGIN}.
$TTL {TTL}
@ IN SOA ns1 hostmaster 1 7200 900 1209600 60
@ IN NS ns1
ns1 IN A 127.0.0.2
"""

_SERVICES = (
    ("SIPS+D2T", "_sips._tcp", 5061),
    ("SIP+D2T", "_sip._tcp", 5060),
    ("SIP+D2U", "_sip._udp", 5060),
)


def domain(index: int, prefix: str = "d") -> str:
    """The absolute name (without the final dot) of domain number ``index``
    (``prefix`` "d": NAPTR domains, "s": their SRV-only copies)."""
    return f"{prefix}{index}.{ORIGIN}"


def domain_records(index: int, prefix: str = "d") -> str:
    """Zone-file lines (absolute names) for one domain; prefix "s" leaves out the NAPTR."""
    d = f"{prefix}{index}.{ORIGIN}."  # absolute: dnslib leaves relative names in RDATA as is
    lines = []
    for order, (service, srv, _port) in enumerate(_SERVICES, 1):
        if prefix == "d":
            lines.append(f'{d} IN NAPTR {order * 10} 50 "s" "{service}" "" {srv}.{d}')
    host = 0
    for _service, srv, port in _SERVICES:
        for weight in (60, 40):
            host += 1
            lines.append(f"{srv}.{d} IN SRV 10 {weight} {port} h{host}.{d}")
    for host in range(1, 7):
        lines.append(f"h{host}.{d} IN A 127.0.0.{10 + host}")
        lines.append(f"h{host}.{d} IN AAAA 2001:db8::{host}")
    return "\n".join(lines) + "\n"


BIG_HOSTS = 4


def big_name(size: int, index: int) -> str:
    """The domain whose ``_sip._udp`` SRV owner has ``size`` records (copy ``index``)."""
    return f"r{size}x{index}.{ORIGIN}"


def big_records(size: int, index: int) -> str:
    """Zone-file lines of one big SRV set (``_sip._udp`` of ``big_name(size, index)``)."""
    owner = f"_sip._udp.{big_name(size, index)}."
    return "".join(
        f"{owner} IN SRV {10 + k % 5} {1 + k % 100} {5000 + k} bh{k % BIG_HOSTS}.{ORIGIN}.\n"
        for k in range(size)
    )


def _big_hosts() -> str:
    return "".join(
        f"bh{j}.{ORIGIN}. IN A 127.0.1.{j + 1}\nbh{j}.{ORIGIN}. IN AAAA 2001:db8:1::{j + 1}\n"
        for j in range(BIG_HOSTS)
    )


def zone_text(count: int, srv_only: int = 0, big: dict[int, int] | None = None) -> str:
    """The whole zone with domains 0 .. count-1, SRV-only copies 0 .. srv_only-1 and,
    for each ``size: copies`` of ``big``, that many SRV owners of ``size`` records."""
    text = _HEADER + "".join(domain_records(i) for i in range(count))
    text += "".join(domain_records(i, "s") for i in range(srv_only))
    if big:
        text += _big_hosts()
        text += "".join(big_records(n, k) for n, copies in big.items() for k in range(copies))
    return text


def queries(name: str) -> list[tuple[str, str]]:
    """The 16 (name, type) questions one full locate of ``name`` asks."""
    out = [(name, "NAPTR")]
    out += [(f"{prefix}.{name}", "SRV") for _s, prefix, _p in _SERVICES]
    for host in range(1, 7):
        out += [(f"h{host}.{name}", "AAAA"), (f"h{host}.{name}", "A")]
    return out


def waves(name: str) -> tuple[list[tuple[str, str]], ...]:
    """``queries(name)`` in the three waves of a locate: the NAPTR, the 3 SRV, the 12
    A/AAAA (each wave needs the answers of the one before)."""
    qs = queries(name)
    return qs[:1], qs[1:4], qs[4:]


class Domains:
    """Hands out domain names never used before in this process (c-ares caches answers)."""

    def __init__(self, count: int, prefix: str = "d") -> None:
        self.count = count
        self.prefix = prefix
        self._next = 0

    @property
    def used(self) -> int:
        return self._next

    def take(self, k: int) -> list[str]:
        if self._next + k > self.count:
            raise RuntimeError(
                f"benchmark zone exhausted: need {k} more domains, {self.count - self._next} left"
            )
        names = [domain(i, self.prefix) for i in range(self._next, self._next + k)]
        self._next += k
        return names


class SyntheticBackend:
    """A DnsBackend that answers the benchmark zone for any ``d{i}`` in-process.

    Builds the same Answer values AiodnsBackend would (records, TTL), without DNS or
    a zone file: used to fill a cache with 100,000 domains in seconds (scenario 5).
    """

    def __init__(self) -> None:
        self.calls = 0

    def answer(self, query: Query) -> Answer:
        labels = query.name.split(".")
        records: tuple[Record, ...] = ()
        if query.rtype is RType.NAPTR and len(labels) == 3:
            records = tuple(
                NaptrRecord(order * 10, 50, "s", service, "", f"{prefix}.{query.name}")
                for order, (service, prefix, _port) in enumerate(_SERVICES, 1)
            )
        elif query.rtype is RType.SRV and len(labels) == 5:
            domain_name = ".".join(labels[2:])
            index = [s[1] for s in _SERVICES].index(".".join(labels[:2]))
            port = _SERVICES[index][2]
            records = tuple(
                SrvRecord(10, weight, port, f"h{2 * index + k + 1}.{domain_name}")
                for k, weight in enumerate((60, 40))
            )
        elif query.rtype in (RType.A, RType.AAAA) and len(labels) == 4:
            host = int(labels[0][1:])
            text = f"127.0.0.{10 + host}" if query.rtype is RType.A else f"2001:db8::{host}"
            records = (ipaddress.ip_address(text),)
        if not records:
            return Answer(query, Status.NXDOMAIN, ttl=60)
        return Answer(query, Status.NOERROR, records, TTL)

    async def query(self, query: Query) -> Answer:
        self.calls += 1
        return self.answer(query)

    async def aclose(self) -> None:
        return None
