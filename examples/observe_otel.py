"""Trace a Locator with OpenTelemetry: one span per locate (``asip-locate[otel]``).

``OtelObserver`` is an observer (``Locator(observer=...)``) that opens a span named
``asip_locate.locate`` when a stream starts and ends it when the stream ends. The span
is a child of whatever span is current where ``locator.locate()`` is called (e.g. the
span of the call a B2BUA is routing). On it:

* attribute ``asip_locate.uri`` (the URI as given: it may hold a user part; pass
  ``record_uri=False`` to leave it out), and at the end ``asip_locate.targets_yielded``,
  ``asip_locate.queries``, ``asip_locate.answers_from_memory`` and
  ``asip_locate.closed``;
* an event ``dns.query`` per query sent (``dns.question.name``, ``dns.question.type``,
  ``asip_locate.coalesced``) and ``dns.answer`` per answer used (the same plus
  ``asip_locate.dns.status``, ``asip_locate.dns.source``, ``asip_locate.dns.records``,
  ``asip_locate.dns.ttl``);
* an event ``asip_locate.target`` per target yielded (``asip_locate.target.index``,
  ``asip_locate.target.transport``, ``network.peer.address``, ``network.peer.port``,
  ``server.address`` (the host name behind the address), ``asip_locate.target.stale``);
* an event ``asip_locate.failure_reported`` / ``asip_locate.success_reported`` when the
  caller reports on a target of this locate while it is open (once it is closed, the
  event goes to the caller's current span, if one records);
* status ERROR, with the exception recorded, when the locate raised (no targets,
  timeout).

Run it to print the spans of a few locates:

    python examples/observe_otel.py sip:alice@example.com
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from opentelemetry.util.types import Attributes

from asip_locate import (
    AnswerReceived,
    AnswerSource,
    Endpoint,
    Event,
    FailureReported,
    LocateDone,
    LocateError,
    LocateStarted,
    Locator,
    QuerySent,
    SuccessReported,
    TargetYielded,
)

SPAN_NAME = "asip_locate.locate"


@dataclass(slots=True)
class _Open:
    span: Span
    endpoints: list[Endpoint] = field(default_factory=list)
    queries: int = 0
    from_memory: int = 0


class OtelObserver:
    """Turns a Locator's events into spans and span events.

    Args:
        tracer: The tracer to use; None takes ``trace.get_tracer("asip_locate")`` from
            the global tracer provider.
        record_uri: Put the URI on the span (``asip_locate.uri``).
        max_open: The most spans kept open; past it the oldest is ended with
            ``asip_locate.abandoned=True`` (a stream that never ended is no leak).
    """

    def __init__(
        self,
        tracer: Tracer | None = None,
        *,
        record_uri: bool = True,
        max_open: int = 10_000,
    ) -> None:
        self.tracer = tracer if tracer is not None else trace.get_tracer("asip_locate")
        self.record_uri = record_uri
        self.max_open = max_open
        self._open: dict[int, _Open] = {}
        self._last_yielded: dict[Endpoint, int] = {}
        """The open locate that most recently yielded each endpoint."""

    def __call__(self, event: Event) -> None:
        """Record one event."""
        match event:
            case AnswerReceived(locate_id=locate_id, answer=answer, source=source):
                if (state := self._open.get(locate_id)) is not None:
                    if source in (AnswerSource.CACHE, AnswerSource.STALE):
                        state.from_memory += 1
                    attributes: dict[str, str | int | float | bool] = {
                        "dns.question.name": answer.query.name,
                        "dns.question.type": str(answer.query.rtype),
                        "asip_locate.dns.status": str(answer.status),
                        "asip_locate.dns.source": str(source),
                        "asip_locate.dns.records": len(answer.records),
                    }
                    if answer.ttl is not None:
                        attributes["asip_locate.dns.ttl"] = answer.ttl
                    state.span.add_event("dns.answer", attributes)
            case QuerySent(locate_id=locate_id, query=query, coalesced=coalesced):
                if (state := self._open.get(locate_id)) is not None:
                    state.queries += 1
                    state.span.add_event(
                        "dns.query",
                        {
                            "dns.question.name": query.name,
                            "dns.question.type": str(query.rtype),
                            "asip_locate.coalesced": coalesced,
                        },
                    )
            case TargetYielded(locate_id=locate_id, target=target, index=index):
                if (state := self._open.get(locate_id)) is not None:
                    state.endpoints.append(target.endpoint)
                    self._last_yielded[target.endpoint] = locate_id
                    state.span.add_event(
                        "asip_locate.target",
                        {
                            "asip_locate.target.index": index,
                            "asip_locate.target.transport": str(target.transport),
                            "network.peer.address": str(target.address),
                            "network.peer.port": target.port,
                            "server.address": target.host,
                            "asip_locate.target.stale": target.stale,
                        },
                    )
            case LocateStarted(locate_id=locate_id, uri=uri):
                self._start(locate_id, uri)
            case LocateDone(locate_id=locate_id, yielded=yielded, error=error, closed=closed):
                self._end(locate_id, yielded, error, closed)
            case FailureReported(endpoint=endpoint, reason=reason, retry_after=retry_after):
                attributes = {
                    "asip_locate.endpoint": str(endpoint),
                    "asip_locate.failure.reason": str(reason),
                }
                if retry_after is not None:
                    attributes["asip_locate.failure.retry_after"] = retry_after
                self._span_for(endpoint).add_event("asip_locate.failure_reported", attributes)
            case SuccessReported(endpoint=endpoint):
                self._span_for(endpoint).add_event(
                    "asip_locate.success_reported", {"asip_locate.endpoint": str(endpoint)}
                )

    def _start(self, locate_id: int, uri: str) -> None:
        attributes: Attributes = {"asip_locate.uri": uri} if self.record_uri else None
        span = self.tracer.start_span(SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attributes)
        self._open[locate_id] = _Open(span)
        while len(self._open) > self.max_open:
            oldest = next(iter(self._open))
            self._open[oldest].span.set_attribute("asip_locate.abandoned", True)
            self._end(oldest, 0, None, True)

    def _end(self, locate_id: int, yielded: int, error: LocateError | None, closed: bool) -> None:
        state = self._open.pop(locate_id, None)
        if state is None:
            return
        for endpoint in state.endpoints:
            if self._last_yielded.get(endpoint) == locate_id:
                del self._last_yielded[endpoint]
        span = state.span
        span.set_attributes(
            {
                "asip_locate.targets_yielded": yielded,
                "asip_locate.queries": state.queries,
                "asip_locate.answers_from_memory": state.from_memory,
                "asip_locate.closed": closed,
            }
        )
        if error is not None:
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
        span.end()

    def _span_for(self, endpoint: Endpoint) -> Span:
        locate_id = self._last_yielded.get(endpoint)
        if locate_id is not None:
            return self._open[locate_id].span
        return trace.get_current_span()  # a non-recording span ignores the event


async def main() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("uri", nargs="+")
    args = parser.parse_args()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    tracer = provider.get_tracer("asip_locate")
    async with Locator(observer=OtelObserver(tracer)) as locator:
        for uri in args.uri:
            with tracer.start_as_current_span("route call"):
                try:
                    async with locator.locate(uri) as stream:
                        async for target in stream:
                            print(uri, target)  # a real client sends here
                            break
                except LocateError as exc:
                    print(uri, exc)
    provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
