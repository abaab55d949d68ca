"""The destination policy for literals and URI strictness (issue 11, items 3 and 4).

URIs refuse unspecified, broadcast and non-maddr multicast literals, IPv6 zone IDs and
non-SIP schemes; Via ``received``/``maddr``/sent-by literals of that kind are ignored
as if absent. An IPv4 multicast ``maddr`` is kept (RFC 3261 §18.1.1, §18.2.2, §19.1.1).
"""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asip_locate import (
    InvalidUriError,
    InvalidViaError,
    LocateOptions,
    Transport,
    is_special_destination,
    parse_uri,
    parse_via,
)
from asip_locate._plan import plan_request
from asip_locate._policy import literal_refusal
from tests.test_via import ZONE, endpoints, plan

REFUSED_URIS = [
    ("sip:0.0.0.0", "unspecified"),
    ("sip:alice@0.0.0.0:5060", "unspecified"),
    ("sips:0.0.0.0;transport=tcp", "unspecified"),
    ("0.0.0.0:5060", "unspecified"),
    ("sip:0.1.2.3", "0.0.0.0/8"),
    ("sip:[::]", "unspecified"),
    ("sip:[0:0:0:0:0:0:0:0]:5060", "unspecified"),
    ("sip:[::ffff:0.0.0.0]", "unspecified"),
    ("sip:255.255.255.255", "limited broadcast"),
    ("sip:[::ffff:255.255.255.255]", "limited broadcast"),
    ("sip:224.0.1.75", "multicast"),
    ("sip:[ff02::1]", "multicast"),
    ("sip:[::ffff:239.1.1.1]", "multicast"),
    ("sip:example.com;maddr=0.0.0.0", "maddr 0.0.0.0 is the unspecified"),
    ("sip:example.com;maddr=[::]", "maddr :: is the unspecified"),
    ("sip:example.com;maddr=255.255.255.255", "maddr 255.255.255.255 is the limited"),
    ("sip:example.com;maddr=[ff02::1]", "IPv6 multicast"),
    ("sip:example.com;maddr=[::ffff:239.1.1.1]", "IPv6 multicast"),
    # Multicast is UDP only (RFC 3261 §18.1.1, §19.1.1).
    ("sips:example.com;maddr=239.255.255.1", "needs sip: over UDP"),
    ("sip:example.com;maddr=239.255.255.1;transport=tcp", "needs sip: over UDP"),
    # Zone identifiers (RFC 6874 forms too) are not part of SIP (RFC 3261 §25.1).
    ("sip:[fe80::1%eth0]", "zone identifiers"),
    ("sip:[fe80::1%25eth0]:5060", "zone identifiers"),
    ("sip:[FE80::1%25ETH0]", "zone identifiers"),
    ("sip:example.com;maddr=[fe80::1%25eth0]", "zone identifiers"),
    ("[fe80::1%eth0]:5060", "zone identifiers"),
    # Other schemes are never read as host:port.
    ("tel:911", "unsupported scheme 'tel'"),
    ("TEL:112", "unsupported scheme 'tel'"),
    ("tel:+1-555", "unsupported scheme 'tel'"),
    ("tel:+1-555-0100;phone-context=example.com", "unsupported scheme 'tel'"),
    ("mailto:x@y", "unsupported scheme 'mailto'"),
    ("mailto:5060", "unsupported scheme 'mailto'"),
    ("urn:5060", "unsupported scheme 'urn'"),
    ("https:443", "unsupported scheme 'https'"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED_URIS)
def test_refused_uris(text: str, reason: str) -> None:
    with pytest.raises(InvalidUriError) as info:
        parse_uri(text)
    assert reason in str(info.value)
    assert repr(text) in str(info.value)  # the message names the input


@pytest.mark.parametrize(
    ("text", "host", "port", "target"),
    [
        # RFC 3261 §19.1.1's own example: a multicast maddr with a ttl.
        (
            "sip:alice@atlanta.com;maddr=239.255.255.1;ttl=15",
            "atlanta.com",
            None,
            "239.255.255.1",
        ),
        ("sip:sip.mcast.net;maddr=224.0.1.75;transport=udp", "sip.mcast.net", None, "224.0.1.75"),
        ("localhost:5060", "localhost", 5060, "localhost"),
        ("proxy:5060", "proxy", 5060, "proxy"),
        ("Example.COM:5080", "example.com", 5080, "example.com"),
        ("sip:tel:911", "tel", 911, "tel"),  # under sip: "tel" is a host name
        ("sip:[FE80::1]", "fe80::1", None, "fe80::1"),
        ("sip:a.test;maddr=[2001:DB8:0:0::9]", "a.test", None, "2001:db8::9"),
        ("sip:a.test;maddr=Proxy.Example.NET.", "a.test", None, "proxy.example.net"),
        ("sip:1.2.3.4", "1.2.3.4", None, "1.2.3.4"),
    ],
)
def test_accepted_uris(text: str, host: str, port: int | None, target: str) -> None:
    uri = parse_uri(text)
    assert (uri.host, uri.port, uri.target) == (host, port, target)
    assert parse_uri(str(uri)) == uri


def test_multicast_maddr_plans_a_udp_target() -> None:
    uri = parse_uri("sip:alice@atlanta.com;maddr=239.255.255.1;ttl=15")
    resolution = plan_request(uri, LocateOptions(), lambda name: random.Random(1))
    (found,) = resolution.ready()
    assert (found.transport, str(found.address), found.port) == (
        Transport.UDP,
        "239.255.255.1",
        5060,
    )


def test_literal_refusal() -> None:
    ip = ipaddress.ip_address
    assert literal_refusal(ip("192.0.2.1")) is None
    assert literal_refusal(ip("239.1.1.1"), maddr=True) is None
    assert "multicast" in str(literal_refusal(ip("239.1.1.1")))
    assert "IPv6 multicast" in str(literal_refusal(ip("ff05::1"), maddr=True))
    assert "unspecified" in str(literal_refusal(ip("0.0.0.0"), maddr=True))
    assert literal_refusal(ip("239.1.1.1"), maddr=True, transport=Transport.UDP) is None
    assert "needs UDP, not tls" in str(
        literal_refusal(ip("239.1.1.1"), maddr=True, transport=Transport.TLS)
    )
    assert is_special_destination(ip("0.255.255.255"))
    assert not is_special_destination(ip("1.0.0.0"))


# ------------------------------------------------------------------- properties

ip_literals = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.ip_addresses(v=4).map(lambda a: f"[::ffff:{a}]"),
    st.sampled_from(["0.0.0.0", "[::]", "255.255.255.255", "[::ffff:0.0.0.0]", "224.0.0.1"]),
)
zones = st.from_regex(r"%(?:25)?[A-Za-z0-9._~-]{1,8}", fullmatch=True)


@given(ip_literals, st.none() | st.integers(1, 65535), st.booleans())
def test_parse_uri_never_accepts_a_special_host(host: str, port: int | None, scheme: bool) -> None:
    text = ("sip:" if scheme else "") + host + ("" if port is None else f":{port}")
    try:
        uri = parse_uri(text)
    except InvalidUriError:
        address = ipaddress.ip_address(host.strip("[]"))
        assert is_special_destination(address)
        return
    address = ipaddress.ip_address(uri.host)
    assert not is_special_destination(address)
    assert uri.host == uri.host.lower()


@given(ip_literals)
def test_parse_uri_keeps_only_ipv4_multicast_maddrs(maddr: str) -> None:
    try:
        uri = parse_uri(f"sip:example.com;maddr={maddr}")
    except InvalidUriError:
        return
    assert uri.maddr is not None
    address = ipaddress.ip_address(uri.maddr)
    assert not is_special_destination(address) or (address.version == 4 and address.is_multicast)
    assert uri.target == uri.target.lower()


@given(st.ip_addresses(v=6), zones, st.sampled_from(["sip:", "sips:", ""]))
def test_zone_ids_are_refused_in_uris_and_via(address: object, zone: str, scheme: str) -> None:
    with pytest.raises(InvalidUriError):
        parse_uri(f"{scheme}[{address}{zone}]")
    with pytest.raises(InvalidUriError):
        parse_uri(f"sip:example.com;maddr=[{address}{zone}]")
    with pytest.raises(InvalidViaError):
        parse_via(f"SIP/2.0/UDP [{address}{zone}]")
    with pytest.raises(InvalidViaError):
        parse_via(f"SIP/2.0/UDP a.test;maddr=[{address}{zone}]")
    with pytest.raises(InvalidViaError):
        parse_via(f"SIP/2.0/UDP a.test;received={address}{zone}")


@given(st.text(min_size=1, max_size=40))
def test_accepted_hosts_are_lower_case(text: str) -> None:
    try:
        uri = parse_uri(text)
    except InvalidUriError:
        return
    assert uri.host == uri.host.lower()
    assert uri.target == uri.target.lower()


# ------------------------------------------------------------- Via: ignored literals

VIA_PLANS = [
    # An unspecified/broadcast/multicast received is ignored (received:rport too).
    ("SIP/2.0/UDP 192.0.2.7;received=0.0.0.0;rport=4000", ["udp 192.0.2.7:5060"]),
    ("SIP/2.0/UDP 192.0.2.7;received=::;rport=4000", ["udp 192.0.2.7:5060"]),
    ("SIP/2.0/UDP 192.0.2.7;received=255.255.255.255", ["udp 192.0.2.7:5060"]),
    ("SIP/2.0/UDP 192.0.2.7;received=::ffff:0.0.0.0", ["udp 192.0.2.7:5060"]),
    ("SIP/2.0/UDP 192.0.2.7;received=224.0.0.1", ["udp 192.0.2.7:5060"]),
    ("SIP/2.0/TCP 192.0.2.7;received=0.0.0.0", ["tcp 192.0.2.7:5060"]),
    # maddr: unspecified/broadcast/IPv6 multicast ignored; received is next.
    (
        "SIP/2.0/UDP 192.0.2.7;maddr=0.0.0.0;received=198.51.100.1",
        ["udp 198.51.100.1:5060", "udp 192.0.2.7:5060"],
    ),
    ("SIP/2.0/UDP 192.0.2.7;maddr=255.255.255.255", ["udp 192.0.2.7:5060"]),
    ("SIP/2.0/UDP 192.0.2.7;maddr=[ff02::1];ttl=1", ["udp 192.0.2.7:5060"]),
    # RFC 3261 §18.2.2: a response MUST go to an (IPv4 multicast) maddr.
    (
        "SIP/2.0/UDP 192.0.2.7;maddr=224.0.1.75;ttl=1",
        ["udp 224.0.1.75:5060", "udp 192.0.2.7:5060"],
    ),
    # A special sent-by literal is ignored too: received still works.
    ("SIP/2.0/UDP 0.0.0.0:5070;received=198.51.100.1", ["udp 198.51.100.1:5070"]),
    ("SIP/2.0/UDP [::]", []),
    ("SIP/2.0/UDP 239.1.1.1", []),
    # Names are looked up and the DNS policy applies (ua.example.com is unicast).
    (
        "SIP/2.0/UDP ua.example.com:5070;received=0.0.0.0",
        ["udp [2001:db8::1]:5070", "udp 192.0.2.1:5070"],
    ),
]


@pytest.mark.parametrize(("via", "expected"), VIA_PLANS, ids=[v for v, _ in VIA_PLANS])
def test_via_special_literals_are_ignored(via: str, expected: list[str]) -> None:
    targets, _, reason = plan(via, ZONE)
    assert endpoints(targets) == expected
    if "0.0.0.0" in via or "[::]" in via or "255.255" in via:
        assert "ignored" in str(reason)


def test_via_reason_names_what_was_ignored() -> None:
    targets, _, reason = plan("SIP/2.0/UDP [::];received=0.0.0.0;maddr=255.255.255.255")
    assert targets == []
    assert "received ignored: 0.0.0.0 is the unspecified address" in str(reason)
    assert "maddr ignored: 255.255.255.255 is the limited broadcast address" in str(reason)
    assert "sent-by ignored: :: is the unspecified address" in str(reason)


def test_via_maddr_name_resolving_to_special_addresses_is_skipped() -> None:
    zone = (
        "$TTL 300\n"
        "zero.example.com. IN A 0.0.0.0\n"
        "zero.example.com. IN AAAA ::\n"
        "mcast.example.com. IN A 224.0.1.75\n"
    )
    for name in ("zero.example.com", "mcast.example.com"):
        targets, _, _ = plan(f"SIP/2.0/UDP 192.0.2.7;maddr={name};received=198.51.100.1", zone)
        assert endpoints(targets) == ["udp 198.51.100.1:5060", "udp 192.0.2.7:5060"]


def test_via_multicast_maddr_needs_udp() -> None:
    # maddr plays no part on reliable transports (RFC 3261 §18.2.2), multicast or not.
    targets, _, _ = plan("SIP/2.0/TCP 192.0.2.7;maddr=224.0.1.75")
    assert endpoints(targets) == ["tcp 192.0.2.7:5060"]
