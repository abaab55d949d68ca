"""Interop tier: asip_locate -> c-ares -> Unbound (recursive) -> NSD (authoritative).

One NSD/Unbound pair serves the module; each vector restarts NSD with its zones and
flushes Unbound's cache. Skipped without the binaries, failing under CI=true.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asip_locate import (
    AiodnsBackend,
    Answer,
    IpStrategy,
    LocateOptions,
    Locator,
    NoTargetsError,
    Query,
    RType,
    Transport,
)
from tests.servers import (
    Stack,
    have_ipv6_loopback,
    require_servers,
    running_stack,
    zones_from_lines,
)
from tests.vectors import URI_CASES, VIA_CASES, check, resolve_case

pytestmark = pytest.mark.servers

APEXES = ("example.com", "example.net", "example.org")
HEAD = (
    "$TTL 300\n"
    "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 60\n"
)
SMALL = HEAD + (
    'example.com. IN NAPTR 10 50 "s" "SIP+D2T" "" _sip._tcp.example.com.\n'
    "_sip._tcp.example.com. IN SRV 10 50 5060 sip1.example.com.\n"
    "sip1.example.com. IN A 127.0.0.11\n"
)


def big_zone(count: int) -> str:
    """A NAPTR set and an SRV set each well over 1232 octets (c-ares' EDNS size)."""
    lines = [HEAD]
    for i in range(count):
        lines.append(
            f'example.com. IN NAPTR 10 {i} "s" "SIP+D2T" "" '
            f"_sip._tcp.a-rather-long-label-to-fill-the-message-{i:03d}.example.com.\n"
        )
    lines.append('example.com. IN NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.example.com.\n')
    for i in range(count):
        host = f"host-with-a-deliberately-long-name-{i:03d}.example.com."
        lines.append(f"_sip._udp.example.com. IN SRV 10 {i + 1} 5060 {host}\n")
        lines.append(f"{host} IN A 127.0.1.{i + 1}\n")
    return "".join(lines)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("dns")
    with running_stack(workdir, zones_from_lines(SMALL.splitlines(), APEXES)) as started:
        yield started


def serve(stack: Stack, text: str) -> None:
    stack.start(zones_from_lines(text.splitlines(), APEXES))


@pytest.mark.parametrize("case", URI_CASES, ids=[c["id"] for c in URI_CASES])
async def test_vector_through_unbound_and_nsd(stack: Stack, case: dict[str, Any]) -> None:
    serve(stack, "\n".join(case["zone"]))
    targets = await resolve_case(case, stack.address, timeout=2.0, tries=2)
    check(targets, case["expected"])


@pytest.mark.parametrize("case", VIA_CASES, ids=[c["id"] for c in VIA_CASES])
async def test_via_vector_through_unbound_and_nsd(stack: Stack, case: dict[str, Any]) -> None:
    serve(stack, "\n".join(case["zone"]))
    opts = LocateOptions(nameservers=(stack.address,), timeout=2.0, tries=2)
    async with Locator(opts) as locator:
        try:
            targets = await locator.resolve_response(case["input"]["via"])
        except NoTargetsError:
            targets = []
    check(targets, case["expected"])


async def test_rrsets_too_big_for_udp_come_over_tcp(stack: Stack) -> None:
    serve(stack, big_zone(40))
    before = stack.unbound.stats()
    opts = LocateOptions(
        nameservers=(stack.address,),
        ip_strategy=IpStrategy.IPV4_ONLY,
        transports=(Transport.UDP,),
        max_records=64,
        timeout=2.0,
    )
    async with Locator(opts) as locator:
        targets = await locator.resolve("sip:example.com")
    after = stack.unbound.stats()
    # The 40 NAPTR records of order 10 are TCP-only for this client; the UDP one leads
    # to 40 SRV records, every one used (max_records=64).
    assert {t.address.compressed for t in targets} == {f"127.0.1.{i + 1}" for i in range(40)}
    assert all(t.transport is Transport.UDP for t in targets)
    # c-ares got TC over UDP and asked again over TCP; so did Unbound towards NSD.
    assert after["num.query.tcp"] - before.get("num.query.tcp", 0) >= 2
    assert after["num.query.tcpout"] - before.get("num.query.tcpout", 0) >= 1


async def test_ipv6_loopback_nameserver(tmp_path: Path) -> None:
    require_servers()
    if not have_ipv6_loopback():
        pytest.skip("::1 cannot be bound on this machine")
    zones = zones_from_lines(SMALL.splitlines(), APEXES)
    with running_stack(tmp_path, zones, resolver_hosts=("::1",), nsd_host="::1") as ipv6:
        assert ipv6.address.startswith("[::1]:")
        opts = LocateOptions(nameservers=(ipv6.address,), timeout=2.0)
        async with Locator(opts) as locator:
            targets = await locator.resolve("sip:alice@example.com")
        assert [str(t) for t in targets] == ["tcp 127.0.0.11:5060 (sip1.example.com)"]
        assert ipv6.unbound.stats()["num.query.ipv6"] >= 1


@pytest.mark.parametrize("dead", ["silent", "closed"])
async def test_first_nameserver_dead(stack: Stack, dead: str) -> None:
    serve(stack, SMALL)
    # "silent" swallows every datagram (a hung server); "closed" answers with ICMP
    # port unreachable (a stopped one).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        port = blackhole.getsockname()[1]
        if dead == "closed":
            blackhole.close()
        opts = LocateOptions(
            nameservers=(f"127.0.0.1:{port}", stack.address), timeout=0.5, tries=2, deadline=8
        )
        async with Locator(opts) as locator:
            targets = await locator.resolve("sip:alice@example.com")
    assert [str(t) for t in targets] == ["tcp 127.0.0.11:5060 (sip1.example.com)"]


@pytest.mark.parametrize("in_ci", [False, True])
def test_missing_servers_skip_locally_but_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch, in_ci: bool
) -> None:
    import tests.servers

    monkeypatch.setattr(tests.servers, "NSD", "/nonexistent/nsd")
    monkeypatch.setattr(tests.servers, "IN_CI", in_ci)
    outcome = pytest.fail.Exception if in_ci else pytest.skip.Exception
    with pytest.raises(outcome, match="apt-get install nsd unbound"):
        require_servers()


@pytest.mark.parametrize(
    ("zone", "uri"),
    [
        (
            "a.example.com. IN CNAME b.example.com.\nb.example.com. IN CNAME a.example.com.\n",
            "sip:a.example.com",
        ),
        ('example.com. IN NAPTR 10 50 "s" "SIP+D2U" "" example.com.\n', "sip:example.com"),
        (
            "_sip._udp.example.com. IN SRV 10 0 5060 x.example.net.\n"
            "x.example.net. IN CNAME x.example.com.\nx.example.com. IN CNAME x.example.net.\n",
            "sip:example.com;transport=udp",
        ),
    ],
    ids=["cname-loop", "naptr-self", "cross-zone-cname-loop"],
)
async def test_loops_through_unbound_end_in_no_targets(stack: Stack, zone: str, uri: str) -> None:
    serve(stack, HEAD + zone)
    opts = LocateOptions(nameservers=(stack.address,), timeout=2.0, deadline=8.0)
    async with Locator(opts) as locator:
        with pytest.raises(NoTargetsError):
            await locator.resolve(uri)


ADDITIONAL = HEAD + (
    "_sip._udp.example.com. IN SRV 10 50 5060 sip1.example.com.\n"
    "_sip._udp.example.com. IN SRV 20 50 5060 sip2.example.com.\n"
    "_sip._udp.example.com. IN SRV 30 50 5060 out.example.net.\n"
    "sip1.example.com. IN A 127.0.0.11\n"
    "sip1.example.com. IN AAAA ::11\n"
    "sip2.example.com. IN A 127.0.0.12\n"
    "out.example.net. IN A 127.0.0.13\n"
)


async def _srv_answer(address: str) -> Answer:
    backend = AiodnsBackend([address], timeout=2.0, tries=2)
    try:
        return await backend.query(Query("_sip._udp.example.com", RType.SRV))
    finally:
        await backend.aclose()


async def test_nsd_sends_in_zone_srv_target_addresses_as_additional_data(stack: Stack) -> None:
    serve(stack, ADDITIONAL)
    answer = await _srv_answer(f"{stack.nsd.host}:{stack.nsd.port}")
    assert len(answer.records) == 3
    extra = {(x.query.name, x.query.rtype): x.records for x in answer.additional}
    # NSD adds the addresses of targets in the zone it serves (example.com), not of
    # targets in other zones (example.net), even ones it also serves.
    assert extra == {
        ("sip1.example.com", RType.A): (ipaddress.ip_address("127.0.0.11"),),
        ("sip1.example.com", RType.AAAA): (ipaddress.ip_address("::11"),),
        ("sip2.example.com", RType.A): (ipaddress.ip_address("127.0.0.12"),),
    }


async def test_unbound_with_default_minimal_responses_sends_no_additional_data(
    stack: Stack,
) -> None:
    serve(stack, ADDITIONAL)
    answer = await _srv_answer(stack.address)
    assert len(answer.records) == 3
    # Unbound's default `minimal-responses: yes` (since 1.10) leaves the additional
    # section empty, so through it every target address is a query of its own.
    assert answer.additional == ()


async def test_unbound_without_minimal_responses(tmp_path: Path) -> None:
    zones = zones_from_lines(ADDITIONAL.splitlines(), APEXES)
    with running_stack(tmp_path, zones, unbound_options=["minimal-responses: no"]) as full:
        first = await _srv_answer(full.address)
        # Asked again: the SRV targets' addresses may now be in Unbound's cache.
        again = await _srv_answer(full.address)
    assert len(first.records) == len(again.records) == 3
    extra = {(x.query.name, x.query.rtype) for x in first.additional + again.additional}
    # Unbound then passes on what NSD gave it: the in-zone targets' addresses.
    assert extra == {
        ("sip1.example.com", RType.A),
        ("sip1.example.com", RType.AAAA),
        ("sip2.example.com", RType.A),
    }
