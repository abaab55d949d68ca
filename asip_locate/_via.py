"""Via header values (RFC 3261 §20.42, §25.1; RFC 3581) and where responses go.

``parse_via`` reads the top Via of a request strictly. ``plan_response`` turns it into
a Resolution (the pure planner of ``_plan``) that lists, in order, the destinations a
server tries for a response: RFC 3261 §18.2.2 with the RFC 3581 §4 step, then the
RFC 3263 §5 procedure on sent-by. Sending on the connection the request arrived on
(the first rule for reliable transports) is the caller's job: only the caller knows
its connections, so it is not a target here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from asip_locate._errors import InvalidUriError, InvalidViaError
from asip_locate._model import Endpoint, IPAddress, Target, Transport
from asip_locate._options import LocateOptions
from asip_locate._plan import Resolution, RngFactory, _Addresses, _Context, _Item, _Srv
from asip_locate._policy import literal_refusal
from asip_locate._uri import _check_host, _check_port, numeric_host, param_value, params_text

_MAX_LENGTH = 4096
_MAX_VALUES = 16
_MAX_PARAMS = 32
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# A parameter value before it is classified: a token, or an IPv6address (received).
_BARE_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:]+")
_HOST_RE = re.compile(r"[A-Za-z0-9\-.]+")
_BARE_IPV6_RE = re.compile(r"[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:")
_DIGITS_RE = re.compile(r"[0-9]+")
_WS_RE = re.compile(r"[ \t]*")
_FOLD_RE = re.compile(r"\r\n(?=[ \t])")  # RFC 3261 §7.3.1 line folding: LWS
_HEADER_NAME_RE = re.compile(r"(?:via|v)[ \t]*:", re.IGNORECASE)
_VIA_TRANSPORTS = {t.via_name: t for t in Transport}


@dataclass(frozen=True, slots=True)
class Via:
    """One Via header value (the top one of a request), parsed and normalized.

    Attributes:
        transport: The transport from sent-protocol (``SIP/2.0/<transport>``).
        host: The sent-by host: lower case, no trailing dot, IPv6 without brackets.
        port: The sent-by port, or None when absent.
        params: Every parameter in order, names lower-cased, values as written
            (None for a parameter without a value, such as a bare ``rport``).
        received: The ``received`` address (RFC 3261 §18.2.1), or None.
        rport: The ``rport`` parameter (RFC 3581): None when absent, True when
            present without a value, else the port.
        maddr: The ``maddr`` host, normalized like ``host``, or None.
        ttl: The ``ttl`` parameter (0-255), or None.
        branch: The ``branch`` parameter, or None.
    """

    transport: Transport
    host: str
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    received: IPAddress | None = None
    rport: int | Literal[True] | None = None
    maddr: str | None = None
    ttl: int | None = None
    branch: str | None = None

    @property
    def sent_by(self) -> str:
        """``host[:port]``, IPv6 in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def multicast_ttl(self) -> int:
        """The IP TTL for a response to a multicast ``maddr``: ``ttl``, default 1.

        RFC 3261 §18.2.2. Targets do not carry it; a caller sending to a multicast
        address reads it here.
        """
        return 1 if self.ttl is None else self.ttl

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (lower case) as written, or None."""
        return param_value(self.params, name)

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport.via_name} {self.sent_by}{params_text(self.params)}"


class _Scanner:
    """A cursor over one Via header field value; every error names the input."""

    __slots__ = ("original", "pos", "text")

    def __init__(self, original: str, text: str) -> None:
        self.original = original
        self.text = text
        self.pos = 0

    def error(self, reason: str) -> InvalidViaError:
        return InvalidViaError(self.original, reason)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip_ws(self) -> bool:
        """Skip SWS (spaces and tabs; folds are already spaces); True if any."""
        end = _WS_RE.match(self.text, self.pos)
        assert end is not None  # the pattern matches the empty string
        moved = end.end() > self.pos
        self.pos = end.end()
        return moved

    def match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.pos)
        if found is None or not found.group():
            return None
        self.pos = found.end()
        return found.group()

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected {char!r} {what}, found {self._shown()}")
        self.pos += 1

    def token(self, what: str) -> str:
        value = self.match(_TOKEN_RE)
        if value is None:
            raise self.error(f"expected {what}, found {self._shown()}")
        return value

    def _shown(self) -> str:
        rest = self.text[self.pos :]
        if not rest:
            return "the end"
        return repr(rest if len(rest) <= 20 else rest[:17] + "...")

    def value(self, name: str) -> str:
        """A gen-value: token, host (incl. an IPv6 reference) or quoted-string."""
        start = self.pos
        char = self.peek()
        if char == '"':
            self.pos += 1
            while not self.at_end():
                char = self.text[self.pos]
                if char == "\\":
                    if self.pos + 1 >= len(self.text):
                        break
                    self.pos += 2
                    continue
                self.pos += 1
                if char == '"':
                    return self.text[start : self.pos]
            raise self.error(f"unterminated quoted value of parameter {name!r}")
        if char == "[":
            close = self.text.find("]", self.pos)
            if close < 0:
                raise self.error(f"unterminated IPv6 reference in parameter {name!r}")
            self.pos = close + 1
            return self.text[start : self.pos]
        value = self.match(_BARE_VALUE_RE)
        if value is None:
            raise self.error(f"parameter {name!r}: expected a value, found {self._shown()}")
        return value


def _host(scanner: _Scanner, host: str, what: str) -> str:
    try:
        return _check_host(scanner.original, host)
    except InvalidUriError as exc:
        raise scanner.error(f"{what}: {exc.reason}") from None


def _port(scanner: _Scanner, port: str, what: str) -> int:
    try:
        return _check_port(scanner.original, port)
    except InvalidUriError as exc:
        raise scanner.error(f"{what}: {exc.reason}") from None


def _received(scanner: _Scanner, value: str) -> IPAddress:
    # RFC 3261's grammar has IPv6address without brackets; some stacks add them.
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if "%" not in bare:  # no zone identifiers (RFC 6874 is not part of SIP)
        try:
            return ipaddress.ip_address(bare)
        except ValueError:
            pass
    raise scanner.error(f"received={value!r} is not an IPv4 or IPv6 address")


def _number(scanner: _Scanner, name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or len(value) > len(str(high)) or not low <= int(value) <= high:
        raise scanner.error(f"{name}={value!r} is not a number in {low}-{high}")
    return int(value)


def _via_parm(scanner: _Scanner) -> Via:
    """One via-parm: sent-protocol LWS sent-by *( SEMI via-params )."""
    name = scanner.token("the protocol name 'SIP'")
    scanner.skip_ws()
    scanner.expect("/", "after the protocol name")
    scanner.skip_ws()
    version = scanner.token("the protocol version '2.0'")
    scanner.skip_ws()
    scanner.expect("/", "after the protocol version")
    scanner.skip_ws()
    token = scanner.token("a transport")
    if name.upper() != "SIP":
        raise scanner.error(f"protocol {name!r} is not SIP")
    if version != "2.0":
        raise scanner.error(f"SIP version {version!r} is not 2.0")
    transport = _VIA_TRANSPORTS.get(token.upper())
    if transport is None:
        known = ", ".join(_VIA_TRANSPORTS)
        raise scanner.error(f"unknown transport {token!r} (known: {known})")
    if not scanner.skip_ws():
        raise scanner.error(f"expected whitespace and sent-by after {token!r}")
    if scanner.peek() == "[":
        close = scanner.text.find("]", scanner.pos)
        end = close + 1 if close >= 0 else len(scanner.text)
        raw_host, scanner.pos = scanner.text[scanner.pos : end], end
    elif _BARE_IPV6_RE.match(scanner.text, scanner.pos):
        raise scanner.error("an IPv6 sent-by address must be in brackets")
    else:
        raw_host = scanner.match(_HOST_RE) or ""
        if not raw_host:
            raise scanner.error(f"expected the sent-by host, found {scanner._shown()}")
    host = _host(scanner, raw_host, "sent-by")
    port: int | None = None
    scanner.skip_ws()
    if scanner.peek() == ":":
        scanner.pos += 1
        scanner.skip_ws()
        digits = scanner.match(_DIGITS_RE) or scanner.match(_BARE_VALUE_RE) or ""
        port = _port(scanner, digits, "sent-by")
        scanner.skip_ws()
    params: list[tuple[str, str | None]] = []
    while not scanner.at_end() and scanner.peek() != ",":
        scanner.expect(";", "before a parameter")
        if len(params) >= _MAX_PARAMS:
            raise scanner.error(f"more than {_MAX_PARAMS} parameters")
        scanner.skip_ws()
        key = scanner.token("a parameter name").lower()
        scanner.skip_ws()
        value: str | None = None
        if scanner.peek() == "=":
            scanner.pos += 1
            scanner.skip_ws()
            value = scanner.value(key)
            scanner.skip_ws()
        if any(key == seen for seen, _ in params):
            raise scanner.error(f"parameter {key!r} appears twice")
        params.append((key, value))
    return _build(scanner, transport, host, port, tuple(params))


def _build(
    scanner: _Scanner,
    transport: Transport,
    host: str,
    port: int | None,
    params: tuple[tuple[str, str | None], ...],
) -> Via:
    """Check every parameter value and fill in the Via fields of the known ones."""
    received: IPAddress | None = None
    rport: int | Literal[True] | None = None
    maddr: str | None = None
    ttl: int | None = None
    branch: str | None = None
    for key, value in params:
        if value is None:
            if key in ("received", "maddr", "ttl", "branch"):
                raise scanner.error(f"parameter {key!r} needs a value")
            if key == "rport":
                rport = True  # RFC 3581 §3: the client asks for the source port
        elif key == "received":
            received = _received(scanner, value)
        elif key == "rport":
            rport = _number(scanner, key, value, 1, 65535)
        elif key == "ttl":
            ttl = _number(scanner, key, value, 0, 255)
        elif key == "maddr":
            maddr = _host(scanner, value, "maddr")
        elif key == "branch":
            if not _TOKEN_RE.fullmatch(value):
                raise scanner.error(f"branch={value!r} is not a token")
            branch = value
        elif value.startswith("["):
            # generic-param: gen-value = token / host / quoted-string (RFC 3261 §25.1).
            _host(scanner, value, f"parameter {key!r}")
        elif not value.startswith('"') and not _TOKEN_RE.fullmatch(value):
            raise scanner.error(f"parameter {key!r} has a bad value {value!r}")
    return Via(transport, host, port, params, received, rport, maddr, ttl, branch)


def parse_via(text: str) -> Via:
    """Parse a Via header field value and return its top (first) via-parm.

    Accepts RFC 3261's grammar (§20.42, §25.1, with RFC 3581's ``rport``): the
    protocol must be ``SIP/2.0`` (case-insensitive name) and the transport one of
    UDP, TCP, TLS, SCTP, TLS-SCTP, WS, WSS (case-insensitive); whitespace (and line
    folding) is allowed around ``/``, ``;``, ``=`` and ``:``. A comma-separated list
    is checked in full and its first value is returned. A leading ``Via:`` or
    ``v:`` header name is skipped. Non-ASCII text and control characters are
    refused, as are unknown transports, duplicate parameters, and ``received``,
    ``rport``, ``ttl``, ``maddr`` or ``branch`` values that break their grammar.

    Raises:
        InvalidViaError: the text is not such a value; the message names the reason.
    """
    if not isinstance(text, str):
        raise InvalidViaError(repr(text), "expected a string")
    if len(text) > _MAX_LENGTH:
        raise InvalidViaError(text[:60] + "...", f"longer than {_MAX_LENGTH} characters")
    if not text.isascii():
        raise InvalidViaError(text, "non-ASCII characters")
    folded = _FOLD_RE.sub(" ", text)
    if any((c < " " and c != "\t") or c == "\x7f" for c in folded):
        raise InvalidViaError(text, "control characters")
    stripped = folded.strip(" \t")
    header = _HEADER_NAME_RE.match(stripped)
    if header:
        stripped = stripped[header.end() :].lstrip(" \t")
    if not stripped:
        raise InvalidViaError(text, "empty input")
    scanner = _Scanner(text, stripped)
    values = [_via_parm(scanner)]
    while not scanner.at_end():
        scanner.expect(",", "between Via values")
        scanner.skip_ws()
        if len(values) >= _MAX_VALUES:
            raise scanner.error(f"more than {_MAX_VALUES} Via values")
        values.append(_via_parm(scanner))
    return values[0]


def plan_response(
    via: Via,
    options: LocateOptions,
    rng_for: RngFactory,
    *,
    demoted: Collection[Endpoint] = frozenset(),
) -> Resolution:
    """Start the search for where a response to a request with top Via ``via`` goes.

    The order (RFC 3261 §18.2.2, RFC 3581 §4, RFC 3263 §5):

    * Reliable transports (everything but UDP): first the connection the request
      came on, which the caller handles (not a target); then the ``received`` address
      at the sent-by port (default: the transport's); then RFC 3263 §5 on sent-by.
      ``maddr`` and ``rport`` play no part.
    * UDP: the ``maddr`` address (a name is looked up, A/AAAA) at the sent-by port or
      5060; then ``received`` at the ``rport`` port when both are present with a
      value; then ``received`` at the sent-by port or 5060; then RFC 3263 §5. What
      follows a failed maddr or rport destination is not specified (RFC 3263 §5
      silent): the later steps are kept as fallbacks.
    * RFC 3263 §5: a numeric sent-by is used as is, at its port or the transport's
      default; a name with a port gives A/AAAA at that port; a name without a port
      gives SRV (``_sip._<proto>``, ``_sips._tcp`` for TLS, none for WS/WSS), and when
      no SRV record exists A/AAAA at the default port (RFC 3263 §5 is silent; this is
      RFC 2782's own fallback). NAPTR is never used.

    Unspecified, broadcast and multicast ``received`` and sent-by addresses, and such
    ``maddr`` literals other than IPv4 multicast, are ignored as if absent (the
    destination policy of ``_policy``); an IPv4 multicast maddr is kept (RFC 3261
    §18.2.2). Every target uses the Via transport, whatever ``options.transports``
    says (the request arrived over it). TLS-based targets carry ``tls_name`` = the sent-by host.
    Literal addresses of a family ``options.ip_strategy`` excludes are skipped.
    ``demoted`` endpoints come last, as for ``plan_request``.
    """
    transport = via.transport
    ctx = _Context(options, rng_for, transport.is_secure, via.host, via.host, demoted=demoted)
    tls_name = via.host if transport.is_secure else None
    strategy = options.ip_strategy
    items: list[_Item] = []
    skipped: list[str] = []

    def literal(address: IPAddress, port: int, host: str) -> None:
        if strategy.wants_ipv6 if address.version == 6 else strategy.wants_ipv4:
            items.append(Target(transport, address, port, host, tls_name))
        else:
            skipped.append(f"{host}: IPv{address.version}, but ip_strategy is {strategy}")

    def refused(address: IPAddress, what: str, *, maddr: bool = False) -> bool:
        # The destination policy (_policy): such a value is ignored, as if absent.
        reason = literal_refusal(address, maddr=maddr, transport=transport)
        if reason is not None:
            skipped.append(f"{what} ignored: {reason}")
        return reason is not None

    # sent-by port, or the default port: 5060 for UDP, as §18.2.2 says for maddr/received.
    port = via.port or transport.default_port
    received = via.received
    if received is not None and refused(received, "received"):
        received = None
    if not transport.is_reliable:
        if via.maddr is not None:
            maddr = numeric_host(via.maddr)
            if maddr is None:
                items.append(_Addresses(via.maddr, port, transport))
            elif not refused(maddr, "maddr", maddr=True):
                # An IPv4 multicast maddr is kept: §18.2.2 says the response MUST go
                # there, with the TTL of ``Via.multicast_ttl`` (see _policy).
                literal(maddr, port, via.maddr)
        if received is not None and via.rport is not None and via.rport is not True:
            literal(received, via.rport, str(received))
    if received is not None:
        literal(received, port, str(received))
    address = numeric_host(via.host)
    if address is not None:
        if not refused(address, "sent-by"):
            literal(address, port, via.host)
    elif via.port is not None:
        items.append(_Addresses(via.host, via.port, transport))
    else:
        fallback = _Addresses(via.host, transport.default_port, transport)
        prefix = transport.srv_prefix
        items.append(
            _Srv(f"{prefix}.{via.host}", transport, (), None, fallback) if prefix else fallback
        )
    return Resolution(items, ctx, "; ".join(skipped) or None)
