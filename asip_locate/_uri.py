"""Parsing SIP/SIPS URIs (RFC 3261 §19.1, §25.1) into what RFC 3263 §4 needs."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from asip_locate._errors import InvalidUriError
from asip_locate._model import IPAddress, normalize_name
from asip_locate._policy import literal_refusal

# RFC 3261 §25.1 character classes.
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_ESCAPED = r"%[0-9A-Fa-f]{2}"
_USER_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+")
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*")
_PARAMCHARS_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESCAPED})+")
_HCHAR = rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESCAPED})"
_HEADERS_RE = re.compile(rf"{_HCHAR}+={_HCHAR}*(?:&{_HCHAR}+={_HCHAR}*)*")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?")
_IPV4_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_MAX_NAME = 253
# Registered URI schemes (IANA) whose "scheme:digits" form would otherwise read as a
# bare host:port: "tel:911" is a telephone number (RFC 3966), never host "tel".
# fmt: off
_OTHER_SCHEMES = frozenset({
    "about", "callto", "cid", "data", "dns", "fax", "file", "ftp", "geo", "h323", "http",
    "https", "iax", "im", "info", "ldap", "mailto", "mid", "modem", "msrp", "msrps", "news",
    "nfs", "pres", "rtsp", "rtsps", "sms", "tag", "tel", "telnet", "tip", "urn", "ws",
    "wss", "xmpp",
})
# fmt: on


@dataclass(frozen=True, slots=True)
class SipUri:
    """The parts of a SIP or SIPS URI that RFC 3263 uses.

    ``host`` is normalized: lower case, no trailing dot, IPv6 without brackets.
    ``transport`` is the lower-cased ``transport=`` value as written (it may name a
    transport this library does not know). ``params`` keeps every URI parameter,
    names lower-cased, in order; ``headers`` is the raw text after ``?``.
    """

    scheme: str
    host: str
    port: int | None = None
    user: str | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: str | None = None

    @property
    def secure(self) -> bool:
        """True for ``sips:`` URIs."""
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, or None."""
        return self.param("transport")

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, normalized like ``host``, or None."""
        value = self.param("maddr")
        return None if value is None else normalize_host(value)

    @property
    def target(self) -> str:
        """RFC 3263 §4 TARGET: the maddr parameter if present, else the host."""
        return self.maddr or self.host

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (lower-cased where case is not significant)."""
        return param_value(self.params, name)

    def __str__(self) -> str:
        text = f"{self.scheme}:"
        if self.user is not None:
            text += f"{self.user}@"
        text += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += f":{self.port}"
        text += params_text(self.params)
        if self.headers is not None:
            text += f"?{self.headers}"
        return text


Params = tuple[tuple[str, str | None], ...]


def param_value(params: Params, name: str) -> str | None:
    """The value of the first parameter called ``name``; None if absent or valueless."""
    for key, value in params:
        if key == name:
            return value
    return None


def params_text(params: Params) -> str:
    """Parameters as written in a URI or header: ``;name`` or ``;name=value`` each."""
    return "".join(f";{key}" if value is None else f";{key}={value}" for key, value in params)


def numeric_host(host: str) -> IPAddress | None:
    """The address if ``host`` (normalized, no brackets) is an IP literal, else None."""
    if not (":" in host or _IPV4_RE.fullmatch(host)):
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normalize_host(host: str) -> str:
    """Lower-case a host and strip brackets and a trailing dot (no validation)."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1].lower()
    return normalize_name(host)


def _check_host(text: str, host: str) -> str:
    """Validate one RFC 3261 ``host`` and return it normalized."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise InvalidUriError(text, f"unterminated IPv6 reference {host!r}")
        if "%" in host:
            # RFC 3261 §25.1 IPv6reference has no zone ID (RFC 6874 is for http only);
            # a zone would also break the lower-case host invariant.
            raise InvalidUriError(text, f"IPv6 zone identifiers are not allowed: {host!r}")
        try:
            return ipaddress.IPv6Address(host[1:-1]).compressed
        except ValueError:
            raise InvalidUriError(text, f"bad IPv6 reference {host!r}") from None
    if _IPV4_RE.fullmatch(host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise InvalidUriError(text, f"bad IPv4 address {host!r}") from None
    if not host:
        raise InvalidUriError(text, "empty host")
    name = host[:-1] if host.endswith(".") else host
    if len(name) > _MAX_NAME:
        raise InvalidUriError(text, f"host name longer than {_MAX_NAME} characters")
    labels = name.split(".")
    for label in labels:
        if not _LABEL_RE.fullmatch(label):
            shown = label if len(label) <= 70 else label[:67] + "..."
            raise InvalidUriError(text, f"bad host name label {shown!r}")
    # RFC 3261 toplabel starts with a letter: what tells a name from an address.
    if not labels[-1][0].isalpha():
        raise InvalidUriError(text, f"host name {host!r} has a numeric top label")
    return name.lower()


def _check_port(text: str, port: str) -> int:
    if not port.isascii() or not port.isdigit() or len(port) > 5:
        raise InvalidUriError(text, f"bad port {port!r}")
    value = int(port)
    if not 0 < value <= 65535:
        raise InvalidUriError(text, f"port {value} out of range 1-65535")
    return value


def _split_hostport(text: str, hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise InvalidUriError(text, "unterminated IPv6 reference")
        host, rest = hostport[: close + 1], hostport[close + 1 :]
        if rest and not rest.startswith(":"):
            raise InvalidUriError(text, f"unexpected {rest!r} after IPv6 reference")
        port = rest[1:] if rest else None
    else:
        host, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
    return _check_host(text, host), None if port is None else _check_port(text, port)


def _parse_params(text: str, raw: str) -> tuple[tuple[str, str | None], ...]:
    params: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in raw.split(";"):
        name, eq, value = item.partition("=")
        if not _PARAMCHARS_RE.fullmatch(name) or (eq and not value):
            raise InvalidUriError(text, f"bad URI parameter {item!r}")
        if eq and not _PARAMCHARS_RE.fullmatch(value):
            raise InvalidUriError(text, f"bad value in URI parameter {item!r}")
        key = name.lower()
        if key in seen:
            raise InvalidUriError(text, f"URI parameter {key!r} appears twice")
        seen.add(key)
        if key == "transport" and eq:
            if not _TOKEN_RE.fullmatch(value):
                raise InvalidUriError(text, f"bad transport value {value!r}")
            value = value.lower()
        elif key == "maddr" and eq:
            host = _check_host(text, value)
            value = f"[{host}]" if ":" in host else host
        elif key in ("transport", "maddr"):
            raise InvalidUriError(text, f"URI parameter {key!r} needs a value")
        params.append((key, value if eq else None))
    return tuple(params)


def parse_uri(text: str) -> SipUri:
    """Parse a SIP or SIPS URI, or a bare ``host`` / ``host:port`` (taken as sip:).

    Refused: other schemes (``tel:911`` is a telephone number, not host ``tel``);
    IPv6 zone identifiers (``[fe80::1%eth0]``, ``%25`` too); unspecified, 0.0.0.0/8,
    limited-broadcast and multicast host literals (IPv4-mapped forms included); such
    ``maddr`` literals too, except IPv4 multicast over UDP (see ``_policy``).

    Raises:
        InvalidUriError: the text is not such a URI; the message names the reason.
    """
    if not isinstance(text, str):
        raise InvalidUriError(repr(text), "expected a string")
    stripped = text.strip()
    if not stripped:
        raise InvalidUriError(text, "empty input")
    if not stripped.isascii() or not stripped.isprintable() or " " in stripped:
        raise InvalidUriError(text, "URIs are printable ASCII without spaces")
    scheme = "sip"
    rest = stripped
    match = _SCHEME_RE.match(stripped)
    if match:
        candidate = match.group(1).lower()
        if candidate in ("sip", "sips"):
            scheme, rest = candidate, stripped[match.end() :]
        elif candidate in _OTHER_SCHEMES or not stripped[match.end() :].isdigit():
            raise InvalidUriError(text, f"unsupported scheme {candidate!r}")
    user: str | None = None
    # "@" may appear nowhere after the userinfo, but the user may hold "?" and ";"
    # (RFC 3261 §25.1 user-unreserved): split it off before headers and parameters.
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        name, _, password = userinfo.partition(":")
        if not _USER_RE.fullmatch(name) or not _PASSWORD_RE.fullmatch(password):
            raise InvalidUriError(text, "bad user part")
        user = userinfo
    rest, qmark, headers = rest.partition("?")
    if qmark and not _HEADERS_RE.fullmatch(headers):
        raise InvalidUriError(text, "bad URI headers")
    # The user part may hold ';' (telephone-subscriber), so split params after '@'.
    hostport, semi, raw_params = rest.partition(";")
    host, port = _split_hostport(text, hostport)
    params = _parse_params(text, raw_params) if semi else ()
    uri = SipUri(scheme, host, port, user, params, headers if qmark else None)
    _check_destinations(text, uri)
    return uri


def _check_destinations(text: str, uri: SipUri) -> None:
    """The destination policy for literals (``_policy.literal_refusal``)."""
    address = numeric_host(uri.host)
    reason = None if address is None else literal_refusal(address)
    if reason is not None:
        raise InvalidUriError(text, f"host {reason}")
    maddr = uri.maddr
    address = None if maddr is None else numeric_host(maddr)
    if address is None:
        return
    reason = literal_refusal(address, maddr=True)
    if reason is not None:
        raise InvalidUriError(text, f"maddr {reason}")
    # RFC 3261 §18.1.1, §19.1.1: SIP multicast is UDP (ttl is "the time-to-live
    # value of the UDP multicast packet"); SIPS needs TLS, which multicast cannot do.
    if address.is_multicast and (uri.secure or uri.transport not in (None, "udp")):
        raise InvalidUriError(
            text, f"multicast maddr {address} needs sip: over UDP (RFC 3261 §18.1.1)"
        )
