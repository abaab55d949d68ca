from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from asip_locate.testing import FakeClock, ZoneServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

DEMO_ZONE = """\
$TTL 300
example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60
example.test. IN NAPTR 10 50 "s" "SIPS+D2T" "" _sips._tcp.example.test.
example.test. IN NAPTR 20 50 "s" "SIP+D2T" "" _sip._tcp.example.test.
example.test. IN NAPTR 30 50 "s" "SIP+D2U" "" _sip._udp.example.test.
_sips._tcp.example.test. IN SRV 10 60 5061 sip1.example.test.
_sips._tcp.example.test. IN SRV 10 40 5061 sip2.example.test.
_sip._tcp.example.test. IN SRV 10 60 5060 sip1.example.test.
_sip._tcp.example.test. IN SRV 10 40 5060 sip2.example.test.
_sip._udp.example.test. IN SRV 10 60 5060 sip1.example.test.
_sip._udp.example.test. IN SRV 20 40 5060 sip2.example.test.
sip1.example.test. IN A 127.0.0.11
sip1.example.test. IN AAAA ::1
sip2.example.test. IN A 127.0.0.12
"""


@pytest.fixture(autouse=True)
async def no_lingering_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks behind (aiohappyeyeballs' fixture, in spirit)."""
    before = asyncio.all_tasks()
    yield
    for _ in range(5):  # let cancelled tasks finish unwinding
        await asyncio.sleep(0)
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() - before if t is not current and not t.done()}
    assert not left, f"tasks left running: {left}"


@pytest.fixture
async def demo_server() -> AsyncIterator[ZoneServer]:
    async with ZoneServer(DEMO_ZONE) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    """A FakeClock, to pass as ``Locator(clock=...)``."""
    return FakeClock()
