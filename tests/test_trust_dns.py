"""Trust boundary over real sockets: hostile records injected by ZoneServer never become
targets or cache entries; caps; additional-section data; backend lifecycle."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asip_locate import AiodnsBackend, IpStrategy, LocateOptions, Locator, Query, RType, Status
from asip_locate.testing import ZoneServer

ZONE = """\
$TTL 300
example.test. 3600 IN SOA ns.example.test. h.example.test. 1 7200 900 1209600 60
example.test. IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.example.test.
_sip._udp.example.test. IN SRV 10 0 5060 good.example.test.
_sip._udp.example.test. IN SRV 20 0 5062 other.example.test.
good.example.test. IN A 127.0.0.5
good.example.test. IN AAAA ::5
other.example.test. IN A 127.0.0.6
alias.example.test. IN CNAME good.example.test.
victim.test. IN A 127.0.0.99
"""
EVIL = "198.51.100.66"


@pytest.fixture
async def server() -> AsyncIterator[ZoneServer]:
    async with ZoneServer(ZONE) as server:
        yield server


@pytest.fixture
async def backend(server: ZoneServer) -> AsyncIterator[AiodnsBackend]:
    backend = AiodnsBackend([server.address], timeout=0.5, tries=1)
    yield backend
    await backend.aclose()


def options(server: ZoneServer, **extra: Any) -> LocateOptions:
    settings: dict[str, Any] = {
        "nameservers": (server.address,),
        "timeout": 0.5,
        "tries": 1,
        "ip_strategy": IpStrategy.IPV4_ONLY,
        **extra,
    }
    return LocateOptions(**settings)


# --- foreign records in the answer section --------------------------------------------

FOREIGN = [
    # (query name, qtype, injected answer-section lines)
    ("good.example.test", "A", (f"victim.test. 300 IN A {EVIL}",)),
    ("good.example.test", "A", (f"good.example.test. 300 CH A {EVIL}",)),
    (
        "good.example.test",
        "A",
        ("elsewhere.test. 300 IN CNAME evil.test.", f"evil.test. 300 IN A {EVIL}"),
    ),
    (
        "_sip._udp.example.test",
        "SRV",
        ("_sip._udp.victim.test. 300 IN SRV 0 0 5060 evil.test.", f"evil.test. 300 IN A {EVIL}"),
    ),
    ("_sip._udp.example.test", "SRV", ("_sip._udp.example.test. 300 CH SRV 0 0 5060 evil.test.",)),
    (
        "example.test",
        "NAPTR",
        ('victim.test. 300 IN NAPTR 1 1 "s" "SIP+D2U" "" _sip._udp.evil.test.',),
    ),
]


@pytest.mark.parametrize(("name", "qtype", "lines"), FOREIGN)
async def test_foreign_answer_records_never_become_targets_or_cache_entries(
    server: ZoneServer, name: str, qtype: str, lines: tuple[str, ...]
) -> None:
    server.inject(name=name, qtype=qtype, answer_extra=lines)
    server.set_zone(ZONE + "_sip._udp.evil.test. IN SRV 0 0 5060 evil.test.\n")
    async with Locator(options(server)) as locator:
        for _ in range(2):  # cold, then from the cache
            targets = await locator.resolve("sip:example.test")
            assert [str(t) for t in targets] == [
                "udp 127.0.0.5:5060 (good.example.test)",
                "udp 127.0.0.6:5062 (other.example.test)",
            ]
        backend = locator.backend.backend  # type: ignore[attr-defined]
        assert backend.dropped_records == len(lines)
        # Nothing was cached for the names the foreign records claimed.
        for query in (Query("victim.test", RType.A), Query("evil.test", RType.A)):
            assert locator.backend.cached(query) is None  # type: ignore[attr-defined]
        victim = await locator.resolve("sip:victim.test:5060")
        assert [str(t.address) for t in victim] == ["127.0.0.99"]


async def test_cname_chain_data_is_kept_and_off_chain_data_dropped(
    server: ZoneServer, backend: AiodnsBackend
) -> None:
    server.inject(
        name="alias.example.test",
        answer_extra=("x.test. 300 IN CNAME good.example.test.", f"x.test. 300 IN A {EVIL}"),
    )
    answer = await backend.query(Query("alias.example.test", RType.A))
    assert answer.records == (ipaddress.IPv4Address("127.0.0.5"),)
    assert answer.cnames == ("alias.example.test",)
    assert backend.dropped_records == 2


async def test_only_foreign_data_is_nodata(server: ZoneServer, backend: AiodnsBackend) -> None:
    server.set_zone(ZONE.replace("victim.test. IN A 127.0.0.99\n", "victim.test. IN TXT x\n"))
    server.inject(name="victim.test", answer_extra=(f"other.test. 300 IN A {EVIL}",))
    answer = await backend.query(Query("victim.test", RType.A))
    assert answer.status is Status.NODATA
    assert backend.dropped_records == 1


# --- caps ------------------------------------------------------------------------------


async def test_best_naptr_survives_the_cap_whatever_the_wire_order(server: ZoneServer) -> None:
    lines = "".join(
        f'example.test. IN NAPTR {90 - i} 50 "s" "SIP+D2U" "" _sip._udp.n{i}.example.test.\n'
        for i in range(40)
    )
    server.set_zone(ZONE.replace('example.test. IN NAPTR 10 50 "s"', "; ") + lines)
    backend = AiodnsBackend([server.address], timeout=0.5, tries=1, max_records=4)
    try:
        answer = await backend.query(Query("example.test", RType.NAPTR))
    finally:
        await backend.aclose()
    assert [r.order for r in answer.records] == [51, 52, 53, 54]  # type: ignore[union-attr]


async def test_huge_srv_set_is_capped_to_the_lowest_priorities(server: ZoneServer) -> None:
    server.set_zone(
        ZONE
        + "".join(
            f"_sip._tcp.example.test. IN SRV {2 - i % 3} 0 5060 h{i}.example.test.\n"
            for i in range(1500)
        )
    )
    backend = AiodnsBackend([server.address], timeout=1.0, tries=1, max_records=20)
    try:
        answer = await backend.query(Query("_sip._tcp.example.test", RType.SRV))
    finally:
        await backend.aclose()
    assert len(answer.records) == 20
    assert {r.priority for r in answer.records} == {0}  # type: ignore[union-attr]
    assert [r.target for r in answer.records][:3] == [  # type: ignore[union-attr]
        "h2.example.test",
        "h5.example.test",
        "h8.example.test",
    ]


# --- additional section ----------------------------------------------------------------


async def test_srv_answer_carries_additional_addresses(server: ZoneServer) -> None:
    server.additional = True
    server.inject(
        qtype="SRV",
        additional_extra=(
            f"victim.test. 300 IN A {EVIL}",  # not a target
            f"other.example.test. 300 CH A {EVIL}",  # not class IN
            "good.example.test. 300 IN CNAME victim.test.",  # no CNAMEs there
        ),
    )
    backend = AiodnsBackend([server.address], timeout=0.5, tries=1)
    try:
        answer = await backend.query(Query("_sip._udp.example.test", RType.SRV))
    finally:
        await backend.aclose()
    extra = {(x.query.name, x.query.rtype): x for x in answer.additional}
    assert set(extra) == {
        ("good.example.test", RType.A),
        ("good.example.test", RType.AAAA),
        ("other.example.test", RType.A),
    }
    assert all(x.status is Status.NOERROR and x.ttl == 300 for x in extra.values())
    assert extra["good.example.test", RType.AAAA].records == (ipaddress.IPv6Address("::5"),)
    assert backend.dropped_additional >= 3
    # Only SRV answers carry it.
    assert [q.qtype for q in server.log] == ["SRV"]


async def test_a_backend_told_not_to_use_additional_data_ignores_it(server: ZoneServer) -> None:
    server.additional = True
    backend = AiodnsBackend([server.address], timeout=0.5, tries=1, additional=False)
    try:
        answer = await backend.query(Query("_sip._udp.example.test", RType.SRV))
    finally:
        await backend.aclose()
    assert answer.records  # the SRV records, as always
    assert answer.additional == ()  # the section was on the wire, and not decoded
    assert backend.dropped_additional == 0


async def test_no_additional_data_without_it_on_the_wire(backend: AiodnsBackend) -> None:
    answer = await backend.query(Query("_sip._udp.example.test", RType.SRV))
    assert answer.additional == ()


# --- statuses --------------------------------------------------------------------------


async def test_connection_refused_is_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    backend = AiodnsBackend([f"127.0.0.1:{port}"], timeout=0.5, tries=1)
    try:
        answer = await backend.query(Query("good.example.test", RType.A))
    finally:
        await backend.aclose()
    assert answer.status is Status.UNREACHABLE


async def test_lost_reply_is_retried_by_the_timer(
    server: ZoneServer, backend: AiodnsBackend
) -> None:
    server.inject(name="good.example.test", drop=True, times=1)
    retrying = AiodnsBackend([server.address], timeout=0.2, tries=3)
    try:
        answer = await retrying.query(Query("good.example.test", RType.A))
    finally:
        await retrying.aclose()
    assert answer.records == (ipaddress.IPv4Address("127.0.0.5"),)
    assert len(server.queries("good.example.test", "A")) == 2


# --- channel recycling -----------------------------------------------------------------


async def test_channel_is_recycled_after_its_bound(server: ZoneServer) -> None:
    backend = AiodnsBackend([server.address], timeout=0.5, tries=1, recycle_after=3)
    try:
        server.delay = 0.02  # answers in flight across the switch
        names = ["good.example.test", "other.example.test", "victim.test"] * 4
        answers = await asyncio.gather(*(backend.query(Query(n, RType.A)) for n in names))
        assert [a.status for a in answers] == [Status.NOERROR] * len(names)
        assert backend.channels_opened == 4
        for _ in range(3):
            await asyncio.sleep(0)  # retired channels close on the next loop turn
        assert not backend._retired
    finally:
        await backend.aclose()


# --- lifecycle -------------------------------------------------------------------------


def test_built_without_a_loop_works_in_the_first_loop_and_refuses_a_second() -> None:
    async def serve_and(use: Any) -> Any:
        async with ZoneServer(ZONE) as server:
            return await use(server)

    backend_box: list[AiodnsBackend] = []

    async def first(server: ZoneServer) -> Status:
        backend = AiodnsBackend([server.address], timeout=0.5, tries=1)  # no loop needed
        backend_box.append(backend)
        return (await backend.query(Query("good.example.test", RType.A))).status

    assert asyncio.run(serve_and(first)) is Status.NOERROR
    backend = backend_box[0]

    async def second(server: ZoneServer) -> None:
        with pytest.raises(RuntimeError, match="bound to the event loop that first used it"):
            await backend.query(Query("good.example.test", RType.A))
        await backend.aclose()

    asyncio.run(serve_and(second))
    with pytest.raises(RuntimeError, match="closed"):
        backend.submit(Query("good.example.test", RType.A))


def test_module_global_backend_is_built_outside_any_loop() -> None:
    backend = AiodnsBackend(["127.0.0.1:53"])  # as at import time: no loop, no channel
    assert backend.channels_opened == 0
    with pytest.raises(RuntimeError):
        backend.submit(Query("good.example.test", RType.A))  # no running loop
    asyncio.run(backend.aclose())


def test_locator_built_before_any_loop_runs() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Built as a module global would be: no running loop, the server not up yet.
    locator = Locator(
        LocateOptions(
            nameservers=(f"127.0.0.1:{port}",),
            timeout=0.5,
            tries=1,
            ip_strategy=IpStrategy.IPV4_ONLY,
        )
    )

    async def main() -> list[str]:
        async with ZoneServer(ZONE, port=port), locator:
            return [str(t) for t in await locator.resolve("sip:good.example.test:5060")]

    assert asyncio.run(main()) == ["udp 127.0.0.5:5060 (good.example.test)"]


@pytest.mark.parametrize(
    "server",
    ["127.0.0.1:0", "127.0.0.1:70000", "host.example.test", "[::1", "[127.0.0.1]:53", "1.2.3"],
)
def test_unparsable_nameservers_are_refused_at_construction(server: str) -> None:
    with pytest.raises(ValueError, match="nameserver"):
        AiodnsBackend([server])


@pytest.mark.parametrize("server", ["127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353", "[::1]"])
def test_nameserver_forms(server: str) -> None:
    AiodnsBackend([server])
