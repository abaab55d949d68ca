"""The observer hook (issue 14): events, guard_observer, fan_out, and the two exporters.

The exporters in examples/ are driven by synthetic event sequences. Under CI=true a
missing extra (prometheus_client, opentelemetry-sdk) fails these tests; locally they
skip. The ``test_wired_*`` tests run a real Locator with ``Locator(observer=)``
(cold, compiled and single-flight locates; see docs/observe.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import ipaddress
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import asip_locate._locator
import asip_locate._observe
import asip_locate._stream
from asip_locate import (
    Answer,
    AnswerReceived,
    AnswerSource,
    Event,
    FailureReason,
    FailureReported,
    LocateDone,
    LocateOptions,
    LocateStarted,
    LocateTimeoutError,
    Locator,
    NoTargetsError,
    Query,
    QuerySent,
    RType,
    Status,
    SuccessReported,
    Target,
    TargetYielded,
    Transport,
    fan_out,
    guard_observer,
)
from asip_locate.testing import FakeBackend
from tests.conftest import DEMO_ZONE, IN_CI

ROOT = Path(__file__).resolve().parent.parent

EVENT_TYPES = (
    LocateStarted,
    QuerySent,
    AnswerReceived,
    TargetYielded,
    LocateDone,
    FailureReported,
    SuccessReported,
)


def load_example(name: str, needs: str) -> ModuleType:
    """Import examples/<name>.py; a missing extra skips locally and fails in CI."""
    try:
        importlib.import_module(needs)
    except ImportError:
        if IN_CI:
            raise
        pytest.skip(f"needs {needs} (pip install asip-locate[prometheus,otel])")
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


# --- synthetic events --------------------------------------------------------------

NAPTR = Query("example.test", RType.NAPTR)
SRV_UDP = Query("_sip._udp.example.test", RType.SRV)
A1 = Query("sip1.example.test", RType.A)
A2 = Query("sip2.example.test", RType.A)
T1 = Target(Transport.UDP, ipaddress.IPv4Address("127.0.0.11"), 5060, "sip1.example.test")
T2 = Target(Transport.TCP, ipaddress.IPv4Address("127.0.0.12"), 5060, "sip2.example.test")
E1, E2 = T1.endpoint, T2.endpoint


def ok(query: Query, ttl: int = 300, stale: bool = False) -> Answer:
    return Answer(query, Status.NOERROR, ("record",), ttl, stale=stale)  # type: ignore[arg-type]


def story() -> list[Event]:
    """Four locates: two targets then closed; no targets; a timeout; abandoned."""
    return [
        LocateStarted(1, "sip:alice@example.test"),
        QuerySent(1, NAPTR),
        AnswerReceived(1, ok(NAPTR), AnswerSource.NETWORK),
        AnswerReceived(1, ok(SRV_UDP), AnswerSource.CACHE),
        QuerySent(1, A1, coalesced=True),
        QuerySent(1, A2),
        AnswerReceived(1, ok(A1), AnswerSource.COALESCED),
        AnswerReceived(1, ok(A2, 30, stale=True), AnswerSource.STALE),
        TargetYielded(1, "sip:alice@example.test", T1, 0),
        FailureReported(E1, FailureReason.SERVICE_UNAVAILABLE, 120.0),
        TargetYielded(1, "sip:alice@example.test", T2, 1),
        SuccessReported(E2),
        LocateDone(1, "sip:alice@example.test", 2, closed=True),
        LocateStarted(2, "sip:gone.example.test"),
        QuerySent(2, Query("gone.example.test", RType.NAPTR)),
        AnswerReceived(
            2,
            Answer(Query("gone.example.test", RType.NAPTR), Status.NXDOMAIN),
            AnswerSource.NETWORK,
        ),
        LocateDone(2, "sip:gone.example.test", 0, NoTargetsError("sip:gone.example.test", ())),
        LocateStarted(3, "sip:slow.example.test"),
        QuerySent(3, Query("slow.example.test", RType.NAPTR)),
        LocateDone(
            3, "sip:slow.example.test", 0, LocateTimeoutError("sip:slow.example.test", 2, ())
        ),
        LocateStarted(4, "sip:bob@example.test"),
        LocateDone(4, "sip:bob@example.test", 0, closed=True),
        FailureReported(E2, FailureReason.TIMEOUT),
    ]


# --- events and the dispatcher ------------------------------------------------------


def test_events_are_frozen_and_slotted() -> None:
    for event in story():
        assert isinstance(event, EVENT_TYPES)
        assert not hasattr(event, "__dict__")
        field = dataclasses.fields(event)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, field, None)


def test_answer_source_values() -> None:
    assert [s.value for s in AnswerSource] == ["network", "cache", "stale", "coalesced"]
    assert AnswerSource("stale") is AnswerSource.STALE


def test_guard_passes_events_through_in_order() -> None:
    seen: list[Event] = []
    observer = guard_observer(seen.append)
    events = story()
    for event in events:
        observer(event)
    assert seen == events
    assert guard_observer(observer) is observer  # no double wrapping


def test_raising_observer_is_swallowed_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def broken(event: Event) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("observer bug")

    observer = guard_observer(broken)
    with caplog.at_level(logging.DEBUG, logger="asip_locate"):
        for _ in range(1000):
            observer(LocateStarted(1, "sip:x"))
    assert calls == 1000
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "observer bug" in caplog.text
    counts = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(counts) == 3  # at the 10th, 100th and 1000th failure
    assert counts[-1].endswith("has failed 1000 times")


def test_each_observer_has_its_own_failure_count(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: Event) -> None:
        raise ValueError("observer bug")

    first, second = guard_observer(broken), guard_observer(broken)
    with caplog.at_level(logging.ERROR, logger="asip_locate"):
        first(LocateStarted(1, "sip:x"))
        first(LocateStarted(2, "sip:x"))
        second(LocateStarted(3, "sip:x"))
    assert len(caplog.records) == 2


def test_cancellation_is_not_swallowed() -> None:
    def cancelled(event: Event) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        guard_observer(cancelled)(LocateStarted(1, "sip:x"))


def test_fan_out_calls_each_in_order_and_isolates_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order: list[tuple[str, int]] = []

    def named(name: str, fail: bool = False) -> Any:
        def observe(event: Event) -> None:
            assert isinstance(event, LocateStarted)
            order.append((name, event.locate_id))
            if fail:
                raise RuntimeError(name)

        return observe

    observer = fan_out(named("a"), named("b", fail=True), named("c"))
    with caplog.at_level(logging.ERROR, logger="asip_locate"):
        observer(LocateStarted(1, "sip:x"))
        observer(LocateStarted(2, "sip:x"))
    assert order == [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("c", 2)]
    assert len(caplog.records) == 1


def _explode(*args: object, **kwargs: object) -> None:
    raise AssertionError("an event was built without an observer")


async def test_no_observer_builds_no_event(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every event class, wherever the core imported it, now fails when built.
    for module in (asip_locate._observe, asip_locate._stream, asip_locate._locator):
        for cls in EVENT_TYPES:
            monkeypatch.setattr(module, cls.__name__, _explode, raising=False)
    async with Locator(LocateOptions(seed=1), backend=FakeBackend(DEMO_ZONE)) as locator:
        cold = await locator.resolve("sip:example.test")
        warm = await locator.resolve("sip:example.test")  # the fully cached path
        assert cold == warm
        async with locator.locate("sip:example.test") as stream:
            target = await anext(stream)  # closed early
        locator.report_failure(target, reason="503", retry_after=5)
        locator.report_success(target)
        with pytest.raises(NoTargetsError):
            await locator.resolve("sip:gone.example.test")
        with pytest.raises(NoTargetsError):
            await locator.resolve("sips:example.test;transport=udp")  # fails while planning


# --- the Prometheus exporter --------------------------------------------------------


@pytest.fixture
def prometheus_example() -> ModuleType:
    return load_example("observe_prometheus", "prometheus_client")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.004  # every reading is 4 ms after the one before
        return self.now


def test_prometheus_counts_a_synthetic_story(prometheus_example: ModuleType) -> None:
    metrics = prometheus_example.PrometheusObserver(clock=Clock())
    for event in story():
        metrics(event)
    value = metrics.registry.get_sample_value

    assert value("asip_locate_queries_total", {"rtype": "NAPTR", "coalesced": "false"}) == 3
    assert value("asip_locate_queries_total", {"rtype": "A", "coalesced": "false"}) == 1
    assert value("asip_locate_queries_total", {"rtype": "A", "coalesced": "true"}) == 1
    answers = {
        ("NAPTR", "NOERROR", "network"): 1,
        ("SRV", "NOERROR", "cache"): 1,
        ("A", "NOERROR", "coalesced"): 1,
        ("A", "NOERROR", "stale"): 1,
        ("NAPTR", "NXDOMAIN", "network"): 1,
    }
    for (rtype, status, source), count in answers.items():
        labels = {"rtype": rtype, "status": status, "source": source}
        assert value("asip_locate_answers_total", labels) == count, labels
    assert value("asip_locate_targets_yielded_total", {"transport": "udp"}) == 1
    assert value("asip_locate_targets_yielded_total", {"transport": "tcp"}) == 1
    assert value("asip_locate_failures_reported_total", {"reason": "503"}) == 1
    assert value("asip_locate_failures_reported_total", {"reason": "timeout"}) == 1
    assert value("asip_locate_successes_reported_total") == 1
    for outcome in ("ok", "no_targets", "timeout", "abandoned"):
        assert value("asip_locate_locates_total", {"outcome": outcome}) == 1, outcome
    # One observation per locate, at its first target or its end: 4 ms each.
    assert value("asip_locate_first_target_seconds_count") == 4
    assert value("asip_locate_first_target_seconds_sum") == pytest.approx(0.016)
    assert value("asip_locate_first_target_seconds_bucket", {"le": "0.005"}) == 4
    assert value("asip_locate_first_target_seconds_bucket", {"le": "0.0025"}) == 0
    assert metrics._started == {}  # nothing kept once every locate ended


def test_prometheus_registries_are_private(prometheus_example: ModuleType) -> None:
    from prometheus_client import CollectorRegistry

    one = prometheus_example.PrometheusObserver()
    two = prometheus_example.PrometheusObserver()  # no "Duplicated timeseries" error
    one(SuccessReported(E1))
    assert one.registry.get_sample_value("asip_locate_successes_reported_total") == 1
    assert two.registry.get_sample_value("asip_locate_successes_reported_total") == 0
    shared = CollectorRegistry()
    prometheus_example.PrometheusObserver(shared, namespace="edge")
    assert shared.get_sample_value("edge_successes_reported_total") == 0


# --- the OpenTelemetry exporter -----------------------------------------------------


@pytest.fixture
def otel_example() -> ModuleType:
    return load_example("observe_otel", "opentelemetry.sdk")


@pytest.fixture
def tracing() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def test_otel_a_span_per_locate(otel_example: ModuleType, tracing: Any) -> None:
    from opentelemetry.trace import StatusCode

    tracer, exporter = tracing
    observer = otel_example.OtelObserver(tracer)
    with tracer.start_as_current_span("route call") as call:
        for event in story():
            observer(event)
    spans = {s.attributes.get("asip_locate.uri"): s for s in exporter.get_finished_spans()}
    assert len(spans) == 5  # four locates and the call
    first = spans["sip:alice@example.test"]
    assert first.name == "asip_locate.locate"
    assert first.parent is not None
    assert first.parent.span_id == call.get_span_context().span_id
    assert [e.name for e in first.events] == [
        "dns.query",
        "dns.answer",
        "dns.answer",
        "dns.query",
        "dns.query",
        "dns.answer",
        "dns.answer",
        "asip_locate.target",
        "asip_locate.failure_reported",
        "asip_locate.target",
        "asip_locate.success_reported",
    ]
    assert dict(first.events[0].attributes) == {
        "dns.question.name": "example.test",
        "dns.question.type": "NAPTR",
        "asip_locate.coalesced": False,
    }
    assert first.events[6].attributes["asip_locate.dns.source"] == "stale"
    assert first.events[6].attributes["asip_locate.dns.ttl"] == 30
    target = first.events[7].attributes
    assert target["network.peer.address"] == "127.0.0.11"
    assert target["network.peer.port"] == 5060
    assert target["asip_locate.target.transport"] == "udp"
    assert target["asip_locate.target.index"] == 0
    failure = first.events[8].attributes
    assert failure["asip_locate.failure.reason"] == "503"
    assert failure["asip_locate.failure.retry_after"] == 120.0
    assert first.attributes["asip_locate.targets_yielded"] == 2
    assert first.attributes["asip_locate.queries"] == 3
    assert first.attributes["asip_locate.answers_from_memory"] == 2
    assert first.attributes["asip_locate.closed"] is True
    assert first.status.status_code is StatusCode.UNSET

    gone = spans["sip:gone.example.test"]
    assert gone.status.status_code is StatusCode.ERROR
    assert "NoTargetsError" in (gone.status.description or "")
    assert [e.name for e in gone.events][-1] == "exception"
    assert spans["sip:slow.example.test"].status.status_code is StatusCode.ERROR
    assert spans["sip:bob@example.test"].status.status_code is StatusCode.UNSET

    # The last report came after every locate ended: it went to the current span.
    assert [e.name for e in spans[None].events] == ["asip_locate.failure_reported"]
    assert observer._open == {}
    assert observer._last_yielded == {}


def test_otel_without_uri_and_bounded(otel_example: ModuleType, tracing: Any) -> None:
    tracer, exporter = tracing
    observer = otel_example.OtelObserver(tracer, record_uri=False, max_open=2)
    for locate_id in (1, 2, 3):  # never ended: the oldest is ended when a third opens
        observer(LocateStarted(locate_id, "sip:carol@example.test"))
    (abandoned,) = exporter.get_finished_spans()
    assert "asip_locate.uri" not in abandoned.attributes
    assert abandoned.attributes["asip_locate.abandoned"] is True
    assert sorted(observer._open) == [2, 3]
    observer(TargetYielded(7, "sip:x", T1, 0))  # an unknown locate: ignored
    observer(FailureReported(E1, FailureReason.TIMEOUT))  # no span open for it: ignored


# --- a real Locator ----------------------------------------------------------------


def by_type(events: list[Event], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


async def test_wired_cold_then_cached_locate() -> None:
    events: list[Event] = []
    backend = FakeBackend(DEMO_ZONE)
    kwargs: dict[str, Any] = {"backend": backend, "observer": events.append}
    async with Locator(LocateOptions(seed=1), **kwargs) as locator:
        targets = await locator.resolve("sip:example.test")
        cold = list(events)
        events.clear()
        assert await locator.resolve("sip:example.test") == targets
        warm = list(events)

    assert isinstance(cold[0], LocateStarted)
    assert cold[0].uri == "sip:example.test"
    locate_id = cold[0].locate_id
    assert all(getattr(e, "locate_id", locate_id) == locate_id for e in cold)
    sent = [e.query for e in by_type(cold, QuerySent)]
    assert sent == backend.calls
    assert sent[0] == Query("example.test", RType.NAPTR)
    answers = by_type(cold, AnswerReceived)
    assert sorted(a.answer.query for a in answers) == sorted(sent)
    assert {a.source for a in answers} == {AnswerSource.NETWORK}
    # Each answer comes after its query.
    for answer in answers:
        asked = cold.index(
            next(e for e in cold if getattr(e, "query", None) == answer.answer.query)
        )
        assert asked < cold.index(answer)
    yielded = by_type(cold, TargetYielded)
    assert [e.target for e in yielded] == targets
    assert [e.index for e in yielded] == list(range(len(targets)))
    assert cold[-1] == LocateDone(locate_id, "sip:example.test", len(targets))

    assert by_type(warm, QuerySent) == []
    assert {a.source for a in by_type(warm, AnswerReceived)} == {AnswerSource.CACHE}
    assert isinstance(warm[0], LocateStarted)
    assert isinstance(warm[-1], LocateDone)
    assert warm[0].locate_id == warm[-1].locate_id == locate_id + 1
    assert [e.target for e in by_type(warm, TargetYielded)] == targets


async def test_wired_ends_failures_and_reports() -> None:
    events: list[Event] = []
    kwargs: dict[str, Any] = {"backend": FakeBackend(DEMO_ZONE), "observer": events.append}
    async with Locator(LocateOptions(seed=1), **kwargs) as locator:
        async with locator.locate("sip:example.test") as stream:
            target = await anext(stream)
        done = events[-1]
        assert isinstance(done, LocateDone)
        assert (done.yielded, done.error, done.closed) == (1, None, True)

        with pytest.raises(NoTargetsError) as info:
            await locator.resolve("sip:gone.example.test")
        done = events[-1]
        assert isinstance(done, LocateDone)
        assert done == LocateDone(done.locate_id, "sip:gone.example.test", 0, info.value)

        events.clear()
        with pytest.raises(NoTargetsError) as info:
            await locator.resolve("sips:example.test;transport=udp")
        assert [type(e) for e in events] == [LocateStarted, LocateDone]
        done = events[-1]
        assert isinstance(done, LocateDone)
        assert done.error is info.value

        events.clear()
        locator.report_failure(target, reason="503", retry_after=5)
        locator.report_success(target.endpoint)
        with pytest.raises(ValueError):
            locator.report_failure(target, reason="bogus")
    assert events == [
        FailureReported(target.endpoint, FailureReason.SERVICE_UNAVAILABLE, 5),
        SuccessReported(target.endpoint),
    ]


async def test_wired_coalesced_queries() -> None:
    events: list[Event] = []
    kwargs: dict[str, Any] = {
        "backend": FakeBackend(DEMO_ZONE, latency=0.01),
        "observer": events.append,
    }
    async with Locator(LocateOptions(seed=1), **kwargs) as locator:
        one, two = await asyncio.gather(
            locator.resolve("sip:example.test"), locator.resolve("sip:example.test")
        )
    assert one == two
    first, second = (e.locate_id for e in by_type(events, LocateStarted))
    joined = [e for e in by_type(events, QuerySent) if e.locate_id == second]
    assert joined
    assert all(e.coalesced for e in joined)
    sources = {e.source for e in by_type(events, AnswerReceived) if e.locate_id == second}
    assert sources == {AnswerSource.COALESCED}
    assert not any(e.coalesced for e in by_type(events, QuerySent) if e.locate_id == first)


async def test_wired_raising_observer_never_breaks_a_locate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("observer bug")

    kwargs: dict[str, Any] = {"backend": FakeBackend(DEMO_ZONE), "observer": broken}
    async with Locator(LocateOptions(seed=1), **kwargs) as locator:
        with caplog.at_level(logging.ERROR, logger="asip_locate"):
            targets = await locator.resolve("sip:example.test")
            assert await locator.resolve("sip:example.test") == targets
            locator.report_failure(targets[0])
    assert targets
    assert len(caplog.records) == 1


async def test_wired_exporters_end_to_end(
    prometheus_example: ModuleType, otel_example: ModuleType, tracing: Any
) -> None:
    tracer, exporter = tracing
    metrics = prometheus_example.PrometheusObserver()
    observer = fan_out(metrics, otel_example.OtelObserver(tracer))
    kwargs: dict[str, Any] = {"backend": FakeBackend(DEMO_ZONE), "observer": observer}
    async with Locator(LocateOptions(seed=1), **kwargs) as locator:
        targets = await locator.resolve("sip:example.test")
        await locator.resolve("sip:example.test")
    value = metrics.registry.get_sample_value
    assert value("asip_locate_queries_total", {"rtype": "NAPTR", "coalesced": "false"}) == 1
    assert value("asip_locate_locates_total", {"outcome": "ok"}) == 2
    assert value("asip_locate_first_target_seconds_count") == 2
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert spans[1].attributes["asip_locate.queries"] == 0
    assert spans[1].attributes["asip_locate.targets_yielded"] == len(targets)


def one_locate(events: list[Event], locate_id: int) -> list[Event]:
    return [e for e in events if getattr(e, "locate_id", None) == locate_id]


async def test_wired_compiled_stream_replays_answers_from_memory() -> None:
    events: list[Event] = []
    kwargs: dict[str, Any] = {"backend": FakeBackend(DEMO_ZONE), "observer": events.append}
    async with Locator(LocateOptions(seed=1), **kwargs) as locator:
        targets = await locator.resolve("sip:example.test")
        cold = [e.answer for e in by_type(events, AnswerReceived)]
        await locator.resolve("sip:example.test")  # compiles it
        events.clear()
        async with locator.locate("sip:example.test") as stream:
            assert [t async for t in stream] == targets
        full = list(events)
        events.clear()
        async with locator.locate("sip:example.test") as stream:
            await anext(stream)
        closed = list(events)

    # A compiled locate: started, every answer behind it (from memory), targets, done.
    assert isinstance(full[0], LocateStarted)
    answers = by_type(full, AnswerReceived)
    assert [type(e) for e in full] == [LocateStarted] + [AnswerReceived] * len(answers) + [
        TargetYielded
    ] * len(targets) + [LocateDone]
    assert {a.source for a in answers} == {AnswerSource.CACHE}
    assert sorted(a.answer.query for a in answers) == sorted(a.query for a in cold)
    assert [e.index for e in by_type(full, TargetYielded)] == list(range(len(targets)))
    assert full[-1] == LocateDone(full[0].locate_id, "sip:example.test", len(targets))

    assert by_type(closed, TargetYielded)[0].index == 0
    done = closed[-1]
    assert isinstance(done, LocateDone)
    assert (done.yielded, done.error, done.closed) == (1, None, True)
    assert len(by_type(closed, LocateDone)) == 1


async def test_wired_follower_streams_report_joined_queries() -> None:
    events: list[Event] = []
    kwargs: dict[str, Any] = {
        "backend": FakeBackend(DEMO_ZONE, latency=0.01),
        "observer": events.append,
    }

    async def drain() -> list[Target]:
        async with locator.locate("sip:example.test") as stream:
            return [t async for t in stream]

    async with Locator(LocateOptions(seed=1), **kwargs) as locator:
        one, two = await asyncio.gather(drain(), drain())
    assert one == two
    leader, follower = (one_locate(events, e.locate_id) for e in by_type(events, LocateStarted))
    sent = by_type(leader, QuerySent)
    assert sent
    assert not any(e.coalesced for e in sent)
    assert {e.source for e in by_type(leader, AnswerReceived)} == {AnswerSource.NETWORK}
    # The follower took the leader's result: each answer is a query it joined.
    joined = by_type(follower, QuerySent)
    assert [e.query for e in joined] == [e.answer.query for e in by_type(follower, AnswerReceived)]
    assert sorted(e.query for e in joined) == sorted(e.query for e in sent)
    assert all(e.coalesced for e in joined)
    assert {e.source for e in by_type(follower, AnswerReceived)} == {AnswerSource.COALESCED}
    assert [e.target for e in by_type(follower, TargetYielded)] == two
    assert isinstance(follower[0], LocateStarted)
    assert follower[-1] == LocateDone(follower[0].locate_id, "sip:example.test", len(two))


async def test_wired_cancelled_next_is_not_an_end() -> None:
    events: list[Event] = []
    kwargs: dict[str, Any] = {
        "backend": FakeBackend(DEMO_ZONE, latency=0.05),
        "observer": events.append,
    }
    async with Locator(LocateOptions(seed=1), **kwargs) as locator:
        stream = locator.locate("sip:example.test")
        task = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert by_type(events, LocateDone) == []
        targets = [t async for t in stream]  # usable again: asks anew
        await stream.aclose()
    assert targets
    (done,) = by_type(events, LocateDone)
    assert (done.yielded, done.error, done.closed) == (len(targets), None, False)
    # Asked again, the NAPTR query joins the cache's own lookup, which the cancelled
    # next() left running for whoever asks next.
    naptr_sent = [e for e in by_type(events, QuerySent) if e.query.rtype is RType.NAPTR]
    first, again = naptr_sent  # early SRV queries go out in the same waves
    assert first.query == again.query == Query("example.test", RType.NAPTR)
    assert (first.coalesced, again.coalesced) == (False, True)
    naptr = [e for e in by_type(events, AnswerReceived) if e.answer.query == first.query]
    assert [e.source for e in naptr] == [AnswerSource.COALESCED]


async def test_wired_garbage_collected_stream_is_closed() -> None:
    import gc

    events: list[Event] = []
    kwargs: dict[str, Any] = {"backend": FakeBackend(DEMO_ZONE), "observer": events.append}
    async with Locator(LocateOptions(seed=1), **kwargs) as locator:
        stream = locator.locate("sip:example.test")
        await anext(stream)
        del stream
        gc.collect()
        done = events[-1]
        assert isinstance(done, LocateDone)
        assert (done.yielded, done.error, done.closed) == (1, None, True)


async def test_wired_response_and_timeout() -> None:
    events: list[Event] = []
    kwargs: dict[str, Any] = {
        "backend": FakeBackend(DEMO_ZONE, latency=1.0),
        "observer": events.append,
    }
    async with Locator(LocateOptions(seed=1, deadline=0.05), **kwargs) as locator:
        with pytest.raises(LocateTimeoutError) as info:
            await locator.resolve("sip:example.test")
        started = events[0]
        assert isinstance(started, LocateStarted)
        assert events[-1] == LocateDone(started.locate_id, "sip:example.test", 0, info.value)
        events.clear()
        via = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"
        targets = await locator.resolve_response(via)
    assert [type(e) for e in events] == [LocateStarted, TargetYielded, LocateDone]
    assert [e.target for e in by_type(events, TargetYielded)] == targets


async def test_wired_without_observer_no_event_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def no(*args: object, **kwargs: object) -> None:
        raise AssertionError("an event was built without an observer")

    for module in (asip_locate._locator, asip_locate._observe):
        for name in (*(t.__name__ for t in EVENT_TYPES), "Watch"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, no)
    async with Locator(LocateOptions(seed=1), backend=FakeBackend(DEMO_ZONE)) as locator:
        targets = await locator.resolve("sip:example.test")
        for _ in range(2):
            assert await locator.resolve("sip:example.test") == targets
            async with locator.locate("sip:example.test") as stream:
                assert [t async for t in stream] == targets
        locator.report_failure(targets[0])
        locator.report_success(targets[0])
        with pytest.raises(NoTargetsError):
            await locator.resolve("sip:gone.example.test")


async def test_wired_without_cache_every_answer_is_from_the_network() -> None:
    events: list[Event] = []
    backend = FakeBackend(DEMO_ZONE)
    kwargs: dict[str, Any] = {"backend": backend, "observer": events.append}
    async with Locator(LocateOptions(seed=1, cache_size=0), **kwargs) as locator:
        for _ in range(2):
            targets = await locator.resolve("sip:example.test")
    sent = by_type(events, QuerySent)
    assert [e.query for e in sent] == backend.calls
    assert not any(e.coalesced for e in sent)
    assert {e.source for e in by_type(events, AnswerReceived)} == {AnswerSource.NETWORK}
    assert [e.yielded for e in by_type(events, LocateDone)] == [len(targets)] * 2
