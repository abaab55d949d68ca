"""LocateOptions: every tunable of a Locator, each default stated where it is defined."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from asip_locate._model import IPAddress, Transport


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


def _transports(values: Iterable[Transport | str]) -> tuple[Transport, ...]:
    result: list[Transport] = []
    for value in values:
        try:
            transport = Transport(str(value).lower())
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


@dataclass(frozen=True, slots=True, kw_only=True)
class LocateOptions:
    """How a Locator queries DNS and orders targets. Change copies with ``replace``."""

    nameservers: tuple[str, ...] = ()
    """DNS servers as "ip", "ip:port" or "[ipv6]:port". Default (): the system's."""

    transports: Sequence[Transport | str] = (Transport.UDP, Transport.TCP, Transport.TLS)
    """Transports the caller supports, most preferred first; strings such as "tcp" are
    accepted and stored as a tuple of Transport (read it typed as ``supported``).

    Default udp, tcp, tls. NAPTR services of other transports are discarded, and with
    no NAPTR this order decides which SRV transport comes first (RFC 3263 §4.1).
    """

    ip_strategy: IpStrategy = IpStrategy.PREFER_IPV6
    """Default PREFER_IPV6: RFC 6724's default policy ranks IPv6 above IPv4, and
    RFC 7984 §3.1 asks dual-stack clients to use both families."""

    use_naptr: bool = True
    """Default True: do the RFC 3263 §4.1 NAPTR step (a SHOULD)."""

    sips_policy: SipsPolicy = SipsPolicy.NAPTR
    """Default NAPTR (RFC 3263). SRV skips NAPTR for SIPS URIs."""

    stay_in_domain: bool = False
    """Default False. True refuses NAPTR replacements and SRV targets outside the URI's
    domain (the host or a name below it), for deployments that want DNS answers to
    stay within the certificate's domain (RFC 3263 §4.1)."""

    cross_naptr_orders: bool = True
    """Default True: once the records of one NAPTR order fail to give a target, go on
    to the next order, as Kamailio and most SIP stacks do. False applies RFC 3403
    §4.1 strictly (records with another order are never considered)."""

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

    @property
    def supported(self) -> tuple[Transport, ...]:
        """``transports`` as the normalized tuple of Transport."""
        return self.transports  # type: ignore[return-value]  # normalized in __post_init__

    def __post_init__(self) -> None:
        object.__setattr__(self, "transports", _transports(self.transports))
        object.__setattr__(self, "ip_strategy", IpStrategy(self.ip_strategy))
        object.__setattr__(self, "sips_policy", SipsPolicy(self.sips_policy))
        object.__setattr__(self, "nameservers", tuple(self.nameservers))
        for name in ("timeout", "deadline"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LocateOptions.{name} must be > 0")
        for name in ("tries", "max_concurrency", "max_queries", "max_records"):
            if getattr(self, name) < 1:
                raise ValueError(f"LocateOptions.{name} must be >= 1")
        for name in ("failure_hold", "sticky_for"):
            value = getattr(self, name)
            if not 0 <= value < float("inf"):
                raise ValueError(f"LocateOptions.{name} must be a finite number >= 0")
        if self.health_size < 0:
            raise ValueError("LocateOptions.health_size must be >= 0")
        if not 0 <= self.min_ttl <= self.max_ttl:
            raise ValueError("LocateOptions needs 0 <= min_ttl <= max_ttl")
        for name in ("cache_size", "negative_ttl", "stale_ttl"):
            if getattr(self, name) < 0:
                raise ValueError(f"LocateOptions.{name} must be >= 0")
        if not 0 <= self.refresh_ahead < 1:
            raise ValueError("LocateOptions.refresh_ahead must be >= 0 and < 1")
