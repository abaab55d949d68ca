"""A real redis-server for the tests, and worker processes that share health through it.

The server runs in the foreground from its own command line (no config file, no
persistence, a temporary directory) on a free loopback port; start waits a bounded
time for PING to answer, stop kills it. A missing redis-server skips locally and fails
under CI=true, like the DNS servers (tests/servers.py).

``python -m tests.redis_server URL NAMESPACE`` is a worker: one Locator over a fake
backend with a RedisHealthStore, driven by JSON lines on stdin (one reply per line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT = 10.0
ROOT = Path(__file__).resolve().parent.parent

ZONE = """\
$TTL 300
example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60
_sip._udp.example.test. IN SRV 10 0 5060 a.example.test.
_sip._udp.example.test. IN SRV 20 0 5060 b.example.test.
_sip._udp.example.test. IN SRV 30 0 5060 c.example.test.
a.example.test. IN A 127.0.0.11
b.example.test. IN A 127.0.0.12
c.example.test. IN A 127.0.0.13
"""
URI = "sip:alice@example.test"
A, B, C = "127.0.0.11", "127.0.0.12", "127.0.0.13"


def have_redis() -> bool:
    """True when redis-server and redis-py are installed."""
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        return False
    return Path(REDIS_SERVER).is_file()


def require_redis() -> None:
    """Skip the calling test without redis-server or redis-py, but fail under CI=true."""
    if have_redis():
        return
    message = (
        f"needs {REDIS_SERVER} (apt-get install redis-server) and redis-py (pip install redis)"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_tcp_port() -> int:
    """A loopback TCP port free now (racy by nature: start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server on 127.0.0.1; ``kill()`` and ``start()`` again keep the port."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="asip-redis-")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart on the same port); bounded wait for PING."""
        for _ in range(5 if not self.port else 1):
            port = self.port or free_tcp_port()
            log = Path(self._dir.name) / "redis.log"
            self.process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", self._dir.name,
                 "--daemonize", "no", "--logfile", str(log), "--databases", "1"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.process.poll() is None:
                if _pong(port):
                    self.port = port
                    return
                time.sleep(0.02)
            self.kill()
        raise RuntimeError(f"redis-server did not start: {self._log_tail()}")

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (Path(self._dir.name) / "redis.log").read_text()[-2000:]
        return "(no log)"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to the clients."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def close(self) -> None:
        self.kill()
        self._dir.cleanup()


class Worker:
    """A Locator with a RedisHealthStore in another process, driven over stdio."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def spawn(cls, url: str, namespace: str) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.redis_server", url, namespace,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        return cls(process)

    async def call(self, cmd: str, *, io_timeout: float = 15.0, **args: Any) -> Any:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        async with asyncio.timeout(io_timeout):
            await self.process.stdin.drain()
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited ({self.process.returncode}) during {cmd}")
        return json.loads(line)

    async def close(self) -> Any:
        """Quit: the worker closes its Locator and reports tasks left; then reap."""
        try:
            return await self.call("quit")
        finally:
            with contextlib.suppress(ProcessLookupError):
                async with asyncio.timeout(10):
                    await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()


# --- the worker side ---------------------------------------------------------------


async def _worker(url: str, namespace: str) -> None:
    import ipaddress

    from asip_locate import Endpoint, IpStrategy, LocateOptions, Locator, Transport
    from asip_locate.redis import RedisHealthStore
    from asip_locate.testing import FakeBackend

    def endpoint(address: str) -> Endpoint:
        return Endpoint(Transport.UDP, ipaddress.ip_address(address), 5060)

    options = LocateOptions(transports=("udp",), ip_strategy=IpStrategy.IPV4_ONLY, seed=7)
    store = RedisHealthStore(url, namespace=namespace, timeout=0.5, reconnect_max=0.5)
    locator = Locator(options, backend=FakeBackend(ZONE), health_store=store)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def order() -> list[str]:
        return [str(t.address) for t in await locator.resolve(URI)]

    async def until(check: Any, seconds: float) -> tuple[bool, float]:
        start = time.monotonic()
        for _ in range(int(seconds / 0.002) + 1):
            if await check():
                return True, time.monotonic() - start
            await asyncio.sleep(0.002)
        return False, time.monotonic() - start

    while True:
        line = await reader.readline()
        if not line:
            break
        request = json.loads(line)
        cmd = request["cmd"]
        reply: dict[str, Any] = {}
        if cmd == "wait_connected":

            async def connected() -> bool:
                return store.connected

            reply["ok"], reply["elapsed"] = await until(connected, request["timeout"])
        elif cmd == "fail":
            locator.report_failure(
                endpoint(request["address"]), reason="503", retry_after=request.get("retry_after")
            )
        elif cmd == "success":
            locator.report_success(endpoint(request["address"]))
        elif cmd == "order":
            reply["order"] = await order()
        elif cmd == "wait_order":

            async def same(expected: list[str] = request["order"]) -> bool:
                return await order() == expected

            reply["ok"], reply["elapsed"] = await until(same, request["timeout"])
            reply["order"] = await order()
        elif cmd == "health":
            reply["health"] = [
                [str(e.endpoint.address), e.until - locator.clock(), e.failures, e.retry_after]
                for e in locator.health()
            ]
        elif cmd == "quit":
            await locator.aclose()
            for _ in range(5):
                await asyncio.sleep(0)
            current = asyncio.current_task()
            reply["tasks_left"] = [
                repr(t) for t in asyncio.all_tasks() if t is not current and not t.done()
            ]
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if cmd == "quit":
            return
    await locator.aclose()


if __name__ == "__main__":
    asyncio.run(_worker(sys.argv[1], sys.argv[2]))
