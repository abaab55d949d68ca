"""AiodnsBackend through real c-ares against ZoneServer on loopback."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest

from asip_locate import AiodnsBackend, NaptrRecord, Query, RType, SrvRecord, Status
from asip_locate.testing import ZoneServer

ZONE = """\
$TTL 300
example.test. 3600 IN SOA ns.example.test. h.example.test. 1 7200 900 1209600 300
example.test. IN NAPTR 10 20 "S" "SIP+D2U" "" _sip._udp.example.test.
_sip._udp.example.test. 60 IN SRV 1 2 5070 host.example.test.
host.example.test. IN A 127.0.0.1
host.example.test. IN AAAA ::1
alias.example.test. 30 IN CNAME host.example.test.
txt.example.test. IN TXT "no addresses"
"""


@pytest.fixture
async def server() -> AsyncIterator[ZoneServer]:
    async with ZoneServer(ZONE) as server:
        yield server


@pytest.fixture(params=[False, True], ids=["loop-driven", "event-thread"])
async def backend(
    server: ZoneServer, request: pytest.FixtureRequest
) -> AsyncIterator[AiodnsBackend]:
    backend = AiodnsBackend([server.address], timeout=0.3, tries=1, event_thread=request.param)
    yield backend
    await backend.aclose()


async def test_records_are_mapped(backend: AiodnsBackend) -> None:
    naptr = await backend.query(Query("example.test", RType.NAPTR))
    assert naptr.status is Status.NOERROR
    assert naptr.records == (NaptrRecord(10, 20, "S", "SIP+D2U", "", "_sip._udp.example.test"),)
    srv = await backend.query(Query("_sip._udp.example.test", RType.SRV))
    assert srv.records == (SrvRecord(1, 2, 5070, "host.example.test"),)
    assert srv.ttl == 60
    aaaa = await backend.query(Query("host.example.test", RType.AAAA))
    assert aaaa.records == (ipaddress.ip_address("::1"),)


async def test_cname_chain_is_followed_with_minimum_ttl(backend: AiodnsBackend) -> None:
    answer = await backend.query(Query("alias.example.test", RType.A))
    assert answer.records == (ipaddress.ip_address("127.0.0.1"),)
    assert answer.cnames == ("alias.example.test",)
    assert answer.ttl == 30


@pytest.mark.parametrize(
    ("name", "rtype", "status"),
    [
        ("nowhere.example.test", RType.A, Status.NXDOMAIN),
        ("txt.example.test", RType.A, Status.NODATA),
        ("_udp.example.test", RType.SRV, Status.NODATA),  # empty non-terminal
    ],
)
async def test_negative_answers(
    backend: AiodnsBackend, name: str, rtype: RType, status: Status
) -> None:
    answer = await backend.query(Query(name, rtype))
    assert answer.status is status
    assert answer.records == ()


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"rcode": "SERVFAIL"}, Status.SERVFAIL),
        ({"rcode": "REFUSED"}, Status.REFUSED),
        ({"drop": True}, Status.TIMEOUT),
        ({"wrong_type": True}, Status.NODATA),
    ],
)
async def test_failures_are_statuses_not_exceptions(
    server: ZoneServer, backend: AiodnsBackend, fault: dict[str, object], status: Status
) -> None:
    server.inject(**fault)
    answer = await backend.query(Query("host.example.test", RType.SRV))
    assert answer.status is status


async def test_truncated_udp_answer_is_retried_over_tcp(
    server: ZoneServer, backend: AiodnsBackend
) -> None:
    server.inject(name="host.example.test", truncate=True)
    answer = await backend.query(Query("host.example.test", RType.A))
    assert answer.records == (ipaddress.ip_address("127.0.0.1"),)
    assert [q.transport for q in server.queries("host.example.test", "A")] == ["udp", "tcp"]


async def test_large_rrset_arrives_over_tcp(server: ZoneServer) -> None:
    lines = [f"_sip._tcp.big.test. IN SRV 0 0 5060 host{i:03}.example.test." for i in range(60)]
    server.set_zone(ZONE + "\n".join(lines) + "\n")
    backend = AiodnsBackend([server.address], timeout=0.5, tries=1, max_records=100)
    try:
        answer = await backend.query(Query("_sip._tcp.big.test", RType.SRV))
    finally:
        await backend.aclose()
    assert len(answer.records) == 60
    assert {q.transport for q in server.queries("_sip._tcp.big.test")} == {"udp", "tcp"}


async def test_dead_nameserver_is_an_answer() -> None:
    backend = AiodnsBackend(["127.0.0.1:9"], timeout=0.2, tries=1)
    try:
        answer = await backend.query(Query("host.example.test", RType.A))
    finally:
        await backend.aclose()
    assert answer.status.is_failure
