"""The benchmark scenarios, each an async function over a DNS server address.

Every function takes the nameserver(s) to use and a ``Domains`` allocator that hands
out names never queried before in this process, so c-ares' own query cache (on by
default, not switchable through pycares 5) cannot answer a "cold" run.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import pstats
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiodns
from aiodns.error import DNSError

from asip_locate import LocateError, LocateOptions, Locator, Query, RType, Status
from benchmarks._measure import Load, percentile, run_pool
from benchmarks._servers import Relay
from benchmarks._zone import (
    QUERIES_PER_LOCATE,
    TARGETS_PER_LOCATE,
    Domains,
    SyntheticBackend,
    big_name,
    domain,
    queries,
    waves,
)
from benchmarks.cached_path import best_ns

RAW_RCVBUF = 4 << 20
RUN_LIMIT = 120.0
"""Seconds any single bounded run may take before it is cancelled."""


def _options(nameservers: tuple[str, ...], **extra: object) -> LocateOptions:
    return LocateOptions(nameservers=nameservers, **extra)  # type: ignore[arg-type]


# --- 1. cold path ---------------------------------------------------------------------


@dataclass
class ColdRun:
    """One way of resolving, at one injected latency: per-run times in seconds."""

    latency: float
    mode: str
    first: list[float] = field(default_factory=list)
    complete: list[float] = field(default_factory=list)
    failures: int = 0


async def _timed_locate(locator: Locator, name: str) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = 0.0
    count = 0
    async with locator.locate(f"sip:{name}") as stream:
        async for _target in stream:
            if not count:
                first = time.perf_counter() - start
            count += 1
    return first, time.perf_counter() - start, count


async def _timed_raw_waves(resolver: aiodns.DNSResolver, name: str) -> tuple[float, float, int]:
    """A hand-written 3-wave locate on raw aiodns: NAPTR, then 3 SRV, then 12 A/AAAA."""
    naptr, srv, addresses = waves(name)
    start = time.perf_counter()
    with contextlib.suppress(DNSError):  # an SRV-only domain: NODATA, then its 3 SRV names
        await resolver.query_dns(*naptr[0])
    await asyncio.gather(*(resolver.query_dns(n, t) for n, t in srv))
    first = 0.0
    count = 0
    for future in asyncio.as_completed([resolver.query_dns(n, t) for n, t in addresses]):
        await future
        if not count:
            first = time.perf_counter() - start
        count += 1
    return first, time.perf_counter() - start, count


async def cold_path(
    nameserver: str, domains: Domains, *, latency: float, runs: int, seq_runs: int
) -> list[ColdRun]:
    """Scenario 1: one locate at a time of a fresh domain, through ``nameserver``
    (which adds ``latency`` per query): library with fan-out, library sequential
    (max_concurrency=1), and raw aiodns in 3 waves (the practical floor)."""
    ns = (nameserver,)
    results = []
    modes: list[tuple[str, int]] = [("library", runs), ("library sequential", seq_runs)]
    for mode, count in modes:
        run = ColdRun(latency, mode)
        concurrency = 1 if mode.endswith("sequential") else 32
        async with Locator(_options(ns, max_concurrency=concurrency)) as locator:
            await _timed_locate(locator, domains.take(1)[0])  # warm-up: sockets, imports
            for name in domains.take(count):
                try:
                    first, complete, n = await asyncio.wait_for(
                        _timed_locate(locator, name), RUN_LIMIT
                    )
                except (LocateError, TimeoutError):
                    run.failures += 1
                    continue
                if n != TARGETS_PER_LOCATE:
                    run.failures += 1
                run.first.append(first)
                run.complete.append(complete)
        results.append(run)
    run = ColdRun(latency, "raw aiodns, 3 waves")
    rtt = ColdRun(latency, "raw aiodns, 1 query")
    resolver = aiodns.DNSResolver(nameservers=[nameserver], timeout=2.0, tries=2)
    try:
        await _timed_raw_waves(resolver, domains.take(1)[0])
        for name in domains.take(runs):  # one round trip through this path, for reference
            start = time.perf_counter()
            try:
                await asyncio.wait_for(resolver.query_dns(name, "NAPTR"), RUN_LIMIT)
            except (DNSError, TimeoutError):
                rtt.failures += 1
                continue
            rtt.first.append(time.perf_counter() - start)
            rtt.complete.append(rtt.first[-1])
        for name in domains.take(runs):
            try:
                first, complete, _n = await asyncio.wait_for(
                    _timed_raw_waves(resolver, name), RUN_LIMIT
                )
            except (DNSError, TimeoutError):
                run.failures += 1
                continue
            run.first.append(first)
            run.complete.append(complete)
    finally:
        await resolver.close()
    results += [run, rtt]
    return results


# --- 1b. cold path by option (issue 13) -------------------------------------------------

COLD_MODES: tuple[tuple[bool, bool], ...] = (
    (True, True),
    (True, False),
    (False, True),
    (False, False),
)
"""(early_srv, use_additional) of each library row, defaults first."""


@dataclass
class ColdMode:
    """One client (a library option set, raw aiodns in 3 waves, or one raw query) on one
    kind of domain at one injected latency: per-locate times in seconds, the queries that
    reached the server (counted by the relay) and the process CPU it took."""

    latency: float
    kind: str
    """"naptr" (``d{i}``) or "srv-only" (``s{i}``)."""
    client: str
    early_srv: bool | None = None
    use_additional: bool | None = None
    first: list[float] = field(default_factory=list)
    complete: list[float] = field(default_factory=list)
    failures: int = 0
    queries: int = 0
    cpu: float = 0.0

    @property
    def runs(self) -> int:
        return len(self.complete)

    @property
    def queries_each(self) -> float:
        return self.queries / self.runs if self.runs else float("nan")

    @property
    def cpu_each(self) -> float:
        return self.cpu / self.runs if self.runs else float("nan")


Timed = tuple[float, float, int]
"""(seconds to the first target, to the end, targets) of one timed locate."""


def _counted(relay: Relay) -> int:
    return sum(c for _n, _t, c in relay.stats()["counts"])


async def _one_run(
    run: ColdMode, relay: Relay, name: str, timed: Callable[[str], Awaitable[Timed]]
) -> None:
    """Time ``timed(name)`` once; add its CPU and the queries the relay saw to ``run``."""
    relay.control(b"RESET")
    cpu0 = time.process_time()
    try:
        first, complete, n = await asyncio.wait_for(timed(name), RUN_LIMIT)
    except (LocateError, DNSError, TimeoutError):
        run.failures += 1
        return
    finally:
        run.cpu += time.process_time() - cpu0
        run.queries += _counted(relay)
    if run.client == "library" and n != TARGETS_PER_LOCATE:
        run.failures += 1
    run.first.append(first)
    run.complete.append(complete)


async def cold_modes(
    relay: Relay, naptr: Domains, srv_only: Domains, *, latency: float, runs: int
) -> list[ColdMode]:
    """Scenario 1b: cold locates one at a time through ``relay`` (which holds each query
    ``latency`` s and counts what it forwards), for each (early_srv, use_additional),
    on NAPTR domains and SRV-only domains; raw aiodns asking the same 16 questions in 3
    waves on the same path; and one raw round trip there (NAPTR domains only).

    The clients take turns (one locate each, round after round), so that drift in the
    machine's load over the run spreads over all rows alike.
    """
    ns = (relay.address,)
    out: list[ColdMode] = []
    for kind, domains in (("naptr", naptr), ("srv-only", srv_only)):
        async with contextlib.AsyncExitStack() as stack:
            clients: list[tuple[ColdMode, Callable[[str], Awaitable[Timed]]]] = []
            for early, additional in COLD_MODES:
                options = _options(ns, early_srv=early, use_additional=additional)
                locator = await stack.enter_async_context(Locator(options))

                def timed(name: str, locator: Locator = locator) -> Awaitable[Timed]:
                    return _timed_locate(locator, name)

                clients.append((ColdMode(latency, kind, "library", early, additional), timed))
            resolver = aiodns.DNSResolver(nameservers=[relay.address], timeout=2.0, tries=2)
            stack.push_async_callback(resolver.close)

            def waves(name: str, resolver: aiodns.DNSResolver = resolver) -> Awaitable[Timed]:
                return _timed_raw_waves(resolver, name)

            clients.append((ColdMode(latency, kind, "raw aiodns, 3 waves"), waves))
            for _run, warm in clients:  # warm-up: sockets, imports, first-use paths
                await warm(domains.take(1)[0])
            if kind == "naptr":

                async def one(name: str, resolver: aiodns.DNSResolver = resolver) -> Timed:
                    start = time.perf_counter()
                    await resolver.query_dns(name, "NAPTR")
                    took = time.perf_counter() - start
                    return took, took, 1

                clients.append((ColdMode(latency, kind, "raw aiodns, 1 query"), one))
            for _ in range(runs):
                for run, timed_run in clients:
                    await _one_run(run, relay, domains.take(1)[0], timed_run)
        out += [run for run, _timed in clients]
    return out


async def additional_section(nameserver: str, name: str) -> list[str]:
    """What the server puts in the additional section of its reply to the ``_sip._udp``
    SRV query of ``name``, as "owner TYPE" strings (raw aiodns, the path the library's
    AiodnsBackend reads ``Answer.additional`` from)."""
    resolver = aiodns.DNSResolver(nameservers=[nameserver], timeout=2.0, tries=2)
    try:
        result = await resolver.query_dns(f"_sip._udp.{name}", "SRV")
    finally:
        await resolver.close()
    types = {1: "A", 28: "AAAA"}
    return [f"{rr.name} {types.get(rr.type, rr.type)}" for rr in result.additional]


# --- 7. big SRV sets, cached (issue 11) ------------------------------------------------


@dataclass
class BigSrv:
    """Cached ``resolve()`` of names whose SRV set has ``size`` records."""

    size: int
    names: int
    targets: int
    resolve_ns: float
    records_cached: int
    """SRV records in the cached answer of one such name."""
    traced_bytes: int
    """tracemalloc net growth over the cold locates of ``names`` such names (after gc)."""

    @property
    def bytes_per_name(self) -> float:
        return self.traced_bytes / self.names


async def big_srv(nameserver: str, *, size: int, names: int, n: int, repeat: int) -> BigSrv:
    """Scenario 7: one Locator (default options, max_records 32) locates ``names``
    fresh ``r{size}x{k}`` domains cold (``sip:...;transport=udp``: one SRV owner over
    4 shared hosts; big answers come over TCP after a truncated UDP reply), with
    tracemalloc measuring what stays; then times a fully cached ``resolve()`` of the
    first (best of ``repeat`` runs of ``n``)."""
    uris = [f"sip:{big_name(size, k)};transport=udp" for k in range(names)]
    async with Locator(_options((nameserver,), seed=1)) as locator:
        # The 4 shared hosts' addresses are cached outside the traced window, so the
        # growth is what each name adds. Twice: the first locate takes them from the SRV
        # reply's additional section, which is not cached for hosts outside the SRV
        # owner's domain (bh*.bench.test); the second asks for them.
        warm_uri = f"sip:{big_name(size, names)};transport=udp"
        await locator.resolve(warm_uri)
        warm = await locator.resolve(warm_uri)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for uri in uris:
                targets = await locator.resolve(uri)
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        del warm
        srv = f"_sip._udp.{big_name(size, 0)}"
        cached = await locator.backend.query(Query(srv, RType.SRV))
        info = locator.cache_info()
        uri = uris[0]
        resolve_ns = await best_ns(lambda: locator.resolve(uri), n, repeat)
        after = locator.cache_info()
        if after.misses != info.misses:
            raise RuntimeError(f"big SRV cached path missed the cache: {info} -> {after}")
    return BigSrv(size, names, len(targets), resolve_ns, len(cached.records), traced)


# --- 2. throughput ---------------------------------------------------------------------


@dataclass
class Throughput:
    """One client at one concurrency: ``load`` counts locates (or raw query groups)."""

    client: str
    concurrency: int
    load: Load
    queries_per_op: int

    @property
    def cpu_per_query(self) -> float:
        return self.load.cpu_each / self.queries_per_op


def resolves_all(locator: Locator) -> Callable[[str], Awaitable[bool]]:
    """One locate of the bench domain ``name``: True when all its targets came."""

    async def one(name: str) -> bool:
        try:
            return len(await locator.resolve(f"sip:{name}")) == TARGETS_PER_LOCATE
        except LocateError:
            return False

    return one


async def library_throughput(
    nameserver: str, domains: Domains, *, concurrency: int, count: int, **options: object
) -> Throughput:
    """Scenario 2, library: ``count`` locates of fresh domains, ``concurrency`` at once."""
    async with Locator(_options((nameserver,), **options)) as locator:
        await locator.resolve(f"sip:{domains.take(1)[0]}")  # warm-up

        load = await run_pool(
            domains.take(count), concurrency, resolves_all(locator), time_limit=RUN_LIMIT
        )
    label = "asip_locate" + (", cache off" if options.get("cache_size") == 0 else "")
    return Throughput(label, concurrency, load, QUERIES_PER_LOCATE)


@dataclass(frozen=True)
class Cost:
    """One function's share of a profiled cold run, per DNS query."""

    function: str
    calls: float
    own_us: float
    """Time in the function itself (cProfile's tottime), µs per query."""


async def profile_cold(
    nameserver: str, domains: Domains, *, concurrency: int, count: int, top: int = 12
) -> tuple[list[Cost], float]:
    """Scenario 2b: cProfile over ``count`` cold locates (the throughput setting at
    ``concurrency`` in flight): the ``top`` functions by own time per query, and the
    profiled CPU per query in total (µs)."""
    options = _options((nameserver,), early_srv=False, use_additional=False)
    async with Locator(options) as locator:
        await locator.resolve(f"sip:{domains.take(1)[0]}")  # warm-up

        names = domains.take(count)
        profiler = cProfile.Profile()
        profiler.enable()
        load = await run_pool(names, concurrency, resolves_all(locator), time_limit=RUN_LIMIT)
        profiler.disable()
    queries = load.count * QUERIES_PER_LOCATE
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    total = 0.0
    for (path, line, name), (_cc, calls, own, _cum, _callers) in stats.items():
        total += own
        where = Path(path).name if path != "~" else ""
        label = f"{where}:{line} {name}" if where else name
        rows.append(Cost(label, calls / queries, own / queries * 1e6))
    rows.sort(key=lambda c: c.own_us, reverse=True)
    return rows[:top], total / queries * 1e6


async def aiodns_throughput(
    nameserver: str, domains: Domains, *, concurrency: int, count: int
) -> Throughput:
    """Scenario 2, raw anchor: the same 16 questions per domain on raw
    ``aiodns.DNSResolver.query_dns``, in the library's three waves (NAPTR; the 3 SRV;
    the 12 A/AAAA), with no planning in between."""
    # A 4 MiB receive buffer: with 1,600+ queries in flight the default one overflows,
    # replies are lost and retried, and the anchor would look slower than it is.
    resolver = aiodns.DNSResolver(
        nameservers=[nameserver], timeout=2.0, tries=2, socket_receive_buffer_size=RAW_RCVBUF
    )
    try:
        await resolver.query_dns(domains.take(1)[0], "NAPTR")  # warm-up

        async def one(name: str) -> bool:
            ok = True
            for wave in waves(name):
                results = await asyncio.gather(
                    *(resolver.query_dns(n, t) for n, t in wave), return_exceptions=True
                )
                ok = ok and not any(isinstance(r, BaseException) for r in results)
            return ok

        load = await run_pool(domains.take(count), concurrency, one, time_limit=RUN_LIMIT)
    finally:
        await resolver.close()
    return Throughput("raw aiodns", concurrency, load, QUERIES_PER_LOCATE)


async def dnspython_throughput(
    nameserver: str, domains: Domains, *, concurrency: int, count: int
) -> Throughput:
    """Scenario 2, second anchor: the same raw questions on dnspython's asyncio resolver."""
    import dns.asyncresolver
    import dns.exception

    host, _, port = nameserver.rpartition(":")
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = 4.0

    async def one(name: str) -> bool:
        try:
            await asyncio.gather(
                *(resolver.resolve(n, t, raise_on_no_answer=False) for n, t in queries(name))
            )
        except dns.exception.DNSException:
            return False
        return True

    await one(domains.take(1)[0])  # warm-up
    load = await run_pool(domains.take(count), concurrency, one, time_limit=RUN_LIMIT)
    return Throughput("dnspython", concurrency, load, QUERIES_PER_LOCATE)


# --- 4. storm --------------------------------------------------------------------------


@dataclass
class Storm:
    locates: int
    ok: int
    wall: float
    distinct: int
    """Distinct (name, type) questions one locate of the domain needs."""
    received: int
    """Queries that reached the server (counted by the relay in front of it)."""
    per_question: dict[str, int]
    errors: dict[str, int] = field(default_factory=dict)
    """Failed locates by exception type."""
    single: float = 0.0
    """Seconds one cold locate of another fresh domain took, just before the storm."""

    @property
    def extra_per_locate(self) -> float:
        """Seconds of wall time each locate added beyond one cold locate."""
        return (self.wall - self.single) / self.locates


async def storm(nameserver: str, domains: Domains, *, locates: int, counted: Relay) -> Storm:
    """Scenario 4: ``locates`` concurrent locates of one fresh domain through one
    Locator. ``counted`` is the relay (``.stats()``) that counts what reaches the server."""
    reference, name = domains.take(2)
    errors: Counter[str] = Counter()
    async with Locator(_options((nameserver,))) as locator:
        start = time.perf_counter()
        await locator.resolve(f"sip:{reference}")  # one cold locate, for comparison
        single = time.perf_counter() - start

        async def one() -> bool:
            try:
                return len(await locator.resolve(f"sip:{name}")) == TARGETS_PER_LOCATE
            except LocateError as exc:
                errors[type(exc).__name__] += 1
                return False

        start = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(*(one() for _ in range(locates))), RUN_LIMIT
        )
        wall = time.perf_counter() - start
    stats = counted.stats()
    wanted = {f"{n}/{t}" for n, t in queries(name)}
    per_question = {f"{n}/{t}": c for n, t, c in stats["counts"] if f"{n}/{t}" in wanted}
    # Each question the locates asked counts once (with additional data they ask only
    # the NAPTR and SRV questions: the addresses come along).
    return Storm(
        locates, sum(results), wall, len(per_question), sum(per_question.values()),
        per_question, dict(errors), single,
    )  # fmt: skip


# --- 6. degraded DNS -------------------------------------------------------------------


@dataclass
class Degraded:
    case: str
    locates: int
    ok: int
    """Locates that gave at least one target."""
    complete: int
    """Locates that gave all 12 targets."""
    first: list[float]
    done: list[float]
    wall: float
    errors: dict[str, int] = field(default_factory=dict)


async def degraded(
    nameservers: tuple[str, ...],
    domains: Domains,
    *,
    case: str,
    locates: int,
    concurrency: int,
    **options: object,
) -> Degraded:
    """Scenario 6: ``locates`` fresh locates, ``concurrency`` at once, against a
    degraded DNS set-up (lossy relay or a dead first nameserver)."""
    firsts: list[float] = []
    dones: list[float] = []
    errors: Counter[str] = Counter()
    ok = complete = 0
    async with Locator(_options(nameservers, **options)) as locator:

        async def one(name: str) -> bool:
            nonlocal ok, complete
            start = time.perf_counter()
            try:
                first, total, n = await _timed_locate(locator, name)
            except LocateError as exc:
                dones.append(time.perf_counter() - start)
                errors[type(exc).__name__] += 1
                return False
            firsts.append(first)
            dones.append(total)
            ok += 1
            complete += n == TARGETS_PER_LOCATE
            return True

        load = await run_pool(domains.take(locates), concurrency, one, time_limit=RUN_LIMIT)
    return Degraded(case, locates, ok, complete, firsts, dones, load.wall, dict(errors))


def summary(values: list[float]) -> tuple[float, float, float]:
    """(p50, p90, p99) in milliseconds."""
    return tuple(percentile(values, q) * 1000 for q in (50, 90, 99))  # type: ignore[return-value]


# --- 3. cached path --------------------------------------------------------------------


def has_cache() -> bool:
    """True once the cache layer (``Locator.cache_info``) is in the library."""
    return hasattr(Locator, "cache_info")


@dataclass
class Cached:
    case: str
    targets: int
    resolve_ns: float
    floor_ns: float
    tasks_created: int | None = None

    @property
    def ratio(self) -> float:
        return self.resolve_ns / self.floor_ns


async def cached_path(nameserver: str, domains: Domains, *, n: int, repeat: int) -> Cached:
    """Scenario 3: a fully cached ``resolve()`` of one bench domain (answers first
    fetched from the real server) against ``[t async for t in gen()]`` over a
    prebuilt list of the same 12 targets. Best of ``repeat`` runs of ``n``."""
    uri = f"sip:{domains.take(1)[0]}"
    async with Locator(_options((nameserver,), seed=1)) as locator:
        targets = await locator.resolve(uri)
        info = locator.cache_info()
        resolve_ns = await best_ns(lambda: locator.resolve(uri), n, repeat)
        after = locator.cache_info()
        if after.misses != info.misses:
            raise RuntimeError(f"cached path missed the cache: {info} -> {after}")

    async def gen() -> AsyncIterator[object]:
        for target in targets:
            yield target

    async def floor() -> list[object]:
        return [t async for t in gen()]

    floor_ns = await best_ns(floor, n, repeat)
    return Cached("bench domain, answers from the server", len(targets), resolve_ns, floor_ns)


# --- 5. memory -------------------------------------------------------------------------


@dataclass
class Memory:
    domains: int
    entries: int
    traced_bytes: int
    rss_bytes: int

    @property
    def per_domain(self) -> float:
        return self.traced_bytes / self.domains

    @property
    def rss_per_domain(self) -> float:
        return self.rss_bytes / self.domains


def rss() -> int:
    """Resident set size of this process in bytes (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _fill(locator: Locator, count: int, start: int) -> None:
    """Put the 16 answers of ``count`` domains in the Locator's cache.

    Asks the Locator's (caching) backend the 16 questions of each domain in turn: the
    same entries a full locate leaves, several times faster than running locates.
    """
    query = locator.backend.query
    deadline = time.monotonic() + RUN_LIMIT * 5
    for i in range(start, start + count):
        for n, t in queries(domain(i)):
            answer = await query(Query(n, RType(t)))
            if answer.status is not Status.NOERROR:
                raise RuntimeError(f"memory fill: {answer}")
        if time.monotonic() > deadline:
            raise TimeoutError("memory fill took too long")


async def memory(count: int) -> Memory:
    """Scenario 5: fill a Locator's cache with ``count`` domains (16 answers each, from
    SyntheticBackend: no DNS) and measure what it holds: tracemalloc bytes and RSS.

    Two fills of fresh Locators through their backend (see ``_fill``): the first
    measures RSS growth without tracemalloc (whose bookkeeping would inflate RSS), the
    second the bytes tracemalloc sees.
    """
    options = LocateOptions(cache_size=count * QUERIES_PER_LOCATE + 1000)
    async with Locator(options, backend=SyntheticBackend()) as locator:
        await locator.resolve(f"sip:{domain(count)}")  # warm-up: lazy imports, interning
        locator.flush_cache()
        gc.collect()
        rss_before = rss()
        await _fill(locator, count, 0)
        gc.collect()
        rss_bytes = rss() - rss_before
    gc.collect()
    async with Locator(options, backend=SyntheticBackend()) as locator:
        await locator.resolve(f"sip:{domain(count)}")
        locator.flush_cache()
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            await _fill(locator, count, 0)
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        entries = locator.cache_info().size
    return Memory(count, entries, traced, rss_bytes)
