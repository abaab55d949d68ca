"""ZoneServer: a real UDP+TCP DNS server on loopback, with fault injection (dnslib)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass
from types import TracebackType
from typing import cast

from dnslib import QTYPE, RCODE, RR, A, DNSError, DNSHeader, DNSRecord
from dnslib.label import DNSLabelError

from asip_locate._model import normalize_name
from asip_locate.testing._zone import Zone

log = logging.getLogger("asip_locate.testing")

_UDP_LIMIT = 512  # RFC 1035 §4.2.1, raised by an EDNS0 OPT record (RFC 6891)
_TCP_LIMIT = 65_535  # RFC 1035 §4.2.2: a two-octet length prefix


@dataclass(slots=True)
class Fault:
    """A rule that changes how matching queries are answered.

    ``name``/``qtype`` None match anything. ``times`` None applies forever, else to
    that many matching queries. ``rcode`` answers with that code (e.g. "SERVFAIL");
    ``drop`` sends nothing; ``truncate`` sets TC over UDP (TCP still answers);
    ``garbage`` sends bytes that are not a DNS message; ``wrong_type`` answers with
    an A record whatever was asked; ``delay`` waits that many seconds first.
    ``answer_extra`` / ``additional_extra`` are zone-file lines (absolute owners)
    appended to the answer / additional section of the normal reply: records a
    broken or hostile server adds (foreign owners, other classes, off-chain CNAMEs).
    """

    name: str | None = None
    qtype: str | None = None
    delay: float = 0.0
    drop: bool = False
    rcode: str | None = None
    truncate: bool = False
    garbage: bool = False
    wrong_type: bool = False
    answer_extra: tuple[str, ...] = ()
    additional_extra: tuple[str, ...] = ()
    times: int | None = None

    def matches(self, name: str, qtype: str) -> bool:
        return (self.name is None or normalize_name(self.name) == name) and (
            self.qtype is None or self.qtype.upper() == qtype
        )


@dataclass(frozen=True, slots=True)
class LoggedQuery:
    """One query as the server received it."""

    name: str
    qtype: str
    transport: str


class ZoneServer:
    """A DNS server on 127.0.0.1 (UDP and TCP, same ephemeral port) serving zone text.

    Use as ``async with ZoneServer(text) as server:`` and point a resolver at
    ``server.address`` ("127.0.0.1:PORT"). ``server.log`` lists every query received;
    ``server.delay`` delays every answer; ``server.inject(...)`` adds a Fault.

    With ``additional=True`` an SRV reply carries, in its additional section, the A
    and AAAA records of every SRV target the zone holds (as NSD and Knot do for
    in-zone targets, RFC 2782); ``additional`` can be changed at any time.
    """

    def __init__(
        self,
        zone_text: str,
        *,
        host: str = "127.0.0.1",
        delay: float = 0.0,
        additional: bool = False,
        port: int = 0,
    ):
        self.zone = Zone(zone_text)
        self.host = host
        self.delay = delay
        self.additional = additional
        self.faults: list[Fault] = []
        self.log: list[LoggedQuery] = []
        self.port = port
        """The port to bind (0: a free one, chosen at ``start``), then the bound one."""
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None] | None] = {}

    @property
    def address(self) -> str:
        """The server as a nameserver string ("127.0.0.1:PORT" or "[::1]:PORT")."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def set_zone(self, zone_text: str) -> None:
        """Replace the served zone."""
        self.zone = Zone(zone_text)

    def inject(self, **rule: object) -> Fault:
        """Add a Fault (keyword arguments as its fields) and return it."""
        fault = Fault(**rule)  # type: ignore[arg-type]
        self.faults.append(fault)
        return fault

    def queries(self, name: str | None = None, qtype: str | None = None) -> list[LoggedQuery]:
        """The logged queries matching ``name`` and ``qtype`` (None matches any)."""
        return [
            q
            for q in self.log
            if (name is None or q.name == normalize_name(name))
            and (qtype is None or q.qtype == qtype.upper())
        ]

    async def start(self) -> None:
        """Bind UDP and TCP on one free port (or on ``port`` when it was given)."""
        loop = asyncio.get_running_loop()
        for _ in range(1 if self.port else 20):
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
            )
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError:
                udp.close()
                continue
            self._udp, self.port = udp, port
            return
        raise OSError("ZoneServer: no port free for both UDP and TCP")

    async def aclose(self) -> None:
        """Stop serving and cancel answers still being delayed."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None
        # Clients may keep TCP connections open (c-ares with ARES_FLAG_STAYOPEN): end
        # them, so that no connection handler outlives the server.
        connections, self._connections = self._connections, {}
        for writer in connections:
            writer.close()
        handlers = [task for task in connections.values() if task is not None]
        await asyncio.gather(*handlers, return_exceptions=True)
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)

    async def __aenter__(self) -> ZoneServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _fault_for(self, name: str, qtype: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(name, qtype) and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def respond(self, data: bytes, transport: str) -> tuple[bytes | None, float]:
        """Build the reply to one wire-format query: (bytes or None to drop, delay)."""
        try:
            request = DNSRecord.parse(data)
        except (DNSError, struct.error, IndexError, ValueError):
            return None, 0.0
        if not request.questions:
            return None, 0.0
        question = request.questions[0]
        name = normalize_name(str(question.qname))
        qtype = QTYPE.get(question.qtype, str(question.qtype))
        self.log.append(LoggedQuery(name, str(qtype), transport))
        fault = self._fault_for(name, str(qtype))
        delay = self.delay + (fault.delay if fault else 0.0)
        if fault and fault.drop:
            return None, delay
        if fault and fault.garbage:
            return data[:2] + b"\x81\x80\xff\xff\xff", delay
        reply = request.reply(ra=1, aa=1)
        if fault and fault.rcode:
            reply.header.rcode = getattr(RCODE, fault.rcode.upper())
        elif fault and fault.wrong_type:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A("127.0.0.99"), ttl=60))
        else:
            result = self.zone.lookup(name, question.qtype)
            reply.header.rcode = result.rcode
            for rr in result.answer:
                reply.add_answer(rr)
            for rr in result.authority:
                reply.add_auth(rr)
            if self.additional and question.qtype == QTYPE.SRV:
                for rr in self._addresses_of_targets(result.answer):
                    reply.add_ar(rr)
            if fault:
                for line in fault.answer_extra:
                    reply.add_answer(*RR.fromZone(line))
                for line in fault.additional_extra:
                    reply.add_ar(*RR.fromZone(line))
        try:
            packed = reply.pack()
        except (DNSError, DNSLabelError, struct.error, ValueError) as exc:
            # Zone data no DNS message can carry (e.g. a name over 255 octets).
            log.warning("ZoneServer: cannot encode the answer to %s %s: %s", name, qtype, exc)
            failure = request.reply(ra=1, aa=1)
            failure.header.rcode = RCODE.SERVFAIL
            packed = failure.pack()
        limit = _TCP_LIMIT
        if transport == "udp":
            limit = max([_UDP_LIMIT] + [rr.rclass for rr in request.ar if rr.rtype == QTYPE.OPT])
        if (fault and fault.truncate and transport == "udp") or len(packed) > limit:
            # Keep the question: c-ares rejects replies that do not echo it.
            truncated = DNSRecord(DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap))
            truncated.header.tc = 1
            truncated.add_question(question)
            packed = truncated.pack()
        return packed, delay

    def _addresses_of_targets(self, answer: list[RR]) -> list[RR]:
        found: list[RR] = []
        seen: set[str] = set()
        for rr in answer:
            if rr.rtype != QTYPE.SRV:
                continue
            target = normalize_name(str(rr.rdata.target))
            if target in seen:
                continue
            seen.add(target)
            for record in self.zone.records.get(target, []):
                if record.rtype in (QTYPE.A, QTYPE.AAAA):
                    found.append(record)
        return found

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections[writer] = asyncio.current_task()
        try:
            while True:
                header = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", header)[0])
                reply, delay = self.respond(data, "tcp")
                if delay:
                    await asyncio.sleep(delay)
                if reply is not None:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.pop(writer, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: ZoneServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply, delay = self.server.respond(data, "udp")
        if reply is None or self.transport is None:
            return
        if delay:
            task = asyncio.ensure_future(self._later(reply, addr, delay))
            self.server._pending.add(task)
            task.add_done_callback(self.server._pending.discard)
        else:
            self.transport.sendto(reply, addr)

    async def _later(self, reply: bytes, addr: tuple[str | int, ...], delay: float) -> None:
        await asyncio.sleep(delay)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)
