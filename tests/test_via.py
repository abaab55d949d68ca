"""Via parsing and response targets (RFC 3261 §18.2.2, §20.42; RFC 3581; RFC 3263 §5)."""

from __future__ import annotations

import ipaddress
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asip_locate import (
    InvalidUriError,
    InvalidViaError,
    IpStrategy,
    LocateError,
    LocateOptions,
    Locator,
    NoTargetsError,
    Target,
    Transport,
    Via,
    cli,
    parse_via,
)
from asip_locate._model import Query, RType
from asip_locate._via import plan_response
from asip_locate.testing import FakeBackend, ZoneServer, drive
from tests.vectors import VIA_CASES, check, zone_text

IDS = [c["id"] for c in VIA_CASES]
V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address

# ---------------------------------------------------------------------------- parser

VALID: list[tuple[str, dict[str, Any]]] = [
    (
        "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776;received=192.0.2.4;rport=5070",
        {
            "transport": Transport.UDP,
            "host": "pc33.example.com",
            "port": None,
            "branch": "z9hG4bK776",
            "received": V4("192.0.2.4"),
            "rport": 5070,
        },
    ),
    ("SIP/2.0/TLS proxy.example.com", {"transport": Transport.TLS, "params": ()}),
    # Case-insensitive protocol, transport, host and parameter names.
    (
        "sip/2.0/tcp PC.Example.COM.:5070;BRANCH=z9hG4bKAbC;RPort",
        {
            "transport": Transport.TCP,
            "host": "pc.example.com",
            "port": 5070,
            "branch": "z9hG4bKAbC",
            "rport": True,
            "params": (("branch", "z9hG4bKAbC"), ("rport", None)),
        },
    ),
    # LWS around '/', ':', ';' and '=' (RFC 3261 §25.1 SLASH, COLON, SEMI, EQUAL).
    (
        "  SIP / 2.0 / UDP \t a.example.com : 5062 ; received = 192.0.2.1 ;rport= 1 ",
        {"port": 5062, "received": V4("192.0.2.1"), "rport": 1},
    ),
    # Line folding (CRLF + whitespace) is LWS.
    ("SIP/2.0/UDP a.example.com\r\n ;branch=z9hG4bK1", {"branch": "z9hG4bK1"}),
    # IPv6: sent-by in brackets, received with or without brackets, maddr reference.
    (
        "SIP/2.0/UDP [2001:DB8::0:1]:5060;received=2001:db8::2;maddr=[FF02::1];ttl=5",
        {
            "host": "2001:db8::1",
            "port": 5060,
            "received": V6("2001:db8::2"),
            "maddr": "ff02::1",
            "ttl": 5,
        },
    ),
    ("SIP/2.0/TCP [::1];received=[2001:db8::3]", {"received": V6("2001:db8::3")}),
    ("SIP/2.0/UDP 192.0.2.9;maddr=Sip.Example.NET;ttl=0", {"maddr": "sip.example.net", "ttl": 0}),
    # Every transport token (RFC 3261, RFC 4168, RFC 7118).
    ("SIP/2.0/SCTP a.example.com", {"transport": Transport.SCTP}),
    ("SIP/2.0/tls-sctp a.example.com", {"transport": Transport.TLS_SCTP}),
    ("SIP/2.0/WS df7jal23ls0d.invalid;received=192.0.2.7", {"transport": Transport.WS}),
    ("SIP/2.0/WSS a.example.com", {"transport": Transport.WSS}),
    # Extension parameters: no value, token, host, quoted string (with ',' and ';').
    (
        'SIP/2.0/UDP a.example.com;keep;alias;x=[::1];q="a, b; \\"c\\""',
        {
            "params": (("keep", None), ("alias", None), ("x", "[::1]"), ("q", '"a, b; \\"c\\""')),
            "rport": None,
        },
    ),
    # A comma-separated list: every value is checked, the top one is returned.
    (
        "SIP/2.0/UDP first.example.com;branch=z9hG4bK1 , SIP/2.0/TCP second.example.com",
        {"host": "first.example.com", "transport": Transport.UDP},
    ),
    # A copied header line with its name.
    ("Via: SIP/2.0/UDP a.example.com", {"host": "a.example.com"}),
    ("v:SIP/2.0/UDP a.example.com", {"host": "a.example.com"}),
]


@pytest.mark.parametrize(("text", "fields"), VALID, ids=[t for t, _ in VALID])
def test_parse_valid(text: str, fields: dict[str, Any]) -> None:
    via = parse_via(text)
    for name, value in fields.items():
        assert getattr(via, name) == value, name
    assert parse_via(str(via)) == via  # the canonical form parses back the same


INVALID: list[tuple[str, str]] = [
    ("", "empty input"),
    ("   ", "empty input"),
    ("Via:", "empty input"),
    ("SIP/2.0/UDP", "expected whitespace and sent-by"),
    ("SIP/2.0/UDP ", "expected whitespace and sent-by"),
    ("SIP/2.0/UDPa.example.com", "unknown transport 'UDPa.example.com'"),
    ("SIP/2.0 a.example.com", "expected '/' after the protocol version"),
    ("SIP/2.0/FOO a.example.com", "unknown transport 'FOO'"),
    ("SIP/2.0/ a.example.com", "unknown transport 'a.example.com'"),
    ("SIP/2.0/;x a.example.com", "expected a transport"),
    ("HTTP/2.0/UDP a.example.com", "protocol 'HTTP' is not SIP"),
    ("SIP/3.0/UDP a.example.com", "SIP version '3.0' is not 2.0"),
    ("sip:alice@example.com", "expected '/' after the protocol name"),
    ("SIP/2.0/UDP a..example.com", "bad host name label"),
    ("SIP/2.0/UDP -a.example.com", "bad host name label"),
    ("SIP/2.0/UDP 192.0.2.300", "bad IPv4 address"),
    ("SIP/2.0/UDP a.123", "numeric top label"),
    ("SIP/2.0/UDP 2001:db8::1", "IPv6 sent-by address must be in brackets"),
    ("SIP/2.0/UDP [2001:db8::1", "unterminated IPv6 reference"),
    ("SIP/2.0/UDP [2001:db8::zz]", "bad IPv6 reference"),
    ("SIP/2.0/UDP a.example.com:", "bad port"),
    ("SIP/2.0/UDP a.example.com:0", "port 0 out of range"),
    ("SIP/2.0/UDP a.example.com:65536", "out of range"),
    ("SIP/2.0/UDP a.example.com:50x", "expected ';' before a parameter"),
    ("SIP/2.0/UDP a.example.com junk", "expected ';' before a parameter, found 'junk'"),
    ("SIP/2.0/UDP a.example.com;", "expected a parameter name"),
    ("SIP/2.0/UDP a.example.com;=x", "expected a parameter name"),
    ("SIP/2.0/UDP a.example.com;x=", "expected a value"),
    ("SIP/2.0/UDP a.example.com;received", "'received' needs a value"),
    ("SIP/2.0/UDP a.example.com;received=a.example.com", "not an IPv4 or IPv6 address"),
    ("SIP/2.0/UDP a.example.com;received=192.0.2.256", "not an IPv4 or IPv6 address"),
    ("SIP/2.0/UDP a.example.com;received=fe80::1%eth0", "not an IPv4 or IPv6 address"),
    ("SIP/2.0/UDP a.example.com;rport=0", "rport='0' is not a number in 1-65535"),
    ("SIP/2.0/UDP a.example.com;rport=65536", "not a number in 1-65535"),
    ("SIP/2.0/UDP a.example.com;rport=x1", "not a number"),
    ("SIP/2.0/UDP a.example.com;ttl", "'ttl' needs a value"),
    ("SIP/2.0/UDP a.example.com;ttl=256", "ttl='256' is not a number in 0-255"),
    ("SIP/2.0/UDP a.example.com;ttl=0001", "not a number in 0-255"),
    ("SIP/2.0/UDP a.example.com;maddr", "'maddr' needs a value"),
    ("SIP/2.0/UDP a.example.com;maddr=a_b.example.com", "maddr: bad host name label"),
    ("SIP/2.0/UDP a.example.com;branch", "'branch' needs a value"),
    ('SIP/2.0/UDP a.example.com;branch="z9"', "is not a token"),
    ("SIP/2.0/UDP a.example.com;branch=1;BRANCH=2", "'branch' appears twice"),
    ("SIP/2.0/UDP a.example.com;x=a:b", "parameter 'x' has a bad value"),
    ("SIP/2.0/UDP a.example.com;x=[nope]", "bad IPv6 reference"),
    ('SIP/2.0/UDP a.example.com;x="open', "unterminated quoted value"),
    ("SIP/2.0/UDP a.example.com,", "expected the protocol name"),
    ("SIP/2.0/UDP a.example.com, garbage", "expected '/' after the protocol name"),
    ("SIP/2.0/UDP a.example.com, SIP/2.0/BAD b.example.com", "unknown transport 'BAD'"),
    ("SIP/2.0/UDP a.example.com\x00", "control characters"),
    ("SIP/2.0/UDP a.example.com\r\n", "control characters"),
    ("SIP/2.0/UDP a.example.com\n ;rport", "control characters"),
    ("SIP/2.0/UDP a.example.com\x7f", "control characters"),
    ("SIP/2.0/UDP bücher.example.com", "non-ASCII"),
    ("SIP/2.0/UDP a.example.com;" + ";".join(f"p{i}" for i in range(40)), "more than 32"),
    (", ".join(["SIP/2.0/UDP a.example.com"] * 20), "more than 16 Via values"),
    ("SIP/2.0/UDP " + "a" * 5000 + ".example.com", "longer than 4096"),
]


@pytest.mark.parametrize(("text", "reason"), INVALID, ids=[r for _, r in INVALID])
def test_parse_invalid(text: str, reason: str) -> None:
    with pytest.raises(InvalidViaError) as info:
        parse_via(text)
    assert reason in info.value.reason
    assert str(info.value).startswith("invalid Via ")
    assert isinstance(info.value, InvalidUriError)
    assert isinstance(info.value, LocateError)
    if len(text) <= 4096:
        assert repr(text) in str(info.value)  # the message names the input


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(InvalidViaError, match="expected a string"):
        parse_via(b"SIP/2.0/UDP a.example.com")  # type: ignore[arg-type]


def test_via_helpers() -> None:
    via = parse_via("SIP/2.0/UDP [2001:db8::1]:5070;maddr=[ff02::1];x=1")
    assert via.sent_by == "[2001:db8::1]:5070"
    assert via.multicast_ttl == 1  # RFC 3261 §18.2.2 default
    assert via.param("x") == "1"
    assert via.param("y") is None
    assert parse_via("SIP/2.0/UDP a.example.com;maddr=[ff02::1];ttl=16").multicast_ttl == 16
    assert str(parse_via("sip/2.0/tls A.example.com;RPORT")) == "SIP/2.0/TLS a.example.com;rport"


# ------------------------------------------------------------------ pure core planning


def plan(
    via: str, zone: str = "", seed: int = 1, **options: Any
) -> tuple[list[Target], list[Query], str | None]:
    """Run plan_response with the test kit's driver: (targets, queries, reason)."""
    resolution = plan_response(
        parse_via(via),
        LocateOptions(**options),
        lambda name: random.Random(f"{seed}:{name}"),
    )
    run = drive(resolution, zone or "$TTL 300\n")
    return list(run.targets), list(run.asked), resolution.reason


def endpoints(targets: list[Target]) -> list[str]:
    return [str(t.endpoint) for t in targets]


@pytest.mark.parametrize("case", VIA_CASES, ids=IDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vector_pure_core(case: dict[str, Any], seed: int) -> None:
    targets, asked, _ = plan(case["input"]["via"], zone_text(case), seed)
    check(targets, case["expected"])
    assert all(q.rtype is not RType.NAPTR for q in asked)  # RFC 3263 §5: never NAPTR


def test_tls_targets_carry_the_sent_by_name() -> None:
    case = next(c for c in VIA_CASES if c["id"] == "V45")
    targets, _, _ = plan(case["input"]["via"], zone_text(case))
    assert targets
    assert {t.tls_name for t in targets} == {"ua.example.com"}


ZONE = """\
$TTL 300
example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300
ua.example.com. IN A 192.0.2.1
ua.example.com. IN AAAA 2001:db8::1
m.example.com. IN A 192.0.2.50
_sip._udp.srv.example.com. IN SRV 10 0 5070 ua.example.com.
_sip._sctp.srv.example.com. IN SRV 10 0 5072 ua.example.com.
_sips._sctp.srv.example.com. IN SRV 10 0 5073 ua.example.com.
_sip._udp.down.example.com. IN SRV 0 0 0 .
down.example.com. IN A 192.0.2.99
"""

PLANS: list[tuple[str, dict[str, Any], list[str]]] = [
    # §5, name without port, no SRV: A/AAAA at the default port (digest §14 item 14).
    ("SIP/2.0/UDP ua.example.com", {}, ["udp [2001:db8::1]:5060", "udp 192.0.2.1:5060"]),
    ("SIP/2.0/TLS ua.example.com", {}, ["tls [2001:db8::1]:5061", "tls 192.0.2.1:5061"]),
    # §5, name without port, SRV present: SRV only, for the Via transport.
    ("SIP/2.0/UDP srv.example.com", {}, ["udp [2001:db8::1]:5070", "udp 192.0.2.1:5070"]),
    ("SIP/2.0/SCTP srv.example.com", {}, ["sctp [2001:db8::1]:5072", "sctp 192.0.2.1:5072"]),
    (
        "SIP/2.0/TLS-SCTP srv.example.com",
        {},
        ["tls-sctp [2001:db8::1]:5073", "tls-sctp 192.0.2.1:5073"],
    ),
    # SRV target "." means "not here": no address fallback (RFC 2782).
    ("SIP/2.0/UDP down.example.com", {}, []),
    # WebSocket has no SRV names (RFC 7118): addresses at 80/443 at once.
    ("SIP/2.0/WSS ua.example.com", {}, ["wss [2001:db8::1]:443", "wss 192.0.2.1:443"]),
    ("SIP/2.0/WS ua.example.com:8080", {}, ["ws [2001:db8::1]:8080", "ws 192.0.2.1:8080"]),
    # Numeric sent-by: used directly at its port or the default.
    ("SIP/2.0/TLS [2001:db8::7]", {}, ["tls [2001:db8::7]:5061"]),
    ("SIP/2.0/TCP 192.0.2.7:5090", {}, ["tcp 192.0.2.7:5090"]),
    # Reliable: received at the sent-by port; maddr and rport play no part.
    (
        "SIP/2.0/TCP 192.0.2.7:5090;maddr=192.0.2.8;received=198.51.100.1;rport=4000",
        {},
        ["tcp 198.51.100.1:5090", "tcp 192.0.2.7:5090"],
    ),
    # UDP, full order: maddr, received:rport, received:sent-by port, sent-by.
    (
        "SIP/2.0/UDP 192.0.2.7:5090;maddr=192.0.2.8;received=198.51.100.1;rport=4000",
        {},
        [
            "udp 192.0.2.8:5090",
            "udp 198.51.100.1:4000",
            "udp 198.51.100.1:5090",
            "udp 192.0.2.7:5090",
        ],
    ),
    # maddr without a sent-by port: 5060; a maddr name is looked up.
    (
        "SIP/2.0/UDP 192.0.2.7;maddr=m.example.com",
        {},
        ["udp 192.0.2.50:5060", "udp 192.0.2.7:5060"],
    ),
    # rport without a value (not filled in) or without received is not usable.
    (
        "SIP/2.0/UDP 192.0.2.7;rport;received=198.51.100.1",
        {},
        ["udp 198.51.100.1:5060", "udp 192.0.2.7:5060"],
    ),
    ("SIP/2.0/UDP 192.0.2.7;rport=4000", {}, ["udp 192.0.2.7:5060"]),
    # The same destination twice is tried once (the stream also de-duplicates).
    ("SIP/2.0/UDP 192.0.2.7;received=192.0.2.7;rport=5060", {}, ["udp 192.0.2.7:5060"]),
    # ip_strategy applies to literals and to lookups.
    (
        "SIP/2.0/UDP ua.example.com;received=2001:db8::9",
        {"ip_strategy": IpStrategy.IPV4_ONLY},
        ["udp 192.0.2.1:5060"],
    ),
    (
        "SIP/2.0/UDP ua.example.com;received=198.51.100.1",
        {"ip_strategy": IpStrategy.PREFER_IPV4},
        ["udp 198.51.100.1:5060", "udp 192.0.2.1:5060", "udp [2001:db8::1]:5060"],
    ),
    # The Via transport is used even when options.transports lacks it.
    ("SIP/2.0/SCTP 192.0.2.7", {"transports": ["udp"]}, ["sctp 192.0.2.7:5060"]),
]


@pytest.mark.parametrize(("via", "options", "expected"), PLANS, ids=[p[0] for p in PLANS])
def test_plan(via: str, options: dict[str, Any], expected: list[str]) -> None:
    targets, asked, _ = plan(via, ZONE, **options)
    assert endpoints(targets) == expected
    assert all(q.rtype is not RType.NAPTR for q in asked)


def test_plan_queries_only_what_the_rules_need() -> None:
    _, asked, _ = plan("SIP/2.0/UDP ua.example.com:5070", ZONE)
    assert {q.rtype for q in asked} == {RType.A, RType.AAAA}  # name with port: no SRV
    _, asked, _ = plan("SIP/2.0/TLS ua.example.com", ZONE)
    assert Query("_sips._tcp.ua.example.com", RType.SRV) in asked
    _, asked, _ = plan("SIP/2.0/WS ua.example.com", ZONE)
    assert all(q.rtype is not RType.SRV for q in asked)


def test_plan_tls_names() -> None:
    targets, _, _ = plan("SIP/2.0/TLS ua.example.com;received=198.51.100.1", ZONE)
    assert [t.tls_name for t in targets] == ["ua.example.com"] * 3
    # An IP-literal sent-by: the literal, as for an IP-literal URI (digest §14 item 16).
    targets, _, _ = plan("SIP/2.0/TLS 192.0.2.7;received=198.51.100.1", ZONE)
    assert [t.tls_name for t in targets] == ["192.0.2.7", "192.0.2.7"]
    targets, _, _ = plan("SIP/2.0/TCP ua.example.com", ZONE)
    assert all(t.tls_name is None for t in targets)


def test_plan_reason_when_every_literal_is_excluded() -> None:
    targets, asked, reason = plan(
        "SIP/2.0/UDP [2001:db8::7];received=2001:db8::8", ip_strategy=IpStrategy.IPV4_ONLY
    )
    assert targets == []
    assert asked == []
    assert "ip_strategy is ipv4_only" in str(reason)


# ------------------------------------------------------------------------ end to end


@pytest.mark.parametrize("case", VIA_CASES, ids=IDS)
async def test_vector_end_to_end_over_aiodns(case: dict[str, Any]) -> None:
    async with ZoneServer(zone_text(case)) as server:
        options = LocateOptions(nameservers=(server.address,), timeout=1.0, tries=1)
        async with Locator(options) as locator:
            try:
                targets = await locator.resolve_response(case["input"]["via"])
            except NoTargetsError:
                targets = []
    check(targets, case["expected"])
    assert not server.queries(qtype="NAPTR")


async def test_locate_response_takes_a_parsed_via_and_streams() -> None:
    backend = FakeBackend(ZONE)
    async with Locator(backend=backend) as locator:
        stream = locator.locate_response(parse_via("SIP/2.0/UDP srv.example.com;rport"))
        async with stream:
            first = await anext(stream)
        assert str(first.endpoint) == "udp [2001:db8::1]:5070"
        assert stream.uri == "SIP/2.0/UDP srv.example.com;rport"


async def test_locate_response_errors() -> None:
    async with Locator(backend=FakeBackend(ZONE)) as locator:
        with pytest.raises(InvalidViaError, match="unknown transport"):
            locator.locate_response("SIP/2.0/XYZ a.example.com")  # at once, not on iteration
        with pytest.raises(NoTargetsError, match=r"no targets for SIP/2\.0/UDP down\.example\.com"):
            await locator.resolve_response("SIP/2.0/UDP down.example.com")
    with pytest.raises(RuntimeError, match="closed"):
        locator.locate_response("SIP/2.0/UDP a.example.com")


def test_via_is_a_frozen_value() -> None:
    via = parse_via("SIP/2.0/UDP a.example.com")
    with pytest.raises(AttributeError):
        via.host = "b.example.com"  # type: ignore[misc]
    assert via == Via(Transport.UDP, "a.example.com")
    assert hash(via) == hash(Via(Transport.UDP, "a.example.com"))


# ------------------------------------------------------------------------------- CLI


@pytest.fixture
def zone_file(tmp_path: Path) -> Path:
    path = tmp_path / "via.zone"
    path.write_text(ZONE)
    return path


def test_cli_via(zone_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--zone", str(zone_file), "--via", "SIP/2.0/TLS ua.example.com;received=198.51.100.1"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[:3] == ["1.", "tls", "198.51.100.1:5061"]
    assert "tls_name=ua.example.com" in lines[0]
    assert lines[1].split()[:4] == ["2.", "tls", "[2001:db8::1]:5061", "ua.example.com"]


def test_cli_via_json(zone_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--zone", str(zone_file), "--json", "--via", "SIP/2.0/UDP srv.example.com"]
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)["targets"]
    assert [(d["transport"], d["address"], d["port"]) for d in data] == [
        ("udp", "2001:db8::1", 5070),
        ("udp", "192.0.2.1", 5070),
    ]


def test_cli_via_explain(zone_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--zone", str(zone_file), "--explain", "--via", "SIP/2.0/UDP srv.example.com"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "_sip._udp.srv.example.com SRV" in out
    assert "#1 udp [2001:db8::1]:5070" in out


def test_cli_bad_via(zone_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--zone", str(zone_file), "--via", "SIP/2.0/UDP a.example.com;rport=0"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("asip-locate: invalid Via 'SIP/2.0/UDP a.example.com;rport=0'")
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_cli_via_without_targets(zone_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--zone", str(zone_file), "--via", "SIP/2.0/UDP down.example.com"]) == 1
    assert "no targets for SIP/2.0/UDP down.example.com" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "exactly one of URI or --via"),
        (["sip:a.example.com", "--via", "SIP/2.0/UDP a.example.com"], "exactly one of"),
        (["--sips", "--via", "SIP/2.0/UDP a.example.com"], "--sips applies to a URI"),
    ],
)
def test_cli_usage(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------------- fuzzing

_ALPHABET = "SIPsip/2.0UDPTCLWXudp tcl\t;=:,[]\"\\.-_!%*+`'~abcdefxyz0123456789\r\n\x00é"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_parse_via_fails_only_with_invalid_via(text: str) -> None:
    try:
        via = parse_via(text)
    except InvalidViaError:
        return
    assert parse_via(str(via)) == via


@settings(max_examples=200, deadline=None)
@given(
    transport=st.sampled_from([t.via_name for t in Transport]),
    host=st.sampled_from(["a.example.com", "192.0.2.1", "[2001:db8::1]"]),
    port=st.none() | st.integers(1, 65535),
    params=st.lists(
        st.sampled_from(
            ["rport", "rport=5070", "received=198.51.100.1", "branch=z9hG4bK1", "ttl=3", "x"]
        ),
        unique_by=lambda p: p.split("=")[0],
        max_size=4,
    ),
    space=st.sampled_from(["", " ", "\t ", "\r\n "]),
)
def test_parse_via_builds_what_was_written(
    transport: str, host: str, port: int | None, params: list[str], space: str
) -> None:
    sent_by = host if port is None else f"{host}{space}:{space}{port}"
    text = f"SIP{space}/2.0/{space}{transport.lower()} {sent_by}" + "".join(
        f"{space};{space}{p}" for p in params
    )
    via = parse_via(text)
    assert via.transport.via_name == transport
    assert via.port == port
    assert [k for k, _ in via.params] == [p.split("=")[0] for p in params]
    assert parse_via(str(via)) == via
