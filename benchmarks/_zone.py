"""The benchmark zone: many copies of one RFC 3263 domain, so every run can be cold.

Each ``d{i}.bench.test`` has 3 NAPTR -> 3 SRV owners (2 records each) -> 6 hosts,
each with one A and one AAAA record: a full locate is 16 queries (1 NAPTR, 3 SRV,
6 A, 6 AAAA) and gives 12 targets (6 hosts x 2 addresses).
"""

from __future__ import annotations

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


def domain(index: int) -> str:
    """The absolute name (without the final dot) of domain number ``index``."""
    return f"d{index}.{ORIGIN}"


def domain_records(index: int) -> str:
    """Zone-file lines (relative to ORIGIN) for one domain."""
    d = f"d{index}.{ORIGIN}."  # absolute: dnslib leaves relative names in RDATA as they are
    lines = []
    for order, (service, prefix, _port) in enumerate(_SERVICES, 1):
        lines.append(f'{d} IN NAPTR {order * 10} 50 "s" "{service}" "" {prefix}.{d}')
    host = 0
    for _service, prefix, port in _SERVICES:
        for weight in (60, 40):
            host += 1
            lines.append(f"{prefix}.{d} IN SRV 10 {weight} {port} h{host}.{d}")
    for host in range(1, 7):
        lines.append(f"h{host}.{d} IN A 127.0.0.{10 + host}")
        lines.append(f"h{host}.{d} IN AAAA 2001:db8::{host}")
    return "\n".join(lines) + "\n"


def zone_text(count: int) -> str:
    """The whole zone with domains 0 .. count-1."""
    return _HEADER + "".join(domain_records(i) for i in range(count))


def queries(name: str) -> list[tuple[str, str]]:
    """The 16 (name, type) questions one full locate of ``name`` asks."""
    out = [(name, "NAPTR")]
    out += [(f"{prefix}.{name}", "SRV") for _s, prefix, _p in _SERVICES]
    for host in range(1, 7):
        out += [(f"h{host}.{name}", "AAAA"), (f"h{host}.{name}", "A")]
    return out


class Domains:
    """Hands out domain names never used before in this process (c-ares caches answers)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._next = 0

    @property
    def used(self) -> int:
        return self._next

    def take(self, k: int) -> list[str]:
        if self._next + k > self.count:
            raise RuntimeError(
                f"benchmark zone exhausted: need {k} more domains, {self.count - self._next} left"
            )
        names = [domain(i) for i in range(self._next, self._next + k)]
        self._next += k
        return names
