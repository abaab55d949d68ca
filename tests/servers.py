"""Real DNS servers for the interop tier: NSD (authoritative) behind Unbound (recursive).

Each server runs in the foreground from its own config in a temporary directory, on a
free loopback port, without chroot, privilege drop or any system configuration. Start
is bounded (readiness is polled a limited number of times), stop kills what is left.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest
from dnslib import DNSRecord

from tests.conftest import IN_CI

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
UNBOUND_CONTROL = shutil.which("unbound-control") or "/usr/sbin/unbound-control"
START_TIMEOUT = 10.0


def have_servers() -> bool:
    """True when the NSD and Unbound binaries are installed."""
    return all(Path(p).is_file() for p in (NSD, UNBOUND, UNBOUND_CONTROL))


def require_servers() -> None:
    """Skip the calling test without the binaries, but fail it under CI=true."""
    if have_servers():
        return
    message = f"needs {NSD}, {UNBOUND} and {UNBOUND_CONTROL} (apt-get install nsd unbound)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def have_ipv6_loopback() -> bool:
    """True when ::1 can be bound on this machine."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_port(hosts: Iterable[str] = ("127.0.0.1",)) -> int:
    """A port free for UDP and TCP on every host (racy by nature: callers retry)."""
    hosts = list(hosts)
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            family = socket.AF_INET6 if ":" in hosts[0] else socket.AF_INET
            first = stack.enter_context(socket.socket(family, socket.SOCK_DGRAM))
            first.bind((hosts[0], 0))
            port: int = first.getsockname()[1]
            try:
                for host in hosts:
                    family = socket.AF_INET6 if ":" in host else socket.AF_INET
                    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                        if host == hosts[0] and kind == socket.SOCK_DGRAM:
                            continue
                        sock = stack.enter_context(socket.socket(family, kind))
                        sock.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no port free on {hosts}")


def probe(host: str, port: int, name: str, qtype: str = "SOA", timeout: float = 0.2) -> int | None:
    """Send one UDP query and return the reply's rcode, or None when nothing came back."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(DNSRecord.question(name, qtype).pack(), (host, port))
            data, _ = sock.recvfrom(65535)
        except OSError:
            return None
    rcode: int = DNSRecord.parse(data).header.rcode
    return rcode


def zones_from_lines(lines: Iterable[str], apexes: Iterable[str] = ()) -> dict[str, str]:
    """Split zone-file lines (absolute owner names) into zone texts by apex.

    Apexes are the SOA owners, ``apexes``, and the last two labels of any other owner.
    Every zone gets a SOA and an NS record if it lacks them (NSD needs a SOA).
    """
    lines = [line for line in lines if line.strip()]
    directives = [line for line in lines if line.startswith("$")]
    records = [line for line in lines if not line.startswith("$")]
    known = {a.lower().rstrip(".") for a in apexes}
    for line in records:
        owner = line.split()[0].lower().rstrip(".")
        if "SOA" in line.split()[1:4]:
            known.add(owner)
    for line in records:
        owner = line.split()[0].lower().rstrip(".")
        if not any(owner == a or owner.endswith("." + a) for a in known):
            known.add(".".join(owner.split(".")[-2:]))
    zones: dict[str, list[str]] = {apex: list(directives) for apex in known}
    for line in records:
        owner = line.split()[0].lower().rstrip(".")
        apex = max((a for a in known if owner == a or owner.endswith("." + a)), key=len)
        zones[apex].append(line)
    result = {}
    for apex, body in zones.items():
        has = {rtype for line in body for rtype in ("SOA", "NS") if _owner_type(line, apex, rtype)}
        if "SOA" not in has:
            body.insert(
                len(directives),
                f"{apex}. 3600 IN SOA ns1.{apex}. hostmaster.{apex}. 1 7200 900 1209600 300",
            )
        if "NS" not in has:
            body.append(f"{apex}. 3600 IN NS ns1.{apex}.")
        result[apex] = "\n".join(body) + "\n"
    return result


def _owner_type(line: str, apex: str, rtype: str) -> bool:
    fields = line.split()
    return (
        not line.startswith("$") and fields[0].lower().rstrip(".") == apex and rtype in fields[1:4]
    )


class _Process:
    """One server process started from a config file, stopped on ``stop``."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.out"

    def _spawn(self, argv: list[str]) -> None:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir
            )

    def _wait_ready(self, host: str, port: int, name: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.output()}")
            if probe(host, port, name) is not None:
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT}s: {self.output()}")

    def output(self) -> str:
        """What the server logged."""
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Terminate the process (kill it after 5 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class Nsd(_Process):
    """NSD serving ``zones`` (apex -> zone text) on ``host``:port, UDP and TCP."""

    name = "nsd"

    def __init__(self, workdir: Path, host: str = "127.0.0.1") -> None:
        super().__init__(workdir)
        self.host = host
        self.port = 0
        self.zones: dict[str, str] = {}

    def start(self, zones: Mapping[str, str]) -> None:
        """(Re)start serving ``zones``: new zone files, a new process, same port if any."""
        self.stop()
        self.zones = dict(zones)
        for attempt in range(5):
            if not self.port or attempt:
                self.port = free_port([self.host])
            self._write_config()
            self._spawn([NSD, "-d", "-c", str(self.workdir / "nsd.conf")])
            try:
                self._wait_ready(self.host, self.port, next(iter(self.zones)))
                return
            except RuntimeError:
                self.stop()
                if attempt == 4:
                    raise

    def _write_config(self) -> None:
        d = self.workdir
        zone_blocks = []
        for apex, text in self.zones.items():
            (d / f"{apex}.zone").write_text(text)
            zone_blocks.append(f"zone:\n  name: {apex}\n  zonefile: {apex}.zone\n")
        (d / "nsd.conf").write_text(
            f"""server:
  ip-address: {self.host}@{self.port}
  port: {self.port}
  do-ip4: {"no" if ":" in self.host else "yes"}
  do-ip6: {"yes" if ":" in self.host else "no"}
  pidfile: "{d}/nsd.pid"
  database: ""
  zonesdir: "{d}"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  zonelistfile: "{d}/zone.list"
  username: ""
  chroot: ""
  logfile: "{d}/nsd.log"
  server-count: 1
  verbosity: 1
  hide-version: yes
remote-control:
  control-enable: no
"""
            + "".join(zone_blocks)
        )

    def output(self) -> str:
        """NSD's log file and console output."""
        log = self.workdir / "nsd.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return (text + super().output())[-3000:]


class Unbound(_Process):
    """Unbound as a recursive resolver for ``apexes``, stubbed to an authoritative server.

    Every other name is refused locally, so nothing leaves the loopback interface.
    Statistics (``stats()``) and cache flushes go through a local control socket.
    """

    name = "unbound"

    def __init__(
        self, workdir: Path, hosts: Iterable[str] = ("127.0.0.1",), options: Iterable[str] = ()
    ) -> None:
        super().__init__(workdir)
        self.hosts = list(hosts)
        self.options = list(options)
        """Extra ``server:`` lines, e.g. "minimal-responses: no"."""
        self.port = 0
        self.conf = workdir / "unbound.conf"

    @property
    def addresses(self) -> list[str]:
        """The resolver as nameserver strings, one per listening host."""
        return [f"[{h}]:{self.port}" if ":" in h else f"{h}:{self.port}" for h in self.hosts]

    def start(self, apexes: Iterable[str], upstream: str, upstream_port: int) -> None:
        """Start resolving ``apexes`` through ``upstream``@``upstream_port``."""
        self.stop()
        apexes = list(apexes)
        for attempt in range(5):
            self.port = free_port(self.hosts)
            self._write_config(apexes, upstream, upstream_port)
            self._spawn([UNBOUND, "-d", "-c", str(self.conf)])
            try:
                self._wait_ready(self.hosts[0], self.port, apexes[0])
                return
            except RuntimeError:
                self.stop()
                if attempt == 4:
                    raise

    def _write_config(self, apexes: list[str], upstream: str, upstream_port: int) -> None:
        d = self.workdir
        interfaces = "".join(f"  interface: {h}@{self.port}\n" for h in self.hosts)
        zones = "".join(f'  local-zone: "{a}." transparent\n' for a in apexes)
        zones += "".join(f"  {line}\n" for line in self.options)
        stubs = "".join(
            f'stub-zone:\n  name: "{a}."\n  stub-addr: {upstream}@{upstream_port}\n'
            "  stub-prime: no\n"
            for a in apexes
        )
        self.conf.write_text(
            f"""server:
{interfaces}  port: {self.port}
  do-ip6: {"yes" if any(":" in h for h in self.hosts) or ":" in upstream else "no"}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  num-threads: 1
  module-config: "iterator"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  access-control: ::1 allow
  extended-statistics: yes
  local-zone: "." refuse
{zones}remote-control:
  control-enable: yes
  control-interface: "{d}/unbound.ctl"
{stubs}"""
        )

    def control(self, *command: str) -> str:
        """Run one unbound-control command and return its output."""
        result = subprocess.run(
            [UNBOUND_CONTROL, "-c", str(self.conf), *command],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return result.stdout

    def stats(self) -> dict[str, float]:
        """Statistics since start (``stats_noreset``), e.g. ``num.query.tcp``."""
        values = {}
        for line in self.control("stats_noreset").splitlines():
            key, _, value = line.partition("=")
            with contextlib.suppress(ValueError):
                values[key] = float(value)
        return values

    def flush(self) -> None:
        """Forget every cached answer and server state."""
        self.control("flush_zone", ".")
        self.control("flush_infra", "all")
        self.control("flush_requestlist")


class Stack:
    """NSD behind Unbound, restartable with new zones."""

    def __init__(
        self,
        workdir: Path,
        resolver_hosts: Iterable[str] = ("127.0.0.1",),
        nsd_host: str = "127.0.0.1",
        unbound_options: Iterable[str] = (),
    ) -> None:
        (workdir / "nsd").mkdir(exist_ok=True)
        (workdir / "unbound").mkdir(exist_ok=True)
        self.nsd = Nsd(workdir / "nsd", nsd_host)
        self.unbound = Unbound(workdir / "unbound", resolver_hosts, unbound_options)
        self.apexes: list[str] = []

    @property
    def address(self) -> str:
        """Unbound's first address as a nameserver string."""
        return self.unbound.addresses[0]

    def start(self, zones: Mapping[str, str]) -> None:
        """Serve ``zones``: restart NSD; restart Unbound if the apexes changed, else flush it."""
        port = self.nsd.port
        self.nsd.start(zones)
        apexes = sorted(zones)
        # NSD may have had to move to another port; Unbound's stub must follow.
        if apexes != self.apexes or self.unbound.process is None or self.nsd.port != port:
            self.apexes = apexes
            self.unbound.start(apexes, self.nsd.host, self.nsd.port)
        else:
            self.unbound.flush()

    def stop(self) -> None:
        """Stop both servers."""
        self.unbound.stop()
        self.nsd.stop()


@contextlib.contextmanager
def running_stack(
    workdir: Path,
    zones: Mapping[str, str],
    resolver_hosts: Iterable[str] = ("127.0.0.1",),
    nsd_host: str = "127.0.0.1",
    unbound_options: Iterable[str] = (),
) -> Iterator[Stack]:
    """A started Stack, stopped on exit (``unbound_options``: extra server lines)."""
    require_servers()
    stack = Stack(workdir, resolver_hosts, nsd_host, unbound_options)
    try:
        stack.start(zones)
        yield stack
    finally:
        stack.stop()


__all__ = [
    "Nsd",
    "Stack",
    "Unbound",
    "free_port",
    "have_ipv6_loopback",
    "have_servers",
    "probe",
    "require_servers",
    "running_stack",
    "zones_from_lines",
]
