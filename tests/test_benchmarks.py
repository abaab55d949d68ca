"""Smoke test for the benchmark harness: the smallest scenarios run and give figures.

No timing assertions (performance belongs in benchmarks/RESULTS.md); this only keeps
the harness from rotting.
"""

from __future__ import annotations

from asip_locate.testing import ZoneServer
from benchmarks import scenarios
from benchmarks._relay import question
from benchmarks._zone import QUERIES_PER_LOCATE, Domains, queries, zone_text


async def test_cold_path_and_throughput_give_figures() -> None:
    domains = Domains(20)
    async with ZoneServer(zone_text(20)) as server:
        runs = await scenarios.cold_path(server.address, domains, latency=0.0, runs=2, seq_runs=1)
        load = await scenarios.library_throughput(server.address, domains, concurrency=2, count=2)
        raw = await scenarios.aiodns_throughput(server.address, domains, concurrency=2, count=2)
        cached = await scenarios.cached_path(server.address, domains, n=5, repeat=1)
    memory = await scenarios.memory(20)
    assert memory.entries == 20 * QUERIES_PER_LOCATE
    assert memory.traced_bytes > 0
    assert cached.targets == 12
    assert cached.ratio > 0
    assert [r.mode for r in runs] == [
        "library",
        "library sequential",
        "raw aiodns, 3 waves",
        "raw aiodns, 1 query",
    ]
    for run in runs:
        assert run.failures == 0
        assert run.complete
        assert all(c >= f > 0 for f, c in zip(run.first, run.complete, strict=True))
    assert load.load.ok == 2
    assert raw.load.ok == 2
    assert load.cpu_per_query > 0
    assert domains.used == 17


def test_zone_and_relay_parser_agree() -> None:
    from dnslib import DNSRecord

    names = queries("d3.bench.test")
    assert len(names) == QUERIES_PER_LOCATE
    for name, rtype in names:
        assert question(DNSRecord.question(name, rtype).pack()) == (name, rtype)
    assert question(b"\x00\x01") is None
