"""Destination policy: which IP addresses may ever become targets (the trust boundary).

Addresses learned from DNS are hostile input. Some can never be a SIP next hop:
sending to the unspecified address reaches the local host on Linux, and broadcast or
multicast destinations fan one request out to many receivers. Those are refused
here, for every address from DNS and for literals in URIs and Via headers.
"""

from __future__ import annotations

import ipaddress

from asip_locate._model import IPAddress, Transport

_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def _unmapped(address: IPAddress) -> IPAddress:
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
    return address


def is_special_destination(address: IPAddress) -> bool:
    """True for addresses that are never a unicast next hop.

    Unspecified (0.0.0.0 and the rest of 0.0.0.0/8, RFC 1122 §3.2.1.3; ::), limited
    broadcast (255.255.255.255, RFC 919) and multicast (224.0.0.0/4, ff00::/8), also
    in IPv4-mapped IPv6 form (::ffff:0:0/96).
    """
    # On the integer value: every address from DNS passes here, and the ipaddress
    # properties (is_multicast, ipv4_mapped...) cost a network object each.
    value = int(address)
    if isinstance(address, ipaddress.IPv6Address):
        if value >> 32 != 0xFFFF:
            return value == 0 or value >> 120 == 0xFF
        value &= 0xFFFFFFFF  # ::ffff:a.b.c.d is that IPv4 address
    # 0.0.0.0/8 ("this host on this network", a source only: RFC 1122 §3.2.1.3 (a)),
    # 224.0.0.0/4 (multicast), 255.255.255.255 (limited broadcast).
    return value < 1 << 24 or value >> 28 == 0xE or value == 0xFFFFFFFF


def literal_refusal(
    address: IPAddress, *, maddr: bool = False, transport: Transport | None = None
) -> str | None:
    """Why a literal address from a URI or Via cannot be a destination; None if it can.

    Unspecified and broadcast addresses are always refused. Multicast is refused too,
    except an IPv4 multicast ``maddr`` (``maddr=True``): RFC 3261 wants those kept.
    §19.1.1 defines ``maddr`` with ``ttl`` for exactly this ("a call to
    alice@atlanta.com using multicast to 239.255.255.1"); §18.1.1 has a client that
    sends to a multicast group put it in the Via ``maddr``, and §18.2.2 says a
    response MUST then go to that maddr (with the Via ``ttl``, default 1); §10.2.6
    registers by multicast (224.0.1.75). §18.1.1 also says IPv6 multicast is not
    defined for SIP, so IPv6 (and IPv4-mapped) multicast maddrs are refused. SIP
    multicast is UDP (§18.1.1; §19.1.1's ttl is "of the UDP multicast packet"): with
    ``transport`` given, a multicast maddr is refused for any other transport.
    """
    if not is_special_destination(address):
        return None
    plain = _unmapped(address)
    if plain.is_multicast:
        if maddr and address.version == 4:
            if transport is None or transport is Transport.UDP:
                return None
            return f"{address} is a multicast address, which needs UDP, not {transport}"
        if maddr:
            return f"{address} is an IPv6 multicast address, not defined for SIP (RFC 3261 §18.1.1)"
        return f"{address} is a multicast address (only maddr may be multicast, RFC 3261 §19.1.1)"
    if plain == _LIMITED_BROADCAST:
        return f"{address} is the limited broadcast address"
    if plain.is_unspecified:
        return f"{address} is the unspecified address, never a destination"
    return f"{address} is in 0.0.0.0/8, a source address only (RFC 1122 §3.2.1.3)"


def global_only(address: IPAddress) -> bool:
    """An ``address_filter`` that accepts only globally routable addresses from DNS.

    It refuses loopback, private, link-local, shared and reserved ranges.
    """
    return address.is_global
