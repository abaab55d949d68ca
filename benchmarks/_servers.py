"""The DNS servers a benchmark talks to: NSD (or Knot) in a temp dir, ZoneServer as a
fallback, and the relay, each in a process of its own pinned to the last CPU."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnslib import DNSRecord

from benchmarks._zone import ORIGIN, domain

SERVER_HOST = "127.0.0.2"
RELAY_HOST = "127.0.0.3"
START_TIMEOUT = 60.0


_CPUS = sorted(os.sched_getaffinity(0))
"""The CPUs this process could use when first imported (before it pins itself)."""


def server_cpu() -> int | None:
    """The CPU the server processes are pinned to (the client gets the others)."""
    return _CPUS[-1] if len(_CPUS) >= 2 else None


def client_cpus() -> set[int]:
    return set(_CPUS[:-1]) if len(_CPUS) >= 2 else set(_CPUS)


def _pin(process: subprocess.Popen[bytes]) -> None:
    """Pin a just-started server process to the server CPU (before it forks workers)."""
    cpu = server_cpu()
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(process.pid, {cpu})


def free_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host`` (bounded retries)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
            return int(port)
    raise OSError(f"no free port on {host}")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user+system) of ``pid`` and all its descendants, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    todo = [pid]
    seen: set[int] = set()
    while todo and len(seen) < 1000:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (OSError, ValueError):
            continue
    return total


def wait_ready(host: str, port: int, name: str, timeout: float = START_TIMEOUT) -> None:
    """Poll with a NAPTR query until the server answers (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    packet = DNSRecord.question(name, "NAPTR")
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, TimeoutError, socket.timeout):
            reply = DNSRecord.parse(packet.send(host, port, timeout=0.2))
            if reply.rr:
                return
        time.sleep(0.05)
    raise TimeoutError(f"DNS server on {host}:{port} not ready after {timeout}s")


@dataclass
class Server:
    """A DNS server process serving the benchmark zone."""

    kind: str
    """"nsd", "knot" or "zoneserver"."""
    version: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: tempfile.TemporaryDirectory[str] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def cpu(self) -> float:
        return proc_cpu(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)
        if self.workdir is not None:
            self.workdir.cleanup()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


_NSD_CONF = """\
server:
  ip-address: {host}@{port}
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "{dir}"
  database: ""
  pidfile: "{dir}/nsd.pid"
  xfrdfile: "{dir}/xfrd.state"
  zonelistfile: "{dir}/zone.list"
  logfile: "{dir}/nsd.log"
  server-count: 1
  verbosity: 0
  hide-version: yes
  {rrl}
remote-control:
  control-enable: no
zone:
  name: "{origin}"
  zonefile: "{dir}/zone"
"""

_KNOT_CONF = """\
server:
  listen: {host}@{port}
  rundir: "{dir}"
  background-workers: 1
  udp-workers: 1
  tcp-workers: 1
database:
  storage: "{dir}/db"
log:
  - target: "{dir}/knot.log"
    any: warning
template:
  - id: default
    storage: "{dir}"
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
zone:
  - domain: {origin}
    file: "{dir}/zone"
"""


def _version(argv: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(argv, capture_output=True, timeout=10, check=False)
        text = (out.stdout + out.stderr).decode(errors="replace").strip()
        return text.splitlines()[0] if text else "?"
    return "?"


def _nsd_has_rrl(nsd: str) -> bool:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([nsd, "-v"], capture_output=True, timeout=10, check=False)
        return b"enable-ratelimit" in out.stdout + out.stderr
    return False


def start_nsd(zone: str) -> Server:
    nsd = shutil.which("nsd") or "/usr/sbin/nsd"
    workdir = tempfile.TemporaryDirectory(prefix="asip-bench-nsd-")
    port = free_port(SERVER_HOST)
    rrl = "rrl-ratelimit: 0" if _nsd_has_rrl(nsd) else ""
    Path(workdir.name, "zone").write_text(zone)
    conf = Path(workdir.name, "nsd.conf")
    conf.write_text(
        _NSD_CONF.format(host=SERVER_HOST, port=port, dir=workdir.name, origin=ORIGIN, rrl=rrl)
    )
    process = subprocess.Popen([nsd, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL)
    _pin(process)
    server = Server("nsd", _version([nsd, "-v"]), SERVER_HOST, port, process, workdir)
    server.notes.append(
        "NSD response-rate limiting off (rrl-ratelimit: 0)" if rrl else "NSD built without RRL"
    )
    _ready(server)
    return server


def start_knot(zone: str) -> Server:
    knotd = shutil.which("knotd") or "/usr/sbin/knotd"
    workdir = tempfile.TemporaryDirectory(prefix="asip-bench-knot-")
    port = free_port(SERVER_HOST)
    Path(workdir.name, "zone").write_text(zone)
    Path(workdir.name, "db").mkdir()
    conf = Path(workdir.name, "knot.conf")
    conf.write_text(_KNOT_CONF.format(host=SERVER_HOST, port=port, dir=workdir.name, origin=ORIGIN))
    process = subprocess.Popen([knotd, "-c", str(conf)], stdout=subprocess.DEVNULL)
    _pin(process)
    server = Server("knot", _version([knotd, "-V"]), SERVER_HOST, port, process, workdir)
    _ready(server)
    return server


def start_zoneserver(zone: str) -> Server:
    workdir = tempfile.TemporaryDirectory(prefix="asip-bench-zs-")
    path = Path(workdir.name, "zone")
    path.write_text(zone)
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._zoneserver", str(path), SERVER_HOST],
        stdout=subprocess.PIPE,
    )
    _pin(process)
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()  # "PORT" once bound
    if not line.isdigit():
        stop_process(process)
        raise RuntimeError(f"ZoneServer process failed to start: {line!r}")
    server = Server(
        "zoneserver",
        "asip_locate.testing.ZoneServer (Python, dnslib)",
        SERVER_HOST,
        int(line),
        process,
        workdir,
    )
    server.notes.append(
        "FALLBACK: neither NSD nor Knot is installed; ZoneServer is slow and may be the bottleneck"
    )
    _ready(server)
    return server


def _ready(server: Server) -> None:
    try:
        wait_ready(server.host, server.port, domain(0))
    except BaseException:
        server.stop()
        raise


def start_server(zone: str, prefer: str = "auto") -> Server:
    """NSD if installed, else Knot, else ZoneServer (``prefer`` forces one)."""
    if prefer in ("auto", "nsd") and (shutil.which("nsd") or Path("/usr/sbin/nsd").exists()):
        return start_nsd(zone)
    if prefer in ("auto", "knot") and (shutil.which("knotd") or Path("/usr/sbin/knotd").exists()):
        return start_knot(zone)
    return start_zoneserver(zone)


@dataclass
class Relay:
    """A relay process (see benchmarks._relay)."""

    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def control(self, command: bytes) -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(b"\0" + command, (self.host, self.port))
            data, _ = sock.recvfrom(64 << 20)
            return data

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.control(b"STATS"))
        return result

    def cpu(self) -> float:
        return proc_cpu(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)


def start_relay(
    upstream: str, *, delay: float = 0.0, drop: float = 0.0, seed: int = 1, blackhole: bool = False
) -> Relay:
    port = free_port(RELAY_HOST)
    argv = [
        sys.executable, "-m", "benchmarks._relay",
        "--listen", f"{RELAY_HOST}:{port}", "--upstream", upstream,
        "--delay", str(delay), "--drop", str(drop), "--seed", str(seed),
    ]  # fmt: skip
    if blackhole:
        argv.append("--blackhole")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE)
    _pin(process)
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if line != "ready":
        stop_process(process)
        raise RuntimeError(f"relay failed to start: {line!r}")
    return Relay(RELAY_HOST, port, process)
