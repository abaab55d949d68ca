"""Smoke test for the benchmark harness: the smallest scenarios run and give figures.

No timing assertions (performance belongs in benchmarks/RESULTS.md); this only keeps
the harness from rotting.
"""

from __future__ import annotations

from asip_locate.testing import ZoneServer
from benchmarks import scenarios
from benchmarks._relay import question
from benchmarks._servers import start_relay
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


async def test_cold_modes_and_big_srv_give_figures() -> None:
    naptr, srv_only = Domains(30), Domains(30, "s")
    async with ZoneServer(zone_text(30, 30, {40: 2, 5: 2})) as server:
        relay = start_relay(server.address)
        try:
            runs = await scenarios.cold_modes(relay, naptr, srv_only, latency=0.0, runs=2)
        finally:
            relay.stop()
            assert relay.process.stdout is not None
            relay.process.stdout.close()  # start_relay keeps the pipe it read "ready" from
        additional = await scenarios.additional_section(server.address, "s0.bench.test")
        big = await scenarios.big_srv(server.address, size=40, names=1, n=5, repeat=1)
        small = await scenarios.big_srv(server.address, size=5, names=1, n=5, repeat=1)
    modes = len(scenarios.COLD_MODES)
    assert [(r.kind, r.client) for r in runs] == (
        [("naptr", "library")] * modes
        + [("naptr", "raw aiodns, 3 waves"), ("naptr", "raw aiodns, 1 query")]
        + [("srv-only", "library")] * modes
        + [("srv-only", "raw aiodns, 3 waves")]
    )
    for run in runs:
        assert run.failures == 0, run
        assert run.runs == 2
        assert all(c >= f > 0 for f, c in zip(run.first, run.complete, strict=True))
        assert run.cpu > 0
        assert 1 <= run.queries_each <= QUERIES_PER_LOCATE
    assert runs[modes].queries_each == QUERIES_PER_LOCATE  # raw: all 16, counted by the relay
    assert (naptr.used, srv_only.used) == ((modes + 1) * 3 + 2, (modes + 1) * 3)
    # max_records (32) caps the 40-record answer; 4 hosts x A + AAAA per SRV record
    assert (big.records_cached, big.targets) == (32, 64)
    assert (small.records_cached, small.targets) == (5, 10)
    assert big.resolve_ns > 0
    assert all(item.split()[1] in ("A", "AAAA") for item in additional)  # ZoneServer may send none
    assert big.traced_bytes > 0


def test_zone_has_srv_only_and_big_copies() -> None:
    text = zone_text(1, 1, {7: 1})
    assert "s0.bench.test. IN NAPTR" not in text
    assert "d0.bench.test. IN NAPTR" in text
    assert text.count("_sip._udp.r7x0.bench.test. IN SRV") == 7
    assert Domains(2, "s").take(2) == ["s0.bench.test", "s1.bench.test"]
