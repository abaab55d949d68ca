"""Value types shared by every layer: transports, DNS queries and answers, targets."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Transport(StrEnum):
    """A SIP transport, named as in URI ``transport=`` values (RFC 3261, 4168, 7118)."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    SCTP = "sctp"
    TLS_SCTP = "tls-sctp"
    WS = "ws"
    WSS = "wss"

    @property
    def is_secure(self) -> bool:
        """True for the TLS-based transports that a SIPS URI allows."""
        return self in _SECURE

    @property
    def is_reliable(self) -> bool:
        """True for connection-oriented transports (everything but UDP)."""
        return self is not Transport.UDP

    @property
    def default_port(self) -> int:
        """RFC 3261 §19.1.1 (5060/5061) and RFC 7118 §5.5 (80/443)."""
        return _DEFAULT_PORT[self]

    @property
    def naptr_service(self) -> str:
        """The NAPTR service field for this transport (RFC 3263 §4.1, 4168, 7118)."""
        return _NAPTR_SERVICE[self]

    @property
    def srv_prefix(self) -> str | None:
        """``_service._proto`` for SRV owners; None for WebSocket (RFC 7118 defines none)."""
        return _SRV_PREFIX[self]

    @property
    def via_name(self) -> str:
        """The transport token of a Via header (RFC 3261 §20.42, RFC 4168, RFC 7118)."""
        return self.value.upper()

    @property
    def secure_variant(self) -> Transport:
        """The transport a SIPS URI turns this one into (RFC 3261 §26.2.2, RFC 7118 §9.2)."""
        return _SECURE_VARIANT.get(self, self)


_SECURE = frozenset({Transport.TLS, Transport.TLS_SCTP, Transport.WSS})
_DEFAULT_PORT = {
    Transport.UDP: 5060,
    Transport.TCP: 5060,
    Transport.SCTP: 5060,
    Transport.TLS: 5061,
    Transport.TLS_SCTP: 5061,
    Transport.WS: 80,
    Transport.WSS: 443,
}
_NAPTR_SERVICE = {
    Transport.UDP: "SIP+D2U",
    Transport.TCP: "SIP+D2T",
    Transport.SCTP: "SIP+D2S",
    Transport.WS: "SIP+D2W",
    Transport.TLS: "SIPS+D2T",
    Transport.TLS_SCTP: "SIPS+D2S",
    Transport.WSS: "SIPS+D2W",
}
NAPTR_SERVICES = {service: transport for transport, service in _NAPTR_SERVICE.items()}
_SRV_PREFIX = {
    Transport.UDP: "_sip._udp",
    Transport.TCP: "_sip._tcp",
    Transport.SCTP: "_sip._sctp",
    Transport.TLS: "_sips._tcp",
    Transport.TLS_SCTP: "_sips._sctp",
    Transport.WS: None,
    Transport.WSS: None,
}
_SECURE_VARIANT = {
    Transport.TCP: Transport.TLS,
    Transport.SCTP: Transport.TLS_SCTP,
    Transport.WS: Transport.WSS,
}


class FailureReason(StrEnum):
    """Why sending to a target failed (RFC 3263 §4.3, RFC 3261 §21.5.4)."""

    TIMEOUT = "timeout"
    TRANSPORT = "transport"
    SERVICE_UNAVAILABLE = "503"
    OTHER = "other"


class RType(StrEnum):
    """The DNS record types RFC 3263 uses."""

    NAPTR = "NAPTR"
    SRV = "SRV"
    A = "A"
    AAAA = "AAAA"


class Status(StrEnum):
    """Outcome of one DNS query. DNS outcomes are data, never exceptions."""

    NOERROR = "NOERROR"
    NXDOMAIN = "NXDOMAIN"
    NODATA = "NODATA"
    SERVFAIL = "SERVFAIL"
    REFUSED = "REFUSED"
    TIMEOUT = "TIMEOUT"
    UNREACHABLE = "UNREACHABLE"
    """No nameserver could be reached (e.g. ICMP port unreachable: connection refused)."""
    ERROR = "ERROR"

    @property
    def is_negative(self) -> bool:
        """NXDOMAIN or NODATA: an authoritative "nothing here" (cacheable, RFC 2308)."""
        return self in (Status.NXDOMAIN, Status.NODATA)

    @property
    def is_failure(self) -> bool:
        """The question was not answered (never cached as an answer)."""
        return self not in (Status.NOERROR, Status.NXDOMAIN, Status.NODATA)


def normalize_name(name: str) -> str:
    """Lower-case a domain name and drop its trailing dot (DNS names compare caselessly)."""
    return name.lower().rstrip(".")


class Query(NamedTuple):
    """One DNS question; ``name`` is normalized (lower case, no trailing dot).

    A NamedTuple, like Endpoint, because it keys the cache and the planner's tables:
    its hashing and comparison run in C.
    """

    name: str
    rtype: RType

    def __str__(self) -> str:
        return f"{self.name} {self.rtype}"


@dataclass(frozen=True, slots=True)
class NaptrRecord:
    """NAPTR RDATA (RFC 3403 §4.1); ``replacement`` is normalized."""

    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str

    def __str__(self) -> str:
        return (
            f'{self.order} {self.preference} "{self.flags}" "{self.service}" '
            f'"{self.regexp}" {self.replacement or "."}'
        )


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """SRV RDATA (RFC 2782); ``target`` is normalized, "" for the root (".")."""

    priority: int
    weight: int
    port: int
    target: str

    def __str__(self) -> str:
        return f"{self.priority} {self.weight} {self.port} {self.target or '.'}"


Record = NaptrRecord | SrvRecord | ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of a Query: a status, the records of the asked type, and their TTL.

    ``ttl`` is the minimum TTL of the records used (CNAMEs on the way included); for a
    negative answer it is the negative-caching TTL when known, else None.
    ``cnames`` lists the aliases followed to reach the records (RFC 1034 §3.6.2).
    """

    query: Query
    status: Status
    records: tuple[Record, ...] = ()
    ttl: int | None = None
    cnames: tuple[str, ...] = ()
    detail: str = ""
    stale: bool = False
    additional: tuple[Answer, ...] = ()
    """For an SRV answer: A/AAAA answers built from the reply's additional section
    (RFC 2782), one per (target, type), each owned by a target named in this answer.
    Lower rank than answer-section data (RFC 2181 §5.4.1)."""

    def __str__(self) -> str:
        if self.status is Status.NOERROR:
            return f"{self.query}: {len(self.records)} record(s)"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.query}: {self.status}{detail}"


@dataclass(frozen=True, slots=True)
class Discarded:
    """A record the planner did not use, and why (for ``--explain`` and debugging).

    Attributes:
        query: The query whose answer held the record.
        record: The record in zone-file text (or a summary such as "12 more records").
        why: Why it was not used, e.g. "port 0" or "unsupported transport sctp".
    """

    query: Query
    record: str
    why: str

    def __str__(self) -> str:
        return f"{self.query}: {self.record} ({self.why})"


class Endpoint(NamedTuple):
    """Where a request goes: the key for de-duplication and health state."""

    transport: Transport
    address: IPAddress
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.transport} {host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Target:
    """One candidate destination, in RFC 3263 order.

    Attributes:
        transport: The transport to use.
        address: The IP address to send to.
        port: The port to send to.
        host: The name whose A/AAAA records gave ``address``, or the literal.
        tls_name: For TLS-based transports, the domain the server certificate must
            match (RFC 5922 §7.3: the URI's host, never a name from NAPTR or SRV).
        ttl: Seconds the DNS data behind this target stays valid (None for literals).
        path: The DNS queries that produced this target, first to last.
        stale: True when some of that data was served stale (RFC 8767).
    """

    transport: Transport
    address: IPAddress
    port: int
    host: str
    tls_name: str | None = None
    ttl: int | None = field(default=None, compare=False)
    path: tuple[Query, ...] = field(default=(), compare=False)
    stale: bool = field(default=False, compare=False)

    @property
    def endpoint(self) -> Endpoint:
        """The (transport, address, port) triple this target sends to."""
        return Endpoint(self.transport, self.address, self.port)

    def __str__(self) -> str:
        return f"{self.endpoint} ({self.host})"
