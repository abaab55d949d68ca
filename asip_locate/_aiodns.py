"""AiodnsBackend: DNS through c-ares (pycares 5, as aiodns 4 uses it), mapped to Answers.

The channel is driven from the event loop that first uses the backend: c-ares reports
its sockets through ``sock_state_cb``, the loop watches them (``add_reader`` /
``add_writer``) and one timer follows c-ares' next timeout (``Channel.timeout``), so
retries happen when c-ares wants them. Each query is a future completed from the
c-ares callback with a finished Answer: no task, no thread hand-over per answer.
Replies are validated and capped by ``_answers.build_answer`` before anything else
sees them.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import pycares
from pycares.utils import parse_name

from asip_locate._answers import (
    CLASS_IN,
    RR,
    TYPE_CODE,
    answer_ttl,
    build_answer,
    order_records,
)
from asip_locate._model import (
    Answer,
    IPAddress,
    NaptrRecord,
    Query,
    Record,
    RType,
    SrvRecord,
    Status,
    normalize_name,
)

log = logging.getLogger("asip_locate")

_errno = pycares.errno
_STATUS = {
    _errno.ARES_ENOTFOUND: Status.NXDOMAIN,
    _errno.ARES_ENODATA: Status.NODATA,
    _errno.ARES_ESERVFAIL: Status.SERVFAIL,
    _errno.ARES_EREFUSED: Status.REFUSED,
    # c-ares reports ICMP port unreachable (nothing listens) as ECONNREFUSED: the
    # nameserver was not reached, which is not a DNS REFUSED rcode.
    _errno.ARES_ECONNREFUSED: Status.UNREACHABLE,
    _errno.ARES_ETIMEOUT: Status.TIMEOUT,
}
_CANCELLED = (_errno.ARES_ECANCELLED, _errno.ARES_EDESTRUCTION)
_SOCKET_BAD = pycares.ARES_SOCKET_BAD
_A, _AAAA, _CNAME, _SRV, _NAPTR = 1, 28, 5, 33, 35
_SRV_TYPE = TYPE_CODE[RType.SRV]
_MALFORMED = (AttributeError, OSError, TypeError, ValueError)
_IPv4, _IPv6 = ipaddress.IPv4Address, ipaddress.IPv6Address
_inet_pton, _AF_INET, _AF_INET6 = socket.inet_pton, socket.AF_INET, socket.AF_INET6
_new_rr = tuple.__new__  # RR(...) without the NamedTuple's Python-level __new__

ADDRESSES_KEPT = 4096
"""Distinct addresses whose objects are reused (the table is emptied when full).

Many names lead to the same few servers: one IPv4Address/IPv6Address object per
address, not one per record, spares parsing it again and, for cached answers, the
garbage collector a tracked object per record. c-ares writes the address text in
canonical form (``ares_inet_ntop``), so equal text is an equal address."""
_ADDRESSES: dict[str, IPAddress] = {}

RECEIVE_BUFFER = 4 << 20
"""SO_RCVBUF asked for on c-ares' UDP sockets (the kernel caps it at net.core.rmem_max)."""
RECYCLE_AFTER = 4096
"""Queries sent on one c-ares channel before it is replaced by a fresh one.

c-ares (1.23+) keeps its own query cache, on by default and not switchable through
pycares 5: every distinct question stays in it for up to its TTL (at most an hour),
so a process that meets many distinct names holds memory the library's own cache
limits do not cover. A channel that has sent this many queries takes no more; it is
closed (and its cache freed) once its last query has been answered, and a new
channel takes the next queries. The cost is a new channel and socket per RECYCLE_AFTER
queries. It also bounds how many queries share one UDP source port (the channel keeps
its sockets open between queries, ARES_FLAG_STAYOPEN; pycares 5 does not expose
c-ares' udp_max_queries)."""


def _rdata(kind: int, data: Any) -> Record | str | None:
    """The RDATA of a pycares record, decoded for the types the library uses.

    None for other types; AttributeError, OSError, TypeError or ValueError when it
    is malformed.
    """
    if kind in (_A, _AAAA):
        text = data.addr
        family = _IPv4 if kind == _A else _IPv6
        address = _ADDRESSES.get(text)
        if address is None:
            address = family(_inet_pton(_AF_INET if kind == _A else _AF_INET6, text))
            if len(_ADDRESSES) >= ADDRESSES_KEPT:
                _ADDRESSES.clear()
            _ADDRESSES[text] = address
        elif address.__class__ is not family:
            raise ValueError(f"{text!r} is not an address of type {kind}")
        return address
    if kind == _SRV:
        return SrvRecord(data.priority, data.weight, data.port, normalize_name(data.target))
    if kind == _NAPTR:
        return NaptrRecord(
            data.order,
            data.preference,
            data.flags,
            data.service,
            data.regexp,
            normalize_name(data.replacement),
        )
    if kind == _CNAME:
        return normalize_name(data.cname)
    return None


def _decode(rr: pycares.DNSRecord) -> RR:
    """One pycares record as an RR (the RDATA decoded for the types the library uses)."""
    kind = rr.type
    value: Record | str | None = None
    try:
        value = _rdata(kind, rr.data)
    except _MALFORMED as exc:
        log.info("ignoring a malformed record of type %s: %s", kind, exc)
    # pycares hands back bytes for a name it cannot decode as ASCII (never seen).
    name: Any = rr.name
    owner = normalize_name(name) if isinstance(name, str) else ""
    return _new_rr(RR, (owner, kind, rr.record_class, rr.ttl, value))


def _plain_answer(
    query: Query, owner: str, records: list[pycares.DNSRecord], max_records: int
) -> Answer | None:
    """The Answer of the usual reply, without building an RR per record; else None.

    Usual: one to ``max_records`` well-formed class-IN records of the asked type,
    each owned by the query name itself (no CNAME). Any other reply is left to
    ``build_answer``, which applies the same rules to everything it holds (and
    counts and logs what it drops), so the result is the same either way.
    """
    if not records or len(records) > max_records:
        return None
    rtype = query.rtype
    kind = TYPE_CODE[rtype]
    data: list[Record] = []
    lowest = highest = records[0].ttl
    for rr in records:
        name: Any = rr.name  # bytes for a name pycares cannot decode (see _decode)
        if (
            rr.type != kind
            or rr.record_class != CLASS_IN
            or (name != owner and (not isinstance(name, str) or normalize_name(name) != owner))
        ):
            return None
        try:
            value = _rdata(kind, rr.data)
        except _MALFORMED:
            return None
        ttl = rr.ttl
        if ttl < lowest:
            lowest = ttl
        elif ttl > highest:
            highest = ttl
        data.append(value)  # type: ignore[arg-type]  # a Record for the four types asked
    if kind in (_SRV, _NAPTR):  # A/AAAA keep their wire order
        order_records(rtype, data)
    return Answer(query, Status.NOERROR, tuple(data), answer_ttl(lowest, highest))


class _Channel:
    """One pycares channel and, when the loop drives it, its watched sockets and timer."""

    __slots__ = (
        "__weakref__",
        "arm_due",
        "channel",
        "closed",
        "loop",
        "pending",
        "readers",
        "retired",
        "sent",
        "timer",
        "writers",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, event_thread: bool, **options: Any) -> None:
        self.loop = loop
        self.pending = 0
        self.sent = 0
        self.retired = False
        self.closed = False
        self.readers: set[int] = set()
        self.writers: set[int] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.arm_due = False
        if event_thread:
            self.channel = pycares.Channel(**options)
            return
        this = weakref.ref(self)  # no cycle channel -> callback -> self -> channel

        def sock_state(fd: int, readable: bool, writable: bool) -> None:
            channel = this()
            if channel is not None:
                channel.sock_state(fd, readable, writable)

        self.channel = pycares.Channel(sock_state_cb=sock_state, **options)

    def sock_state(self, fd: int, readable: bool, writable: bool) -> None:
        if self.closed:  # sockets closed by pycares' shutdown thread: nothing to watch
            return
        loop = self.loop
        if readable:
            if fd not in self.readers:
                loop.add_reader(fd, self.read, fd)
                self.readers.add(fd)
        elif fd in self.readers:
            loop.remove_reader(fd)
            self.readers.discard(fd)
        if writable:
            if fd not in self.writers:
                loop.add_writer(fd, self.write, fd)
                self.writers.add(fd)
        elif fd in self.writers:
            loop.remove_writer(fd)
            self.writers.discard(fd)

    def read(self, fd: int) -> None:
        self.channel.process_read_fd(fd)
        self.arm_soon()

    def write(self, fd: int) -> None:
        self.channel.process_write_fd(fd)
        self.arm_soon()

    def arm_soon(self) -> None:
        """``arm`` once the current loop iteration's sends and reads are done.

        Asking c-ares its next timeout costs ~2 us; a wave of queries sent, or of
        replies read, in one iteration needs it once, not once each.
        """
        if not self.arm_due:
            self.arm_due = True
            self.loop.call_soon(self._arm_now)

    def _arm_now(self) -> None:
        self.arm_due = False
        self.arm()

    def arm(self) -> None:
        """Keep one timer at c-ares' next timeout while queries are pending."""
        timer = self.timer
        if not self.pending or self.closed:
            if timer is not None:
                timer.cancel()
                self.timer = None
            return
        when = self.loop.time() + self.channel.timeout()  # type: ignore[no-untyped-call]
        if timer is not None:
            if timer.when() <= when:
                return  # fires first; it re-arms for whatever is left then
            timer.cancel()
        self.timer = self.loop.call_at(when, self.expire)

    def expire(self) -> None:
        self.timer = None
        if not self.closed:
            self.channel.process_fd(_SOCKET_BAD, _SOCKET_BAD)  # c-ares handles timeouts
            self.arm()

    def close(self) -> None:
        """Stop watching, cancel what is pending (callbacks run now), destroy."""
        if self.closed:
            return
        if self.pending:
            self.channel.cancel()
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for fd in self.readers:
            self.loop.remove_reader(fd)
        for fd in self.writers:
            self.loop.remove_writer(fd)
        self.readers.clear()
        self.writers.clear()
        self.channel.close()


class AiodnsBackend:
    """The default backend: c-ares through pycares 5 (the library under aiodns 4).

    Args:
        nameservers: "ip", "ip:port" or "[ipv6]:port"; empty uses the system's
            (ValueError at once for anything else).
        timeout: Seconds c-ares waits for one try.
        tries: Tries per nameserver.
        max_records: The most records of the asked type an Answer keeps (NAPTR
            sorted by order and preference first, SRV the lowest priorities first);
            ``Locator`` passes ``LocateOptions.max_records``.
        recycle_after: Queries per c-ares channel before a fresh one takes over
            (bounds c-ares' own query cache, see ``RECYCLE_AFTER``).
        additional: Build ``Answer.additional`` from SRV replies' additional
            sections (False: ignore those sections; ``Locator`` passes
            ``LocateOptions.use_additional``).
        event_thread: Let c-ares run its own event thread instead of the event loop
            driving its sockets (slower: a thread hand-over per answer; kept to
            measure against).

    Answers hold only class-IN records owned by the query name or its CNAME chain
    (``_answers.build_answer``); what else a reply held is dropped and counted in
    ``dropped_records`` (answer section) and ``dropped_additional``. For SRV
    queries, ``Answer.additional`` holds the A/AAAA data the reply's additional
    section gave for the SRV targets.

    Every DNS outcome is an Answer (NXDOMAIN, SERVFAIL, timeouts, an unreachable
    nameserver...). Programming errors raise: using the backend after ``aclose``,
    from a second event loop, or outside a running loop.

    Lifecycle and threads: the c-ares channel is created on first use, bound to the
    event loop running then, so a backend (or Locator) built at import time, with no
    loop running, works in the loop that first uses it. Using it from another loop
    raises RuntimeError. It is not thread-safe: call ``query``/``start`` only from
    that loop's thread (``aclose`` too, or after that loop stopped).
    """

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        timeout: float = 2.0,
        tries: int = 2,
        max_records: int = 32,
        recycle_after: int = RECYCLE_AFTER,
        event_thread: bool = False,
        additional: bool = True,
    ) -> None:
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        if recycle_after < 1:
            raise ValueError("recycle_after must be >= 1")
        self.max_records = max_records
        self.recycle_after = recycle_after
        self.event_thread = event_thread
        self.additional = additional
        self._options: dict[str, Any] = {
            "timeout": timeout,
            "tries": tries,
            # Hundreds of locates in flight put thousands of queries on one channel;
            # the kernel's default UDP receive buffer (~208 KiB) then drops replies,
            # which come back only as c-ares timeouts and retries.
            "socket_receive_buffer_size": RECEIVE_BUFFER,
            # c-ares closes a UDP socket as soon as no query is pending on it, so a
            # locate paid a new socket (socket, connect, SO_RCVBUF, epoll) per wave:
            # half the CPU of a query at 1 in flight. Keeping it open is bounded by
            # the recycling: each channel's sockets carry at most RECYCLE_AFTER
            # queries, then a new channel gets new (randomly numbered) source ports.
            "flags": pycares.ARES_FLAG_STAYOPEN,
        }
        if nameservers:
            for server in nameservers:
                _check_nameserver(server)
            self._options["servers"] = list(nameservers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._channel: _Channel | None = None
        self._retired: set[_Channel] = set()
        self._closed = False
        self.channels_opened = 0
        """c-ares channels created so far (one more every ``recycle_after`` queries)."""
        self.dropped_records = 0
        """Answer-section records dropped: not class IN, not owned by the query name
        or its CNAME chain, of another type, or malformed."""
        self.dropped_additional = 0
        """Additional-section records not used (not A/AAAA of an SRV target)."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._channel else "unbound"
        return f"<AiodnsBackend {state} channels={self.channels_opened}>"

    async def query(self, query: Query) -> Answer:
        """Ask c-ares one question; every DNS outcome becomes an Answer."""
        return await self.submit(query)

    def submit(
        self, query: Query, settle: Callable[[Answer], Answer] | None = None
    ) -> asyncio.Future[Answer]:
        """Send ``query`` now; the future completes with its Answer (no task involved).

        With ``settle``, with ``settle(answer)`` instead (see ``FutureLookup``).
        Cancelling the future abandons the answer, not the query (c-ares finishes it).
        """
        loop = self._bind()
        future: asyncio.Future[Answer] = loop.create_future()
        name = query.name
        owner = None
        if not name.isascii():
            try:
                encoded = parse_name(name)
            except (UnicodeError, RuntimeError, ValueError) as exc:
                # pycares IDNA-encodes non-ASCII names; some cannot be encoded.
                bad = Answer(query, Status.ERROR, detail=f"bad name: {exc}")
                future.set_result(bad if settle is None else settle(bad))
                return future
            owner = normalize_name(encoded.decode("ascii"))
        channel = self._channel
        if channel is None:
            channel = self._open(loop)
        callback: Callable[[Any, int], None] = functools.partial(
            self._done, future, query, owner, channel, settle
        )
        if self.event_thread:
            callback = functools.partial(loop.call_soon_threadsafe, callback)  # type: ignore[arg-type,assignment]
        channel.pending += 1
        channel.sent += 1
        if channel.sent >= self.recycle_after:
            self._retire(channel)
        try:
            channel.channel.query(name, TYPE_CODE[query.rtype], callback=callback)
        except pycares.AresError as exc:
            # Refused before sending (e.g. a name c-ares cannot encode). c-ares may
            # have run the callback already.
            if not future.done():
                code = exc.args[0] if exc.args else None
                self._done(future, query, owner, channel, settle, None, code)
        else:
            if not channel.arm_due and not self.event_thread:  # as arm_soon: no call
                channel.arm_soon()
        return future

    async def aclose(self) -> None:
        """Close the c-ares channels; queries still pending end as ERROR answers."""
        self._closed = True
        channels = list(self._retired)
        if self._channel is not None:
            channels.append(self._channel)
        self._channel = None
        self._retired.clear()
        for channel in channels:
            channel.close()

    # --- internals -----------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RuntimeError("AiodnsBackend is closed")
        loop = asyncio.get_running_loop()  # RuntimeError outside a running loop
        if loop is not self._loop:
            if self._loop is not None:
                raise RuntimeError(
                    "AiodnsBackend (and the Locator owning it) is bound to the event loop "
                    f"that first used it ({self._loop!r}) and was used from another one "
                    f"({loop!r}); create one Locator per event loop"
                )
            self._loop = loop
        return loop

    def _open(self, loop: asyncio.AbstractEventLoop) -> _Channel:
        channel = _Channel(loop, self.event_thread, **self._options)
        self.channels_opened += 1
        self._channel = channel
        return channel

    def _retire(self, channel: _Channel) -> None:
        """No new queries on ``channel``; close it when its last one is answered."""
        channel.retired = True
        if self._channel is channel:
            self._channel = None
        self._retired.add(channel)

    def _done(
        self,
        future: asyncio.Future[Answer],
        query: Query,
        owner: str | None,
        channel: _Channel,
        settle: Callable[[Answer], Answer] | None,
        result: pycares.DNSResult | None,
        code: int | None,
    ) -> None:
        """The c-ares callback (on the loop thread): finish ``future`` with an Answer."""
        channel.pending -= 1
        if channel.retired and not channel.pending and not channel.closed:
            self._retired.discard(channel)
            # Not from inside c-ares' processing of this very channel.
            channel.loop.call_soon(channel.close)
        if future.done():  # the caller gave up
            return
        try:
            if code is None and result is not None:
                answer = self._answer(query, owner, result)
            else:
                answer = _failure(query, code)
            if settle is not None:
                answer = settle(answer)
        except BaseException as exc:  # a bug here must reach the caller, not c-ares
            future.set_exception(exc)
            return
        future.set_result(answer)

    def _answer(self, query: Query, owner: str | None, result: pycares.DNSResult) -> Answer:
        if not (result.additional and self.additional and query.rtype is RType.SRV):
            plain = _plain_answer(query, owner or query.name, result.answer, self.max_records)
            if plain is not None:
                return plain
        records = [_decode(rr) for rr in result.answer]
        additional = (
            [_decode(rr) for rr in result.additional]
            if result.additional and self.additional and TYPE_CODE[query.rtype] == _SRV_TYPE
            else ()
        )
        built = build_answer(query, records, additional, max_records=self.max_records, owner=owner)
        if built.dropped:
            self.dropped_records += built.dropped
            log.debug(
                "%s: dropped %d answer record(s) not of type %s, class IN and owned by the "
                "name or its CNAME chain",
                query,
                built.dropped,
                query.rtype,
            )
        if built.dropped_additional:
            self.dropped_additional += built.dropped_additional
            log.debug("%s: %d additional record(s) unused", query, built.dropped_additional)
        if built.capped:
            log.info(
                "%s: kept %d of %d records (max_records)",
                query,
                self.max_records,
                self.max_records + built.capped,
            )
        return built.answer


def _check_nameserver(server: str) -> None:
    """Refuse what c-ares would refuse only later, on first use (a ValueError now)."""
    host, port = server, ""
    if server.startswith("["):
        host, sep, port = server[1:].partition("]")
        if not sep or (port and not port.startswith(":")):
            raise ValueError(f"nameserver {server!r}: expected [ipv6]:port")
        port = port[1:]
        version = 6
    elif server.count(":") == 1:
        host, _, port = server.partition(":")
        version = 4
    else:
        version = 0
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"nameserver {server!r}: not an IP address (with optional port)") from None
    if version and address.version != version:
        raise ValueError(f"nameserver {server!r}: use [ipv6]:port for an IPv6 address with a port")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"nameserver {server!r}: bad port")


def _failure(query: Query, code: int | None) -> Answer:
    status = _STATUS.get(code, Status.ERROR) if code is not None else Status.ERROR
    if status.is_negative:
        return Answer(query, status)
    if code in _CANCELLED:
        return Answer(query, Status.ERROR, detail="cancelled: backend closed")
    detail = _errno.strerror(code) if code is not None else "no result"
    return Answer(query, status, detail=str(detail))
