"""Time a fully cached ``resolve()`` against the floor of iterating its targets.

The domain has 3 NAPTR -> 3 SRV (2 records each) -> 6 hosts with one address each:
16 queries (NAPTR, 3 SRV, 6 x A + AAAA) and 6 targets, all answered from the cache.
The floor is ``[t async for t in gen()]`` over a prebuilt list of the same 6 targets.

    python -m benchmarks.cached_path [--n 20000] [--repeat 7]
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


def main(argv: list[str] | None = None) -> None:
    """Print both timings and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="operations per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs; the best is kept")
    parser.add_argument("--seed", type=int, default=None, help="LocateOptions.seed")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.n, args.repeat, args.seed))
    print(f"fully cached resolve(): {result.resolve_ns / 1000:.2f} us")
    print(f"floor (async for over 6 prebuilt targets): {result.floor_ns / 1000:.2f} us")
    print(f"ratio: {result.ratio:.1f}x   tasks created while cached: {result.tasks_created}")


if __name__ == "__main__":
    main()
