"""Small measuring helpers: percentiles, CPU clocks, worker pools."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> float:
    return seconds * 1000.0


@dataclass
class Load:
    """What one bounded run of many operations measured."""

    count: int
    ok: int
    wall: float
    cpu: float
    latencies: list[float] = field(default_factory=list)
    thread_cpu: float = 0.0
    """CPU of the event-loop thread alone (c-ares' own thread excluded)."""
    gc_cpu: float = 0.0
    """CPU spent in the cyclic garbage collector (``gc.callbacks``), all generations."""

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall else math.nan

    @property
    def cpu_each(self) -> float:
        return self.cpu / self.count if self.count else math.nan

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


async def run_pool(
    items: Iterable[str],
    concurrency: int,
    operation: Callable[[str], Awaitable[bool]],
    *,
    time_limit: float,
) -> Load:
    """Run ``operation`` on every item with ``concurrency`` workers; time and CPU it.

    Bounded: the whole run is cancelled after ``time_limit`` seconds (items not
    started then count as failed).
    """
    todo = list(items)
    iterator = iter(todo)
    latencies: list[float] = []
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for item in iterator:
            start = time.perf_counter()
            success = await operation(item)
            latencies.append(time.perf_counter() - start)
            ok += success

    collecting = [0.0, 0.0]  # [started at, total]

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            collecting[0] = time.thread_time()
        else:
            collecting[1] += time.thread_time() - collecting[0]

    # Garbage an earlier run left is collected now, not on this run's clock.
    gc.collect()
    gc.callbacks.append(on_gc)
    cpu0, wall0, thread0 = time.process_time(), time.perf_counter(), time.thread_time()
    try:
        workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(todo)))]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*workers), timeout=time_limit)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        gc.callbacks.remove(on_gc)
    thread = time.thread_time() - thread0
    return Load(len(todo), ok, wall, cpu, latencies, thread, collecting[1])
