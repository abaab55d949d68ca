"""Export a Locator's events as Prometheus metrics (``pip install asip-locate[prometheus]``).

``PrometheusObserver`` is an observer (``Locator(observer=...)``) that counts what the
Locator does in a ``prometheus_client`` registry of its own (pass one to share it):

=========================================  ===============================  =========
metric                                     labels                           from
=========================================  ===============================  =========
``asip_locate_queries_total``              ``rtype``, ``coalesced``         QuerySent
``asip_locate_answers_total``              ``rtype``, ``status``,           AnswerReceived
                                           ``source``
``asip_locate_targets_yielded_total``      ``transport``                    TargetYielded
``asip_locate_failures_reported_total``    ``reason``                       FailureReported
``asip_locate_successes_reported_total``                                    SuccessReported
``asip_locate_locates_total``              ``outcome``                      LocateDone
``asip_locate_first_target_seconds``                                        histogram
=========================================  ===============================  =========

``outcome`` is ``ok`` (at least one target reached the caller), ``no_targets``,
``timeout``, or ``abandoned`` (closed before any target). The histogram measures from
``LocateStarted`` to the first target, or to the end of a locate that yielded none:
what a caller waits before it can send. No label holds a URI, host or address, so the
number of series stays bounded whatever is located.

Run it to serve the metrics while locating a URI every few seconds:

    python examples/observe_prometheus.py --port 9464 sip:alice@example.com
    curl -s localhost:9464/metrics | grep asip_locate
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from asip_locate import (
    AnswerReceived,
    Event,
    FailureReported,
    LocateDone,
    LocateError,
    LocateStarted,
    LocateTimeoutError,
    Locator,
    QuerySent,
    SuccessReported,
    TargetYielded,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
"""Seconds: a cached locate takes tens of microseconds, a cold one a few round trips."""


class PrometheusObserver:
    """Counts a Locator's events in ``registry`` (a private CollectorRegistry by default).

    Args:
        registry: Where the metrics are registered; None makes a new one
            (``self.registry``), so two observers never clash.
        namespace: The metric name prefix.
        clock: Monotonic seconds for the latency histogram.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace: str = "asip_locate",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.registry = registry = registry if registry is not None else CollectorRegistry()
        self.clock = clock
        ns = namespace
        self.queries = Counter(
            "queries",
            "DNS queries sent to the backend (cache misses), by record type",
            ["rtype", "coalesced"],
            namespace=ns,
            registry=registry,
        )
        self.answers = Counter(
            "answers",
            "DNS answers used, by record type, status and source",
            ["rtype", "status", "source"],
            namespace=ns,
            registry=registry,
        )
        self.targets = Counter(
            "targets_yielded",
            "Targets handed to callers, by transport",
            ["transport"],
            namespace=ns,
            registry=registry,
        )
        self.failures = Counter(
            "failures_reported",
            "report_failure calls, by reason",
            ["reason"],
            namespace=ns,
            registry=registry,
        )
        self.successes = Counter(
            "successes_reported", "report_success calls", namespace=ns, registry=registry
        )
        self.locates = Counter(
            "locates", "Locates ended, by outcome", ["outcome"], namespace=ns, registry=registry
        )
        self.first_target = Histogram(
            "first_target_seconds",
            "Seconds from the start of a locate to its first target (or to its end)",
            namespace=ns,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._started: dict[int, float] = {}
        """Start times of the locates that have not yielded a target yet."""
        self._children: dict[tuple[object, ...], Counter] = {}
        """Labelled counters by (metric, *labels): ``labels()`` costs a few microseconds
        (locking, validation), a dict lookup a few dozen nanoseconds."""

    def _child(self, metric: Counter, *labels: str) -> Counter:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def __call__(self, event: Event) -> None:
        """Count one event."""
        match event:
            case AnswerReceived(answer=answer, source=source):
                self._child(self.answers, answer.query.rtype, answer.status, source).inc()
            case QuerySent(query=query, coalesced=coalesced):
                self._child(self.queries, query.rtype, "true" if coalesced else "false").inc()
            case TargetYielded(locate_id=locate_id, target=target):
                self._child(self.targets, target.transport).inc()
                self._first(locate_id)
            case LocateStarted(locate_id=locate_id):
                self._started[locate_id] = self.clock()
            case LocateDone(locate_id=locate_id, yielded=yielded, error=error):
                self._first(locate_id)
                self._child(self.locates, _outcome(yielded, error)).inc()
            case FailureReported(reason=reason):
                self._child(self.failures, reason).inc()
            case SuccessReported():
                self.successes.inc()

    def _first(self, locate_id: int) -> None:
        started = self._started.pop(locate_id, None)
        if started is not None:
            self.first_target.observe(self.clock() - started)


def _outcome(yielded: int, error: LocateError | None) -> str:
    if yielded:
        return "ok"
    if isinstance(error, LocateTimeoutError):
        return "timeout"
    if error is not None:
        return "no_targets"
    return "abandoned"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("uri", nargs="+")
    parser.add_argument("--port", type=int, default=9464, help="metrics port (default 9464)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between rounds")
    args = parser.parse_args()
    metrics = PrometheusObserver()
    start_http_server(args.port, addr="127.0.0.1", registry=metrics.registry)
    print(f"metrics on http://127.0.0.1:{args.port}/metrics")
    async with Locator(observer=metrics) as locator:
        while True:
            for uri in args.uri:
                try:
                    async with locator.locate(uri) as stream:
                        async for target in stream:
                            print(uri, target)
                            break  # a real client sends here, and goes on after a failure
                except LocateError as exc:
                    print(uri, exc)
            await asyncio.sleep(args.every)


if __name__ == "__main__":
    asyncio.run(main())
