"""Property-based tests (hypothesis): hostile caller input and RFC 2782 ordering."""

from __future__ import annotations

import math
import random
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asip_locate import (
    InvalidUriError,
    InvalidViaError,
    LocateError,
    SipUri,
    SrvRecord,
    Via,
    is_special_destination,
    parse_uri,
    parse_via,
)
from asip_locate._order import srv_order

# --- parse_uri ----------------------------------------------------------------------

URI_ALPHABET = "sipSIP:@;=?&[]%.-_+0123456789abcdefxyzABCDEF/!~*'()$, \t"


@given(st.text())
def test_parse_uri_on_any_text_raises_only_invalid_uri_error(text: str) -> None:
    error: InvalidUriError | None = None
    try:
        uri = parse_uri(text)
    except InvalidUriError as exc:
        error = exc
    if error is None:
        assert isinstance(uri, SipUri)
    else:
        assert isinstance(error, LocateError)
        assert isinstance(error, ValueError)
        assert str(error)


@given(st.text(alphabet=URI_ALPHABET, max_size=60))
def test_parse_uri_on_uri_like_text_raises_only_invalid_uri_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except InvalidUriError:
        return
    assert parse_uri(str(uri)) == uri


@given(st.one_of(st.binary(), st.integers(), st.none(), st.lists(st.text())))
def test_parse_uri_on_non_strings(value: object) -> None:
    try:
        parse_uri(value)  # type: ignore[arg-type]
    except InvalidUriError:
        pass
    else:  # pragma: no cover - a non-string must never parse
        raise AssertionError(value)


def _label() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True)


def _top_label() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Za-z](?:[A-Za-z0-9-]{0,6}[A-Za-z0-9])?", fullmatch=True)


hostnames = st.builds(
    lambda labels, top, dot: ".".join([*labels, top]) + dot,
    st.lists(_label(), max_size=4),
    _top_label(),
    st.sampled_from(["", "."]),
)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a.exploded if a.packed[0] % 2 else a}]")
hosts = st.one_of(hostnames, ipv4, ipv6)
# URIs refuse unspecified, broadcast and multicast literals (asip_locate._policy).
uri_ipv4 = st.ip_addresses(v=4).filter(lambda a: not is_special_destination(a)).map(str)
uri_ipv6 = (
    st.ip_addresses(v=6)
    .filter(lambda a: not is_special_destination(a))
    .map(lambda a: f"[{a.exploded if a.packed[0] % 2 else a}]")
)
uri_hosts = st.one_of(hostnames, uri_ipv4, uri_ipv6)
users = st.from_regex(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2}){1,12}", fullmatch=True)
passwords = st.from_regex(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2}){0,8}", fullmatch=True)
param_names = st.from_regex(r"[a-z][a-z0-9\-]{0,8}", fullmatch=True).filter(
    lambda name: name not in ("transport", "maddr")
)
param_values = st.from_regex(
    r"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2}){1,10}", fullmatch=True
)
hchars = r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})"
headers = st.from_regex(
    rf"{hchars}{{1,6}}={hchars}{{0,6}}(?:&{hchars}{{1,6}}={hchars}{{0,6}}){{0,2}}", fullmatch=True
)


@st.composite
def sip_uris(draw: st.DrawFn) -> str:
    """Text of a valid SIP/SIPS URI (RFC 3261 §25.1), in varied spelling."""
    text = draw(st.sampled_from(["sip:", "sips:", "SIP:", "Sips:"]))
    if draw(st.booleans()):
        text += draw(users)
        if draw(st.booleans()):
            text += ":" + draw(passwords)
        text += "@"
    text += draw(uri_hosts)
    if draw(st.booleans()):
        text += f":{draw(st.integers(1, 65535))}"
    names = draw(st.lists(param_names, max_size=3, unique=True))
    special = draw(
        st.lists(
            st.sampled_from(["transport=UDP", "transport=tcp", "transport=tls", "transport=x-y"])
            | st.builds(lambda h: f"maddr={h}", st.one_of(hostnames, uri_ipv4)),
            max_size=1,
        )
    )
    for name in names:
        value = draw(st.none() | param_values)
        text += f";{name}" if value is None else f";{name}={value}"
    for item in special:
        text += f";{item}"
    if draw(st.booleans()):
        text += "?" + draw(headers)
    return text


@given(sip_uris())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_valid_uris_parse_and_round_trip(text: str) -> None:
    uri = parse_uri(text)
    again = parse_uri(str(uri))
    assert again == uri
    assert str(again) == str(uri)
    assert uri.scheme in ("sip", "sips")
    assert uri.host == uri.host.lower()
    assert not uri.host.endswith(".")


@given(sip_uris(), st.integers(0, 200), st.characters())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mangled_uris_raise_only_invalid_uri_error(text: str, at: int, char: str) -> None:
    at %= len(text) + 1
    for mangled in (text[:at], text[:at] + char + text[at:], text[:at] + text[at + 1 :]):
        try:
            uri = parse_uri(mangled)
        except InvalidUriError:
            continue
        assert parse_uri(str(uri)) == uri


# --- srv_order ----------------------------------------------------------------------

srv_sets = st.lists(
    st.builds(
        SrvRecord,
        priority=st.integers(0, 4) | st.integers(0, 65535),
        weight=st.integers(0, 3) | st.integers(0, 65535),
        port=st.integers(0, 65535),
        target=st.from_regex(r"[a-z]{1,8}\.example\.test", fullmatch=True),
    ),
    max_size=30,
)


@given(srv_sets, st.integers())
def test_srv_order_is_a_permutation(records: list[SrvRecord], seed: int) -> None:
    ordered = srv_order(records, random.Random(seed))
    assert Counter(ordered) == Counter(records)


@given(srv_sets, st.integers())
def test_srv_order_never_decreases_priority(records: list[SrvRecord], seed: int) -> None:
    priorities = [r.priority for r in srv_order(records, random.Random(seed))]
    assert priorities == sorted(priorities)


@given(srv_sets, st.integers())
def test_srv_order_with_a_fixed_seed_is_deterministic(records: list[SrvRecord], seed: int) -> None:
    first = srv_order(records, random.Random(seed))
    assert srv_order(records, random.Random(seed)) == first
    assert srv_order(list(records), random.Random(seed)) == first


@given(srv_sets)
def test_srv_order_does_not_change_its_input(records: list[SrvRecord]) -> None:
    copy = list(records)
    srv_order(records, random.Random(0))
    assert records == copy


def _within(count: int, trials: int, p: float) -> bool:
    """True when ``count`` successes are within 5 standard deviations of ``trials * p``."""
    sigma = math.sqrt(trials * p * (1 - p))
    return abs(count - trials * p) <= 5 * sigma + 1


def test_srv_weights_are_respected_over_many_trials() -> None:
    # RFC 2782: draw R in [0, total]; the first record whose running sum >= R wins.
    # With weights w and total T, record i comes first with (w_i + [i is first]) / (T + 1).
    records = [SrvRecord(10, w, 5060, f"h{w}.example.test") for w in (1, 10, 30, 59)]
    total = sum(r.weight for r in records)
    rng = random.Random(2782)  # seeded: the test is exact, never flaky
    trials = 20_000
    firsts = Counter(srv_order(records, rng)[0] for _ in range(trials))
    for index, record in enumerate(records):
        p = (record.weight + (index == 0)) / (total + 1)
        assert _within(firsts[record], trials, p), (record, firsts[record], trials * p)


def test_srv_zero_weight_records_come_first_rarely() -> None:
    zero = SrvRecord(10, 0, 5060, "zero.example.test")
    heavy = SrvRecord(10, 99, 5060, "heavy.example.test")
    rng = random.Random(7)
    trials = 20_000
    firsts = Counter(srv_order([heavy, zero], rng)[0] for _ in range(trials))
    assert _within(firsts[zero], trials, 1 / 100)


def test_srv_all_zero_weights_spread_uniformly() -> None:
    records = [SrvRecord(10, 0, 5060, f"h{i}.example.test") for i in range(4)]
    rng = random.Random(11)
    trials = 20_000
    firsts = Counter(srv_order(records, rng)[0] for _ in range(trials))
    assert all(_within(firsts[r], trials, 1 / 4) for r in records)


def test_srv_lower_priority_is_never_before_higher() -> None:
    records = [SrvRecord(p, w, 5060, f"h{p}-{w}.example.test") for p in (2, 1) for w in (0, 50)]
    rng = random.Random(3)
    for _ in range(2_000):
        assert [r.priority for r in srv_order(records, rng)] == [1, 1, 2, 2]


def test_user_may_hold_question_mark_and_semicolon() -> None:
    # RFC 3261 §25.1 user-unreserved: "&" "=" "+" "$" "," ";" "?" "/"
    uri = parse_uri("sip:?;a=b/c@example.test;transport=tcp?subject=x")
    assert (uri.user, uri.host, uri.transport, uri.headers) == (
        "?;a=b/c",
        "example.test",
        "tcp",
        "subject=x",
    )
    assert parse_uri(str(uri)) == uri


# --- parse_via ------------------------------------------------------------------------

VIA_ALPHABET = (
    "SIPsip/2.0UDPTCPLSWtls;=:,[]. \t\r\n\"rportbranchreceivedmaddrttl0123456789abcxyz-_!%*+`'~"
)


@given(st.text())
def test_parse_via_on_any_text_raises_only_invalid_via_error(text: str) -> None:
    error: InvalidViaError | None = None
    try:
        via = parse_via(text)
    except InvalidViaError as exc:
        error = exc
    if error is None:
        assert isinstance(via, Via)
    else:
        assert isinstance(error, InvalidUriError)
        assert isinstance(error, LocateError)
        assert str(error).startswith("invalid Via ")


@given(st.text(alphabet=VIA_ALPHABET, max_size=80))
def test_parse_via_on_via_like_text(text: str) -> None:
    try:
        via = parse_via(text)
    except InvalidViaError:
        return
    assert parse_via(str(via)) == via


tokens = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]{1,10}", fullmatch=True)
via_param_names = st.from_regex(r"[a-z][a-z0-9\-]{0,8}", fullmatch=True).filter(
    lambda name: name not in ("received", "rport", "maddr", "ttl", "branch")
)


@st.composite
def via_values(draw: st.DrawFn) -> str:
    """Text of a valid Via value (RFC 3261 §20.42, §25.1; RFC 3581), varied spelling."""
    transport = draw(st.sampled_from(["UDP", "tcp", "TLS", "SCTP", "TLS-SCTP", "WS", "wss"]))
    slash = draw(st.sampled_from(["/", " / "]))
    text = draw(st.sampled_from(["", "Via: ", "v: "]))
    text += f"SIP{slash}2.0{slash}{transport} {draw(hosts)}"
    if draw(st.booleans()):
        text += f":{draw(st.integers(1, 65535))}"
    params: list[str] = []
    if draw(st.booleans()):
        params.append("branch=z9hG4bK" + draw(tokens))
    if draw(st.booleans()):
        params.append(f"received={draw(st.ip_addresses())}")
    if draw(st.booleans()):
        params.append(draw(st.sampled_from(["rport", "rport=5060", "rport=65535"])))
    if draw(st.booleans()):
        params.append(f"ttl={draw(st.integers(0, 255))}")
    if draw(st.booleans()):
        params.append(f"maddr={draw(st.one_of(hostnames, ipv4))}")
    for name in draw(st.lists(via_param_names, max_size=3, unique=True)):
        value = draw(st.none() | tokens | st.just('"quoted value"'))
        params.append(name if value is None else f"{name}={value}")
    params = draw(st.permutations(params))
    semi = draw(st.sampled_from([";", " ; "]))
    text += "".join(semi + p for p in params)
    if draw(st.booleans()):
        text += ", SIP/2.0/UDP other.example.test;branch=z9hG4bKx"
    return text


@given(via_values())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_valid_via_values_parse_and_round_trip(text: str) -> None:
    via = parse_via(text)
    again = parse_via(str(via))
    assert again == via
    assert str(again) == str(via)
    assert via.host == via.host.lower()


@given(via_values(), st.integers(0, 300), st.characters())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mangled_via_values_raise_only_invalid_via_error(text: str, at: int, char: str) -> None:
    at %= len(text) + 1
    for mangled in (text[:at], text[:at] + char + text[at:], text[:at] + text[at + 1 :]):
        try:
            via = parse_via(mangled)
        except InvalidViaError:
            continue
        assert parse_via(str(via)) == via
