"""Destination policy: which IP addresses may ever become targets (the trust boundary).

Addresses learned from DNS are hostile input. Some can never be a SIP next hop:
sending to the unspecified address reaches the local host on Linux, and broadcast or
multicast destinations fan one request out to many receivers. Those are refused
here, for every address from DNS and for literals in URIs and Via headers.
"""

from __future__ import annotations

import ipaddress

from asip_locate._model import IPAddress

_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def is_special_destination(address: IPAddress) -> bool:
    """True for addresses that are never a unicast next hop.

    Unspecified (0.0.0.0, ::), limited broadcast (255.255.255.255, RFC 919) and
    multicast (224.0.0.0/4, ff00::/8), also in IPv4-mapped IPv6 form (::ffff:0:0/96).
    """
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            address = mapped
    return address.is_unspecified or address.is_multicast or address == _LIMITED_BROADCAST


def global_only(address: IPAddress) -> bool:
    """An ``address_filter`` that accepts only globally routable addresses from DNS.

    It refuses loopback, private, link-local, shared and reserved ranges.
    """
    return address.is_global
