"""Just enough SIP for an OPTIONS ping: build the request, parse the response safely.

Nothing here does I/O. The parser is strict and bounded: anything it does not accept
raises SipMessageError, which a pinger counts as a failed attempt (never a crash).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from asip_locate._errors import LocateError
from asip_locate._model import Transport
from asip_locate._uri import parse_uri

MAGIC_COOKIE = "z9hG4bK"
"""The branch prefix of RFC 3261 §8.1.1.7 transactions."""

MAX_MESSAGE = 65_535
"""Largest response accepted, head and body together (the largest UDP payload)."""

MAX_HEAD = 16_384
"""Largest start line plus header section accepted."""

MAX_HEADERS = 128
"""Most header lines (after unfolding) accepted in one response."""

MAX_RETRY_AFTER = 2**31 - 1
"""Retry-After values are clamped to this (RFC 3261 §25.1 delta-seconds overflow)."""

# RFC 3261 §7.3.3 compact forms of the headers read or written here.
_COMPACT = {"v": "via", "i": "call-id", "l": "content-length", "f": "from", "t": "to"}
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_STATUS_RE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) ([^\x00-\x08\x0a-\x1f\x7f]*)", re.IGNORECASE)
_CSEQ_RE = re.compile(r"([0-9]{1,10})[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)")
_DIGITS_RE = re.compile(r"[0-9]{1,10}")
_VIA_SENT_RE = re.compile(r"SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*[A-Za-z0-9\-.!%*_+`'~]+[ \t]+\S", re.I)
_RETRY_AFTER_RE = re.compile(r"([0-9]{1,20})[ \t]*(\(.*\))?[ \t]*(;.*)?", re.DOTALL)


class SipMessageError(LocateError, ValueError):
    """A SIP response could not be accepted (malformed, too large, or incomplete)."""


@dataclass(frozen=True, slots=True)
class OptionsRequest:
    """One OPTIONS request (RFC 3261 §11.1), ready to ``encode``.

    ``local_host``/``local_port`` go into the Via sent-by; ``branch`` must start with
    the RFC 3261 magic cookie ``z9hG4bK``, and each attempt needs a fresh one (RFC 3263
    §4.3: a new transaction per target).
    """

    request_uri: str
    transport: Transport
    local_host: str
    local_port: int
    branch: str
    from_tag: str
    call_id: str
    cseq: int = 1

    def __post_init__(self) -> None:
        for name in ("request_uri", "local_host", "branch", "from_tag", "call_id"):
            value = getattr(self, name)
            if not value or not value.isascii() or not value.isprintable() or " " in value:
                raise ValueError(f"OptionsRequest.{name} {value!r}: not printable ASCII")
        if not self.branch.startswith(MAGIC_COOKIE):
            raise ValueError(f"OptionsRequest.branch {self.branch!r} lacks {MAGIC_COOKIE}")
        if not 0 < self.local_port < 65_536 or not 0 <= self.cseq < 2**31:
            raise ValueError("OptionsRequest: local_port or cseq out of range")

    @property
    def via(self) -> str:
        """The Via value: transport token from the target, branch, and rport (RFC 3581)."""
        host = f"[{self.local_host}]" if ":" in self.local_host else self.local_host
        return (
            f"SIP/2.0/{self.transport.via_name} {host}:{self.local_port};branch={self.branch};rport"
        )

    def encode(self) -> bytes:
        """The request on the wire: CRLF line ends, no body, ``Content-Length: 0``."""
        host = f"[{self.local_host}]" if ":" in self.local_host else self.local_host
        lines = (
            f"OPTIONS {self.request_uri} SIP/2.0",
            f"Via: {self.via}",
            "Max-Forwards: 70",
            f"From: <sip:asip-locate@{host}>;tag={self.from_tag}",
            f"To: <{self.request_uri}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} OPTIONS",
            "User-Agent: asip-locate",
            "Accept: application/sdp",
            "Content-Length: 0",
        )
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def request_uri_for(uri: str) -> str:
    """The Request-URI for pinging ``uri``: the URI as given, minus what §19.1.5 strips.

    RFC 3261 §19.1.5 (and the §19.1.1 table): the ``method`` parameter and the
    ``?headers`` are not placed in a Request-URI; every other parameter is kept as
    written. Both are found after the user part only: a ``?`` or ``;`` inside the
    user part (RFC 3261 §25.1 user-unreserved) stays intact. A bare ``host[:port]``
    becomes ``sip:host[:port]``. Raises InvalidUriError for what parse_uri refuses.
    """
    parsed = parse_uri(uri)
    text = uri.strip()
    scheme, colon, rest = text.partition(":")
    if not (colon and scheme.lower() == parsed.scheme and parsed.scheme in ("sip", "sips")):
        rest = text  # a bare host[:port]: parse_uri took it as sip:
    userinfo, at, hostpart = rest.rpartition("@")  # parse_uri allows no "@" after it
    hostpart = hostpart.partition("?")[0]
    hostport, *params = hostpart.split(";")
    kept = [param for param in params if param.partition("=")[0].lower() != "method"]
    return f"{parsed.scheme}:{userinfo}{at}{';'.join([hostport, *kept])}"


def parse_retry_after(value: str) -> float | None:
    """Seconds from a Retry-After header value (RFC 3261 §20.33), or None.

    ``120 (in a meeting);duration=3600`` gives 120.0: the comment and parameters are
    ignored. Values beyond ``MAX_RETRY_AFTER`` are clamped to it. Anything that is not
    delta-seconds (an HTTP date, a negative or fractional number, text) gives None:
    the header is only advice.
    """
    match = _RETRY_AFTER_RE.fullmatch(value.strip(" \t"))
    if not match:
        return None
    return float(min(int(match.group(1)), MAX_RETRY_AFTER))


@dataclass(frozen=True, slots=True)
class SipResponse:
    """A parsed SIP response: status line, headers and body length.

    Header names are lower-cased with compact forms expanded; values are unfolded
    and stripped.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body_length: int = 0

    @property
    def is_final(self) -> bool:
        """True for 2xx-6xx; 1xx responses are provisional (RFC 3261 §7.2)."""
        return self.status >= 200

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        key = name.lower()
        return [value for header, value in self.headers if header == key]

    def single(self, name: str) -> str:
        """The one value of a header that must appear exactly once."""
        found = self.values(name)
        if len(found) != 1:
            raise SipMessageError(f"response has {len(found)} {name} headers, expected 1")
        return found[0]

    @property
    def top_via(self) -> str:
        """The first Via value (RFC 3261 §18.1.2 looks at the topmost only)."""
        vias = self.values("via")
        if not vias:
            raise SipMessageError("response has no Via header")
        return _split_commas(vias[0])[0]

    @property
    def via_count(self) -> int:
        """How many Via values the response carries (headers and comma lists)."""
        return sum(len(_split_commas(value)) for value in self.values("via"))

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter of the topmost Via, or None."""
        return via_param(self.top_via, "branch")

    @property
    def cseq(self) -> tuple[int, str]:
        """CSeq number and method (RFC 3261 §20.16)."""
        value = self.single("cseq")
        match = _CSEQ_RE.fullmatch(value)
        if not match:
            raise SipMessageError(f"bad CSeq {value!r}")
        return int(match.group(1)), match.group(2)

    @property
    def call_id(self) -> str:
        """The Call-ID value (RFC 3261 §20.8)."""
        return self.single("call-id")

    @property
    def content_length(self) -> int | None:
        """Content-Length (RFC 3261 §20.14), or None when absent."""
        found = self.values("content-length")
        if not found:
            return None
        if len(found) > 1 or not _DIGITS_RE.fullmatch(found[0]):
            raise SipMessageError(f"bad Content-Length {found!r}")
        return int(found[0])

    @property
    def retry_after(self) -> float | None:
        """Retry-After delta-seconds (RFC 3261 §20.33), or None when absent.

        ``120 (in a meeting);duration=3600`` gives 120.0. Comments and parameters are
        ignored; an unreadable value counts as absent (the header is only advice).
        """
        found = self.values("retry-after")
        return parse_retry_after(found[0]) if found else None

    def matches(self, request: OptionsRequest) -> bool:
        """True when this answers ``request`` (RFC 3261 §17.1.3 and §18.1.2).

        The topmost Via branch, the CSeq number and method and the Call-ID must be the
        request's, and the response must carry exactly one Via value.
        """
        if self.via_count != 1:
            return False  # §18.1.2: discard responses with more than one Via value
        return (
            self.branch == request.branch
            and self.cseq == (request.cseq, "OPTIONS")
            and self.call_id == request.call_id
        )

    def describe(self) -> str:
        """``503 Service Unavailable`` style summary."""
        return f"{self.status} {self.reason}".rstrip()


def via_param(via: str, name: str) -> str | None:
    """The value of parameter ``name`` in one Via value ("" when it has no value)."""
    if not _VIA_SENT_RE.match(via):
        raise SipMessageError(f"bad Via {via!r}")
    for param in _split_outside_quotes(via, ";")[1:]:
        key, equals, value = param.partition("=")
        if key.strip().lower() == name:
            return value.strip() if equals else ""
    return None


def parse_head(head: bytes) -> SipResponse:
    """Parse a status line and header section (the terminating blank line optional).

    Raises:
        SipMessageError: it is not a well-formed SIP/2.0 response head within the
            size limits.
    """
    if len(head) > MAX_HEAD:
        raise SipMessageError(f"response head larger than {MAX_HEAD} bytes")
    # RFC 3261 §7.5: ignore CRLFs before the start line (RFC 5626 keep-alives).
    head = head.lstrip(b"\r\n")
    if head.endswith(b"\r\n\r\n"):
        head = head[:-4]
    elif head.endswith(b"\r\n"):
        head = head[:-2]
    if b"\x00" in head:
        raise SipMessageError("NUL byte in response head")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipMessageError("response head is not UTF-8") from None
    lines = text.split("\r\n")
    if any("\r" in line or "\n" in line for line in lines):
        raise SipMessageError("bare CR or LF in response head")
    match = _STATUS_RE.fullmatch(lines[0])
    if not match:
        raise SipMessageError(f"bad status line {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            raise SipMessageError("empty line inside the header section")
        if line[0] in " \t":  # RFC 3261 §7.3.1 folding: continue the previous value
            if not headers:
                raise SipMessageError("continuation line before the first header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _TOKEN_RE.fullmatch(name):
            raise SipMessageError(f"bad header line {line[:80]!r}")
        key = name.lower()
        headers.append((_COMPACT.get(key, key), value.strip(" \t")))
        if len(headers) > MAX_HEADERS:
            raise SipMessageError(f"more than {MAX_HEADERS} headers")
    return SipResponse(int(match.group(1)), match.group(2).strip(), tuple(headers))


def parse_datagram(data: bytes) -> SipResponse:
    """Parse a whole response received in one UDP datagram (RFC 3261 §18.3).

    A Content-Length larger than the body is an error; bytes beyond it are ignored.
    """
    if len(data) > MAX_MESSAGE:
        raise SipMessageError(f"response larger than {MAX_MESSAGE} bytes")
    stripped = data.lstrip(b"\r\n")
    head, blank, body = stripped.partition(b"\r\n\r\n")
    if not blank:
        raise SipMessageError("response has no end of headers")
    response = parse_head(head)
    length = response.content_length
    if length is None:
        length = len(body)
    elif length > len(body):
        raise SipMessageError(f"Content-Length {length} but {len(body)} body bytes")
    return SipResponse(response.status, response.reason, response.headers, length)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise SipMessageError(f"unterminated quoted string in {text[:80]!r}")
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _split_commas(value: str) -> list[str]:
    parts = _split_outside_quotes(value, ",")
    if any(not part for part in parts):
        raise SipMessageError(f"empty element in {value[:80]!r}")
    return parts


def certificate_identities(cert: Mapping[str, Any]) -> set[str]:
    """The SIP domain identities of a peer certificate (RFC 5922 §7.1), lower-cased.

    ``cert`` is ``ssl.SSLSocket.getpeercert()`` output. The hosts of subjectAltName
    ``sip:`` URIs without a user part; if there are none, the dNSName entries; if the
    certificate has no subjectAltName at all, its Subject CNs (the legacy rule).
    """
    sip_uris: set[str] = set()
    dns_names: set[str] = set()
    alt_names = cert.get("subjectAltName") or ()
    for kind, value in alt_names:
        if kind == "DNS":
            dns_names.add(str(value).lower().rstrip("."))
        elif kind == "URI":
            scheme, colon, rest = str(value).partition(":")
            if colon and scheme.lower() == "sip" and "@" not in rest:
                host = re.split(r"[;?]", rest, maxsplit=1)[0]
                host = host.partition("]")[0] + "]" if host.startswith("[") else host
                sip_uris.add(host.rpartition(":")[0] if _has_port(host) else host)
    if sip_uris:
        return {host.lower().rstrip(".") for host in sip_uris}
    if alt_names:
        return dns_names
    return {
        str(value).lower().rstrip(".")
        for rdn in cert.get("subject") or ()
        for key, value in rdn
        if key == "commonName"
    }


def _has_port(host: str) -> bool:
    return not host.startswith("[") and ":" in host


def certificate_matches(cert: Mapping[str, Any], domain: str) -> bool:
    """True when ``cert`` names SIP domain ``domain`` (RFC 5922 §7.2).

    Whole-name, case-insensitive comparison only: a ``*`` in a certificate is a
    literal character, never a wildcard, and there is no suffix matching.
    """
    wanted = domain.lower().rstrip(".").strip("[]")
    try:
        address = ipaddress.ip_address(wanted)
    except ValueError:
        return wanted in certificate_identities(cert)
    # An IP-literal URI host: RFC 5922 is silent; use iPAddress entries (RFC 5280).
    for kind, value in cert.get("subjectAltName") or ():
        if kind == "IP Address":
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(str(value).strip()) == address:
                    return True
    return False
