"""asip-locate ping: OPTIONS over UDP/TCP/TLS with failover, against a real Kamailio.

The Kamailio tests skip when it is missing and fail under CI=true. The tests at the
top use small Python SIP responders for what Kamailio will not do (drop, garble,
send provisionals).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import re
import shutil
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from asip_locate import FailureReason, IpStrategy, LocateOptions, Locator, Target, Transport
from asip_locate._ping import Attempt, Outcome, PingOptions, ping, send_options
from asip_locate._stream import TargetStream
from asip_locate.cli import main
from asip_locate.testing import ZoneServer
from tests.conftest import IN_CI
from tests.kamailio import Kamailio, Listener, Pki, free_ports, require_kamailio
from tests.sip_responder import reply_to, udp_responder

FAST = PingOptions(timeout=1.0, t1=0.05)


class Recording:
    """A FailoverLocator that records the reports and passes them on."""

    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self.failures: list[tuple[Target, FailureReason, float | None]] = []
        self.successes: list[Target] = []

    def locate(self, uri: str, *, as_sips: bool = False) -> TargetStream:
        return self.locator.locate(uri, as_sips=as_sips)

    def report_failure(
        self,
        target: Target,
        *,
        reason: FailureReason = FailureReason.TIMEOUT,
        retry_after: float | None = None,
    ) -> None:
        self.failures.append((target, reason, retry_after))
        self.locator.report_failure(target, reason=reason, retry_after=retry_after)

    def report_success(self, target: Target) -> None:
        self.successes.append(target)
        self.locator.report_success(target)


def target(transport: Transport, address: str, port: int, tls_name: str | None = None) -> Target:
    return Target(transport, ipaddress.ip_address(address), port, "peer.test", tls_name)


async def test_udp_retransmits_until_the_timeout() -> None:
    server, port = await udp_responder(lambda request: [])
    try:
        attempt = await send_options(
            target(Transport.UDP, "127.0.0.1", port),
            "sip:a.test",
            PingOptions(timeout=0.4, t1=0.05),
        )
    finally:
        assert server.transport is not None
        server.transport.close()
    assert attempt.outcome is Outcome.TIMEOUT
    assert attempt.failure_reason is FailureReason.TIMEOUT
    assert attempt.sends >= 2
    assert len(server.received) == attempt.sends
    assert len(set(server.received)) == 1  # retransmissions are identical (§17.1.2.2)
    assert b"Via: SIP/2.0/UDP 127.0.0.1:" in server.received[0]


async def test_udp_provisional_then_final_and_stray_responses() -> None:
    def answer(request: bytes) -> list[bytes]:
        stray = request.replace(b"branch=z9hG4bK", b"branch=z9hG4bKstray")
        return [reply_to(stray, "200 Not Yours"), reply_to(request, "100 Trying"),
                reply_to(request, "404 Not Here")]  # fmt: skip

    server, port = await udp_responder(answer)
    try:
        attempt = await send_options(target(Transport.UDP, "127.0.0.1", port), "a.test", FAST)
    finally:
        assert server.transport is not None
        server.transport.close()
    assert attempt.outcome is Outcome.ANSWERED  # any final response but 503 is an answer
    assert attempt.status == 404
    assert attempt.rtt is not None
    assert attempt.failure_reason is None


async def test_udp_garbage_is_a_failed_attempt() -> None:
    # Only garbage until the timeout: the server is there but speaks no SIP.
    server, port = await udp_responder(lambda request: [b"SIP/2.0 2OO OK\r\n\r\n"])
    try:
        attempt = await send_options(target(Transport.UDP, "127.0.0.1", port), "a.test", FAST)
    finally:
        assert server.transport is not None
        server.transport.close()
    assert attempt.outcome is Outcome.MALFORMED
    assert attempt.failure_reason is FailureReason.OTHER
    assert "status line" in attempt.detail
    assert 1 <= attempt.discarded <= attempt.sends  # one garbage datagram per send
    assert f"{attempt.discarded} discarded" in attempt.detail


GARBAGE = [
    b"\x00\xff not SIP at all",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n",  # no Call-ID
]


def other_transaction(request: bytes) -> bytes:
    return reply_to(request.replace(b"Call-ID: ", b"Call-ID: other-"), "200 Not Yours")


async def test_udp_garbage_before_a_valid_200_is_discarded_and_counted() -> None:
    server, port = await udp_responder(
        lambda request: [*GARBAGE, other_transaction(request), reply_to(request, "200 OK")]
    )
    try:
        attempt = await send_options(target(Transport.UDP, "127.0.0.1", port), "a.test", FAST)
    finally:
        assert server.transport is not None
        server.transport.close()
    assert (attempt.outcome, attempt.status, attempt.failure_reason) == (
        Outcome.ANSWERED,
        200,
        None,
    )
    assert attempt.discarded == 4
    assert attempt.describe().endswith("(4 discarded)")
    assert attempt.insecure is False


async def test_udp_keeps_waiting_past_garbage_across_retransmissions() -> None:
    requests: list[bytes] = []

    def answer(request: bytes) -> list[bytes]:
        requests.append(request)
        # The first transmission gets only garbage; the retransmission the real 200.
        return [GARBAGE[0]] if len(requests) == 1 else [reply_to(request, "200 OK")]

    server, port = await udp_responder(answer)
    try:
        attempt = await send_options(target(Transport.UDP, "127.0.0.1", port), "a.test", FAST)
    finally:
        assert server.transport is not None
        server.transport.close()
    assert attempt.outcome is Outcome.ANSWERED
    assert attempt.sends >= 2
    assert attempt.discarded == 1


async def test_udp_other_transactions_only_is_a_timeout() -> None:
    server, port = await udp_responder(lambda request: [other_transaction(request)])
    try:
        attempt = await send_options(
            target(Transport.UDP, "127.0.0.1", port), "a.test", PingOptions(timeout=0.3, t1=0.05)
        )
    finally:
        assert server.transport is not None
        server.transport.close()
    assert attempt.outcome is Outcome.TIMEOUT
    assert 1 <= attempt.discarded <= attempt.sends
    assert f"({attempt.discarded} discarded)" in attempt.detail


async def test_a_stray_datagram_does_not_mark_a_healthy_server_failed() -> None:
    server, port = await udp_responder(lambda request: [GARBAGE[0], reply_to(request, "200 OK")])
    try:
        async with Locator(LocateOptions(nameservers=("127.0.0.1:9",))) as real:
            recording = Recording(real)
            attempts = await ping(recording, f"sip:127.0.0.1:{port}", FAST)
            health = real.health()
    finally:
        assert server.transport is not None
        server.transport.close()
    assert [(a.outcome, a.discarded) for a in attempts] == [(Outcome.ANSWERED, 1)]
    assert recording.failures == []
    assert [str(t.address) for t in recording.successes] == ["127.0.0.1"]
    assert health == []


@pytest.mark.parametrize(
    ("uri", "request_uri"),
    [
        # RFC 3261 §25.1: "?" is user-unreserved; the user part goes out intact.
        ("sip:al?ce@127.0.0.1:{port}", "sip:al?ce@127.0.0.1:{port}"),
        ("sip:a?b=c@127.0.0.1:{port}?subject=x", "sip:a?b=c@127.0.0.1:{port}"),
        # RFC 3261 §19.1.5: method and headers are stripped; other parameters stay.
        (
            "sip:bob@127.0.0.1:{port};method=INVITE;lr;x-y=z?priority=urgent",
            "sip:bob@127.0.0.1:{port};lr;x-y=z",
        ),
    ],
)
async def test_request_uri_on_the_wire(uri: str, request_uri: str) -> None:
    server, port = await udp_responder(lambda request: [reply_to(request, "200 OK")])
    try:
        attempt = await send_options(
            target(Transport.UDP, "127.0.0.1", port), uri.format(port=port), FAST
        )
    finally:
        assert server.transport is not None
        server.transport.close()
    assert attempt.outcome is Outcome.ANSWERED
    head = server.received[0].decode().split("\r\n")
    assert head[0] == f"OPTIONS {request_uri.format(port=port)} SIP/2.0"
    assert f"To: <{request_uri.format(port=port)}>" in head


async def test_tcp_discards_responses_of_another_transaction() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        writer.write(other_transaction(request) + reply_to(request, "200 OK"))
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        attempt = await send_options(target(Transport.TCP, "127.0.0.1", port), "a.test", FAST)
    finally:
        server.close()
        await server.wait_closed()
    assert (attempt.outcome, attempt.status, attempt.discarded) == (Outcome.ANSWERED, 200, 1)


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and a certificate for example.test (openssl CLI)."""
    if shutil.which("openssl") is None:
        if IN_CI:
            pytest.fail("openssl is missing")
        pytest.skip("openssl is missing")
    pki = Pki(tmp_path_factory.mktemp("pki"))
    cert, key = pki.issue("example.test")
    return pki.ca, cert, key


@pytest.mark.parametrize("verify", [True, False])
async def test_insecure_tls_attempts_are_marked(
    tls_pki: tuple[Path, Path, Path], verify: bool
) -> None:
    ca, cert, key = tls_pki
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ssl.SSLError):
            request = await reader.readuntil(b"\r\n\r\n")
            writer.write(reply_to(request, "200 OK"))
            await writer.drain()
            await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    options = PingOptions(timeout=2.0, verify=verify, cafile=str(ca))
    assert options.insecure is not verify
    try:
        where = target(Transport.TLS, "127.0.0.1", port, tls_name="example.test")
        attempt = await send_options(where, "sips:example.test", options)
        plain = await send_options(target(Transport.UDP, "127.0.0.1", 9), "a.test", options)
    finally:
        server.close()
        await server.wait_closed()
    assert attempt.outcome is Outcome.ANSWERED, attempt.detail
    assert attempt.insecure is not verify
    assert attempt.describe().endswith("(certificate not checked)") is not verify
    assert plain.insecure is False  # no certificate to check on UDP


async def test_tcp_without_content_length_and_closed_connections() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if b"close-me" not in request:
            writer.write(reply_to(request, "200 OK").replace(b"Content-Length: 0\r\n", b""))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        where = target(Transport.TCP, "127.0.0.1", port)
        malformed = await send_options(where, "sip:a.test", FAST)
        closed = await send_options(where, "sip:close-me.test", FAST)
    finally:
        server.close()
        await server.wait_closed()
    assert malformed.outcome is Outcome.MALFORMED
    assert "Content-Length" in malformed.detail
    assert closed.outcome is Outcome.TRANSPORT
    assert closed.detail == "connection closed by the server"


async def test_ws_and_sctp_targets_are_skipped() -> None:
    for transport in (Transport.WS, Transport.SCTP):
        attempt = await send_options(target(transport, "127.0.0.1", 9), "a.test", FAST)
        assert attempt.outcome is Outcome.SKIPPED
        assert attempt.failure_reason is None
        assert attempt.describe().startswith(f"skipped: {transport} is not a transport")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timeout": 0}, "PingOptions.timeout"),
        ({"timeout": math.inf}, "not inf"),
        ({"timeout": 1e300}, "not 1e+300"),
        ({"t1": math.nan}, "PingOptions.t1"),
        ({"t2": -1}, "PingOptions.t2"),
        ({"t1": 5, "t2": 4}, "t1 <= t2"),
        ({"verify": "no"}, "PingOptions.verify"),
    ],
)
def test_ping_options_are_checked(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        PingOptions(**fields)


def test_ping_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["ping"])
    assert exited.value.code == 2
    assert main(["ping", "sip:", "--nameserver", "127.0.0.1:9"]) == 2
    assert main(["ping", "a.test", "--ca", "/nonexistent/ca.pem"]) == 2
    assert "--ca" in capsys.readouterr().err


# --- against Kamailio ---------------------------------------------------------------

DEAD, OK, BUSY, BADCERT = "127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64"


@dataclass(frozen=True)
class SipWorld:
    port: int
    tls_port: int
    ca: Path
    zone: str


ZONE = """\
$TTL 60
test. 60 IN SOA ns.test. hostmaster.test. 1 7200 900 1209600 60
_sip._udp.failover.test. IN SRV 10 0 {port} dead.failover.test.
_sip._udp.failover.test. IN SRV 20 0 {port} ok.failover.test.
_sip._tcp.failover.test. IN SRV 10 0 {port} dead.failover.test.
_sip._tcp.failover.test. IN SRV 20 0 {port} ok.failover.test.
dead.failover.test. IN A {DEAD}
ok.failover.test. IN A {OK}
_sip._udp.busy.test. IN SRV 10 0 {port} busy.busy.test.
_sip._udp.busy.test. IN SRV 20 0 {port} ok.busy.test.
busy.busy.test. IN A {BUSY}
ok.busy.test. IN A {OK}
_sips._tcp.example.test. IN SRV 10 0 {tls_port} sip1.provider.test.
_sips._tcp.example.test. IN SRV 20 0 {tls_port} sip2.provider.test.
_sips._tcp.wrong.test. IN SRV 10 0 {tls_port} sip1.provider.test.
_sips._tcp.wrong.test. IN SRV 20 0 {tls_port} sip2.provider.test.
sip1.provider.test. IN A {BADCERT}
sip2.provider.test. IN A {OK}
"""


@pytest.fixture(scope="module")
def sip_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipWorld]:
    """One Kamailio: OK answers 200 (cert example.test), BUSY 503 with Retry-After,
    BADCERT 200 with a certificate for other.test; nothing listens on DEAD."""
    require_kamailio(IN_CI)
    workdir = tmp_path_factory.mktemp("kamailio")
    pki = Pki(workdir)
    good_cert, good_key = pki.issue("example.test")
    bad_cert, bad_key = pki.issue("other.test")
    port, tls_port = free_ports([DEAD, OK, BUSY, BADCERT], 2)
    listeners = [
        Listener(OK, cert=good_cert, key=good_key),
        Listener(BUSY, 503, "Service Unavailable", retry_after=120),
        Listener(BADCERT, cert=bad_cert, key=bad_key),
    ]
    kamailio = Kamailio(workdir, listeners, port=port, tls_port=tls_port)
    with kamailio.running():
        zone = ZONE.format(port=port, tls_port=tls_port, DEAD=DEAD, OK=OK, BUSY=BUSY,
                           BADCERT=BADCERT)  # fmt: skip
        yield SipWorld(port, tls_port, pki.ca, zone)


@pytest.fixture
async def dns(sip_world: SipWorld) -> AsyncIterator[ZoneServer]:
    async with ZoneServer(sip_world.zone) as server:
        yield server


def locator(server: ZoneServer, *transports: str) -> Locator:
    options = LocateOptions(
        nameservers=(server.address,), transports=transports or ("udp", "tcp", "tls")
    )
    return Locator(options)


def where(attempts: list[Attempt]) -> list[tuple[str, str, Outcome, int | None]]:
    return [(a.target.transport, str(a.target.address), a.outcome, a.status) for a in attempts]


@pytest.mark.servers
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_dead_first_target_fails_over_to_kamailio(
    dns: ZoneServer, sip_world: SipWorld, transport: str
) -> None:
    async with locator(dns, transport) as real:
        recording = Recording(real)
        attempts = await ping(recording, "sip:alice@failover.test", FAST)
        assert where(attempts) == [
            (transport, DEAD, Outcome.TRANSPORT, None),  # ICMP port unreachable / refused
            (transport, OK, Outcome.ANSWERED, 200),
        ]
        assert [(t.address, r) for t, r, _ in recording.failures] == [
            (ipaddress.ip_address(DEAD), FailureReason.TRANSPORT)
        ]
        assert [str(t.address) for t in recording.successes] == [OK]
        # The next locate starts with the healthy server; DEAD is held back to the end.
        again = await real.resolve("sip:alice@failover.test")
        assert [str(t.address) for t in again] == [OK, DEAD]
        assert [h.endpoint.address for h in real.health()] == [ipaddress.ip_address(DEAD)]


@pytest.mark.servers
async def test_503_with_retry_after_is_reported_and_failed_over(
    dns: ZoneServer, sip_world: SipWorld
) -> None:
    async with locator(dns, "udp") as real:
        recording = Recording(real)
        attempts = await ping(recording, "sip:busy.test", FAST)
        again = await real.resolve("sip:busy.test")
        (health,) = real.health()
    assert [(str(t.address), r, ra) for t, r, ra in recording.failures] == [
        (BUSY, FailureReason.SERVICE_UNAVAILABLE, 120.0)
    ]
    assert where(attempts) == [
        ("udp", BUSY, Outcome.UNAVAILABLE, 503),
        ("udp", OK, Outcome.ANSWERED, 200),
    ]
    assert attempts[0].retry_after == 120.0
    assert [str(t.address) for t in again] == [OK, BUSY]
    assert (str(health.endpoint.address), health.retry_after) == (BUSY, 120.0)


@pytest.mark.servers
async def test_tls_certificate_for_the_uri_domain_is_accepted(
    dns: ZoneServer, sip_world: SipWorld
) -> None:
    # SRV targets are sip1/sip2.provider.test; RFC 5922 checks example.test.
    options = PingOptions(timeout=2.0, cafile=str(sip_world.ca))
    async with locator(dns) as real:
        attempts = await ping(Recording(real), "sips:example.test", options)
    assert where(attempts) == [
        ("tls", BADCERT, Outcome.TRANSPORT, None),
        ("tls", OK, Outcome.ANSWERED, 200),
    ]
    assert attempts[0].detail == "TLS: certificate is not for example.test (RFC 5922)"
    assert attempts[1].target.host == "sip2.provider.test"
    assert attempts[1].target.tls_name == "example.test"


@pytest.mark.servers
async def test_tls_fails_when_no_certificate_names_the_domain(
    dns: ZoneServer, sip_world: SipWorld
) -> None:
    options = PingOptions(timeout=2.0, cafile=str(sip_world.ca))
    async with locator(dns) as real:
        recording = Recording(real)
        attempts = await ping(recording, "sips:wrong.test", options)
    assert where(attempts) == [
        ("tls", BADCERT, Outcome.TRANSPORT, None),
        ("tls", OK, Outcome.TRANSPORT, None),
    ]
    assert all("certificate is not for wrong.test" in a.detail for a in attempts)
    assert [r for _, r, _ in recording.failures] == [FailureReason.TRANSPORT] * 2


@pytest.mark.servers
async def test_tls_untrusted_ca_fails_and_insecure_skips_checks(
    dns: ZoneServer, sip_world: SipWorld
) -> None:
    async with locator(dns) as real:
        untrusted = await ping(Recording(real), "sips:wrong.test", PingOptions(timeout=2.0))
        insecure = await ping(
            Recording(real), "sips:wrong.test", PingOptions(timeout=2.0, verify=False)
        )
    assert [a.outcome for a in untrusted] == [Outcome.TRANSPORT] * 2
    assert "certificate verify failed" in untrusted[0].detail.lower()
    assert where(insecure) == [("tls", BADCERT, Outcome.ANSWERED, 200)]
    assert [a.insecure for a in untrusted] == [False, False]
    assert [a.insecure for a in insecure] == [True]


@pytest.mark.servers
def test_cli_ping_session(
    sip_world: SipWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = tmp_path / "sip.zone"
    zone.write_text(sip_world.zone)
    common = ["--zone", str(zone), "--timeout", "1", "--t1", "0.05", "--ca", str(sip_world.ca)]
    assert main(["ping", "sip:busy.test", "--transport", "udp", *common]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        rf" 1\. udp +{BUSY}:{sip_world.port} +busy\.busy\.test +503 Service Unavailable "
        r"\(Retry-After 120s\)  rtt [0-9.]+ ms",
        out[0],
    ), out
    assert re.fullmatch(rf" 2\. udp +{OK}:{sip_world.port} +ok\.busy\.test +200 OK  rtt .*", out[1])
    assert main(["ping", "sips:wrong.test", *common]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3
    assert "transport: TLS: certificate is not for wrong.test (RFC 5922)" in out[0]
    assert out[2] == "no server answered for sips:wrong.test"


SLOW_ZONE = """\
$TTL 60
test. 60 IN SOA ns.test. hostmaster.test. 1 7200 900 1209600 60
_sip._udp.slow.test. IN SRV 10 0 5060 a.slow.test.
_sip._udp.slow.test. IN SRV 20 0 5060 b.slow.test.
_sip._udp.slow.test. IN SRV 30 0 5060 c.slow.test.
a.slow.test. IN A 127.0.0.71
b.slow.test. IN A 127.0.0.72
c.slow.test. IN A 127.0.0.73
"""


async def test_targets_resolved_before_the_deadline_survive_a_slow_consumer() -> None:
    # A pinger spends seconds per target; answers that arrived meanwhile must not be
    # dropped when the lookup deadline passes (only lookups still pending are).
    async with ZoneServer(SLOW_ZONE) as server:
        options = LocateOptions(
            nameservers=(server.address,),
            transports=("udp",),
            deadline=1.0,
            ip_strategy=IpStrategy.IPV4_ONLY,
        )
        async with Locator(options) as real, real.locate("sip:slow.test") as stream:
            seen = []
            async for found in stream:
                seen.append(str(found.address))
                await asyncio.sleep(0.6)  # stands in for a ping attempt
    assert seen == ["127.0.0.71", "127.0.0.72", "127.0.0.73"]
