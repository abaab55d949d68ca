"""Hostile DNS data: every locate ends in targets or a clear error within its deadline."""

from __future__ import annotations

import time
from typing import Any

import pytest
from dnslib import QTYPE, RR, SRV, A, DNSLabel

from asip_locate import (
    AiodnsBackend,
    Answer,
    InvalidUriError,
    IpStrategy,
    LocateOptions,
    LocateTimeoutError,
    Locator,
    NaptrRecord,
    NoTargetsError,
    Query,
    RType,
    SrvRecord,
    Status,
    Target,
    Transport,
)
from asip_locate.testing import FakeBackend, ZoneServer

HEAD = (
    "$TTL 300\nexample.test. 3600 IN SOA ns1.example.test. h.example.test. 1 7200 900 1209600 60\n"
)
GOOD_SRV = (
    "_sip._udp.example.test. IN SRV 10 0 5060 good.example.test.\n"
    "good.example.test. IN A 127.0.0.5\n"
)
SLACK = 1.5  # seconds beyond the deadline that event-loop scheduling may take


async def outcome(
    server: ZoneServer, uri: str = "sip:example.test", **extra: Any
) -> list[Target] | NoTargetsError | LocateTimeoutError:
    """Locate through the server; return targets or the error, checking the deadline."""
    settings: dict[str, Any] = {
        "nameservers": (server.address,),
        "timeout": 0.3,
        "tries": 1,
        "deadline": 5.0,
        "ip_strategy": IpStrategy.IPV4_ONLY,
        **extra,
    }
    opts = LocateOptions(**settings)
    started = time.monotonic()
    try:
        async with Locator(opts) as locator:
            result: list[Target] | NoTargetsError | LocateTimeoutError = await locator.resolve(uri)
    except (NoTargetsError, LocateTimeoutError) as exc:
        result = exc
    assert time.monotonic() - started < opts.deadline + SLACK
    return result


def addresses(result: object) -> list[str]:
    assert isinstance(result, list), result
    return [f"{t.transport} {t.address}:{t.port}" for t in result]


async def serve(zone: str) -> ZoneServer:
    server = ZoneServer(HEAD + zone)
    await server.start()
    return server


@pytest.fixture
async def server() -> Any:
    async with ZoneServer(HEAD) as started:
        yield started


# --- CNAMEs and NAPTR replacements that go round in circles ---------------------------


@pytest.mark.parametrize(
    "zone",
    [
        "example.test. IN CNAME example.test.\n",
        "example.test. IN CNAME a.example.test.\na.example.test. IN CNAME example.test.\n",
        "_sip._udp.example.test. IN CNAME _sip._udp.example.test.\n",
        "_sip._udp.example.test. IN SRV 10 0 5060 h.example.test.\n"
        "h.example.test. IN CNAME i.example.test.\ni.example.test. IN CNAME h.example.test.\n",
    ],
    ids=["self", "two-step", "srv-owner", "srv-target"],
)
async def test_cname_loops_end_in_no_targets(server: ZoneServer, zone: str) -> None:
    server.set_zone(HEAD + zone)
    result = await outcome(server)
    assert isinstance(result, NoTargetsError)
    assert "SERVFAIL" in str(result) or "NXDOMAIN" in str(result) or "NODATA" in str(result)


async def test_long_cname_chain_is_followed(server: ZoneServer) -> None:
    chain = "".join(f"c{i}.example.test. IN CNAME c{i + 1}.example.test.\n" for i in range(12))
    server.set_zone(
        HEAD
        + chain
        + "_sip._udp.example.test. IN SRV 10 0 5060 c0.example.test.\n"
        + "c12.example.test. IN A 127.0.0.5\n"
    )
    assert addresses(await outcome(server)) == ["udp 127.0.0.5:5060"]


async def test_cname_chain_longer_than_the_server_follows(server: ZoneServer) -> None:
    chain = "".join(f"c{i}.example.test. IN CNAME c{i + 1}.example.test.\n" for i in range(40))
    server.set_zone(HEAD + chain + "c40.example.test. IN A 127.0.0.5\n")
    result = await outcome(server, "sip:c0.example.test")
    assert isinstance(result, NoTargetsError)
    assert "SERVFAIL" in str(result)


@pytest.mark.parametrize(
    "zone",
    [
        'example.test. IN NAPTR 10 50 "s" "SIP+D2U" "" example.test.\n',
        'example.test. IN NAPTR 10 50 "s" "SIP+D2U" "" x.example.test.\n'
        'x.example.test. IN NAPTR 10 50 "s" "SIP+D2U" "" example.test.\n',
        'example.test. IN NAPTR 10 50 "a" "SIP+D2U" "" example.test.\n',
        'example.test. IN NAPTR 10 50 "" "SIP+D2U" "" example.test.\n',
    ],
    ids=["self", "loop", "a-flag-self", "non-terminal-self"],
)
async def test_naptr_pointing_back_ends(server: ZoneServer, zone: str) -> None:
    server.set_zone(HEAD + zone)
    result = await outcome(server)
    assert isinstance(result, NoTargetsError)
    # Terminal 's' records are followed once; non-terminal ones are never chased.
    assert len(server.log) <= 8


async def test_naptr_loop_beside_a_good_record_still_gives_targets(server: ZoneServer) -> None:
    server.set_zone(
        HEAD
        + 'example.test. IN NAPTR 10 50 "s" "SIP+D2U" "" example.test.\n'
        + 'example.test. IN NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.example.test.\n'
        + GOOD_SRV
    )
    assert addresses(await outcome(server)) == ["udp 127.0.0.5:5060"]


async def test_unusable_naptr_records_fall_back_to_srv(server: ZoneServer) -> None:
    server.set_zone(
        HEAD
        + 'example.test. IN NAPTR 10 50 "u" "E2U+sip" "!^.*$!sip:x@example.test!" .\n'
        + 'example.test. IN NAPTR 10 50 "s" "SIP+D2X" "" _sip._x.example.test.\n'
        + 'example.test. IN NAPTR 10 50 "s" "SIP+D2U" "!^(.*)$!\\\\1!" _sip._udp.example.test.\n'
        + 'example.test. IN NAPTR 10 50 "zz" "SIP+D2U" "" _sip._udp.example.test.\n'
        + 'example.test. IN NAPTR 10 50 "s" "" "" _sip._udp.example.test.\n'
        + GOOD_SRV
    )
    assert addresses(await outcome(server)) == ["udp 127.0.0.5:5060"]
    asked = {(q.name, q.qtype) for q in server.log}
    assert ("_sip._x.example.test", "SRV") not in asked


async def test_naptr_flags_and_services_are_case_insensitive(server: ZoneServer) -> None:
    server.set_zone(
        HEAD + 'example.test. IN NAPTR 10 50 "S" "sip+d2u" "" _sip._udp.example.test.\n' + GOOD_SRV
    )
    assert addresses(await outcome(server)) == ["udp 127.0.0.5:5060"]


# --- Huge answers and the caps ---------------------------------------------------------


async def test_thousands_of_srv_records_are_capped(server: ZoneServer) -> None:
    # 1,500 SRV records: about 55 kB, too big for UDP; c-ares falls back to TCP.
    server.set_zone(
        HEAD
        + "".join(
            f"_sip._udp.example.test. IN SRV {i % 3} {i % 7} 5060 h{i}.example.test.\n"
            f"h{i}.example.test. IN A 127.0.{i // 250}.{i % 250 + 1}\n"
            for i in range(1500)
        )
    )
    result = await outcome(server, max_records=20, max_queries=30)
    assert isinstance(result, list)
    assert 0 < len(result) <= 20
    assert len({(q.name, q.qtype) for q in server.log}) <= 30
    assert any(q.transport == "tcp" for q in server.log)
    # Priority 0 comes first whatever the cap kept.
    assert result[0].host in {f"h{i}.example.test" for i in range(0, 1500, 3)}


async def test_an_answer_too_big_even_for_tcp_is_no_targets(server: ZoneServer) -> None:
    server.set_zone(
        HEAD
        + "".join(
            f"_sip._udp.example.test. IN SRV 10 0 5060 host-{i:05d}.example.test.\n"
            for i in range(3000)
        )
    )
    assert isinstance(await outcome(server), NoTargetsError)


async def test_many_answers_go_through_the_query_budget_without_error() -> None:
    backend = FakeBackend(
        HEAD
        + "".join(
            f'example.test. IN NAPTR {i} 50 "s" "SIP+D2U" "" _sip._udp.n{i}.example.test.\n'
            f"_sip._udp.n{i}.example.test. IN SRV 10 0 5060 h{i}.example.test.\n"
            f"h{i}.example.test. IN A 127.0.1.{i + 1}\n"
            for i in range(200)
        )
    )
    opts = LocateOptions(max_records=500, max_queries=50, ip_strategy=IpStrategy.IPV4_ONLY)
    async with Locator(opts, backend=backend) as locator:
        targets = await locator.resolve("sip:example.test")
    assert len(backend.calls) <= 50
    assert [t.port for t in targets] == [5060] * len(targets)
    assert 10 < len(targets) < 50


# --- Odd SRV data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("_sip._udp.example.test. IN SRV 10 0 0 good.example.test.\n", []),
        (
            "_sip._udp.example.test. IN SRV 10 0 0 good.example.test.\n"
            "_sip._udp.example.test. IN SRV 20 0 5070 good.example.test.\n",
            ["udp 127.0.0.5:5070"],
        ),
        ("_sip._udp.example.test. IN SRV 10 0 5060 .\n", []),
        (
            "_sip._udp.example.test. IN SRV 10 0 5060 .\n"
            "_sip._udp.example.test. IN SRV 20 0 5062 good.example.test.\n",
            ["udp 127.0.0.5:5062"],
        ),
        ("_sip._udp.example.test. IN SRV 10 0 5060 nowhere.example.test.\n", []),
        (
            "_sip._udp.example.test. IN SRV 65535 65535 65535 good.example.test.\n",
            ["udp 127.0.0.5:65535"],
        ),
    ],
    ids=["port-0", "port-0-and-good", "dot", "dot-and-good", "nxdomain-target", "max-values"],
)
async def test_odd_srv_records(server: ZoneServer, zone: str, expected: list[str]) -> None:
    server.set_zone(HEAD + zone + "good.example.test. IN A 127.0.0.5\n")
    result = await outcome(server)
    if expected:
        assert addresses(result) == expected
    else:
        assert isinstance(result, NoTargetsError)


async def test_dot_target_says_service_not_available(server: ZoneServer) -> None:
    server.set_zone(HEAD + "_sip._udp.example.test. IN SRV 0 0 0 .\n")
    result = await outcome(server, "sip:example.test;transport=udp")
    assert isinstance(result, NoTargetsError)
    assert "not available" in str(result)


# --- Names at and over the limits, odd bytes in names ----------------------------------


def long_name(total: int) -> str:
    """A name of ``total`` characters (without the final dot) ending in example.test."""
    suffix = "example.test"
    labels = []
    room = total - len(suffix)
    while room > 0:
        size = min(63, room - 1)
        labels.append("a" * size)
        room -= size + 1
    name = ".".join([*labels, suffix])
    assert len(name) == total, (len(name), total)
    return name


async def test_srv_target_of_253_characters_works(server: ZoneServer) -> None:
    host = long_name(253)  # 255 octets on the wire: the longest name there is
    server.set_zone(
        HEAD + f"_sip._udp.example.test. IN SRV 10 0 5060 {host}.\n{host}. IN A 127.0.0.5\n"
    )
    result = await outcome(server)
    assert addresses(result) == ["udp 127.0.0.5:5060"]
    assert isinstance(result, list)
    assert result[0].host == host


async def test_uri_host_of_253_characters_works(server: ZoneServer) -> None:
    host = long_name(253)
    server.set_zone(HEAD + f"{host}. IN A 127.0.0.5\n")
    assert addresses(await outcome(server, f"sip:{host}:5070")) == ["udp 127.0.0.5:5070"]


async def test_srv_target_over_255_octets_is_no_targets(server: ZoneServer) -> None:
    host = long_name(260)
    server.set_zone(
        HEAD + f"_sip._udp.example.test. IN SRV 10 0 5060 {host}.\n{host}. IN A 127.0.0.5\n"
    )
    result = await outcome(server)
    assert isinstance(result, NoTargetsError)  # the server cannot even encode it


@pytest.mark.parametrize(
    "uri",
    [
        f"sip:{long_name(254)}",
        f"sip:{'a' * 64}.example.test",
        "sip:b\u00fccher.example.test",
        "sip:a..b.example.test",
        "sip:a\\.b.example.test",
        "sip:exa mple.test",
        "sip:example.test\x00",
    ],
    ids=["254-chars", "label-64", "non-ascii", "empty-label", "escaped-dot", "space", "nul"],
)
def test_bad_host_names_in_uris_are_invalid(uri: str) -> None:
    with pytest.raises(InvalidUriError):
        Locator(backend=FakeBackend("")).locate(uri)


async def test_escaped_and_non_ascii_bytes_in_srv_targets(server: ZoneServer) -> None:
    owner = "_sip._udp.example.test."
    # Labels holding a dot, non-ASCII, NUL, a space and a backslash: legal on the wire.
    labels = [b"a.b", b"\xc3\xbc", b"x\x00y", b"sp ace", b"A\\B"]
    for i, label in enumerate(labels):
        target = DNSLabel([label, b"example", b"test"])
        server.zone.records.setdefault(owner.rstrip("."), []).append(
            RR(owner, QTYPE.SRV, rdata=SRV(10, 0, 5060 + i, target))
        )
        server.zone.records.setdefault(str(target).lower().rstrip("."), []).append(
            RR(target, QTYPE.A, rdata=A(f"127.0.0.{i + 1}"))
        )
    result = await outcome(server)
    # c-ares hands names back escaped (RFC 1035 §5.1: "a\\.b"); it can ask for the
    # escaped dot again, and refuses to send the other names (ERROR answers).
    assert isinstance(result, list)
    assert [(t.host, t.port) for t in result] == [("a\\.b.example.test", 5060)]


async def test_non_ascii_and_overlong_labels_from_a_backend(server: ZoneServer) -> None:
    """Names c-ares never returns but another backend might: ERROR answers, no exception."""
    server.set_zone(HEAD + "good.example.test. IN A 127.0.0.5\n")
    inner = AiodnsBackend([server.address], timeout=0.3, tries=1)
    srv = Query("_sip._udp.example.test", RType.SRV)
    targets = [
        "x" * 70 + ".example.test",
        "b\u00fccher.example.test",
        "ab\udcff.example.test",
        "\u00e9" * 300 + ".example.test",
        "a..b.example.test",
        "good.example.test",
    ]
    records = tuple(SrvRecord(10, 0, 5060 + i, t) for i, t in enumerate(targets))

    class Overlay:
        async def query(self, query: Query) -> Answer:
            if query == srv:
                return Answer(query, Status.NOERROR, records, 60)
            return await inner.query(query)

        async def aclose(self) -> None:
            await inner.aclose()

    opts = LocateOptions(ip_strategy=IpStrategy.IPV4_ONLY, use_naptr=False, deadline=5)
    async with Locator(opts, backend=Overlay()) as locator:
        stream = locator.locate("sip:example.test;transport=udp")
        result = [t async for t in stream]
    assert [(t.host, t.port) for t in result] == [("good.example.test", 5065)]
    bad = [a for a in stream.attempts if a.query.rtype is RType.A and a.query.name != targets[-1]]
    # IDNA-encodable names are asked (NXDOMAIN here); the others are ERROR answers.
    assert sorted(a.status for a in bad) == ["ERROR"] * 4 + ["NXDOMAIN"]


# --- Wrong, broken and failed answers ---------------------------------------------------


async def test_wrong_type_answers_are_ignored(server: ZoneServer) -> None:
    server.set_zone(
        HEAD + 'example.test. IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.example.test.\n' + GOOD_SRV
    )
    server.inject(qtype="NAPTR", wrong_type=True)
    # NAPTR answered with an A record: no NAPTR, so SRV per transport (RFC 3263 §4.1).
    assert addresses(await outcome(server)) == ["udp 127.0.0.5:5060"]


async def test_wrong_type_for_srv_ends_without_targets(server: ZoneServer) -> None:
    server.set_zone(
        HEAD + 'example.test. IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.example.test.\n' + GOOD_SRV
    )
    server.inject(qtype="SRV", wrong_type=True)
    result = await outcome(server)
    assert isinstance(result, NoTargetsError)
    assert "NODATA" in str(result)


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"garbage": True}, Status.ERROR),
        ({"rcode": "SERVFAIL"}, Status.SERVFAIL),
        ({"rcode": "REFUSED"}, Status.REFUSED),
        ({"rcode": "FORMERR"}, Status.ERROR),
        ({"rcode": "NOTIMP"}, Status.ERROR),
        ({"drop": True}, Status.TIMEOUT),
    ],
    ids=["garbage", "servfail", "refused", "formerr", "notimp", "timeout"],
)
async def test_failing_server_ends_in_a_clear_error(
    server: ZoneServer, fault: dict[str, Any], status: Status
) -> None:
    server.set_zone(HEAD + GOOD_SRV)
    server.inject(**fault)
    result = await outcome(server)
    assert isinstance(result, NoTargetsError)
    assert result.attempts
    assert {a.status for a in result.attempts} == {status}, result


@pytest.mark.parametrize(
    "fault",
    [
        {"garbage": True},
        {"rcode": "SERVFAIL"},
        {"rcode": "REFUSED"},
        {"drop": True},
        {"wrong_type": True},
        {"truncate": True},
        {"delay": 0.2},
    ],
    ids=["garbage", "servfail", "refused", "timeout", "wrong-type", "truncate", "slow"],
)
async def test_a_failing_naptr_query_does_not_stop_srv(
    server: ZoneServer, fault: dict[str, Any]
) -> None:
    server.set_zone(HEAD + GOOD_SRV)
    server.inject(qtype="NAPTR", **fault)
    assert addresses(await outcome(server)) == ["udp 127.0.0.5:5060"]


async def test_truncated_udp_answers_are_asked_again_over_tcp(server: ZoneServer) -> None:
    server.set_zone(HEAD + GOOD_SRV)
    server.inject(truncate=True)
    assert addresses(await outcome(server)) == ["udp 127.0.0.5:5060"]
    assert {q.transport for q in server.log} == {"udp", "tcp"}


async def test_timeouts_beyond_the_deadline_raise_locate_timeout(server: ZoneServer) -> None:
    server.set_zone(HEAD + GOOD_SRV)
    server.inject(drop=True)
    result = await outcome(server, timeout=2.0, tries=3, deadline=0.5)
    assert isinstance(result, LocateTimeoutError)
    assert result.deadline == 0.5


async def test_one_slow_branch_does_not_hold_back_earlier_targets(server: ZoneServer) -> None:
    server.set_zone(
        HEAD
        + "_sip._udp.example.test. IN SRV 10 0 5060 good.example.test.\n"
        + "_sip._udp.example.test. IN SRV 20 0 5060 slow.example.test.\n"
        + "good.example.test. IN A 127.0.0.5\nslow.example.test. IN A 127.0.0.6\n"
    )
    server.inject(name="slow.example.test", drop=True)
    result = await outcome(server, "sip:example.test;transport=udp")
    assert addresses(result) == ["udp 127.0.0.5:5060"]


# --- A backend that misbehaves ----------------------------------------------------------


async def test_records_of_the_wrong_python_type_are_ignored() -> None:
    srv = Query("_sip._udp.example.test", RType.SRV)
    naptr = Query("example.test", RType.NAPTR)
    bogus = (NaptrRecord(1, 1, "s", "SIP+D2U", "", "x.example.test"),)
    answers = {
        naptr: Answer(naptr, Status.NOERROR, (SrvRecord(1, 1, 5060, "x.example.test"),), 60),
        srv: Answer(srv, Status.NOERROR, bogus, 60),
    }
    backend = FakeBackend(HEAD + "example.test. IN A 127.0.0.5\n")
    original = backend.query

    async def query(query: Query) -> Answer:
        return answers.get(query) or await original(query)

    backend.query = query  # type: ignore[method-assign]
    opts = LocateOptions(ip_strategy=IpStrategy.IPV4_ONLY, transports=(Transport.UDP,))
    async with Locator(opts, backend=backend) as locator:
        targets = await locator.resolve("sip:example.test")
    assert [str(t) for t in targets] == ["udp 127.0.0.5:5060 (example.test)"]
