"""The OPTIONS builder and the strict response parser (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asip_locate import InvalidUriError, Transport, parse_retry_after, parse_uri
from asip_locate._sip import (
    MAX_HEADERS,
    OptionsRequest,
    SipMessageError,
    certificate_identities,
    certificate_matches,
    parse_datagram,
    parse_head,
    request_uri_for,
)


def request(transport: Transport = Transport.UDP, host: str = "127.0.0.1") -> OptionsRequest:
    return OptionsRequest(
        request_uri="sip:alice@example.test",
        transport=transport,
        local_host=host,
        local_port=40000,
        branch="z9hG4bK1234abcd",
        from_tag="f00d",
        call_id="c411@asip-locate",
    )


def response(
    status: str = "200 OK",
    *,
    via: str = "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK1234abcd;rport=40000",
    extra: str = "",
    cseq: str = "1 OPTIONS",
    call_id: str = "c411@asip-locate",
    length: str = "Content-Length: 0\r\n",
    body: str = "",
) -> bytes:
    return (
        f"SIP/2.0 {status}\r\nVia: {via}\r\nFrom: <sip:asip-locate@127.0.0.1>;tag=f00d\r\n"
        f"To: <sip:alice@example.test>;tag=x\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n"
        f"{extra}{length}\r\n{body}"
    ).encode()


def test_options_request_is_well_formed() -> None:
    text = request(Transport.TLS).encode().decode()
    lines = text.split("\r\n")
    assert text.endswith("\r\n\r\n")
    assert lines[0] == "OPTIONS sip:alice@example.test SIP/2.0"
    assert lines[1] == "Via: SIP/2.0/TLS 127.0.0.1:40000;branch=z9hG4bK1234abcd;rport"
    assert "Max-Forwards: 70" in lines
    assert "From: <sip:asip-locate@127.0.0.1>;tag=f00d" in lines
    assert "To: <sip:alice@example.test>" in lines
    assert "Call-ID: c411@asip-locate" in lines
    assert "CSeq: 1 OPTIONS" in lines
    assert lines[-3] == "Content-Length: 0"


def test_via_brackets_ipv6_and_names_transport() -> None:
    assert request(Transport.TCP, "::1").via.startswith("SIP/2.0/TCP [::1]:40000;")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("branch", "1234"),  # no magic cookie
        ("call_id", "a b"),
        ("request_uri", "sip:a\r\nX: y"),
        ("local_port", 0),
    ],
)
def test_options_request_refuses_bad_fields(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "request_uri": "sip:example.test",
        "transport": Transport.UDP,
        "local_host": "127.0.0.1",
        "local_port": 5060,
        "branch": "z9hG4bKx",
        "from_tag": "t",
        "call_id": "c",
    }
    fields[field] = value
    with pytest.raises(ValueError):
        OptionsRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("example.test", "sip:example.test"),
        ("example.test:5070", "sip:example.test:5070"),
        ("SIP:alice@example.test;transport=tcp", "sip:alice@example.test;transport=tcp"),
        ("sips:example.test?subject=x", "sips:example.test"),
        ("localhost:5060", "sip:localhost:5060"),
        ("[::1]:5070", "sip:[::1]:5070"),
        # RFC 3261 §25.1: "?" and ";" are user-unreserved; the user part stays intact.
        ("sip:al?ce@example.test", "sip:al?ce@example.test"),
        ("sip:a?b=c@example.test?subject=x", "sip:a?b=c@example.test"),
        ("sip:+1-555;npdi;rn=x@gw.test;user=phone?a=b", "sip:+1-555;npdi;rn=x@gw.test;user=phone"),
        # §19.1.5: method is not placed in the Request-URI; unknown parameters are.
        ("sip:b@example.test;method=INVITE;lr;x-y=z", "sip:b@example.test;lr;x-y=z"),
        ("sip:b@example.test;METHOD=REGISTER?x=y", "sip:b@example.test"),
        ("sip:method=x@e.test;maddr=192.0.2.1;ttl=1", "sip:method=x@e.test;maddr=192.0.2.1;ttl=1"),
        ("SIPS:Bob:pw@E.TEST:5061;Transport=TCP", "sips:Bob:pw@E.TEST:5061;Transport=TCP"),
    ],
)  # fmt: skip
def test_request_uri_for(uri: str, expected: str) -> None:
    assert request_uri_for(uri) == expected


def test_request_uri_for_refuses_bad_uri() -> None:
    with pytest.raises(InvalidUriError):
        request_uri_for("sip:")


def test_parse_matching_final_response() -> None:
    parsed = parse_datagram(response())
    assert (parsed.status, parsed.reason, parsed.is_final) == (200, "OK", True)
    assert parsed.matches(request())
    assert parsed.cseq == (1, "OPTIONS")
    assert parsed.retry_after is None


def test_provisional_is_not_final() -> None:
    assert not parse_datagram(response("100 Trying")).is_final


def test_compact_forms_folding_and_leading_crlf() -> None:
    data = (
        b"\r\nSIP/2.0 503 Service Unavailable\r\n"
        b"v: SIP/2.0/UDP 127.0.0.1:40000\r\n ;branch=z9hG4bK1234abcd\r\n"
        b"i: c411@asip-locate\r\nCSeq: 1 OPTIONS\r\nRetry-After: 120 (maintenance);duration=60\r\n"
        b"l: 0\r\n\r\n"
    )
    parsed = parse_datagram(data)
    assert parsed.matches(request())
    assert parsed.retry_after == 120.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("18000;duration=3600", 18000.0), ("x", None), ("99999999999", 2**31 - 1)],
)
def test_retry_after(value: str, expected: float | None) -> None:
    parsed = parse_datagram(response("503 Busy", extra=f"Retry-After: {value}\r\n"))
    assert parsed.retry_after == expected
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120 (in a meeting);duration=3600", 120.0),
        (" 5 ", 5.0),
        ("300 (a (nested) comment)", 300.0),
        ("-1", None),
        ("1.5", None),
        ("Fri, 04 Dec 2026 19:00:00 GMT", None),  # RFC 2616 dates are not SIP's
        ("", None),
        ("10 ;", 10.0),
    ],
)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


@given(st.text(max_size=40))
def test_parse_retry_after_never_raises(value: str) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or 0 <= seconds <= 2**31 - 1


@given(
    st.from_regex(
        r"sip:[a-z?;=]{1,8}@[a-z]{1,8}\.test(;[a-z]{1,6}=[a-z]{1,4}){0,3}", fullmatch=True
    )
)
def test_request_uri_keeps_the_user_part(uri: str) -> None:
    try:
        parsed = parse_uri(uri)
    except InvalidUriError:
        return
    request_uri = request_uri_for(uri)
    assert parse_uri(request_uri).user == parsed.user
    assert request_uri.startswith(uri.split("@")[0] + "@")
    assert "method" not in [name for name, _ in parse_uri(request_uri).params]


@pytest.mark.parametrize(
    "changes",
    [
        {"via": "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKother"},
        {"via": "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK1234abcd, SIP/2.0/UDP h;branch=z9"},
        {"cseq": "2 OPTIONS"},
        {"cseq": "1 INVITE"},
        {"call_id": "other"},
    ],
)
def test_responses_of_other_transactions_do_not_match(changes: dict[str, str]) -> None:
    assert not parse_datagram(response(**changes)).matches(request())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: x",  # no end of headers
        b"SIP/2.0 99 Low\r\n\r\n",
        b"SIP/2.0 700 High\r\n\r\n",
        b"SIP/2.0 200\r\n\r\n",  # no SP after the code
        b"SIP/2.0 200 OK\r\nno colon\r\n\r\n",
        b"SIP/2.0 200 OK\r\nBad Name: x\r\n\r\n",
        b"SIP/2.0 200 OK\r\n continuation first\r\n\r\n",
        b"SIP/2.0 200 OK\r\nA: b\nC: d\r\n\r\n",  # bare LF
        b"SIP/2.0 200 OK\r\nA: \x00\r\n\r\n",
        b"SIP/2.0 200 \xff\xfe\r\n\r\n",  # not UTF-8
        b"SIP/2.0 200 OK\r\n" + b"A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n",
        b"SIP/2.0 200 OK\r\nX: " + b"a" * 20_000 + b"\r\n\r\n",
        b"SIP/2.0 200 OK\r\n" + b"\r\n" + b"x" * 70_000,
    ],
)
def test_malformed_responses_raise_sip_message_error(data: bytes) -> None:
    with pytest.raises(SipMessageError):
        parse_datagram(data)


def test_content_length_beyond_the_datagram_is_malformed() -> None:
    with pytest.raises(SipMessageError):
        parse_datagram(response(length="Content-Length: 10\r\n", body="abc"))
    assert parse_datagram(response(length="Content-Length: 3\r\n", body="abcdef")).body_length == 3


@pytest.mark.parametrize(
    "changes",
    [
        {"cseq": "OPTIONS"},
        {"cseq": "1 OPTIONS\r\nCSeq: 1 OPTIONS"},
        {"call_id": "a\r\nCall-ID: b"},
        {"via": "HTTP/1.1 host;branch=z9hG4bK1234abcd"},
        {"via": 'SIP/2.0/UDP h;x="unterminated;branch=z9hG4bK1234abcd'},
        {"length": "Content-Length: -1\r\n"},
    ],
)
def test_malformed_headers_raise_when_matched(changes: dict[str, str]) -> None:
    parsed = parse_head(response(**changes))

    def use() -> None:
        parsed.matches(request())
        _ = parsed.content_length

    with pytest.raises(SipMessageError):
        use()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parser_never_crashes_on_random_bytes(data: bytes) -> None:
    for candidate in (data, b"SIP/2.0 200 OK\r\n" + data, response()[:40] + data):
        try:
            parsed = parse_datagram(candidate)
            parsed.matches(request())
            _ = (parsed.retry_after, parsed.content_length, parsed.describe())
        except SipMessageError:
            pass


def cert(*alt_names: tuple[str, str], cn: str = "ignored.test") -> dict[str, object]:
    result: dict[str, object] = {"subject": ((("commonName", cn),),)}
    if alt_names:
        result["subjectAltName"] = alt_names
    return result


def test_certificate_dns_name_matches_whole_name_caselessly() -> None:
    assert certificate_matches(cert(("DNS", "Example.TEST")), "example.test.")
    assert not certificate_matches(cert(("DNS", "example.test")), "sip.example.test")
    assert not certificate_matches(cert(("DNS", "sip.example.test")), "example.test")


def test_certificate_wildcards_are_literal() -> None:
    # RFC 5922 §7.2: "*.example.test" matches only "*.example.test".
    assert not certificate_matches(cert(("DNS", "*.example.test")), "sip.example.test")
    assert not certificate_matches(cert(("DNS", ".example.test")), "sip.example.test")


def test_sip_uri_identities_take_precedence_over_dns_names() -> None:
    mixed = cert(("URI", "sip:example.test"), ("DNS", "other.test"))
    assert certificate_identities(mixed) == {"example.test"}
    assert not certificate_matches(mixed, "other.test")
    # A user part or another scheme is not a domain identity (RFC 5922 §7.1).
    assert certificate_identities(cert(("URI", "sip:bob@x.test"), ("DNS", "d.test"))) == {"d.test"}
    assert certificate_identities(cert(("URI", "SIP:x.test:5061;transport=tls"))) == {"x.test"}
    assert certificate_identities(cert(("URI", "sips:x.test"))) == set()


def test_common_name_counts_only_without_subject_alt_name() -> None:
    assert certificate_matches(cert(cn="example.test"), "example.test")
    assert not certificate_matches(cert(("DNS", "a.test"), cn="example.test"), "example.test")


def test_ip_literal_domain_uses_ip_address_entries() -> None:
    assert certificate_matches(cert(("IP Address", "127.0.0.1")), "127.0.0.1")
    assert certificate_matches(cert(("IP Address", "0:0:0:0:0:0:0:1")), "[::1]")
    assert not certificate_matches(cert(("DNS", "127.0.0.1")), "127.0.0.1")
