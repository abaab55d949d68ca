"""Soak run: many locates over many domains with injected DNS faults; RSS and fds.

    python -m benchmarks.soak --locates 100000 --duration 300
    python -m benchmarks.soak --cold 100000 [--recycle-after 0]


A ZoneServer in a child process serves ``--domains`` domains on 127.0.0.1; one in ten
answers normally, the others time out, SERVFAIL, REFUSE, send garbage or the wrong
type, truncate (TCP fallback), answer slowly, go through CNAMEs or do not exist.
Some TTLs are 0 so c-ares' own cache cannot hide the traffic. One long-lived Locator
does most locates; every ``--fresh-every`` locates a short-lived Locator is opened
and closed; some locates are cancelled, some abandoned after the first target, some
are invalid URIs. The client's RSS and open file descriptors (from /proc/self) are
sampled after a warm-up and at the end. Exit status 1 when an unexpected exception
escaped, tasks were left behind, or the descriptors grew.

``--cold N`` runs the distinct-names soak instead: N locates of N different domains of
the benchmark zone (NSD, else Knot, else ZoneServer, on loopback; TTL 3600 s, c-ares'
longest cache time), each asked once, through one Locator. It measures what stays in
memory per distinct name: the library's cache is bounded by ``cache_size``, and c-ares'
own query cache by AiodnsBackend's channel recycling (``--recycle-after``; 0 turns the
recycling off to show the growth without it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from asip_locate import (
    AiodnsBackend,
    InvalidUriError,
    IpStrategy,
    LocateOptions,
    LocateTimeoutError,
    Locator,
    NoTargetsError,
)
from asip_locate.testing import Fault, ZoneServer

KINDS = (
    "ok",
    "ok-ttl0",
    "naptr-timeout",
    "srv-servfail",
    "a-garbage",
    "srv-truncated",
    "slow",
    "nxdomain",
    "refused",
    "cname",
    "aaaa-wrong-type",
    "srv-dot",
)


def kind_of(index: int) -> str:
    return KINDS[index % len(KINDS)]


def domain(index: int) -> str:
    return f"d{index}.soak.test"


def zone_text(domains: int) -> str:
    """The zone: every domain has NAPTR -> SRV (udp, tcp) -> A/AAAA, shaped by its kind."""
    lines = [
        "$TTL 30",
        "soak.test. 3600 IN SOA ns.soak.test. h.soak.test. 1 7200 900 1209600 5",
    ]
    for i in range(domains):
        name, kind = domain(i), kind_of(i)
        if kind == "nxdomain":
            continue
        ttl = 0 if kind in ("ok-ttl0", "slow", "a-garbage") or i % 3 == 0 else 2
        host1, host2 = f"a.{name}", f"b.{name}"
        lines += [
            f'{name}. {ttl} IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.{name}.',
            f'{name}. {ttl} IN NAPTR 20 50 "s" "SIP+D2T" "" _sip._tcp.{name}.',
        ]
        if kind == "srv-dot":
            lines.append(f"_sip._udp.{name}. {ttl} IN SRV 0 0 0 .")
        else:
            lines.append(f"_sip._udp.{name}. {ttl} IN SRV 10 60 5060 {host1}.")
            lines.append(f"_sip._udp.{name}. {ttl} IN SRV 10 40 5060 {host2}.")
        lines.append(f"_sip._tcp.{name}. {ttl} IN SRV 10 0 5060 {host1}.")
        if kind == "cname":
            lines.append(f"{host1}. {ttl} IN CNAME c.{name}.")
            host1 = f"c.{name}"
        lines += [
            f"{host1}. {ttl} IN A 127.0.{i // 250 % 250}.{i % 250 + 1}",
            f"{host1}. {ttl} IN AAAA ::1",
            f"{host2}. {ttl} IN A 127.1.{i // 250 % 250}.{i % 250 + 1}",
        ]
    return "\n".join(lines) + "\n"


def faults(domains: int) -> dict[tuple[str, str | None], Fault]:
    """Fault per (name, qtype); qtype None matches every type of that name."""
    table: dict[tuple[str, str | None], Fault] = {}
    for i in range(domains):
        name, kind = domain(i), kind_of(i)
        if kind == "naptr-timeout":
            table[(name, "NAPTR")] = Fault(drop=True)
        elif kind == "srv-servfail":
            table[(f"_sip._udp.{name}", "SRV")] = Fault(rcode="SERVFAIL")
        elif kind == "a-garbage":
            table[(f"a.{name}", "A")] = Fault(garbage=True)
        elif kind == "srv-truncated":
            table[(f"_sip._udp.{name}", "SRV")] = Fault(truncate=True)
        elif kind == "slow":
            table[(f"b.{name}", "A")] = Fault(delay=0.05)
        elif kind == "refused":
            table[(name, None)] = Fault(rcode="REFUSED")
        elif kind == "aaaa-wrong-type":
            table[(f"a.{name}", "AAAA")] = Fault(wrong_type=True)
    return table


class SoakServer(ZoneServer):
    """ZoneServer with faults looked up by name (thousands of rules stay cheap)."""

    def __init__(self, text: str, table: dict[tuple[str, str | None], Fault]) -> None:
        super().__init__(text)
        self.table = table

    def _fault_for(self, name: str, qtype: str) -> Fault | None:
        return self.table.get((name, qtype)) or self.table.get((name, None))


def serve(domains: int, conn: Connection) -> None:
    """Child process: run the SoakServer until the parent says stop."""

    async def main() -> None:
        async with SoakServer(zone_text(domains), faults(domains)) as server:
            conn.send(server.address)
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            loop.add_reader(conn.fileno(), stop.set)
            answered = 0
            while not stop.is_set():
                answered += len(server.log)
                server.log.clear()  # the query log would grow without bound
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
            answered += len(server.log)
            conn.recv()
            conn.send(answered)

    asyncio.run(main())


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Sample:
    locates: int
    seconds: float
    rss_kib: int
    fds: int
    tasks: int


@dataclass
class Soak:
    args: argparse.Namespace
    address: str
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    done: int = 0
    baseline: Sample | None = None

    def options(self) -> LocateOptions:
        return LocateOptions(
            nameservers=(self.address,),
            timeout=self.args.timeout,
            tries=1,
            deadline=self.args.deadline,
        )

    async def one(self, locator: Locator, rng: random.Random) -> None:
        index = rng.randrange(self.args.domains)
        mode = rng.random()
        uri = f"sip:user@{domain(index)}"
        if mode < 0.01:
            uri = f"sip:user@{domain(index)}..bad"
        elif mode < 0.03:
            uri = f"sips:{domain(index)}"
        elif mode < 0.05:
            uri = f"sip:{domain(index)};transport=tcp"
        try:
            if mode > 0.97:  # abandon a bare `async for` after the first target
                async for _ in locator.locate(uri):
                    break
                self.outcomes["abandoned"] += 1
            elif mode > 0.94:  # the caller gives up early: cancellation mid-locate
                try:
                    await asyncio.wait_for(locator.resolve(uri), rng.uniform(0, 0.01))
                    self.outcomes["targets"] += 1
                except TimeoutError:
                    self.outcomes["cancelled"] += 1
            else:
                targets = await locator.resolve(uri)
                self.outcomes["targets" if targets else "empty"] += 1
        except NoTargetsError:
            self.outcomes["NoTargetsError"] += 1
        except LocateTimeoutError:
            self.outcomes["LocateTimeoutError"] += 1
        except InvalidUriError:
            self.outcomes["InvalidUriError"] += 1
        except Exception as exc:  # what the soak is looking for
            self.outcomes["unexpected"] += 1
            if len(self.unexpected) < 10:
                self.unexpected.append(f"{uri}: {type(exc).__name__}: {exc}")

    async def worker(self, locator: Locator, rng: random.Random, goal: int, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        while self.done < goal and loop.time() < stop_at:
            self.done += 1
            if self.done % self.args.fresh_every == 0:
                async with Locator(self.options()) as fresh:
                    await self.one(fresh, rng)
            else:
                await self.one(locator, rng)

    def sample(self, started: float) -> Sample:
        gc.collect()
        current = asyncio.current_task()
        tasks = len([t for t in asyncio.all_tasks() if t is not current])
        sample = Sample(self.done, time.monotonic() - started, rss_kib(), open_fds(), tasks)
        self.samples.append(sample)
        rss = sample.rss_kib / 1024
        print(
            f"  {sample.locates:>8} locates {sample.seconds:7.1f}s  RSS {rss:7.1f} MiB"
            f"  fds {sample.fds:4}  tasks {sample.tasks}",
            file=sys.stderr,
            flush=True,
        )
        return sample

    async def batch(self, locator: Locator, rng: random.Random, goal: int, stop_at: float) -> None:
        await asyncio.gather(
            *(
                self.worker(locator, random.Random(rng.random()), goal, stop_at)
                for _ in range(self.args.concurrency)
            )
        )

    async def run(self) -> None:
        rng = random.Random(self.args.seed)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        self.baseline = self.sample(started)  # before any Locator exists
        async with Locator(self.options()) as locator:
            # Warm up: c-ares' cache fills up to its steady state and the allocators
            # settle; the figures compare the end with the state after the warm-up.
            await self.batch(locator, rng, self.args.warmup, loop.time() + self.args.duration)
            self.sample(started)
            stop_at = loop.time() + self.args.duration
            last = self.done + self.args.locates
            step = max(self.args.locates // 10, 1)
            while self.done < last and loop.time() < stop_at:
                await self.batch(locator, rng, min(self.done + step, last), stop_at)
                self.sample(started)
        await asyncio.sleep(0.05)
        self.sample(started)


def report(soak: Soak, answered: int) -> dict[str, object]:
    # samples: baseline, after warm-up, checkpoints..., after the Locator closed
    baseline, first = soak.samples[0], soak.samples[1]
    last, closed = soak.samples[-2], soak.samples[-1]
    measured = last.locates - first.locates
    seconds = last.seconds - first.seconds
    return {
        "locates": soak.done,
        "locates_measured": measured,
        "seconds_measured": round(seconds, 1),
        "locates_per_second": round(measured / seconds) if seconds else None,
        "domains": soak.args.domains,
        "concurrency": soak.args.concurrency,
        "server_queries": answered,
        "outcomes": dict(soak.outcomes.most_common()),
        "rss_kib": {"start": first.rss_kib, "end": last.rss_kib, "closed": closed.rss_kib},
        "fds": {
            "before": baseline.fds,
            "start": first.fds,
            "end": last.fds,
            "closed": closed.fds,
        },
        "tasks_left": closed.tasks,
        "unexpected": soak.unexpected,
        "samples": [vars(s) for s in soak.samples],
    }


async def cold_soak(args: argparse.Namespace, address: str) -> dict[str, object]:
    """N distinct cold locates through one Locator; RSS sampled every 10 %."""
    from benchmarks._zone import TARGETS_PER_LOCATE
    from benchmarks._zone import domain as bench_domain

    recycle = args.recycle_after or 2**62
    options = LocateOptions(
        nameservers=(address,), timeout=2.0, tries=2, ip_strategy=IpStrategy.IPV4_ONLY
    )
    backend = AiodnsBackend(
        options.nameservers,
        timeout=options.timeout,
        tries=options.tries,
        max_records=options.max_records,
        recycle_after=recycle,
    )
    outcomes: Counter[str] = Counter()
    samples: list[dict[str, float]] = []
    next_index = 0
    started = time.monotonic()

    def sample() -> None:
        gc.collect()
        row = {
            "locates": next_index,
            "seconds": round(time.monotonic() - started, 1),
            "rss_kib": rss_kib(),
            "fds": open_fds(),
            "channels": backend.channels_opened,
        }
        samples.append(row)
        print(
            f"  {row['locates']:>8} locates {row['seconds']:7.1f}s  RSS "
            f"{row['rss_kib'] / 1024:7.1f} MiB  fds {row['fds']:4}  channels {row['channels']}",
            file=sys.stderr,
            flush=True,
        )

    async def worker(locator: Locator, stop: int) -> None:
        nonlocal next_index
        while next_index < stop:
            index = next_index
            next_index += 1
            try:
                targets = await locator.resolve(f"sip:{bench_domain(index)}")
                # IPv4 only: 6 of the 12 targets.
                ok = len(targets) == TARGETS_PER_LOCATE // 2
                outcomes["targets" if ok else "fewer targets"] += 1
            except (NoTargetsError, LocateTimeoutError) as exc:
                outcomes[type(exc).__name__] += 1

    sample()
    async with Locator(options, backend=backend) as locator:
        step = max(args.cold // 10, 1)
        sample()
        while next_index < args.cold:
            stop = min(next_index + step, args.cold)
            await asyncio.gather(*(worker(locator, stop) for _ in range(args.concurrency)))
            sample()
        cache = locator.cache_info()
    sample()
    return {
        "cold_locates": args.cold,
        "recycle_after": args.recycle_after,
        "concurrency": args.concurrency,
        "outcomes": dict(outcomes),
        "cache_entries": cache.size,
        "samples": samples,
    }


def cold_main(args: argparse.Namespace) -> int:
    from benchmarks._servers import start_server
    from benchmarks._zone import zone_text as bench_zone

    server = start_server(bench_zone(args.cold + 10), args.server)
    try:
        print(f"cold soak: {args.cold} names, {server.kind} on {server.address}", file=sys.stderr)
        figures = asyncio.run(cold_soak(args, server.address))
    finally:
        server.stop()
    print(json.dumps({k: v for k, v in figures.items() if k != "samples"}, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            out.write(json.dumps(figures, indent=2) + "\n")
    outcomes = figures["outcomes"]
    return 0 if outcomes == {"targets": args.cold} else 1  # type: ignore[comparison-overlap]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--cold", type=int, default=0, help="distinct-names soak of N locates")
    parser.add_argument(
        "--recycle-after", type=int, default=4096, help="with --cold: c-ares channel bound (0: off)"
    )
    parser.add_argument("--server", default="auto", choices=["auto", "nsd", "knot", "zoneserver"])
    parser.add_argument(
        "--locates", type=int, default=100_000, help="measured locates (after the warm-up)"
    )
    parser.add_argument(
        "--duration", type=float, default=300.0, help="stop measuring after these seconds"
    )
    parser.add_argument("--domains", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20_000, help="locates before measuring")
    parser.add_argument("--fresh-every", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=0.2, help="c-ares timeout")
    parser.add_argument("--deadline", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--max-fd-growth", type=int, default=0, help="fail when fds grow by more")
    args = parser.parse_args(argv)
    if args.cold:
        return cold_main(args)

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=serve, args=(args.domains, child), daemon=True)
    server.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the soak DNS server did not start")
        soak = Soak(args, parent.recv())
        print(
            f"soak: {args.locates} locates, {args.domains} domains, server {soak.address}",
            file=sys.stderr,
        )
        asyncio.run(soak.run())
        parent.send("stop")
        answered = parent.recv() if parent.poll(10) else -1
    finally:
        server.join(10)
        if server.is_alive():
            server.kill()
            server.join(5)
    figures = report(soak, answered)
    text = json.dumps(figures, indent=2)
    print(json.dumps({k: v for k, v in figures.items() if k != "samples"}, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            out.write(text + "\n")
    # With every Locator closed, exactly the descriptors of before must be open.
    fd_growth = figures["fds"]["closed"] - figures["fds"]["before"]  # type: ignore[index]
    failed = soak.unexpected or figures["tasks_left"] or fd_growth > args.max_fd_growth
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
