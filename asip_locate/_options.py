"""LocateOptions: every tunable of a Locator, each default stated where it is defined."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from asip_locate._model import IPAddress, Transport

IpStrategyName = Literal["ipv4_only", "ipv6_only", "prefer_ipv4", "prefer_ipv6"]
"""The string values ``LocateOptions(ip_strategy=...)`` accepts (type-checked)."""

SipsPolicyName = Literal["naptr", "srv"]
"""The string values ``LocateOptions(sips_policy=...)`` accepts (type-checked)."""

MAX_SECONDS = 86_400.0
"""Upper bound of ``timeout`` and ``deadline`` (one day)."""

MAX_TTL = 2**31 - 1
"""Upper bound of TTL-like fields: RFC 2181 §8's TTL range."""

_PORT_RE = re.compile(r"[0-9]{1,5}")
_BRACKETED_RE = re.compile(r"\[([^\]]*)\](?::(.*))?")


class IpStrategy(StrEnum):
    """Which address families to use and which to try first within one host.

    Both families are queried at once; the strategy decides only what is kept and the
    order of one host's addresses. Addresses of different hosts are never interleaved
    (RFC 7984 §4).
    """

    IPV4_ONLY = "ipv4_only"
    IPV6_ONLY = "ipv6_only"
    PREFER_IPV4 = "prefer_ipv4"
    PREFER_IPV6 = "prefer_ipv6"

    @property
    def wants_ipv4(self) -> bool:
        """True when A records are looked up."""
        return self is not IpStrategy.IPV6_ONLY

    @property
    def wants_ipv6(self) -> bool:
        """True when AAAA records are looked up."""
        return self is not IpStrategy.IPV4_ONLY


class SipsPolicy(StrEnum):
    """How a SIPS URI without port or transport is located.

    ``NAPTR`` (RFC 3263 §4.1): NAPTR filtered to SIPS services, then SRV, then A/AAAA.
    ``SRV``: skip NAPTR and query ``_sips._tcp`` (and ``_sips._sctp``) directly.
    """

    NAPTR = "naptr"
    SRV = "srv"


def parse_nameserver(text: str) -> tuple[str, int | None]:
    """Split a nameserver given as "ip", "ip:port" or "[ipv6]:port" into (ip, port).

    The ip comes back normalized (IPv6 compressed, lower case); port is None when
    absent. A bare IPv6 address is taken whole (use brackets to add a port).

    Raises:
        ValueError: anything else, naming the text: names, zone identifiers
            (``fe80::1%eth0``), ports outside 1-65535, commas or spaces.
    """
    if not isinstance(text, str):
        raise ValueError(f"nameserver {text!r}: expected a string")
    value = text.strip()
    if (
        not value
        or not value.isascii()
        or not value.isprintable()
        or any(c in value for c in " ,\t")
    ):
        raise ValueError(f"nameserver {text!r}: expected ip, ip:port or [ipv6]:port")
    if "%" in value:
        raise ValueError(f"nameserver {text!r}: IPv6 zone identifiers are not supported")
    host, port = value, None
    bracketed = _BRACKETED_RE.fullmatch(value)
    if bracketed:
        host, port = bracketed.group(1), bracketed.group(2)
        try:
            address: IPAddress = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"nameserver {text!r}: {host!r} is not an IPv6 address") from None
    else:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            host, colon, port = value.rpartition(":")
            if not colon or ":" in host:
                raise ValueError(
                    f"nameserver {text!r}: expected ip, ip:port or [ipv6]:port"
                ) from None
            try:
                address = ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"nameserver {text!r}: {host!r} is not an IP address") from None
    if port is None:
        return str(address), None
    if not _PORT_RE.fullmatch(port) or not 0 < int(port) <= 65535:
        raise ValueError(f"nameserver {text!r}: port {port!r} is not in 1-65535")
    return str(address), int(port)


def _nameservers(values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, Iterable):
        raise ValueError(f"LocateOptions.nameservers must be a sequence of strings, not {values!r}")
    result = tuple(values)
    for value in result:
        try:
            parse_nameserver(value)
        except ValueError as exc:
            raise ValueError(f"LocateOptions.nameservers: {exc}") from None
    return tuple(value.strip() for value in result)


def _transports(values: object) -> tuple[Transport, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, Iterable):
        raise ValueError(f"LocateOptions.transports must be a sequence, not {values!r}")
    result: list[Transport] = []
    for value in values:
        try:
            transport = Transport(value.lower() if isinstance(value, str) else value)
        except ValueError:
            known = ", ".join(t.value for t in Transport)
            raise ValueError(
                f"unknown transport {value!r} in LocateOptions.transports (known: {known})"
            ) from None
        if transport not in result:
            result.append(transport)
    if not result:
        raise ValueError("LocateOptions.transports must name at least one transport")
    return tuple(result)


def _choice(name: str, kind: type[IpStrategy] | type[SipsPolicy], value: object) -> Any:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return kind(value.lower())
        except ValueError:
            pass
    known = ", ".join(item.value for item in kind)
    raise ValueError(f"LocateOptions.{name} {value!r} is not one of {known}")


def _seconds(name: str, value: object, low: float, high: float, *, low_open: bool) -> None:
    """``value`` must be a finite real number in the range, bools refused."""
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and value <= high
    )
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(
            f"LocateOptions.{name} must be a finite number of seconds in "
            f"{bracket}{_number(low)}, {_number(high)}], not {value!r}"
        )


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _integer(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"LocateOptions.{name} must be an integer in {low}-{high}, not {value!r}")


def _flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"LocateOptions.{name} must be True or False, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LocateOptions:
    """How a Locator queries DNS and orders targets. Change copies with ``replace``.

    Every field is checked at construction: a bad value (wrong type, NaN, infinite,
    out of range, an unparseable nameserver) raises ValueError naming the field and
    the value, so nothing fails later inside c-ares or the event loop.
    """

    nameservers: tuple[str, ...] = ()
    """DNS servers as "ip", "ip:port" or "[ipv6]:port" (port 1-65535, no zone IDs; see
    ``parse_nameserver``), stored stripped. Default (): the system's."""

    transports: tuple[Transport, ...] = (Transport.UDP, Transport.TCP, Transport.TLS)
    """Transports the caller supports, most preferred first; strings such as "tcp" (any
    case, or one string alone) are accepted and stored as a tuple of Transport.

    Default udp, tcp, tls. NAPTR services of other transports are discarded, and with
    no NAPTR this order decides which SRV transport comes first (RFC 3263 §4.1).
    """

    ip_strategy: IpStrategy = IpStrategy.PREFER_IPV6
    """Also given as its string value ("ipv4_only"); stored as IpStrategy. Default
    PREFER_IPV6: RFC 6724's default policy ranks IPv6 above IPv4, and
    RFC 7984 §3.1 asks dual-stack clients to use both families."""

    use_naptr: bool = True
    """Default True: do the RFC 3263 §4.1 NAPTR step (a SHOULD)."""

    sips_policy: SipsPolicy = SipsPolicy.NAPTR
    """Default NAPTR (RFC 3263). SRV skips NAPTR for SIPS URIs. Also given as "naptr"
    or "srv"; stored as SipsPolicy."""

    stay_in_domain: bool = False
    """Default False. True refuses NAPTR replacements and SRV targets outside the URI's
    domain (the host or a name below it), for deployments that want DNS answers to
    stay within the certificate's domain (RFC 3263 §4.1)."""

    cross_naptr_orders: bool = True
    """Default True: once the records of one NAPTR order fail to give a target, go on
    to the next order, as Kamailio and most SIP stacks do. False applies RFC 3403
    §4.1 strictly (records with another order are never considered)."""

    early_srv: bool = True
    """Default True: ask the SRV names that the no-NAPTR fallback would ask (for the
    supported transports) in the same first wave as the NAPTR query, so a NAPTR that
    points at the conventional names costs no extra round trip. Only the timing of the
    questions changes: an early answer is used only where RFC 3263 §4.1 would have
    asked it. False: ask them only once the NAPTR answer calls for them."""

    use_additional: bool = True
    """Default True: use A/AAAA records from an SRV reply's additional section for the
    SRV targets they belong to (RFC 2782) and query only the addresses still missing.
    They rank below answer data (RFC 2181 §5.4.1): the cache keeps them only for
    targets inside the SRV owner's domain, and never over answer-section data."""

    seed: int | None = None
    """Seed for RFC 2782 weighted ordering; None (default) draws fresh randomness.
    With a seed every locate orders equal-priority SRV records the same way."""

    timeout: float = 2.0
    """Seconds c-ares waits for one try of one query (default 2.0)."""

    tries: int = 2
    """How many times c-ares sends one query to each nameserver (default 2)."""

    deadline: float = 10.0
    """Seconds one locate may spend waiting for DNS overall (default 10.0)."""

    max_concurrency: int = 32
    """Queries one locate keeps in flight at once (default 32)."""

    max_queries: int = 64
    """Queries one locate may send in all (default 64); beyond that the remaining
    branches are dropped with a log message, never an error."""

    max_records: int = 32
    """Records used from one answer (default 32); the rest are ignored and logged."""

    cache_size: int = 10_000
    """DNS answers kept in the cache (default 10,000; 0 disables the cache)."""

    min_ttl: int = 0
    """Lower clamp on positive TTLs, in seconds (default 0)."""

    max_ttl: int = 86_400
    """Upper clamp on positive TTLs, in seconds (default 86,400 = 1 day)."""

    negative_ttl: int = 30
    """Seconds an NXDOMAIN/NODATA answer is cached (default 30). c-ares does not show
    the SOA that RFC 2308 derives it from, so it is configured."""

    stale_ttl: float = 0.0
    """Seconds past expiry an answer may be served when its refresh fails
    (RFC 8767). Default 0: serve-stale is off."""

    refresh_ahead: float = 0.0
    """Fraction of an entry's lifetime left at which a use triggers a background
    refresh (e.g. 0.1). Default 0: off."""

    failure_hold: float = 30.0
    """Seconds an endpoint stays demoted after a reported failure that carries no
    Retry-After: a timeout, a transport error, a 503 without Retry-After, or another
    failure (default 30; 0 turns such demotion off)."""

    health_size: int = 4_096
    """Endpoints the health table remembers (default 4,096; the least recently
    updated is dropped; 0 disables failure feedback)."""

    sticky_for: float = 0.0
    """Seconds a target that succeeded is preferred among equals (same SRV priority,
    or same-family addresses of one host) in later locates of the same URI
    (default 0: off)."""

    address_filter: Callable[[IPAddress], bool] | None = None
    """Called with every address learned from DNS (A/AAAA, additional data included);
    False drops it. Default None: keep every address except the special ones that are
    always refused (unspecified, limited broadcast, multicast). ``global_only`` refuses
    loopback, private and link-local addresses too."""

    if TYPE_CHECKING:
        # What the constructor accepts: as the fields, plus the string forms that
        # __post_init__ normalizes. tests/test_options.py checks it matches the fields.
        def __init__(
            self,
            *,
            nameservers: Sequence[str] = ...,
            transports: Sequence[Transport | str] = ...,
            ip_strategy: IpStrategy | IpStrategyName = ...,
            use_naptr: bool = ...,
            sips_policy: SipsPolicy | SipsPolicyName = ...,
            stay_in_domain: bool = ...,
            cross_naptr_orders: bool = ...,
            early_srv: bool = ...,
            use_additional: bool = ...,
            seed: int | None = ...,
            timeout: float = ...,
            tries: int = ...,
            deadline: float = ...,
            max_concurrency: int = ...,
            max_queries: int = ...,
            max_records: int = ...,
            cache_size: int = ...,
            min_ttl: int = ...,
            max_ttl: int = ...,
            negative_ttl: int = ...,
            stale_ttl: float = ...,
            refresh_ahead: float = ...,
            failure_hold: float = ...,
            health_size: int = ...,
            sticky_for: float = ...,
            address_filter: Callable[[IPAddress], bool] | None = ...,
        ) -> None: ...

    @property
    def supported(self) -> tuple[Transport, ...]:
        """``transports`` (kept for code written when it was loosely typed)."""
        return self.transports

    def __post_init__(self) -> None:
        """Normalize the string forms and validate every field (ValueError names it)."""
        object.__setattr__(self, "nameservers", _nameservers(self.nameservers))
        object.__setattr__(self, "transports", _transports(self.transports))
        object.__setattr__(
            self, "ip_strategy", _choice("ip_strategy", IpStrategy, self.ip_strategy)
        )
        object.__setattr__(
            self, "sips_policy", _choice("sips_policy", SipsPolicy, self.sips_policy)
        )
        for name in (
            "use_naptr",
            "stay_in_domain",
            "cross_naptr_orders",
            "early_srv",
            "use_additional",
        ):
            _flag(name, getattr(self, name))
        seed: object = self.seed
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"LocateOptions.seed must be an integer or None, not {seed!r}")
        # c-ares keeps the per-try timeout in integer milliseconds (>= 1 ms).
        _seconds("timeout", self.timeout, 0.001, MAX_SECONDS, low_open=False)
        _seconds("deadline", self.deadline, 0, MAX_SECONDS, low_open=True)
        _integer("tries", self.tries, 1, 100)
        _integer("max_concurrency", self.max_concurrency, 1, 100_000)
        _integer("max_queries", self.max_queries, 1, 1_000_000)
        _integer("max_records", self.max_records, 1, 65_535)  # a DNS message's ANCOUNT
        _integer("cache_size", self.cache_size, 0, 100_000_000)
        _integer("health_size", self.health_size, 0, 100_000_000)
        for name in ("min_ttl", "max_ttl", "negative_ttl"):
            _integer(name, getattr(self, name), 0, MAX_TTL)
        if self.min_ttl > self.max_ttl:
            raise ValueError(
                f"LocateOptions needs min_ttl <= max_ttl, not {self.min_ttl} > {self.max_ttl}"
            )
        for name in ("stale_ttl", "failure_hold", "sticky_for"):
            _seconds(name, getattr(self, name), 0, MAX_TTL, low_open=False)
        value: object = self.refresh_ahead
        if not (isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1):
            raise ValueError(f"LocateOptions.refresh_ahead must be in [0, 1), not {value!r}")
        check: object = self.address_filter
        if check is not None and not callable(check):
            raise ValueError(
                f"LocateOptions.address_filter must be callable or None, not {check!r}"
            )
