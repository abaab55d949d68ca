"""SIP OPTIONS ping with RFC 3263 §4.3 failover: try each target until one answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from asip_locate._model import FailureReason, Target, Transport
from asip_locate._sip import (
    MAGIC_COOKIE,
    MAX_HEAD,
    MAX_MESSAGE,
    OptionsRequest,
    SipMessageError,
    SipResponse,
    certificate_matches,
    parse_datagram,
    parse_head,
    request_uri_for,
)
from asip_locate._stream import TargetStream

log = logging.getLogger("asip_locate")

MAX_MESSAGES = 32
"""Responses of the attempt's own transaction (provisional ones) read before giving up;
on a stream, messages of any kind. Discarded UDP datagrams do not count: the timeout
bounds them."""

MAX_TIMEOUT = 86_400.0
"""Upper bound of ``PingOptions`` times (one day)."""

_PINGABLE = frozenset({Transport.UDP, Transport.TCP, Transport.TLS})


class Outcome(StrEnum):
    """How one OPTIONS attempt ended."""

    ANSWERED = "answered"
    """A final response other than 503: some server is there (any status code)."""
    UNAVAILABLE = "unavailable"
    """503 Service Unavailable (RFC 3261 §21.5.4): fail over."""
    TIMEOUT = "timeout"
    """No final response within the attempt's timeout (RFC 3261 §17.1.2.2 Timer F)."""
    TRANSPORT = "transport"
    """Connection refused or reset, ICMP error, TLS handshake or certificate failure."""
    MALFORMED = "malformed"
    """The server sent something that is not an acceptable SIP response: on a stream
    at once; over UDP when the timeout passed with only unparseable datagrams."""
    SKIPPED = "skipped"
    """The transport is one ping does not speak (SCTP, WebSocket)."""


_FAILURE = {
    Outcome.UNAVAILABLE: FailureReason.SERVICE_UNAVAILABLE,
    Outcome.TIMEOUT: FailureReason.TIMEOUT,
    Outcome.TRANSPORT: FailureReason.TRANSPORT,
    Outcome.MALFORMED: FailureReason.OTHER,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PingOptions:
    """How each OPTIONS attempt is made.

    Attributes:
        timeout: Seconds one attempt may take, connection set-up included (default 2;
            RFC 3261's Timer F of 64*T1 = 32 s is far too long for a probe).
        t1: RFC 3261 T1 in seconds: the first UDP retransmission interval, doubled on
            each retransmission up to ``t2`` (§17.1.2.2). Default 0.5 (the RFC's).
        t2: RFC 3261 T2, the retransmission interval cap (default 4).
        verify: Verify TLS certificates (chain, then RFC 5922 identity). Default True.
            False (``insecure``) turns every check off; each TLS attempt made so is
            marked ``Attempt.insecure``.
        cafile: PEM file of CA certificates to trust; None uses the system's.
    """

    timeout: float = 2.0
    t1: float = 0.5
    t2: float = 4.0
    verify: bool = True
    cafile: str | None = None

    @property
    def insecure(self) -> bool:
        """True when TLS certificate checks are off (``verify=False``)."""
        return not self.verify

    def __post_init__(self) -> None:
        for name in ("timeout", "t1", "t2"):
            value: object = getattr(self, name)
            if not (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and 0 < value <= MAX_TIMEOUT
            ):
                raise ValueError(
                    f"PingOptions.{name} must be a finite number of seconds in "
                    f"(0, {MAX_TIMEOUT:g}], not {value!r}"
                )
        if self.t2 < self.t1:
            raise ValueError(f"PingOptions needs t1 <= t2, not {self.t1!r} > {self.t2!r}")
        if not isinstance(self.verify, bool):
            raise ValueError(f"PingOptions.verify must be True or False, not {self.verify!r}")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One OPTIONS attempt to one target.

    Attributes:
        target: Where it went.
        outcome: How it ended.
        response: The final response, when one came.
        rtt: Seconds from the first transmission of the request to the final response
            (None without one).
        elapsed: Seconds the whole attempt took, connection set-up included.
        sends: UDP transmissions (1 plus retransmissions); 1 on TCP/TLS once sent.
        detail: A human-readable reason for failures and skips.
        discarded: Messages received and ignored while waiting: unparseable UDP
            datagrams, and responses of another transaction (Via branch, Call-ID or
            CSeq not the request's, RFC 3261 §17.1.3, §18.1.2).
        insecure: True for a TLS attempt made without certificate checks
            (``PingOptions.verify=False``, or a ``context`` that verifies nothing):
            the server was not authenticated.
    """

    target: Target
    outcome: Outcome
    response: SipResponse | None = None
    rtt: float | None = None
    elapsed: float = 0.0
    sends: int = 0
    detail: str = ""
    discarded: int = 0
    insecure: bool = False

    @property
    def answered(self) -> bool:
        """True when a server gave a final response other than 503."""
        return self.outcome is Outcome.ANSWERED

    @property
    def status(self) -> int | None:
        """The final status code, if any."""
        return None if self.response is None else self.response.status

    @property
    def retry_after(self) -> float | None:
        """Retry-After of a 503, if it had one."""
        if self.outcome is not Outcome.UNAVAILABLE or self.response is None:
            return None
        return self.response.retry_after

    @property
    def failure_reason(self) -> FailureReason | None:
        """What to tell ``Locator.report_failure``; None if not a failure."""
        return _FAILURE.get(self.outcome)

    def describe(self) -> str:
        """One line: the outcome, status code and timing."""
        if self.outcome is Outcome.SKIPPED:
            return f"skipped: {self.detail}"
        if self.response is not None and self.rtt is not None:
            text = self.response.describe()
            if self.retry_after is not None:
                text += f" (Retry-After {self.retry_after:g}s)"
            text += f"  rtt {self.rtt * 1000:.1f} ms"
        else:
            text = f"{self.outcome}: {self.detail}" if self.detail else str(self.outcome)
            text += f"  after {self.elapsed * 1000:.1f} ms"
        if self.sends > 1:
            text += f"  ({self.sends} sends)"
        if self.discarded:
            text += f"  ({self.discarded} discarded)"
        if self.insecure:
            text += "  (certificate not checked)"
        return text


class FailoverLocator(Protocol):
    """What ``ping`` needs from a Locator: targets, and somewhere to report outcomes."""

    def locate(self, uri: str, *, as_sips: bool = False) -> TargetStream:
        """Stream the targets for ``uri``."""
        ...

    def report_failure(
        self,
        target: Target,
        *,
        reason: FailureReason = FailureReason.TIMEOUT,
        retry_after: float | None = None,
    ) -> None:
        """Demote ``target`` in later locates."""
        ...

    def report_success(self, target: Target) -> None:
        """Clear ``target``'s failures."""
        ...


def tls_context(options: PingOptions) -> ssl.SSLContext:
    """The client context for TLS attempts.

    Verifying: the chain against ``options.cafile`` (or the system CAs). OpenSSL's
    hostname check is off because RFC 5922 §7.2 matching (no wildcards; ``sip:``
    URI identities first) is done by ``certificate_matches`` after the handshake.
    """
    if not options.verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=options.cafile)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def new_request(request_uri: str, transport: Transport, local: tuple[str, int]) -> OptionsRequest:
    """An OPTIONS request with fresh branch, tag and Call-ID (a new transaction)."""
    return OptionsRequest(
        request_uri=request_uri,
        transport=transport,
        local_host=local[0],
        local_port=local[1],
        branch=MAGIC_COOKIE + secrets.token_hex(8),
        from_tag=secrets.token_hex(4),
        call_id=f"{secrets.token_hex(10)}@asip-locate",
    )


async def send_options(
    target: Target,
    uri: str,
    options: PingOptions | None = None,
    *,
    context: ssl.SSLContext | None = None,
) -> Attempt:
    """Send one OPTIONS for ``uri`` to ``target`` and wait for its final response.

    Never raises for network trouble or bad responses: they are Attempt outcomes.
    ``context`` is reused for TLS when given (build it with ``tls_context``).

    Raises:
        InvalidUriError: ``uri`` cannot be parsed.
    """
    options = options or PingOptions()
    request_uri = request_uri_for(uri)
    if target.transport not in _PINGABLE:
        detail = f"{target.transport} is not a transport ping speaks (udp, tcp, tls)"
        return Attempt(target, Outcome.SKIPPED, detail=detail)
    loop = asyncio.get_running_loop()
    started = loop.time()
    run = _Run(target, request_uri, options, started)
    try:
        async with asyncio.timeout(options.timeout):
            if target.transport is Transport.UDP:
                await run.udp()
            else:
                if target.transport is Transport.TLS and context is None:
                    context = tls_context(options)
                if target.transport is Transport.TLS and context is not None:
                    run.insecure = context.verify_mode == ssl.CERT_NONE
                await run.stream(context if target.transport is Transport.TLS else None)
    except TimeoutError:
        run.timed_out()
    except ssl.SSLCertVerificationError as exc:
        run.finish(Outcome.TRANSPORT, f"TLS: certificate verify failed: {exc.verify_message}")
    except ssl.SSLError as exc:
        run.finish(Outcome.TRANSPORT, f"TLS: {exc.reason or exc}")
    except (OSError, EOFError) as exc:
        run.finish(Outcome.TRANSPORT, _os_error(exc))
    except (SipMessageError, asyncio.LimitOverrunError) as exc:
        run.finish(Outcome.MALFORMED, str(exc))
    return run.result(loop.time())


def _os_error(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed by the server"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()  # asyncio's connect errors wrap the errno
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Run:
    """The state of one attempt; the transport methods fill in the outcome."""

    def __init__(self, target: Target, request_uri: str, options: PingOptions, started: float):
        self.target = target
        self.request_uri = request_uri
        self.options = options
        self.started = started
        self.sent_at: float | None = None
        self.sends = 0
        self.outcome: Outcome | None = None
        self.detail = ""
        self.response: SipResponse | None = None
        self.rtt: float | None = None
        self.insecure = False
        self.discarded = 0
        self.unparseable: str | None = None
        """Why the last unreadable message was discarded."""
        self.heard = False
        """True once a response of this transaction came (the server speaks SIP)."""

    def finish(self, outcome: Outcome, detail: str = "") -> None:
        if self.outcome is None:
            self.outcome, self.detail = outcome, detail

    def final(self, response: SipResponse) -> None:
        now = asyncio.get_running_loop().time()
        self.response = response
        self.rtt = now - (self.sent_at if self.sent_at is not None else self.started)
        outcome = Outcome.UNAVAILABLE if response.status == 503 else Outcome.ANSWERED
        self.finish(outcome)

    def timed_out(self) -> None:
        within = f"within {self.options.timeout:g}s"
        if self.unparseable is not None and not self.heard:
            self.finish(
                Outcome.MALFORMED,
                f"no valid response {within}; {self.discarded} discarded, last: {self.unparseable}",
            )
        elif self.discarded:
            self.finish(Outcome.TIMEOUT, f"no final response {within} ({self.discarded} discarded)")
        else:
            self.finish(Outcome.TIMEOUT, f"no final response {within}")

    def result(self, now: float) -> Attempt:
        outcome = self.outcome or Outcome.TIMEOUT
        return Attempt(
            self.target,
            outcome,
            self.response,
            self.rtt,
            now - self.started,
            self.sends,
            self.detail,
            self.discarded,
            self.insecure,
        )

    def _discard(self, why: str, *, unreadable: bool = True) -> None:
        self.discarded += 1
        if unreadable:
            self.unparseable = why
        log.debug("%s: discarding a message: %s", self.target, why)

    def _accept(self, response: SipResponse, request: OptionsRequest) -> bool | None:
        """Whether ``response`` ends the transaction.

        True for a matching final response, False for a matching provisional one,
        None when it was discarded (unreadable headers, another transaction).
        """
        try:
            matches = response.matches(request)
        except SipMessageError as exc:  # e.g. no Call-ID, a bad CSeq or Via
            self._discard(str(exc))
            return None
        if not matches:
            self._discard("a response of another transaction", unreadable=False)
            return None
        self.heard = True
        if not response.is_final:
            return False  # provisional: the transaction goes on (RFC 3261 §17.1.2.2)
        self.final(response)
        return True

    async def udp(self) -> None:
        """RFC 3261 §17.1.2.2 over UDP: retransmit on Timer E (T1 doubling to T2)."""
        loop = asyncio.get_running_loop()
        target = self.target
        transport, protocol = await loop.create_datagram_endpoint(
            _UdpProtocol, remote_addr=(str(target.address), target.port)
        )
        try:
            sockname = transport.get_extra_info("sockname")
            request = new_request(self.request_uri, target.transport, sockname[:2])
            data = request.encode()
            interval = self.options.t1
            next_send = loop.time()
            provisional = 0
            while provisional < MAX_MESSAGES:
                while True:
                    now = loop.time()
                    if now >= next_send:
                        transport.sendto(data)
                        self.sends += 1
                        if self.sent_at is None:
                            self.sent_at = now
                        next_send = now + interval
                        interval = min(interval * 2, self.options.t2)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(next_send - now):
                            item = await protocol.queue.get()
                            break
                if isinstance(item, OSError):
                    raise item  # ICMP port unreachable and the like (RFC 3263 §4.3)
                try:
                    response = parse_datagram(item)
                except SipMessageError as exc:
                    # Not SIP, or not a response we can read: drop it and keep waiting
                    # for the real one (RFC 3261 §18.1.2 discards what it cannot use).
                    self._discard(str(exc))
                    continue
                accepted = self._accept(response, request)
                if accepted:
                    return
                if accepted is False:
                    provisional += 1
                    interval = self.options.t2  # Proceeding: retransmit every T2
            raise SipMessageError(f"more than {MAX_MESSAGES} responses without a final one")
        finally:
            transport.close()

    async def stream(self, context: ssl.SSLContext | None) -> None:
        """One OPTIONS over a fresh TCP or TLS connection (RFC 3261 §18.3 framing)."""
        target = self.target
        tls_name = target.tls_name if context is not None else None
        reader, writer = await asyncio.open_connection(
            str(target.address),
            target.port,
            ssl=context,
            server_hostname=tls_name if tls_name and not _is_ip(tls_name) else None,
            limit=MAX_HEAD,
        )
        try:
            if context is not None and context.verify_mode != ssl.CERT_NONE:
                self._check_certificate(writer)
                if self.outcome is not None:
                    return
            sockname = writer.get_extra_info("sockname")
            request = new_request(self.request_uri, target.transport, sockname[:2])
            writer.write(request.encode())
            self.sent_at = asyncio.get_running_loop().time()
            self.sends = 1
            await writer.drain()
            for _ in range(MAX_MESSAGES):
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.strip(b"\r\n"):
                    continue  # RFC 5626 §3.5.1 CRLF keep-alive
                response = parse_head(head)
                length = response.content_length
                if length is None:
                    raise SipMessageError("no Content-Length on a stream (RFC 3261 §18.3)")
                if length > MAX_MESSAGE:
                    raise SipMessageError(f"Content-Length {length} too large")
                await reader.readexactly(length)
                if self._accept(response, request):
                    return
            raise SipMessageError(f"more than {MAX_MESSAGES} responses without a final one")
        finally:
            await _close(writer)

    def _check_certificate(self, writer: asyncio.StreamWriter) -> None:
        tls_name = self.target.tls_name
        cert = writer.get_extra_info("peercert")
        if not tls_name:
            self.finish(Outcome.TRANSPORT, "TLS: no domain to verify the certificate against")
        elif not cert or not certificate_matches(cert, tls_name):
            # RFC 5922 §7.3: not authenticated -> close the connection at once.
            self.finish(Outcome.TRANSPORT, f"TLS: certificate is not for {tls_name} (RFC 5922)")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(1.0):  # a peer that never completes the TLS close
            await writer.wait_closed()
    except (TimeoutError, OSError, ssl.SSLError):
        writer.transport.abort()
    except BaseException:  # cancelled: do not leave the socket open
        writer.transport.abort()
        raise


def _is_ip(name: str) -> bool:
    return ":" in name or name.replace(".", "").isdigit()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue(maxsize=MAX_MESSAGES)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a flood: drop, the timeout bounds us
            self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(exc)


async def ping(
    locator: FailoverLocator,
    uri: str,
    options: PingOptions | None = None,
    *,
    as_sips: bool = False,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> list[Attempt]:
    """Send OPTIONS to each target of ``uri`` in turn until one answers (RFC 3263 §4.3).

    A 503, timeout, transport error or malformed response is reported with
    ``locator.report_failure`` (with the 503's Retry-After) and the next target is
    tried; the first final response other than 503 is reported with
    ``report_success`` and ends the walk. ``on_attempt`` sees each attempt as it ends.
    Returns every attempt; ``attempts[-1].answered`` says whether a server answered.

    Raises:
        InvalidUriError, NoTargetsError, LocateTimeoutError: from the lookup.
    """
    options = options or PingOptions()
    request_uri_for(uri)  # refuse a bad URI before any lookup
    context: ssl.SSLContext | None = None
    attempts: list[Attempt] = []
    async with locator.locate(uri, as_sips=as_sips) as stream:
        async for target in stream:
            if target.transport is Transport.TLS and context is None:
                context = tls_context(options)
            attempt = await send_options(target, uri, options, context=context)
            attempts.append(attempt)
            if on_attempt is not None:
                on_attempt(attempt)
            if attempt.answered:
                locator.report_success(target)
                break
            reason = attempt.failure_reason
            if reason is not None:
                locator.report_failure(target, reason=reason, retry_after=attempt.retry_after)
    return attempts
