"""RedisHealthStore against a real redis-server on loopback (issue 15).

Each test starts its own redis-server (tests/redis_server.py: free port, no
persistence, a temporary directory); worker processes are Locators of their own,
driven over stdio. Without redis-server the tests skip, and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.redis_server import (
    URI,
    ZONE,
    A,
    B,
    C,
    RedisServer,
    Worker,
    require_redis,
)

if not IN_CI:  # under CI=true a missing redis-py fails the collection
    pytest.importorskip("redis.asyncio", reason="needs redis-py (pip install redis)")

import redis.asyncio as redis_asyncio

from asip_locate import (
    Endpoint,
    FailureReason,
    IpStrategy,
    LocateOptions,
    Locator,
    Transport,
)
from asip_locate.redis import (
    RedisHealthStore,
    endpoint_id,
    parse_document,
    parse_endpoint_id,
)
from asip_locate.testing import FakeBackend, FakeClock

pytestmark = pytest.mark.servers


def endpoint(address: str, port: int = 5060) -> Endpoint:
    return Endpoint(Transport.UDP, ipaddress.ip_address(address), port)


def make(store: RedisHealthStore, clock: Any = time.monotonic, **options: Any) -> Locator:
    opts = LocateOptions(transports=("udp",), ip_strategy=IpStrategy.IPV4_ONLY, seed=7, **options)
    return Locator(opts, backend=FakeBackend(ZONE), clock=clock, health_store=store)


def quick_store(url: str, namespace: str, **kwargs: Any) -> RedisHealthStore:
    args: dict[str, Any] = {"timeout": 0.5, "ping_interval": 0.2, "reconnect_max": 0.2}
    args.update(kwargs)
    return RedisHealthStore(url, namespace=namespace, **args)


async def order(locator: Locator) -> list[str]:
    return [str(t.address) for t in await locator.resolve(URI)]


async def eventually(check: Any, seconds: float = 5.0) -> float:
    """Wait (bounded) until ``await check()`` is true; the time it took."""
    start = time.monotonic()
    for _ in range(int(seconds / 0.005) + 1):
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - start
        await asyncio.sleep(0.005)
    raise AssertionError(f"not true within {seconds}s: {check}")


@pytest.fixture
def server() -> Iterator[RedisServer]:
    require_redis()
    srv = RedisServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
async def raw(server: RedisServer) -> AsyncIterator[Any]:
    client = redis_asyncio.Redis.from_url(server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def workers(url: str, namespace: str, n: int) -> list[Worker]:
    spawned = await asyncio.gather(*(Worker.spawn(url, namespace) for _ in range(n)))
    for worker in spawned:
        assert (await worker.call("wait_connected", timeout=10))["ok"]
    return list(spawned)


async def close_all(spawned: list[Worker]) -> None:
    replies = await asyncio.gather(*(w.close() for w in spawned))
    for reply in replies:
        assert reply == {"tasks_left": []}


# --- across processes -----------------------------------------------------------------


async def test_failures_and_successes_cross_processes(server: RedisServer) -> None:
    spawned = await workers(server.url, "fleet", 3)
    try:
        store = quick_store(server.url, "fleet")
        async with make(store) as here:
            await eventually(lambda: store.connected)
            await spawned[0].call("fail", address=A)
            for worker in spawned[1:]:
                reply = await worker.call("wait_order", order=[B, C, A], timeout=5)
                assert reply["ok"], reply
            await eventually(lambda: here.health() != [])
            [entry] = here.health()
            assert (entry.endpoint, entry.reason, entry.failures) == (
                endpoint(A),
                FailureReason.SERVICE_UNAVAILABLE,
                1,
            )
            assert await order(here) == [B, C, A]
            # A success anywhere clears it everywhere; so does this process' own report.
            await spawned[2].call("success", address=A)
            for worker in spawned[:2]:
                assert (await worker.call("wait_order", order=[A, B, C], timeout=5))["ok"]
            await eventually(lambda: here.health() == [])
            here.report_failure(endpoint(B), reason="transport")
            for worker in spawned:
                assert (await worker.call("wait_order", order=[A, C, B], timeout=5))["ok"]
                [[address, left, failures, retry_after]] = (await worker.call("health"))["health"]
                assert (address, failures, retry_after) == (B, 1, None)
                assert 25 < left <= 30  # failure_hold of the reporter
    finally:
        await close_all(spawned)


async def test_retry_after_expires_on_time_everywhere(server: RedisServer, raw: Any) -> None:
    spawned = await workers(server.url, "hold", 2)
    try:
        start = time.monotonic()
        await spawned[0].call("fail", address=B, retry_after=1.0)
        assert (await spawned[1].call("wait_order", order=[A, C, B], timeout=5))["ok"]
        [[_, left, _, retry_after]] = (await spawned[1].call("health"))["health"]
        assert retry_after == 1.0
        assert 0.5 < left <= 1.0
        assert 0 < await raw.pttl(f"hold:h:{endpoint_id(endpoint(B))}") <= 1000
        reply = await spawned[1].call("wait_order", order=[A, B, C], timeout=5)
        elapsed = time.monotonic() - start
        assert reply["ok"]
        assert 0.9 < elapsed < 2.0, elapsed
        assert (await spawned[0].call("health"))["health"] == []
        assert await raw.exists(f"hold:h:{endpoint_id(endpoint(B))}") == 0
    finally:
        await close_all(spawned)


async def test_a_report_never_shortens_a_hold_across_processes(
    server: RedisServer, raw: Any
) -> None:
    spawned = await workers(server.url, "longest", 2)
    try:
        await spawned[0].call("fail", address=A, retry_after=60)
        assert (await spawned[1].call("wait_order", order=[B, C, A], timeout=5))["ok"]
        await spawned[1].call("fail", address=A, retry_after=1)

        async def counted_twice() -> bool:
            health = (await spawned[0].call("health"))["health"]
            return bool(health) and health[0][2] == 2

        await eventually(counted_twice)
        for worker in spawned:
            [[_, left, failures, retry_after]] = (await worker.call("health"))["health"]
            assert (failures, retry_after) == (2, 1)
            assert 55 < left <= 60
        assert 55_000 < await raw.pttl(f"longest:h:{endpoint_id(endpoint(A))}") <= 60_000
    finally:
        await close_all(spawned)


async def test_exact_holds_with_injected_clocks(server: RedisServer) -> None:
    wall = FakeClock(float(int(time.time())))  # whole seconds: exact in milliseconds
    mono1, mono2 = FakeClock(1000.0), FakeClock(5000.0)
    store1 = quick_store(server.url, "exact", wall_clock=wall)
    store2 = quick_store(server.url, "exact", wall_clock=wall)
    async with make(store1, clock=mono1) as one, make(store2, clock=mono2) as two:
        await eventually(lambda: store1.connected and store2.connected)
        one.report_failure(endpoint(A), reason="503", retry_after=5)
        await eventually(lambda: bool(two.health()))
        [entry] = two.health()
        assert entry.until == 5005.0
        assert entry.retry_after == 5
        mono2.advance(4.999)
        assert await order(two) == [B, C, A]
        mono2.advance(0.001)
        assert await order(two) == [A, B, C]
        assert two.health() == []


# --- Redis down, slow, restarted ---------------------------------------------------------


async def test_redis_killed_and_restarted_mid_run(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asip_locate.redis")
    [worker] = await workers(server.url, "restart", 1)
    store = quick_store(server.url, "restart")
    locates = 0
    slowest = 0.0
    errors: list[BaseException] = []
    stop = asyncio.Event()
    try:
        async with make(store) as here:
            await eventually(lambda: store.connected)

            async def keep_locating() -> None:
                nonlocal locates, slowest
                for _ in range(1_000_000):
                    if stop.is_set():
                        return
                    start = time.perf_counter()
                    try:
                        targets = await here.resolve(URI)
                        assert len(targets) == 3
                    except BaseException as exc:
                        errors.append(exc)
                        raise
                    slowest = max(slowest, time.perf_counter() - start)
                    locates += 1
                    await asyncio.sleep(0.001)

            loop_task = asyncio.create_task(keep_locating())
            await worker.call("fail", address=A)
            await eventually(lambda: endpoint(A) in store.snapshot())

            server.kill()
            await eventually(lambda: not store.connected)
            before = locates
            here.report_failure(endpoint(B))  # while Redis is away: applies here at once
            assert await order(here) == [C, A, B]
            await asyncio.sleep(0.5)  # a few reconnection attempts
            assert locates > before
            assert (await worker.call("order"))["order"] == [B, C, A]

            server.start()  # same port, empty: every store writes back what it holds
            await eventually(lambda: store.connected)
            assert (await worker.call("wait_order", order=[C, A, B], timeout=5))["ok"]
            assert await order(here) == [C, A, B]
            stop.set()
            await loop_task
    finally:
        stop.set()
        await close_all([worker])
    assert not errors
    assert slowest < 0.2, slowest  # a locate never waited on Redis
    warnings = [r.getMessage() for r in caplog.records if r.name == "asip_locate.redis"]
    assert len([w for w in warnings if "unreachable" in w]) == 1, warnings
    assert len([w for w in warnings if "back after" in w]) == 1, warnings
    assert store.stats.outages == 1


async def test_a_stalled_redis_never_blocks_a_locate(server: RedisServer) -> None:
    store = quick_store(server.url, "stalled", timeout=0.3)
    async with make(store) as here:
        await eventually(lambda: store.connected)
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)
        try:
            start = time.perf_counter()
            here.report_failure(endpoint(A))
            assert await order(here) == [B, C, A]
            assert time.perf_counter() - start < 0.05
            await eventually(lambda: not store.connected, seconds=5)
        finally:
            server.process.send_signal(signal.SIGCONT)
        await eventually(lambda: store.connected, seconds=5)
        assert store.stats.outages == 1
        assert await order(here) == [B, C, A]


async def test_without_redis_everything_stays_local(caplog: pytest.LogCaptureFixture) -> None:
    require_redis()
    caplog.set_level(logging.WARNING, logger="asip_locate.redis")
    from tests.redis_server import free_tcp_port

    store = quick_store(f"redis://127.0.0.1:{free_tcp_port()}/0", "nowhere")
    async with make(store) as here:
        here.report_failure(endpoint(A), retry_after=10)
        assert await order(here) == [B, C, A]
        here.report_success(endpoint(A))
        assert await order(here) == [A, B, C]
        await asyncio.sleep(0.6)  # several attempts, one warning
    assert not store.connected
    warnings = [r for r in caplog.records if r.name == "asip_locate.redis"]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()


# --- hostile input -------------------------------------------------------------------------


def _doc(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "v": 1,
        "op": "fail",
        "ep": "udp/127.0.0.12/5060",
        "u": int(time.time() * 1000) + 60_000,
        "n": 1,
        "r": "timeout",
        "ra": None,
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v != "DROP"}).encode()


GARBAGE: list[bytes] = [
    b"",
    b"x",
    b"\xff\xfe\x00",
    b"{",
    b"null",
    b"[]",
    b'"fail"',
    b"1e999",
    b"[" * 400 + b"]" * 400,
    b'{"v": 1, "op": "fail"}' + b" " * 2000,
    b"{" + b'"a":1,' * 10_000 + b'"v":1}',
    _doc(v=2),
    _doc(v=True),
    _doc(op="FAIL"),
    _doc(op=["fail"]),
    _doc(op="ok", u="DROP", n="DROP", r="DROP", ra="DROP", extra=1),
    _doc(n="DROP"),
    _doc(extra=True),
    _doc(ep="udp/127.0.0.12"),
    _doc(ep="udp/127.0.0.12/5060/x"),
    _doc(ep="udp/127.0.0.012/5060"),
    _doc(ep="udp/127.0.0.12/0"),
    _doc(ep="udp/127.0.0.12/65536"),
    _doc(ep="udp/127.0.0.12/+5060"),
    _doc(ep="udp/127.0.0.12/05060"),
    _doc(ep="UDP/127.0.0.12/5060"),
    _doc(ep="carrier-pigeon/127.0.0.12/5060"),
    _doc(ep="udp/::FFFF:1/5060"),
    _doc(ep="udp/example.test/5060"),
    _doc(ep=5060),
    _doc(ep="udp/127.0.0.12/5060" + "0" * 200),
    _doc(u=1.5),
    _doc(u="1"),
    _doc(u=True),
    _doc(u=0),
    _doc(u=-5),
    _doc(u=10**18),
    _doc(u=10**400),
    _doc(n=0),
    _doc(n=True),
    _doc(n=10**12),
    _doc(r="boom"),
    _doc(r=None),
    _doc(ra=-1),
    _doc(ra="1"),
    _doc(ra=10**9),
    _doc(ra=[1]),
    b'{"v":1,"op":"fail","ep":"udp/127.0.0.12/5060","u":NaN,"n":1,"r":"timeout","ra":null}',
    b'{"v":1,"op":"fail","ep":"udp/127.0.0.12/5060","u":1,"n":1,"r":"timeout","ra":Infinity}',
    b"x" * 1_000_000,
]


def test_every_garbage_document_is_rejected() -> None:
    now_ms = int(time.time() * 1000)
    for raw in GARBAGE:
        with pytest.raises(ValueError):
            parse_document(raw, 1024, 86_400_000, now_ms)
    assert parse_document(_doc(), 1024, 86_400_000, now_ms)["ep"] == endpoint(B)
    doc = parse_document(_doc(op="ok", u="DROP", n="DROP", r="DROP", ra="DROP"), 1024, 1, now_ms)
    assert doc == {"v": 1, "op": "ok", "ep": endpoint(B)}


def test_endpoint_ids_are_canonical() -> None:
    for value in (endpoint(A), Endpoint(Transport.TLS, ipaddress.ip_address("2001:db8::1"), 5061)):
        assert parse_endpoint_id(endpoint_id(value)) == value
    assert endpoint_id(endpoint(A)) == "udp/127.0.0.11/5060"
    with pytest.raises(ValueError):
        parse_endpoint_id("tls/2001:DB8::1/5061")


async def test_garbage_on_the_channel_and_in_keys_is_ignored(server: RedisServer, raw: Any) -> None:
    store = quick_store(server.url, "hostile")
    async with make(store) as here:
        await eventually(lambda: store.connected)
        for payload in GARBAGE:
            await raw.publish("hostile:health", payload)
        await raw.publish("hostile:other", _doc())  # another channel: never seen
        await raw.publish("hostile:health", _doc())  # then a valid one still applies
        await eventually(lambda: endpoint(B) in store.snapshot())
        assert store.stats.ignored == len(GARBAGE)
        assert [e.endpoint for e in here.health()] == [endpoint(B)]
        assert store.connected
        assert store.stats.outages == 0

        # Garbage in the keys: a resync skips it, the Lua script overwrites it.
        await raw.set("hostile:h:udp/127.0.0.11/5060", b"\x00garbage")
        await raw.set("hostile:h:udp/127.0.0.13/5060", _doc(ep="udp/127.0.0.12/5060"))
        await raw.set("hostile:h:nonsense", _doc())
        late = quick_store(server.url, "hostile")
        async with make(late) as other:
            await eventually(lambda: late.connected)
            assert other.health() == []  # B was only ever published, never stored
            assert late.stats.ignored == 3
            here.report_failure(endpoint(A))
            await eventually(lambda: endpoint(A) in late.snapshot())
            state = json.loads(await raw.get("hostile:h:udp/127.0.0.11/5060"))
            assert (state["ep"], state["n"], state["r"]) == ("udp/127.0.0.11/5060", 1, "timeout")


# --- lifecycle ---------------------------------------------------------------------------


async def test_aclose_writes_what_is_queued_and_leaves_nothing(
    server: RedisServer, raw: Any
) -> None:
    store = quick_store(server.url, "closing")
    async with make(store) as here:
        await eventually(lambda: store.connected)
        here.report_failure(endpoint(C), retry_after=30)
    # The conftest fixture fails the test on any task left; connections are gone too.
    assert await raw.exists("closing:h:udp/127.0.0.13/5060") == 1
    clients = await raw.client_list()
    assert len(clients) == 1, clients  # only this test's own connection
    assert repr(store).startswith("<RedisHealthStore closing closed")
    await store.aclose()  # idempotent
    here.report_failure(endpoint(A))  # after close: local only, no task started
    assert store._task is None


async def test_clear_health_is_shared(server: RedisServer, raw: Any) -> None:
    [worker] = await workers(server.url, "clear", 1)
    try:
        async with make(quick_store(server.url, "clear")) as here:
            await worker.call("fail", address=A)
            await worker.call("fail", address=B)
            await eventually(lambda: len(here.health()) == 2)
            here.clear_health(endpoint(A))
            assert (await worker.call("wait_order", order=[A, C, B], timeout=5))["ok"]
            here.clear_health()
            assert (await worker.call("wait_order", order=[A, B, C], timeout=5))["ok"]
            assert await raw.keys("clear:h:*") == []
    finally:
        await close_all([worker])


def test_store_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="namespace"):
        RedisHealthStore("redis://127.0.0.1:1/0", namespace="a b")
    with pytest.raises(ValueError, match="namespace"):
        RedisHealthStore("redis://127.0.0.1:1/0", namespace="x*")
    with pytest.raises(ValueError, match="timeout"):
        RedisHealthStore("redis://127.0.0.1:1/0", timeout=0)
    with pytest.raises(ValueError, match="reconnect_max"):
        RedisHealthStore("redis://127.0.0.1:1/0", reconnect_min=2, reconnect_max=1)
    with pytest.raises(ValueError, match="scheme"):
        RedisHealthStore("ftp://127.0.0.1:1/0")


async def test_a_store_serves_one_locator() -> None:
    store = RedisHealthStore("redis://127.0.0.1:1/0", reconnect_min=0.5)
    async with make(store):
        with pytest.raises(RuntimeError, match="already bound"):
            make(store)


async def test_benchmark_harness_gives_figures(server: RedisServer) -> None:
    """benchmarks.redis_health end to end, tiny (no timing assertions)."""
    from benchmarks import redis_health

    prop = await redis_health.propagation(server.url, reports=5, gap=0.002)
    assert (prop.reports, prop.seen) == (5, 5)
    assert 0 < prop.p50_ms <= prop.p99_ms <= prop.max_ms
    price = await redis_health.cost(server.url, n=20, repeat=1)
    assert price.commands == 0
    assert price.ratio > 0
    assert price.locates == 20


DOCS_ACL = (
    "ACL SETUSER b2bua on >secret resetkeys ~b2bua-prod:* resetchannels &b2bua-prod:health"
    " -@all +get +set +mget +del +unlink +scan +publish +subscribe +evalsha +script|load +ping"
)


async def test_the_acl_of_the_docs_is_enough(server: RedisServer, raw: Any) -> None:
    from pathlib import Path

    assert DOCS_ACL in (Path(__file__).parent.parent / "docs" / "redis.md").read_text()
    await raw.execute_command(*DOCS_ACL.split())
    url = f"redis://b2bua:secret@127.0.0.1:{server.port}/0"
    one, two = quick_store(url, "b2bua-prod"), quick_store(url, "b2bua-prod")
    async with make(one) as here, make(two) as there:
        await eventually(lambda: one.connected and two.connected)
        here.report_failure(endpoint(A))
        await eventually(lambda: endpoint(A) in two.snapshot())
        here.report_success(endpoint(A))
        await eventually(lambda: endpoint(A) not in two.snapshot())
        here.report_failure(endpoint(B))
        await eventually(lambda: endpoint(B) in two.snapshot())
        there.clear_health()
        await eventually(lambda: here.health() == [])
        assert one.stats.outages == two.stats.outages == 0
    wrong = quick_store(url, "other-app")  # outside the user's keys and channel
    async with make(wrong):
        await eventually(lambda: wrong.stats.outages == 1)
        assert not wrong.connected


async def test_reports_queued_while_away_are_bounded_and_expire(
    server: RedisServer, raw: Any
) -> None:
    server.kill()
    store = quick_store(server.url, "queued", max_pending=3)
    async with make(store) as here:
        for i in range(5):
            here.report_failure(endpoint(f"127.0.0.{20 + i}"), retry_after=0.05 if i == 3 else 30)
        assert store.stats.dropped == 2
        assert len(here.health()) == 5  # local state keeps everything
        await asyncio.sleep(0.2)  # the 0.05 s hold ends while it waits in the queue
        server.start()
        await eventually(lambda: store.connected)
        keys = sorted(await raw.keys("queued:h:*"))
        assert keys == [b"queued:h:udp/127.0.0.22/5060", b"queued:h:udp/127.0.0.24/5060"]
        assert store.stats.written == 2


async def test_aclose_with_redis_stalled_is_bounded(server: RedisServer) -> None:
    store = quick_store(server.url, "stuck", timeout=0.3)
    locator = make(store)
    await eventually(lambda: store.connected)
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)
    try:
        locator.report_failure(endpoint(A))  # its write hangs on the stopped server
        await asyncio.sleep(0.05)
        start = time.monotonic()
        await locator.aclose()
        assert time.monotonic() - start < 2.0
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert store._task is None


@pytest.mark.parametrize("in_ci", [False, True])
def test_missing_redis_server_skips_locally_but_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, in_ci: bool
) -> None:
    import tests.redis_server

    monkeypatch.setattr(tests.redis_server, "REDIS_SERVER", "/nonexistent/redis-server")
    monkeypatch.setattr(tests.redis_server, "IN_CI", in_ci)
    outcome = pytest.fail.Exception if in_ci else pytest.skip.Exception
    with pytest.raises(outcome, match="apt-get install redis-server"):
        require_redis()


async def test_a_retry_after_beyond_max_hold_is_shared_capped(server: RedisServer) -> None:
    one = quick_store(server.url, "capped", max_hold=60)
    two = quick_store(server.url, "capped", max_hold=60)
    async with make(one) as here, make(two) as there:
        await eventually(lambda: one.connected and two.connected)
        here.report_failure(endpoint(A), reason="503", retry_after=10**6)
        await eventually(lambda: bool(there.health()))
        [entry] = there.health()
        assert entry.retry_after == 60
        assert 55 < entry.until - time.monotonic() <= 60
        assert one.stats.ignored == two.stats.ignored == 0
        assert one.stats.received == 1  # its own echo, which keeps the full local hold:
        [mine] = here.health()
        assert mine.retry_after == 10**6
        assert mine.until - time.monotonic() > 10**6 - 5
