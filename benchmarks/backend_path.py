"""The DNS backend alone: CPU per cold query, AiodnsBackend against raw aiodns.

    python -m benchmarks.backend_path [--count 3000] [--profile]

Every client asks the 16 questions of fresh benchmark domains (names never asked
before in the process), ``in flight`` domains at a time, against NSD (else Knot, else
ZoneServer) on loopback. Clients: raw ``aiodns.DNSResolver.query_dns`` (c-ares' event
thread, an asyncio future per query), also with ``ARES_FLAG_STAYOPEN``; AiodnsBackend
with the event loop driving c-ares (the default); AiodnsBackend with c-ares' event
thread. CPU is ``process_time`` (all threads). ``--profile`` prints cProfile's top
functions per query for the default backend at 10 in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time
from collections.abc import Awaitable, Callable

import aiodns
import pycares

from asip_locate import AiodnsBackend, Query, RType
from benchmarks._servers import start_server
from benchmarks._zone import Domains, queries, zone_text

IN_FLIGHT = (1, 10, 100)
Ask = Callable[[str, str], Awaitable[object]]


async def _pool(names: list[str], in_flight: int, ask: Ask) -> tuple[float, float, int]:
    """Ask every question of ``names``, ``in_flight`` domains at a time: (cpu, wall, n)."""
    todo = iter(names)
    count = 0

    async def worker() -> None:
        nonlocal count
        for name in todo:
            await asyncio.gather(*(ask(n, t) for n, t in queries(name)))
            count += 16

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.process_time() - cpu, time.perf_counter() - wall, count


async def _clients(address: str) -> dict[str, tuple[Ask, Callable[[], Awaitable[None]]]]:
    raw = aiodns.DNSResolver(
        nameservers=[address], timeout=2.0, tries=2, socket_receive_buffer_size=4 << 20
    )
    # The same with c-ares keeping its sockets open between queries, as AiodnsBackend
    # does: without it c-ares opens a UDP socket per burst of queries.
    raw_open = aiodns.DNSResolver(
        nameservers=[address],
        timeout=2.0,
        tries=2,
        socket_receive_buffer_size=4 << 20,
        flags=pycares.ARES_FLAG_STAYOPEN,
    )
    loop_driven = AiodnsBackend([address])
    threaded = AiodnsBackend([address], event_thread=True)

    def via(backend: AiodnsBackend) -> Ask:
        async def ask(name: str, qtype: str) -> object:
            return await backend.submit(Query(name, RType(qtype)))

        return ask

    return {
        "raw aiodns": (raw.query_dns, raw.close),
        "raw aiodns, STAYOPEN": (raw_open.query_dns, raw_open.close),
        "AiodnsBackend (loop)": (via(loop_driven), loop_driven.aclose),
        "AiodnsBackend (event thread)": (via(threaded), threaded.aclose),
    }


async def run(address: str, domains: Domains, count: int, profile: bool) -> None:
    clients = await _clients(address)
    print("| client | in flight | queries | CPU µs/query | wall µs/query |")
    print("|---|---|---|---|---|")
    results: dict[tuple[str, int], float] = {}
    for in_flight in IN_FLIGHT:
        for label, (ask, _close) in clients.items():
            await _pool(domains.take(2), 1, ask)  # warm-up: sockets
            best = None
            for _ in range(3):
                cpu, wall, n = await _pool(domains.take(count // 16), in_flight, ask)
                best = (cpu / n, wall / n) if best is None or cpu / n < best[0] else best
            assert best is not None
            results[(label, in_flight)] = best[0]
            print(
                f"| {label} | {in_flight} | {count} | {best[0] * 1e6:.1f} | {best[1] * 1e6:.1f} |"
            )
    for in_flight in IN_FLIGHT:
        raw = results[("raw aiodns", in_flight)]
        ratios = ", ".join(
            f"{label} {results[(label, in_flight)] / raw:.2f}x"
            for label in clients
            if label != "raw aiodns"
        )
        print(f"at {in_flight} in flight, CPU per query vs raw aiodns: {ratios}")
    if profile:
        ask = clients["AiodnsBackend (loop)"][0]
        profiler = cProfile.Profile()
        names = domains.take(count // 16)
        profiler.enable()
        _cpu, _wall, n = await _pool(names, 10, ask)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(15)
        print(f"\ncProfile, AiodnsBackend (loop), {n} queries at 10 in flight (tottime):")
        print(out.getvalue())
    for _ask, close in clients.values():
        await close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backend_path", description=__doc__)
    parser.add_argument("--count", type=int, default=3200, help="queries per run (3 runs each)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--server", default="auto", choices=["auto", "nsd", "knot", "zoneserver"])
    args = parser.parse_args(argv)
    per_run = args.count // 16
    needed = (per_run * 3 + 2) * 4 * len(IN_FLIGHT) + per_run + 10
    server = start_server(zone_text(needed), args.server)
    try:
        asyncio.run(run(server.address, Domains(needed), args.count, args.profile))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
