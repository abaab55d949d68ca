"""examples/b2bua_failover.py runs: demo zone, sip1 dead, sip2 a local SIP server."""

from __future__ import annotations

import re
from pathlib import Path

from tests.examples_run import demo_zone, run_example
from tests.kamailio import free_ports
from tests.sip_responder import reply_to, udp_responder

SIP1, SIP2 = "127.0.0.11", "127.0.0.12"  # the demo zone's addresses


async def test_b2bua_example_fails_over_to_the_live_server(tmp_path: Path) -> None:
    (port,) = free_ports([SIP1, SIP2], 1)
    zone = demo_zone(tmp_path, port)
    server, _ = await udp_responder(lambda request: [reply_to(request, "200 OK")], SIP2, port)
    try:
        code, text, err = await run_example(
            "b2bua_failover.py", "--zone", str(zone),
            "--ipv4", "--transport", "udp", "--timeout", "2", "--t1", "0.05",
            "sip:alice@example.test", "sip:bob@example.test",
        )  # fmt: skip
    finally:
        assert server.transport is not None
        server.transport.close()
    assert code == 0, (text, err)
    assert re.search(rf"call 1: udp {SIP1}:{port} \(sip1\.example\.test\): transport: ", text)
    assert re.search(rf"call 1: udp {SIP2}:{port} \(sip2\.example\.test\): 200 OK  rtt ", text)
    for number, user in ((1, "alice"), (2, "bob")):
        assert f"call {number} to sip:{user}@example.test: -> udp {SIP2}:{port} " in text
    assert len(server.received) >= 2
