"""Time a fully cached ``resolve()`` against the floor of iterating its targets.

The domain has 3 NAPTR -> 3 SRV (2 records each) -> 6 hosts with one address each:
16 queries (NAPTR, 3 SRV, 6 x A + AAAA) and 6 targets, all answered from the cache.
The floor is ``[t async for t in gen()]`` over a prebuilt list of the same 6 targets.
``main`` also times ``locate()`` + ``async for``, and domains of 12 and 48 targets
(3 NAPTR -> 3 SRV of 4 / 16 records), each side by side with its floor.

    python -m benchmarks.cached_path [--n 20000] [--repeat 7] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from asip_locate import LocateOptions, Locator, Target
from asip_locate.testing import FakeBackend

URI = "sip:bench.example.test"
ZONE = """\
$TTL 3600
example.test. IN SOA ns.example.test. hostmaster.example.test. 1 7200 900 1209600 3600
bench.example.test. IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.bench.example.test.
bench.example.test. IN NAPTR 20 50 "s" "SIP+D2T" "" _sip._tcp.bench.example.test.
bench.example.test. IN NAPTR 30 50 "s" "SIPS+D2T" "" _sips._tcp.bench.example.test.
_sip._udp.bench.example.test. IN SRV 10 60 5060 h1.bench.example.test.
_sip._udp.bench.example.test. IN SRV 10 40 5060 h2.bench.example.test.
_sip._tcp.bench.example.test. IN SRV 10 60 5060 h3.bench.example.test.
_sip._tcp.bench.example.test. IN SRV 20 40 5060 h4.bench.example.test.
_sips._tcp.bench.example.test. IN SRV 10 60 5061 h5.bench.example.test.
_sips._tcp.bench.example.test. IN SRV 10 40 5061 h6.bench.example.test.
h1.bench.example.test. IN A 127.0.0.1
h2.bench.example.test. IN AAAA ::1
h3.bench.example.test. IN A 127.0.0.3
h4.bench.example.test. IN AAAA ::3
h5.bench.example.test. IN A 127.0.0.5
h6.bench.example.test. IN AAAA ::5
"""


@dataclass(frozen=True, slots=True)
class Result:
    """Best time per operation of each side, and the tasks the cached side created."""

    resolve_ns: float
    floor_ns: float
    tasks_created: int

    @property
    def ratio(self) -> float:
        return self.resolve_ns / self.floor_ns


async def _gen(items: list[Target]) -> AsyncIterator[Target]:
    for item in items:
        yield item


async def best_ns(op: Callable[[], Awaitable[object]], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(n):
            await op()
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best


async def best_of_turns(
    ops: list[Callable[[], Awaitable[object]]], n: int, repeat: int
) -> list[float]:
    """Best ns per call of each op; the ops take turns in every round, so a change in
    machine speed during the run hits them alike (the ratios stay fair)."""
    best = [float("inf")] * len(ops)
    for _ in range(repeat):
        for i, op in enumerate(ops):
            best[i] = min(best[i], await best_ns(op, n, 1))
    return best


async def measure(n: int = 20_000, repeat: int = 7, seed: int | None = None) -> Result:
    """Warm the cache with one resolve, then time ``n`` cached resolves and the floor.

    ``seed`` None (the default option) shares one random source; a seed makes every
    resolve seed one ``random.Random`` per SRV owner, which costs a few microseconds.
    """
    loop = asyncio.get_running_loop()
    options = LocateOptions(seed=seed)
    async with Locator(options, backend=FakeBackend(ZONE)) as locator:
        targets = await locator.resolve(URI)
        assert len(targets) == 6, targets
        created = 0
        default_factory = loop.get_task_factory()

        def counting_factory(loop: asyncio.AbstractEventLoop, coro, **kwargs):
            nonlocal created
            created += 1
            if default_factory is not None:
                return default_factory(loop, coro, **kwargs)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(counting_factory)
        try:
            resolve_ns = await best_ns(lambda: locator.resolve(URI), n, repeat)
        finally:
            loop.set_task_factory(default_factory)
        info = locator.cache_info()
        assert info.misses == 16, info

        async def floor() -> list[Target]:
            return [t async for t in _gen(targets)]

        floor_ns = await best_ns(floor, n, repeat)
    return Result(resolve_ns, floor_ns, created)


def zone(per_srv: int) -> str:
    """3 NAPTR -> 3 SRV of ``per_srv`` records (two priorities) -> one address per host."""
    lines = [
        "$TTL 3600",
        "example.test. IN SOA ns.example.test. hostmaster.example.test. 1 7200 900 1209600 3600",
    ]
    for order, (service, owner, port) in enumerate(
        [("SIP+D2U", "_sip._udp", 5060), ("SIP+D2T", "_sip._tcp", 5060),
         ("SIPS+D2T", "_sips._tcp", 5061)], 1
    ):  # fmt: skip
        lines.append(
            f'big.example.test. IN NAPTR {order * 10} 50 "s" "{service}" ""'
            f" {owner}.big.example.test."
        )
        for i in range(per_srv):
            host = f"h{order}-{i}.big.example.test."
            lines.append(
                f"{owner}.big.example.test. IN SRV {10 + 10 * (i % 2)} {10 + i} {port} {host}"
            )
            address = f"AAAA ::{order}:{i + 1}" if i % 2 else f"A 127.0.{order}.{i + 1}"
            lines.append(f"{host} IN {address}")
    return "\n".join(lines) + "\n"


async def measure_case(
    text: str, uri: str, targets_expected: int, n: int, repeat: int, seed: int | None
) -> tuple[float, float, float]:
    """(cached resolve ns, cached locate + async for ns, floor ns) for one domain."""
    options = LocateOptions(seed=seed, max_queries=256, max_records=64)
    async with Locator(options, backend=FakeBackend(text)) as locator:
        targets = await locator.resolve(uri)
        assert len(targets) == targets_expected, len(targets)

        async def iterate() -> list[Target]:
            return [t async for t in locator.locate(uri)]

        async def floor() -> list[Target]:
            return [t async for t in _gen(targets)]

        resolve_ns, locate_ns, floor_ns = await best_of_turns(
            [lambda: locator.resolve(uri), iterate, floor], n, repeat
        )
    return resolve_ns, locate_ns, floor_ns


def main(argv: list[str] | None = None) -> None:
    """Print the timings and their ratios to the floor, measured side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="operations per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs; the best is kept")
    parser.add_argument("--seed", type=int, default=None, help="LocateOptions.seed")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.n, args.repeat, args.seed))
    print(f"fully cached resolve(): {result.resolve_ns / 1000:.2f} us")
    print(f"floor (async for over 6 prebuilt targets): {result.floor_ns / 1000:.2f} us")
    print(f"ratio: {result.ratio:.1f}x   tasks created while cached: {result.tasks_created}")
    print()
    print("targets  resolve us  locate+for us  floor us  resolve/floor  locate/floor")
    cases = [(ZONE, URI, 6), (zone(4), "sip:big.example.test", 12)]
    cases.append((zone(16), "sip:big.example.test", 48))
    for text, uri, count in cases:
        r, loc, f = asyncio.run(measure_case(text, uri, count, args.n, args.repeat, args.seed))
        print(
            f"{count:7d}  {r / 1000:10.2f}  {loc / 1000:13.2f}  {f / 1000:8.2f}"
            f"  {r / f:12.2f}x  {loc / f:11.2f}x"
        )


if __name__ == "__main__":
    main()
