"""The pure planner, table-driven, plus round counting (fan-out) without sockets."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from asip_locate import (
    Answer,
    LocateOptions,
    Locator,
    NoTargetsError,
    Query,
    RType,
    SipsPolicy,
    Status,
    Target,
    Transport,
    UnsupportedTransportError,
    parse_uri,
)
from asip_locate._plan import Resolution, plan_request
from asip_locate.testing import GatedBackend, Zone, drive

SOA = "example.test. 3600 IN SOA ns.example.test. h.example.test. 1 7200 900 1209600 300"

FANOUT_ZONE = "\n".join(
    [
        "$TTL 300",
        SOA,
        'example.test. IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.example.test.',
        'example.test. IN NAPTR 20 10 "s" "SIP+D2T" "" _sip._tcp.example.test.',
        'example.test. IN NAPTR 30 10 "s" "SIP+D2U" "" _sip._udp.example.test.',
        "_sips._tcp.example.test. IN SRV 10 0 5061 s1.example.test.",
        "_sips._tcp.example.test. IN SRV 20 0 5061 s2.example.test.",
        "_sip._tcp.example.test. IN SRV 10 0 5060 t1.example.test.",
        "_sip._tcp.example.test. IN SRV 20 0 5060 t2.example.test.",
        "_sip._udp.example.test. IN SRV 10 0 5060 u1.example.test.",
        "_sip._udp.example.test. IN SRV 20 0 5060 u2.example.test.",
        *(
            f"{h}.example.test. IN A 127.0.0.{i}"
            for i, h in enumerate(["s1", "s2", "t1", "t2", "u1", "u2"], 11)
        ),
        *(
            f"{h}.example.test. IN AAAA fd00::{i}"
            for i, h in enumerate(["s1", "s2", "t1", "t2", "u1", "u2"], 11)
        ),
    ]
)


def plan(uri: str, zone: Zone, *, as_sips: bool = False, **opts: Any) -> Resolution:
    return plan_request(
        parse_uri(uri),
        LocateOptions(**opts),
        lambda name: random.Random(f"1:{name}"),
        as_sips=as_sips,
    )


def run_rounds(resolution: Resolution, zone: Zone) -> tuple[list[tuple[int, Target]], int]:
    """The test kit's driver, as (round, target) pairs and the number of rounds."""
    run = drive(resolution, zone)
    return list(zip(run.rounds, run.targets, strict=True)), run.round_count


def endpoints(released: list[tuple[int, Target]]) -> list[str]:
    return [str(t.endpoint) for _, t in released]


@pytest.mark.parametrize(("early_srv", "expected"), [(False, 3), (True, 2)])
def test_fanout_rounds_for_everything(early_srv: bool, expected: int) -> None:
    # Without early SRV: NAPTR, then 3 SRV, then 12 A/AAAA. With it the SRV queries
    # go with the NAPTR query (issue 13); the order of targets is the same.
    zone = Zone(FANOUT_ZONE)
    released, rounds = run_rounds(plan("sip:example.test", zone, early_srv=early_srv), zone)
    assert rounds == expected
    assert {r for r, _ in released} == {expected}
    assert len(released) == 12
    assert [t.transport for _, t in released] == [Transport.TLS] * 4 + [Transport.TCP] * 4 + [
        Transport.UDP
    ] * 4
    assert all(t.tls_name == "example.test" for _, t in released if t.transport == "tls")
    first = released[0][1]
    assert [str(q) for q in first.path] == [
        "example.test NAPTR",
        "_sips._tcp.example.test SRV",
        "s1.example.test AAAA",
    ]


def test_fanout_with_naptr_srv_fallback_levels() -> None:
    zone = Zone(
        "$TTL 60\n" + SOA + "\n_sip._tcp.example.test. IN SRV 0 0 5070 h.example.test.\n"
        "h.example.test. IN A 127.0.0.5\n"
    )
    released, rounds = run_rounds(plan("sip:example.test", zone, early_srv=False), zone)
    # NAPTR (none) -> 3 SRV at once -> A+AAAA of the target
    assert rounds == 3
    assert endpoints(released) == ["tcp 127.0.0.5:5070"]
    # Early SRV: NAPTR and the 3 SRV at once -> A+AAAA of the target
    released, rounds = run_rounds(plan("sip:example.test", zone), zone)
    assert rounds == 2
    assert endpoints(released) == ["tcp 127.0.0.5:5070"]


ZONE = "\n".join(
    [
        "$TTL 300",
        SOA,
        "other.test. 3600 IN SOA ns.other.test. h.other.test. 1 7200 900 1209600 300",
        "_sip._udp.example.test. IN SRV 0 0 5060 a.example.test.",
        "_sip._tcp.example.test. IN SRV 0 0 5060 a.example.test.",
        "_sips._tcp.example.test. IN SRV 0 0 5061 a.example.test.",
        "_sip._udp.other.test. IN SRV 0 0 5060 o.other.test.",
        "_sip._tcp.outside.test. IN SRV 0 0 5060 a.example.test.",
        "_sip._tcp.leave.example.test. IN SRV 0 0 5060 o.other.test.",
        "_sip._tcp.leave.example.test. IN SRV 1 0 5060 in.leave.example.test.",
        "in.leave.example.test. IN A 127.0.0.6",
        "a.example.test. IN A 127.0.0.1",
        "o.other.test. IN A 127.0.0.2",
        'away.example.test. IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.other.test.',
        'orders.example.test. IN NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.empty.example.test.',
        'orders.example.test. IN NAPTR 20 10 "s" "SIP+D2U" "" _sip._udp.example.test.',
        'same.example.test. IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.example.test.',
        'same.example.test. IN NAPTR 20 10 "s" "SIP+D2U" "" _sip._udp.example.test.',
        "_sip._udp.dead.example.test. IN SRV 0 0 0 .",
        "dead.example.test. IN A 127.0.0.3",
        "ws.example.test. IN A 127.0.0.4",
    ]
)


@pytest.mark.parametrize(
    ("uri", "opts", "expected"),
    [
        pytest.param("sip:away.example.test", {}, ["udp 127.0.0.2:5060"], id="naptr-other-domain"),
        pytest.param(
            "sip:away.example.test",
            {"stay_in_domain": True, "use_naptr": True},
            [],
            id="stay-in-domain-refuses-replacement",
        ),
        pytest.param(
            "sip:leave.example.test;transport=tcp",
            {"stay_in_domain": True},
            ["tcp 127.0.0.6:5060"],
            id="stay-in-domain-skips-srv-target",
        ),
        pytest.param(
            "sip:orders.example.test", {}, ["udp 127.0.0.1:5060"], id="crosses-naptr-orders"
        ),
        pytest.param(
            "sip:orders.example.test",
            {"cross_naptr_orders": False},
            [],
            id="strict-ddds-order",
        ),
        pytest.param(
            "sip:same.example.test", {}, ["udp 127.0.0.1:5060"], id="duplicates-appear-once"
        ),
        pytest.param(
            "sip:example.test",
            {"use_naptr": False},
            ["udp 127.0.0.1:5060", "tcp 127.0.0.1:5060", "tls 127.0.0.1:5061"],
            id="srv-per-transport-in-client-order",
        ),
        pytest.param(
            "sip:example.test",
            {"transports": ["tls", "tcp"]},
            ["tls 127.0.0.1:5061", "tcp 127.0.0.1:5060"],
            id="client-prefers-tls",
        ),
        pytest.param(
            "sip:example.test",
            {},
            ["udp 127.0.0.1:5060", "tcp 127.0.0.1:5060", "tls 127.0.0.1:5061"],
            id="sip-uri-with-tls-client",
        ),
        pytest.param("sips:example.test", {}, ["tls 127.0.0.1:5061"], id="sips-only-tls"),
        pytest.param("sip:dead.example.test;transport=udp", {}, [], id="srv-dot-means-unavailable"),
        pytest.param(
            "sip:ws.example.test;transport=ws",
            {"transports": ["ws"]},
            ["ws 127.0.0.4:80"],
            id="ws-default-port-no-srv",
        ),
        pytest.param(
            "sips:ws.example.test;transport=ws",
            {"transports": ["wss"]},
            ["wss 127.0.0.4:443"],
            id="sips-ws-is-wss",
        ),
        pytest.param(
            "sip:192.0.2.1",
            {"transports": ["tcp"]},
            ["tcp 192.0.2.1:5060"],
            id="no-udp-client-uses-its-transport",
        ),
        pytest.param(
            "sip:[2001:db8::1]",
            {"ip_strategy": "ipv4_only"},
            [],
            id="v6-literal-for-v4-only-client",
        ),
        pytest.param(
            "sip:ws.example.test:5099;transport=tcp",
            {},
            ["tcp 127.0.0.4:5099"],
            id="explicit-port-and-transport",
        ),
    ],
)
def test_table(uri: str, opts: dict[str, Any], expected: list[str]) -> None:
    zone = Zone(ZONE)
    released, _ = run_rounds(plan(uri, zone, **opts), zone)
    assert endpoints(released) == expected  # the planner de-duplicates


def test_sips_policy_srv_skips_naptr() -> None:
    zone = Zone(ZONE)
    resolution = plan("sips:example.test", zone, sips_policy=SipsPolicy.SRV)
    assert resolution.needs() == [Query("_sips._tcp.example.test", RType.SRV)]


def test_as_sips_resolves_sip_uri_as_sips() -> None:
    zone = Zone(ZONE)
    released, _ = run_rounds(plan("sip:example.test", zone, as_sips=True), zone)
    assert endpoints(released) == ["tls 127.0.0.1:5061"]
    assert released[0][1].tls_name == "example.test"


@pytest.mark.parametrize(
    ("uri", "opts", "message"),
    [
        ("sips:example.test;transport=udp", {}, "SIPS cannot use transport=udp"),
        ("sip:example.test;transport=sctp", {}, "transport sctp is not supported"),
        ("sip:example.test;transport=carrier-pigeon", {}, "unknown transport"),
        ("sips:example.test", {"transports": ["udp", "tcp"]}, "SIPS needs a TLS transport"),
    ],
)
def test_unsupported_transport(uri: str, opts: dict[str, Any], message: str) -> None:
    # An error known before any lookup is a Resolution that carries it.
    resolution = plan(uri, Zone(ZONE), **opts)
    assert isinstance(resolution.error, UnsupportedTransportError)
    assert message in str(resolution.error)
    assert isinstance(resolution.error, NoTargetsError)
    assert uri in str(resolution.error)
    assert resolution.done
    assert resolution.needs() == []
    assert resolution.ready() == []
    assert drive(resolution, Zone(ZONE)).error is resolution.error


def test_dns_failure_on_srv_falls_back_to_addresses() -> None:
    zone = Zone(ZONE)
    resolution = plan("sip:ws.example.test;transport=tcp", zone)
    (srv,) = resolution.needs()
    resolution.feed(Answer(srv, Status.SERVFAIL))
    released, _ = run_rounds(resolution, zone)
    assert endpoints(released) == ["tcp 127.0.0.4:5060"]


def test_naptr_timeout_goes_on_to_srv() -> None:
    zone = Zone(ZONE)
    resolution = plan("sip:example.test", zone, early_srv=False)
    (naptr,) = resolution.needs()
    resolution.feed(Answer(naptr, Status.TIMEOUT))
    released, _ = run_rounds(resolution, zone)
    assert endpoints(released)[0] == "udp 127.0.0.1:5060"


@pytest.mark.parametrize(("max_queries", "count"), [(8, 7), (64, 10)])
def test_caps_degrade_gracefully(max_queries: int, count: int) -> None:
    lines = ["$TTL 60"]
    for i in range(300):
        lines.append(f"_sip._tcp.big.test. IN SRV 0 0 5060 h{i}.big.test.")
        lines.append(f"h{i}.big.test. IN A 127.0.1.{i % 250}")
    zone = Zone("\n".join(lines))
    resolution = plan(
        "sip:big.test;transport=tcp",
        zone,
        max_records=10,
        max_queries=max_queries,
        ip_strategy="ipv4_only",
    )
    released, _ = run_rounds(resolution, zone)
    # records beyond max_records are ignored, queries beyond max_queries dropped: no error
    assert len(released) == count
    assert len(resolution.attempts) == count + 1


def test_feed_rejects_unrequested_answers() -> None:
    resolution = plan("sip:example.test", Zone(ZONE))
    with pytest.raises(ValueError, match="unexpected answer"):
        resolution.feed(Answer(Query("nope.test", RType.A), Status.NXDOMAIN))


async def test_stream_yields_first_target_after_three_rounds_and_all_by_three() -> None:
    backend = GatedBackend(Zone(FANOUT_ZONE))
    rounds = 0
    got: list[tuple[int, Target]] = []

    async def consume() -> None:
        # cache_size=0: the cache's shared lookups add task hops to every round.
        options = LocateOptions(seed=1, cache_size=0, early_srv=False)
        async with Locator(options, backend=backend) as locator:
            async for target in locator.locate("sip:example.test"):
                got.append((rounds, target))

    consumer = asyncio.ensure_future(consume())
    sizes = []
    for _ in range(10):
        for _ in range(5):
            await asyncio.sleep(0)
        if consumer.done():
            break
        rounds += 1
        sizes.append(backend.release_round())
    await consumer
    assert sizes == [1, 3, 12]  # NAPTR; 3 SRV at once; 12 address queries at once
    assert got[0][0] == 3
    assert all(r == 3 for r, _ in got)
    assert len(got) == 12
