"""The test kit's own fakes: GatedBackend."""

from __future__ import annotations

import asyncio

import pytest

from asip_locate import Query, RType, Status
from asip_locate.testing import FakeBackend, GatedBackend

from .conftest import DEMO_ZONE

NAPTR = Query("example.test", RType.NAPTR)
SIP1 = Query("sip1.example.test", RType.A)
SIP2 = Query("sip2.example.test", RType.A)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def start(backend: GatedBackend, *queries: Query) -> list[asyncio.Task[object]]:
    tasks: list[asyncio.Task[object]] = [asyncio.ensure_future(backend.query(q)) for q in queries]
    await settle()
    return tasks


async def test_is_a_fake_backend_answering_from_its_zone() -> None:
    backend = GatedBackend(DEMO_ZONE)
    assert isinstance(backend, FakeBackend)
    (task,) = await start(backend, SIP1)
    assert backend.waiting == [SIP1]
    assert backend.calls == []  # held: not yet past the gate
    assert backend.release_round() == 1
    assert await task == FakeBackend(DEMO_ZONE).zone.answer(SIP1)
    assert (backend.calls, backend.answered, backend.cancelled) == ([SIP1], 1, 0)


async def test_release_round_releases_everything_held_now() -> None:
    backend = GatedBackend(DEMO_ZONE)
    tasks = await start(backend, NAPTR, SIP1, SIP2)
    assert backend.release_round() == 3
    assert backend.release_round() == 0
    await asyncio.gather(*tasks)
    assert backend.answered == 3
    assert not backend.waiting


async def test_release_lets_queries_through_oldest_first() -> None:
    backend = GatedBackend(DEMO_ZONE)
    tasks = await start(backend, NAPTR, SIP1, SIP2)
    assert await backend.release() == 1
    assert [t.done() for t in tasks] == [True, False, False]
    assert backend.waiting == [SIP1, SIP2]
    assert await backend.release(5) == 2  # only as many as are held
    assert all(t.done() for t in tasks)
    assert backend.calls == [NAPTR, SIP1, SIP2]
    assert await backend.release() == 0


async def test_only_gated_names_are_held_until_opened() -> None:
    backend = GatedBackend(DEMO_ZONE, gated={"sip1.example.test", "sip2.example.test"})
    naptr, sip1, sip2 = await start(backend, NAPTR, SIP1, SIP2)
    assert [naptr.done(), sip1.done(), sip2.done()] == [True, False, False]
    assert backend.open("sip1.example.test") == 1
    await settle()
    assert [sip1.done(), sip2.done()] == [True, False]
    (again,) = await start(backend, SIP1)  # an opened name stays open
    assert again.done()
    assert backend.waiting == [SIP2]
    assert backend.open() == 1
    await settle()
    assert sip2.done()
    (later,) = await start(backend, SIP2)
    assert later.done()
    assert backend.answered == 5


async def test_a_single_name_may_be_gated() -> None:
    backend = GatedBackend(DEMO_ZONE, gated="sip2.example.test")
    assert [backend.holds(SIP1), backend.holds(SIP2)] == [False, True]
    assert backend.gated == frozenset({"sip2.example.test"})


async def test_open_without_a_gated_set_stops_holding_every_query() -> None:
    backend = GatedBackend(DEMO_ZONE)
    tasks = await start(backend, NAPTR, SIP1)
    assert backend.open() == 2
    tasks += await start(backend, SIP2)
    await asyncio.gather(*tasks)
    assert not backend.holds(NAPTR)
    assert backend.answered == 3


async def test_cancelled_queries_are_counted_and_leave_the_queue() -> None:
    backend = GatedBackend(DEMO_ZONE)
    naptr, sip1 = await start(backend, NAPTR, SIP1)
    naptr.cancel()
    with pytest.raises(asyncio.CancelledError):
        await naptr
    assert backend.cancelled == 1
    assert backend.waiting == [SIP1]
    assert await backend.release() == 1  # the next one held, not the cancelled one
    assert sip1.done()
    assert (backend.answered, backend.calls) == (1, [SIP1])


async def test_fake_backend_options_still_apply() -> None:
    backend = GatedBackend(DEMO_ZONE, gated="nobody.test", fail={SIP1: Status.SERVFAIL})
    answer = await backend.query(SIP1)
    assert answer.status is Status.SERVFAIL
    await backend.aclose()
    assert backend.closed
