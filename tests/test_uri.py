from __future__ import annotations

import pytest

from asip_locate import InvalidUriError, parse_uri


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "transport", "target"),
    [
        ("sip:alice@192.0.2.10", "sip", "192.0.2.10", None, None, "192.0.2.10"),
        ("SIPS:Bob@Example.COM", "sips", "example.com", None, None, "example.com"),
        ("sip:[2001:DB8::1]:5070", "sip", "2001:db8::1", 5070, None, "2001:db8::1"),
        ("sip:example.com;transport=TCP", "sip", "example.com", None, "tcp", "example.com"),
        ("sip:example.com.;lr", "sip", "example.com", None, None, "example.com"),
        (
            "sip:b@example.com;maddr=Proxy.Example.NET",
            "sip",
            "example.com",
            None,
            None,
            "proxy.example.net",
        ),
        ("sip:b@example.com;maddr=[2001:db8::9]", "sip", "example.com", None, None, "2001:db8::9"),
        ("example.com", "sip", "example.com", None, None, "example.com"),
        ("example.com:5080", "sip", "example.com", 5080, None, "example.com"),
        ("[::1]:5070", "sip", "::1", 5070, None, "::1"),
        (
            "sip:+1-212-555;npdi;rn=x@gw.example.com;user=phone?subject=hi&x=",
            "sip",
            "gw.example.com",
            None,
            None,
            "gw.example.com",
        ),
        ("sip:alice:secret@example.com:5060", "sip", "example.com", 5060, None, "example.com"),
        ("  sip:example.com  ", "sip", "example.com", None, None, "example.com"),
    ],
)
def test_valid(
    text: str, scheme: str, host: str, port: int | None, transport: str | None, target: str
) -> None:
    uri = parse_uri(text)
    assert (uri.scheme, uri.host, uri.port, uri.transport, uri.target) == (
        scheme,
        host,
        port,
        transport,
        target,
    )
    assert parse_uri(str(uri)) == uri


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty input"),
        ("tel:+12125551212", "unsupported scheme 'tel'"),
        ("http://example.com", "unsupported scheme 'http'"),
        ("sip:", "empty host"),
        ("sip:exa mple.com", "printable ASCII without spaces"),
        ("sip:exämple.com", "printable ASCII"),
        ("sip:ex_ample.com", "bad host name label"),
        ("sip:-bad.example.com", "bad host name label"),
        ("sip:1.2.3", "numeric top label"),
        ("sip:256.1.1.1", "bad IPv4 address"),
        ("sip:[2001:db8::zz]", "bad IPv6 reference"),
        ("sip:[2001:db8::1", "unterminated IPv6 reference"),
        ("sip:example.com:0", "out of range"),
        ("sip:example.com:65536", "out of range"),
        ("sip:example.com:50x", "bad port"),
        ("sip:a@b@example.com", "bad user part"),
        ("sip:example.com;transport", "needs a value"),
        ("sip:example.com;transport=tcp;transport=udp", "appears twice"),
        ("sip:example.com;maddr=bad_name", "bad host name label"),
        ("sip:example.com;=x", "bad URI parameter"),
        ("sip:example.com?nokey", "bad URI headers"),
        ("sip:" + "a" * 64 + ".example.com", "bad host name label"),
        ("sip:" + ".".join(["abcdefghi"] * 26) + ".com", "longer than 253"),
        ("sip:example.com\x00", "printable ASCII"),
    ],
)
def test_invalid(text: str, reason: str) -> None:
    with pytest.raises(InvalidUriError) as info:
        parse_uri(text)
    assert reason in str(info.value)
    assert repr(text) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_string_input() -> None:
    with pytest.raises(InvalidUriError):
        parse_uri(None)  # type: ignore[arg-type]
