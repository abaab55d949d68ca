"""Every nameserver dead: the deadline holds, and c-ares honours timeout and tries.

Elapsed time is measured with the monotonic clock and only bounded from above, with
generous slack, so these tests do not flake on a loaded machine.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from asip_locate import LocateOptions, LocateTimeoutError, Locator, NoTargetsError, Status
from asip_locate.testing import ZoneServer
from tests.conftest import DEMO_ZONE

SLACK = 1.5


@pytest.fixture
def blackholes() -> Iterator[list[str]]:
    """Two UDP sockets that swallow every query (hung nameservers)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        yield [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.parametrize("deadline", [0.3, 1.0])
async def test_locate_timeout_error_within_the_deadline(
    blackholes: list[str], deadline: float
) -> None:
    opts = LocateOptions(nameservers=tuple(blackholes), timeout=2.0, tries=3, deadline=deadline)
    started = time.monotonic()
    async with Locator(opts) as locator:
        with pytest.raises(LocateTimeoutError) as info:
            await locator.resolve("sip:alice@example.test")
    assert time.monotonic() - started < deadline + SLACK
    assert info.value.deadline == deadline
    assert "example.test" in str(info.value)
    assert isinstance(info.value, TimeoutError)


async def test_deadline_counts_from_the_first_next_not_from_locate(
    blackholes: list[str],
) -> None:
    opts = LocateOptions(nameservers=tuple(blackholes), timeout=2.0, tries=1, deadline=0.3)
    async with Locator(opts) as locator:
        stream = locator.locate("sip:alice@example.test")
        started = time.monotonic()
        with pytest.raises(LocateTimeoutError):
            await anext(stream)
        assert time.monotonic() - started < 0.3 + SLACK
        # The stream is over: later calls end the iteration at once.
        with pytest.raises(StopAsyncIteration):
            await anext(stream)


@pytest.mark.parametrize("tries", [1, 2, 3])
async def test_tries_are_honoured_per_query(tries: int) -> None:
    async with ZoneServer(DEMO_ZONE) as server:
        server.inject(drop=True)
        opts = LocateOptions(
            nameservers=(server.address,),
            timeout=0.1,
            tries=tries,
            deadline=10.0,
            use_naptr=False,
        )
        started = time.monotonic()
        async with Locator(opts) as locator:
            with pytest.raises(NoTargetsError) as info:
                await locator.resolve("sip:alice@example.test;transport=tcp")
        # Two rounds (SRV, then A/AAAA); c-ares grows the timeout on each retry, so
        # this bound is loose: it shows only that the retries end.
        assert time.monotonic() - started < 2 * 2 * 0.1 * 2**tries + SLACK
    # SRV first, then A and AAAA of the default-port fallback: each sent `tries` times.
    assert Counter((q.name, q.qtype) for q in server.log) == {
        ("_sip._tcp.example.test", "SRV"): tries,
        ("example.test", "AAAA"): tries,
        ("example.test", "A"): tries,
    }
    assert {a.status for a in info.value.attempts} == {Status.TIMEOUT}


async def test_tries_apply_to_each_nameserver() -> None:
    async with ZoneServer(DEMO_ZONE) as first, ZoneServer(DEMO_ZONE) as second:
        for server in (first, second):
            server.inject(drop=True)
        opts = LocateOptions(
            nameservers=(first.address, second.address),
            timeout=0.1,
            tries=2,
            deadline=10.0,
        )
        async with Locator(opts) as locator:
            with pytest.raises(NoTargetsError):
                await locator.resolve("sip:alice@example.test:5070")
    for server in (first, second):
        assert Counter((q.name, q.qtype) for q in server.log) == {
            ("example.test", "AAAA"): 2,
            ("example.test", "A"): 2,
        }


async def test_timeout_bounds_a_single_slow_answer() -> None:
    async with ZoneServer(DEMO_ZONE, delay=0.5) as server:
        opts = LocateOptions(nameservers=(server.address,), timeout=0.1, tries=1, deadline=10.0)
        started = time.monotonic()
        async with Locator(opts) as locator:
            with pytest.raises(NoTargetsError) as info:
                await locator.resolve("sip:alice@example.test:5070")
        assert time.monotonic() - started < 0.5 + SLACK
    assert {a.status for a in info.value.attempts} == {Status.TIMEOUT}


async def test_a_dead_server_does_not_delay_past_the_deadline_after_targets() -> None:
    async with ZoneServer(DEMO_ZONE) as server:
        # sip2's addresses never come back: the stream ends at the deadline with the
        # targets it has, without an error.
        server.inject(name="sip2.example.test", drop=True)
        opts = LocateOptions(
            nameservers=(server.address,), timeout=5.0, tries=2, deadline=0.5, seed=1
        )
        started = time.monotonic()
        async with Locator(opts) as locator:
            targets = await locator.resolve("sip:alice@example.test;transport=tcp")
        assert time.monotonic() - started < 0.5 + SLACK
    assert {t.host for t in targets} == {"sip1.example.test"}
