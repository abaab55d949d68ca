"""Launch a real Kamailio on loopback for end-to-end SIP tests, and make test PKI.

One process listens on several 127.0.0.x addresses; each address answers OPTIONS
with its own status (200, or 503 with Retry-After) and, for TLS, its own
certificate. No database, no modules beyond sl/textops/pv/tls. Start-up and
shutdown are bounded; the process never outlives the fixture.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

KAMAILIO = shutil.which("kamailio") or next(
    (p for p in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio") if os.access(p, os.X_OK)),
    None,
)
OPENSSL = shutil.which("openssl")
MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/local/lib64/kamailio/modules",
)
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def module_dir() -> Path | None:
    """Where Kamailio's modules are, if the TLS module is installed too."""
    for directory in MODULE_DIRS:
        if Path(directory, "tls.so").is_file() and Path(directory, "sl.so").is_file():
            return Path(directory)
    return None


def missing() -> str | None:
    """Why the Kamailio tests cannot run here, or None when they can."""
    if KAMAILIO is None:
        return "kamailio is not installed (apt-get install kamailio kamailio-tls-modules)"
    if module_dir() is None:
        return "kamailio modules (sl, tls) not found: install kamailio-tls-modules"
    if OPENSSL is None:
        return "openssl CLI not installed"
    return None


@dataclass(frozen=True)
class Listener:
    """One address Kamailio listens on, and how it answers OPTIONS there."""

    address: str
    status: int = 200
    reason: str = "OK"
    retry_after: int | None = None
    cert: Path | None = None
    key: Path | None = None


class Pki:
    """A throw-away CA and server certificates made with the openssl CLI."""

    def __init__(self, directory: Path) -> None:
        assert OPENSSL is not None
        self.directory = directory
        self.ca_key = directory / "ca.key"
        self.ca = directory / "ca.pem"
        self._run(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", self.ca_key, "-out", self.ca, "-subj", "/CN=asip-locate test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip

    def _run(self, *args: str | Path) -> None:
        assert OPENSSL is not None
        subprocess.run(
            [OPENSSL, *map(str, args)],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def issue(self, name: str, *, alt_names: Sequence[str] | None = None) -> tuple[Path, Path]:
        """A server certificate and key; subjectAltName entries default to DNS:name."""
        cert = self.directory / f"{name}.pem"
        key = self.directory / f"{name}.key"
        csr = self.directory / f"{name}.csr"
        ext = self.directory / f"{name}.ext"
        sans = ",".join(alt_names if alt_names is not None else [f"DNS:{name}"])
        ext.write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n")
        self._run(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", f"/CN={name}",
        )  # fmt: skip
        self._run(
            "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
            "-CAcreateserial", "-days", "2", "-out", cert, "-extfile", ext,
        )  # fmt: skip
        return cert, key


def free_ports(addresses: Sequence[str], count: int) -> list[int]:
    """``count`` ports free for both TCP and UDP on every address (bounded tries)."""
    rng = random.Random()
    for _ in range(50):
        ports = [rng.randrange(20_000, 60_000) for _ in range(count)]
        if len(set(ports)) == count and all(
            _free(address, port) for address in addresses for port in ports
        ):
            return ports
    raise RuntimeError(f"no free ports on {addresses}")


def _free(address: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def config(
    listeners: Sequence[Listener], port: int, tls_port: int, workdir: Path
) -> tuple[str, str]:
    """kamailio.cfg and tls.cfg text for ``listeners``."""
    modules = module_dir()
    tls = any(listener.cert for listener in listeners)
    lines = [
        "#!KAMAILIO",
        "debug=1",
        "log_stderror=yes",
        "children=1",
        "tcp_children=1",
        "auto_aliases=no",
        "dns=no",
        "rev_dns=no",
        f"enable_tls={'yes' if tls else 'no'}",
    ]
    for listener in listeners:
        lines.append(f"listen=udp:{listener.address}:{port}")
        lines.append(f"listen=tcp:{listener.address}:{port}")
        if listener.cert:
            lines.append(f"listen=tls:{listener.address}:{tls_port}")
    lines += [
        f'mpath="{modules}/"',
        'loadmodule "sl.so"',
        'loadmodule "textops.so"',
        'loadmodule "pv.so"',
    ]
    if tls:
        lines += ['loadmodule "tls.so"', f'modparam("tls", "config", "{workdir}/tls.cfg")']
    lines += [
        "request_route {",
        '    if (!is_method("OPTIONS")) {',
        '        sl_send_reply("405", "Method Not Allowed");',
        "        exit;",
        "    }",
    ]
    for listener in listeners:
        lines.append(f'    if ($Ri == "{listener.address}") {{')
        if listener.retry_after is not None:
            lines.append(f'        append_to_reply("Retry-After: {listener.retry_after}\\r\\n");')
        lines.append(f'        sl_send_reply("{listener.status}", "{listener.reason}");')
        lines += ["        exit;", "    }"]
    lines += ['    sl_send_reply("500", "No Listener Configured");', "}"]
    tls_lines: list[str] = []
    for listener in listeners:
        if listener.cert:
            tls_lines += [
                f"[server:{listener.address}:{tls_port}]",
                "method = TLSv1.2+",
                f"certificate = {listener.cert}",
                f"private_key = {listener.key}",
                "verify_certificate = no",
                "require_certificate = no",
                "",
            ]
    default = next((listener for listener in listeners if listener.cert), None)
    if default is not None:  # Kamailio insists on a default server domain
        tls_lines += [
            "[server:default]",
            "method = TLSv1.2+",
            f"certificate = {default.cert}",
            f"private_key = {default.key}",
            "",
        ]
    tls_lines += [
        "[client:default]",
        "verify_certificate = no",
        "require_certificate = no",
    ]
    return "\n".join(lines) + "\n", "\n".join(tls_lines) + "\n"


class Kamailio:
    """A running Kamailio; use ``start``/``stop`` or the ``running`` context manager."""

    def __init__(
        self, workdir: Path, listeners: Sequence[Listener], *, port: int, tls_port: int
    ) -> None:
        self.workdir = workdir
        self.listeners = list(listeners)
        self.port = port
        self.tls_port = tls_port
        self.cfg = workdir / "kamailio.cfg"
        self.log = workdir / "kamailio.log"
        self._process: subprocess.Popen[bytes] | None = None

    def check(self) -> None:
        """``kamailio -c``: validate the configuration."""
        assert KAMAILIO is not None
        result = subprocess.run(
            [KAMAILIO, "-c", "-f", str(self.cfg)], capture_output=True, timeout=30, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"kamailio -c failed:\n{result.stderr.decode(errors='replace')}")

    def start(self) -> None:
        """Write the config, start in the foreground, wait until every listener is up."""
        assert KAMAILIO is not None
        cfg, tls_cfg = config(self.listeners, self.port, self.tls_port, self.workdir)
        self.cfg.write_text(cfg)
        (self.workdir / "tls.cfg").write_text(tls_cfg)
        run_dir = self.workdir / "run"
        run_dir.mkdir(exist_ok=True)
        self.check()
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    KAMAILIO, "-DD", "-E", "-f", str(self.cfg), "-Y", str(run_dir),
                    "-P", str(run_dir / "kamailio.pid"), "-m", "32", "-M", "8",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        pending = [(listener.address, self.port) for listener in self.listeners]
        pending += [(lst.address, self.tls_port) for lst in self.listeners if lst.cert]
        while pending:
            if self._process.poll() is not None:
                raise RuntimeError(f"kamailio exited at start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"kamailio not ready in {START_TIMEOUT}s:\n{self.log_tail()}")
            address, port = pending[0]
            with contextlib.suppress(OSError), socket.create_connection((address, port), 0.2):
                pending.pop(0)
                continue
            time.sleep(0.05)
        self._wait_udp(deadline)

    def _wait_udp(self, deadline: float) -> None:
        # TCP listeners come up with the UDP workers, but make sure one UDP answer comes.
        probe = (
            b"OPTIONS sip:probe.test SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKprobe;rport\r\n"
            b"Max-Forwards: 70\r\nFrom: <sip:probe@probe.test>;tag=p\r\n"
            b"To: <sip:probe.test>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            sock.connect((self.listeners[0].address, self.port))
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    sock.send(probe)
                    if sock.recv(4096).startswith(b"SIP/2.0"):
                        return
                time.sleep(0.05)
        raise RuntimeError(f"kamailio does not answer on UDP:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the process group after STOP_TIMEOUT seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)

    def log_tail(self, lines: int = 30) -> str:
        """The end of Kamailio's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @contextlib.contextmanager
    def running(self) -> Iterator[Kamailio]:
        """Run for the duration of a ``with`` block."""
        self.start()
        try:
            yield self
        finally:
            self.stop()


def require_kamailio(in_ci: bool) -> None:
    """Skip the calling test when Kamailio is missing; fail instead under CI."""
    reason = missing()
    if reason is None:
        return
    if in_ci:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)
