"""examples/invite_client.py against loopback responders on the demo zone's addresses."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from tests.examples_run import demo_zone, run_example
from tests.kamailio import free_ports
from tests.sip_responder import Responder, reply_to, udp_responder

SIP1, SIP2 = "127.0.0.11", "127.0.0.12"  # the demo zone's UDP SRV order: sip1, then sip2
T1 = 0.02

Answer = Callable[[bytes], list[bytes]]


def method(request: bytes) -> str:
    return request.split(b" ", 1)[0].decode()


def branch(request: bytes) -> str:
    found = re.search(rb"branch=([^;\r\n]+)", request)
    assert found is not None
    return found.group(1).decode()


def answering(*statuses: str, extra: str = "") -> Answer:
    """Answer each INVITE with these responses; ACKs get nothing."""

    def answer(request: bytes) -> list[bytes]:
        if method(request) != "INVITE":
            return []
        return [reply_to(request, status, extra) for status in statuses]

    return answer


def silent(request: bytes) -> list[bytes]:
    return []


async def call(
    tmp_path: Path, sip1: Answer | None, sip2: Answer | None
) -> tuple[int, str, list[Responder], float]:
    """Run the example with these responders (None: nothing listens there)."""
    (port,) = free_ports([SIP1, SIP2], 1)
    zone = demo_zone(tmp_path, port)
    servers: list[Responder] = []
    for address, answer in ((SIP1, sip1), (SIP2, sip2)):
        server, _ = await udp_responder(answer or silent, address, port)
        servers.append(server)
        if answer is None:  # close it again: the port is then unreachable
            assert server.transport is not None
            server.transport.close()
    started = time.monotonic()
    try:
        code, out, err = await run_example(
            "invite_client.py", "--zone", str(zone), "--ipv4",
            "--t1", str(T1), "--ring-timeout", "5", "sip:alice@example.test",
        )  # fmt: skip
    finally:
        for server in servers:
            if server.transport is not None:
                server.transport.close()
    assert not err, err
    return code, out, servers, time.monotonic() - started


def methods(server: Responder) -> list[str]:
    return [method(request) for request in server.received]


async def test_503_is_acked_and_fails_over(tmp_path: Path) -> None:
    code, out, (one, two), _ = await call(
        tmp_path,
        answering("503 Service Unavailable", extra="Retry-After: 60\r\n"),
        answering("100 Trying", "180 Ringing", "200 OK"),
    )
    assert code == 0, out
    assert f"-> udp {SIP1}:" in out
    assert "503 Service Unavailable: ACK sent, trying the next target" in out
    assert "180 Ringing" in out
    assert "200 OK: call established, ACK sent" in out
    assert methods(one) == ["INVITE", "ACK"]
    assert branch(one.received[0]) == branch(one.received[1])  # non-2xx ACK: same branch
    assert methods(two) == ["INVITE", "ACK"]
    assert branch(two.received[0]) != branch(two.received[1])  # 2xx ACK: a new transaction
    assert branch(one.received[0]) != branch(two.received[0])  # a new INVITE per target


async def test_a_1xx_stops_failover(tmp_path: Path) -> None:
    code, out, (one, two), _ = await call(
        tmp_path,
        answering("180 Ringing", "503 Service Unavailable"),
        answering("200 OK"),
    )
    assert code == 1, out
    assert "503 Service Unavailable: ACK sent, call failed" in out
    assert methods(one) == ["INVITE", "ACK"]
    assert two.received == []


async def test_busy_is_acked_and_ends_the_call(tmp_path: Path) -> None:
    code, out, (one, two), _ = await call(tmp_path, answering("486 Busy Here"), answering("200 OK"))
    assert code == 1, out
    assert "486 Busy Here: ACK sent, call failed" in out
    assert methods(one) == ["INVITE", "ACK"]
    assert two.received == []


async def test_timer_b_then_the_next_target(tmp_path: Path) -> None:
    code, out, (one, two), elapsed = await call(tmp_path, silent, answering("200 OK"))
    assert code == 0, out
    assert f"Timer B: no response within 64*T1 = {64 * T1:g} s" in out
    # Timer A: sent at 0, T1, 3*T1, 7*T1, 15*T1, 31*T1 and 63*T1, just before Timer B
    # (64*T1): 7 INVITEs, or 6 when the last wake-up comes after Timer B on a busy machine.
    assert methods(one) in (["INVITE"] * 7, ["INVITE"] * 6)
    assert len({branch(request) for request in one.received}) == 1  # retransmissions
    assert methods(two) == ["INVITE", "ACK"]
    assert elapsed >= 64 * T1


async def test_unreachable_port_fails_over_at_once(tmp_path: Path) -> None:
    code, out, (_, two), _ = await call(tmp_path, None, answering("200 OK"))
    assert code == 0, out  # "transport: ...", not Timer B:
    assert re.search(rf"-> udp {SIP1}:\d+ \(sip1\.example\.test\): INVITE\n   transport: ", out)
    assert methods(two) == ["INVITE", "ACK"]
