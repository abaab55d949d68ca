"""RedisHealthStore: endpoint health shared by every worker process, through Redis.

    from asip_locate.redis import RedisHealthStore

    store = RedisHealthStore("redis://127.0.0.1:6379/0", namespace="b2bua")
    async with Locator(options, health_store=store) as locator:
        ...

Needs the optional extra ``asip-locate[redis]`` (redis-py's asyncio client).

How it works:

* The hot path never touches the network. Each store is a HealthTable (the same
  in-memory table a Locator uses by default) that also mirrors the shared state:
  ``snapshot()``, ``entries()`` and the reports read and update local memory only.
* A report is applied locally at once and queued (bounded) for a background task,
  which runs a Lua script per report: the endpoint's state is one key,
  ``<namespace>:h:<transport>/<address>/<port>``, holding a JSON document with an
  absolute wall-clock deadline and expiring then (``SET ... PXAT``). The script keeps
  the later deadline (a report never shortens a hold in force, whatever the order the
  workers' reports arrive in) and publishes the resulting state on
  ``<namespace>:health``. A success deletes the key and publishes that.
* Every store subscribes to that channel and applies what it receives, its own
  reports included, so all mirrors converge on Redis' order. On every (re)connect it
  subscribes first, writes what was queued while it was away, then reads every key of
  the namespace (SCAN) and replaces its mirror with it (a longer local hold is kept).
* Redis restarted without its data (an ``<namespace>:epoch`` key tells): each store
  writes back the demotions it still holds, so the fleet's state is rebuilt.
* Redis down or slow: everything keeps working on local state; one warning per
  outage; reconnects with capped exponential backoff and jitter; nothing blocks or
  raises into callers. ``aclose()`` stops the task and closes every connection.
* Messages and keys are validated strictly (size, exact fields, types, ranges,
  canonical endpoint); anything else is counted in ``stats.ignored`` and dropped.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 - an I/O module
import contextlib
import ipaddress
import json
import logging
import math
import random  # noqa: TID251 - reconnection jitter only
import re
import secrets
import time  # noqa: TID251 - the default wall clock and outage durations
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from asip_locate._health import EndpointHealth, HealthTable
from asip_locate._model import Endpoint, FailureReason, Transport

try:
    import redis.asyncio as aioredis
    from redis.asyncio.client import PubSub
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("asip_locate.redis needs redis-py: pip install 'asip-locate[redis]'") from exc

__all__ = ["RedisHealthStats", "RedisHealthStore"]

log = logging.getLogger("asip_locate.redis")

_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_REASONS = {r.value: r for r in FailureReason}
_TRANSPORTS = {t.value: t for t in Transport}
_FAIL_FIELDS = frozenset({"v", "op", "ep", "u", "n", "r", "ra"})
_OK_FIELDS = frozenset({"v", "op", "ep"})
_CLEAR_FIELDS = frozenset({"v", "op"})
_FIELDS = {"fail": _FAIL_FIELDS, "ok": _OK_FIELDS, "clear": _CLEAR_FIELDS}
_MAX_FAILURES = 1_000_000_000
_SCAN_COUNT = 500
_BATCH = 256

# KEYS[1] the endpoint's key. ARGV: endpoint id, deadline ms, now ms, reason,
# retry-after ("" for none), channel, failures to add.
_FAIL_SCRIPT = """
local until_ms = tonumber(ARGV[2])
local now_ms = tonumber(ARGV[3])
local failures = tonumber(ARGV[7])
local old = redis.call('GET', KEYS[1])
if old then
  local ok, state = pcall(cjson.decode, old)
  if ok and type(state) == 'table' and type(state.u) == 'number'
      and type(state.n) == 'number' and state.u > now_ms then
    failures = math.min(state.n + failures, 1000000000)
    if state.u > until_ms then until_ms = state.u end
  end
end
if until_ms <= now_ms then return 0 end
local ra = cjson.null
if ARGV[5] ~= '' then ra = tonumber(ARGV[5]) end
local doc = cjson.encode({v = 1, op = 'fail', ep = ARGV[1], u = until_ms, n = failures,
                          r = ARGV[4], ra = ra})
redis.call('SET', KEYS[1], doc, 'PXAT', until_ms)
redis.call('PUBLISH', ARGV[6], doc)
return 1
"""

# KEYS[1] the endpoint's key. ARGV: endpoint id, channel.
_OK_SCRIPT = """
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({v = 1, op = 'ok', ep = ARGV[1]}))
return 1
"""


class _Ignored(ValueError):
    """A message or key that is not a valid health document."""


@dataclass(slots=True)
class RedisHealthStats:
    """Counters of one RedisHealthStore (monotonic, for logs and tests).

    Attributes:
        connects: Sessions established (subscribed, flushed, resynced).
        outages: Times Redis was found unreachable, slow or failing.
        written: Reports written to Redis.
        received: Valid messages applied from the channel (own reports included).
        ignored: Messages or keys rejected by validation.
        dropped: Reports dropped because the queue was full (``max_pending``).
        resynced: Keys read by the resyncs.
    """

    connects: int = 0
    outages: int = 0
    written: int = 0
    received: int = 0
    ignored: int = 0
    dropped: int = 0
    resynced: int = 0


_OpKind = Literal["fail", "ok", "clear"]


@dataclass(frozen=True, slots=True)
class _Op:
    kind: _OpKind
    endpoint: Endpoint | None = None
    until_ms: int = 0
    reason: FailureReason = FailureReason.OTHER
    retry_after: float | None = None
    failures: int = 1


def endpoint_id(endpoint: Endpoint) -> str:
    """The text naming ``endpoint`` in keys and messages: ``udp/192.0.2.1/5060``."""
    return f"{endpoint.transport.value}/{endpoint.address}/{endpoint.port}"


def parse_endpoint_id(text: object) -> Endpoint:
    """The Endpoint named by ``text``; raises ValueError unless it is canonical."""
    if not isinstance(text, str) or len(text) > 128:
        raise _Ignored("endpoint id is not a short string")
    parts = text.split("/")
    if len(parts) != 3:
        raise _Ignored("endpoint id is not transport/address/port")
    transport = _TRANSPORTS.get(parts[0])
    if transport is None:
        raise _Ignored("unknown transport")
    try:
        address = ipaddress.ip_address(parts[1])
    except ValueError:
        raise _Ignored("bad address") from None
    if not parts[2].isdigit() or len(parts[2]) > 5:  # isdigit: no sign, no spaces
        raise _Ignored("bad port")
    port = int(parts[2])
    endpoint = Endpoint(transport, address, port)
    if not 0 < port < 65536 or endpoint_id(endpoint) != text:
        raise _Ignored("endpoint id is not canonical")
    return endpoint


def _reject_constant(name: str) -> Any:
    raise _Ignored(f"{name} is not JSON")  # NaN, Infinity, -Infinity


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_document(raw: object, max_bytes: int, max_hold_ms: int, now_ms: int) -> dict[str, Any]:
    """A validated health document (message or key value); raises ValueError if not.

    Exact field sets per ``op``; ``u`` an integer deadline in ms no further than
    ``max_hold_ms`` from ``now_ms``; ``n`` a positive integer; ``r`` a FailureReason
    value; ``ra`` None or a number of seconds within the same bound.
    """
    if not isinstance(raw, bytes | str):
        raise _Ignored("not a string")
    if len(raw) > max_bytes:
        raise _Ignored("too large")
    try:
        doc = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _Ignored("not JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != 1 or not _is_int(doc["v"]):
        raise _Ignored("not a version 1 document")
    op = doc.get("op")
    fields = _FIELDS.get(op) if isinstance(op, str) else None
    if fields is None or doc.keys() != fields:
        raise _Ignored("unknown op or wrong fields")
    if op == "clear":
        return doc
    doc["ep"] = parse_endpoint_id(doc["ep"])
    if op == "ok":
        return doc
    until, failures, reason, retry_after = doc["u"], doc["n"], doc["r"], doc["ra"]
    if not _is_int(until) or not 0 < until <= now_ms + max_hold_ms:
        raise _Ignored("bad deadline")
    if not _is_int(failures) or not 0 < failures <= _MAX_FAILURES:
        raise _Ignored("bad failure count")
    if not isinstance(reason, str) or reason not in _REASONS:
        raise _Ignored("bad reason")
    doc["r"] = _REASONS[reason]
    if retry_after is not None and not (
        _is_number(retry_after) and 0 <= retry_after <= max_hold_ms / 1000
    ):
        raise _Ignored("bad retry-after")
    return doc


class RedisHealthStore(HealthTable):
    """A HealthStore shared through Redis; pass as ``Locator(health_store=...)``.

    Args:
        url: A redis-py URL: ``redis://[user:password@]host:port/db``,
            ``rediss://...`` for TLS, ``unix:///path.sock``.
        namespace: Prefix of the keys and the channel (letters, digits, ``_.-``):
            one per application, so that unrelated fleets never share state.
        timeout: Seconds any Redis command (and connecting) may take before Redis is
            considered unreachable.
        ping_interval: Seconds between PINGs that detect a silent outage.
        reconnect_min: Shortest wait, in seconds, of the exponential backoff (with
            jitter) between reconnection attempts.
        reconnect_max: Longest wait, in seconds, of that backoff.
        max_pending: Reports queued while Redis is away; the oldest are dropped.
        max_hold: Longest hold shared, in seconds (a longer Retry-After is capped in
            Redis, kept in full locally); documents beyond it are rejected.
        max_message_bytes: Longest message or key value accepted.
        wall_clock: Seconds since the epoch (default ``time.time``): holds are stored
            as absolute wall-clock deadlines, since workers' monotonic clocks differ.
        redis_options: More keyword arguments for ``redis.asyncio.Redis.from_url``
            (``ssl_ca_certs``, ``client_name``...).

    The monotonic clock, ``health_size`` and ``failure_hold`` come from the Locator
    (``bind``). The background task starts at ``bind`` when an event loop is
    running, else at ``await store.start()`` or the first report.
    """

    # Slots keep the instance dict to HealthTable's few attributes: past 30 keys a
    # dict stops sharing keys and every attribute read of snapshot() gets slower.
    __slots__ = (
        "_bound", "_closed", "_connected", "_epoch", "_epoch_key", "_fail_sha",
        "_key_prefix", "_max_hold_ms", "_ok_sha", "_outage_since", "_queue",
        "_redis_options", "_task", "_wakeup", "_wall", "channel", "max_hold",
        "max_message_bytes", "namespace", "ping_interval", "reconnect_max",
        "reconnect_min", "stats", "timeout", "url",
    )  # fmt: skip

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "asip_locate",
        timeout: float = 1.0,
        ping_interval: float = 2.0,
        reconnect_min: float = 0.05,
        reconnect_max: float = 5.0,
        max_pending: int = 10_000,
        max_hold: float = 86_400.0,
        max_message_bytes: int = 1024,
        wall_clock: Callable[[], float] = time.time,
        redis_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not _NAMESPACE.fullmatch(namespace):
            raise ValueError(f"namespace must match {_NAMESPACE.pattern}, got {namespace!r}")
        for name, value in (
            ("timeout", timeout),
            ("ping_interval", ping_interval),
            ("reconnect_min", reconnect_min),
            ("reconnect_max", reconnect_max),
            ("max_hold", max_hold),
        ):
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if reconnect_max < reconnect_min:
            raise ValueError("reconnect_max must be >= reconnect_min")
        if max_pending < 1 or max_message_bytes < 128:
            raise ValueError("max_pending must be >= 1 and max_message_bytes >= 128")
        super().__init__(size=4_096, hold=30.0, clock=time.monotonic)
        self.url = url
        self.namespace = namespace
        self.channel = f"{namespace}:health"
        self._key_prefix = f"{namespace}:h:"
        self._epoch_key = f"{namespace}:epoch"
        self.timeout = float(timeout)
        self.ping_interval = float(ping_interval)
        self.reconnect_min = float(reconnect_min)
        self.reconnect_max = float(reconnect_max)
        self.max_hold = float(max_hold)
        self.max_message_bytes = max_message_bytes
        self._max_hold_ms = round(max_hold * 1000)
        self._wall = wall_clock
        self._redis_options: dict[str, Any] = {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),  # this store retries, with its own backoff
            "health_check_interval": 0,
            **(redis_options or {}),
            "decode_responses": False,
        }
        # A bad URL or option raises here, not in the background (no connection yet).
        aioredis.ConnectionPool.from_url(url, **self._redis_options)
        self.stats = RedisHealthStats()
        self._queue: deque[_Op] = deque(maxlen=max_pending)
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._bound = False
        self._closed = False
        self._connected = False
        self._outage_since: float | None = None
        self._epoch: bytes | str | None = None
        self._fail_sha = ""
        self._ok_sha = ""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self._connected else "offline"
        return f"<RedisHealthStore {self.namespace} {state} entries={len(self)}>"

    @property
    def connected(self) -> bool:
        """True while subscribed and in sync with Redis."""
        return self._connected

    # --- HealthStore: local first, then queued for Redis ------------------------

    def bind(self, *, size: int, hold: float, clock: Callable[[], float]) -> None:
        """Take the Locator's options and clock; starts the task if a loop runs."""
        if self._bound:
            raise RuntimeError("this RedisHealthStore is already bound to a Locator")
        super().bind(size=size, hold=hold, clock=clock)
        self._bound = True
        with contextlib.suppress(RuntimeError):  # no running loop: start later
            asyncio.get_running_loop()
            self._ensure_started()

    async def start(self) -> None:
        """Start the background task now (idempotent)."""
        self._ensure_started()

    def report_failure(
        self,
        endpoint: Endpoint,
        reason: FailureReason,
        retry_after: float | None = None,
    ) -> EndpointHealth | None:
        """Demote ``endpoint`` here at once, and in every process once written."""
        entry = super().report_failure(endpoint, reason, retry_after)
        if entry is not None and not self._closed:
            hold = min(self.hold if retry_after is None else retry_after, self.max_hold)
            until_ms = math.ceil((self._wall() + hold) * 1000)
            if retry_after is not None:
                retry_after = min(retry_after, self.max_hold)  # as shared: within bounds
            self._push(_Op("fail", endpoint, until_ms, reason, retry_after))
        return entry

    def report_success(self, endpoint: Endpoint) -> None:
        """Clear ``endpoint`` here; shared only when this store had it demoted.

        A success is the common case of every call: writing each one would cost a
        Redis round trip per call, so only the ones that end a demotion are written.
        """
        known = endpoint in self._entries
        super().report_success(endpoint)
        if known and not self._closed:
            self._push(_Op("ok", endpoint))

    def clear(self, endpoint: Endpoint | None = None) -> None:
        """Forget ``endpoint``'s demotion, or every one, in every process."""
        if endpoint is not None:
            known = endpoint in self._entries
            super().clear(endpoint)
            if known and not self._closed:
                self._push(_Op("ok", endpoint))
            return
        super().clear(None)
        if not self._closed:
            self._push(_Op("clear"))

    async def aclose(self) -> None:
        """Write what is queued (for up to ``timeout``), then stop and disconnect."""
        if self._closed:
            return
        task = self._task
        for _ in range(math.ceil(self.timeout / 0.01)):
            if task is None or task.done() or not self._queue or not self.connected:
                break
            await asyncio.sleep(0.01)
        self._closed = True
        self._connected = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._task = None

    # --- background -----------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._task is None and not self._closed:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"RedisHealthStore {self.namespace}"
            )

    def _push(self, op: _Op) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.warning("Redis health queue full: %d report(s) dropped", self.stats.dropped)
        self._queue.append(op)
        if self._task is None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop()
                self._ensure_started()
        if self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        attempt = 0
        while not self._closed:  # each turn waits at least reconnect_min / 2
            connects = self.stats.connects
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every Redis, socket or protocol failure
                self._lost(exc)
            attempt = 0 if self.stats.connects != connects else min(attempt + 1, 30)
            delay = min(self.reconnect_max, self.reconnect_min * 2**attempt)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def _lost(self, exc: BaseException) -> None:
        self._connected = False
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self.stats.outages += 1
            log.warning(
                "Redis health store %s unreachable (%s: %s): health stays local until it is back",
                self.namespace,
                type(exc).__name__,
                exc,
            )
        else:
            log.debug("Redis health store %s still unreachable: %r", self.namespace, exc)

    async def _session(self) -> None:
        client = aioredis.Redis.from_url(self.url, **self._redis_options)
        pubsub = client.pubsub()
        try:
            async with asyncio.timeout(self.timeout * 4):
                await self._connect(client, pubsub)
            for _ in range(len(self._queue) // _BATCH + 2):  # what was queued meanwhile
                if not self._queue:
                    break
                await self._flush(client)
            await self._resync(client)
            self._connected = True
            self.stats.connects += 1
            if self._outage_since is not None:
                log.warning(
                    "Redis health store %s back after %.1fs, %d demotion(s) in sync",
                    self.namespace,
                    time.monotonic() - self._outage_since,
                    len(self),
                )
                self._outage_since = None
            reader = asyncio.ensure_future(self._read(pubsub))
            writer = asyncio.ensure_future(self._write(client))
            try:
                done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # raises what ended the session
            finally:
                for task in (reader, writer):
                    task.cancel()
                await asyncio.gather(reader, writer, return_exceptions=True)
        finally:
            self._connected = False
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _connect(self, client: aioredis.Redis, pubsub: PubSub) -> None:
        await pubsub.subscribe(self.channel)
        # The confirmation: from here on no message of the channel is missed.
        for _ in range(10):
            message = await pubsub.get_message(timeout=self.timeout)
            if message is not None and message.get("type") == "subscribe":
                break
        else:
            raise TimeoutError("no subscribe confirmation")
        self._fail_sha = await client.script_load(_FAIL_SCRIPT)
        self._ok_sha = await client.script_load(_OK_SCRIPT)
        await client.set(self._epoch_key, secrets.token_hex(8), nx=True)
        epoch = await client.get(self._epoch_key)
        if self._epoch is not None and epoch != self._epoch:
            self._reseed()
        self._epoch = epoch

    def _reseed(self) -> None:
        """Redis lost its data: queue every demotion still in force here."""
        now_mono = self._clock()
        now = self._wall()
        ops = [
            _Op(
                "fail",
                entry.endpoint,
                math.ceil((now + min(entry.until - now_mono, self.max_hold)) * 1000),
                entry.reason,
                None if entry.retry_after is None else min(entry.retry_after, self.max_hold),
                entry.failures,
            )
            for entry in self.entries()
        ]
        log.info("Redis lost the %s health state: writing back %d", self.namespace, len(ops))
        self._queue.extendleft(reversed(ops))

    async def _flush(self, client: aioredis.Redis) -> None:
        """Write up to one batch of queued reports; they leave the queue once written."""
        if not self._queue:
            return
        first = self._queue[0]
        if first.kind == "clear":
            await self._clear_all(client)
            if self._queue and self._queue[0] is first:
                self._queue.popleft()
            self.stats.written += 1
            return
        batch: list[_Op] = []
        for op in self._queue:  # up to the next clear, which must come after them
            if op.kind == "clear" or len(batch) == _BATCH:
                break
            batch.append(op)
        now_ms = math.floor(self._wall() * 1000)  # a hold that ended while queued: skipped
        pipe = client.pipeline(transaction=False)
        for op in batch:
            if op.kind == "fail" and op.until_ms <= now_ms:
                continue
            if op.kind == "fail":
                assert op.endpoint is not None
                ep = endpoint_id(op.endpoint)
                retry_after = "" if op.retry_after is None else repr(float(op.retry_after))
                pipe.evalsha(
                    self._fail_sha,
                    1,
                    self._key_prefix + ep,
                    ep,
                    op.until_ms,
                    now_ms,
                    op.reason.value,
                    retry_after,
                    self.channel,
                    min(op.failures, _MAX_FAILURES),
                )
            else:
                assert op.endpoint is not None
                ep = endpoint_id(op.endpoint)
                pipe.evalsha(self._ok_sha, 1, self._key_prefix + ep, ep, self.channel)
        sent = len(pipe)
        if sent:
            await pipe.execute()
        for op in batch:  # unless the queue overflowed meanwhile and dropped them
            if self._queue and self._queue[0] is op:
                self._queue.popleft()
        self.stats.written += sent

    async def _clear_all(self, client: aioredis.Redis) -> None:
        cursor = 0
        for _ in range(1_000_000):  # bounded: SCAN ends once the namespace is walked
            cursor, keys = await client.scan(
                cursor, match=self._key_prefix + "*", count=_SCAN_COUNT
            )
            if keys:
                await client.unlink(*keys)
            if cursor == 0:
                break
        await client.publish(self.channel, json.dumps({"v": 1, "op": "clear"}))

    async def _resync(self, client: aioredis.Redis) -> None:
        """Replace the mirror with Redis' keys (bounded by ``health_size``)."""
        found: dict[Endpoint, EndpointHealth] = {}
        cursor = 0
        limit = max(4 * self.size, _SCAN_COUNT)
        for _ in range(1_000_000):  # bounded: SCAN ends once the namespace is walked
            cursor, keys = await client.scan(
                cursor, match=self._key_prefix + "*", count=_SCAN_COUNT
            )
            if keys:
                values = await client.mget(keys)
                for key, value in zip(keys, values, strict=True):
                    entry = self._entry_of(value, key)
                    if entry is not None:
                        found[entry.endpoint] = entry
            if cursor == 0 or len(found) >= limit:
                break
        self.stats.resynced += len(found)
        pending = {op.endpoint for op in self._queue}
        for entry in list(self._entries.values()):
            if entry.endpoint not in found and entry.endpoint not in pending:
                self.discard(entry.endpoint)
        for entry in sorted(found.values(), key=lambda e: e.until):
            if entry.endpoint not in pending:
                self._merge(entry)

    async def _read(self, pubsub: PubSub) -> None:
        for _ in range(2**62):  # bounded only by the session; each wait is bounded
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=self.ping_interval
            )
            if message is None:
                continue
            if message.get("type") != "message" or message.get("channel") != self.channel.encode():
                continue
            self._receive(message.get("data"))

    async def _write(self, client: aioredis.Redis) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        for _ in range(2**62):  # bounded only by the session; each wait is bounded
            if not self._queue:
                wakeup.clear()
                try:
                    async with asyncio.timeout(self.ping_interval):
                        await wakeup.wait()
                except TimeoutError:
                    await client.ping()
                    continue
            await self._flush(client)

    # --- what comes from Redis ------------------------------------------------------

    def _document(self, raw: object) -> dict[str, Any] | None:
        try:
            return parse_document(
                raw, self.max_message_bytes, self._max_hold_ms, math.ceil(self._wall() * 1000)
            )
        except ValueError as exc:
            self.stats.ignored += 1
            log.debug("ignoring a health document on %s: %s", self.namespace, exc)
            return None

    def _entry_of(self, raw: object, key: object = None) -> EndpointHealth | None:
        doc = self._document(raw)
        if doc is None:
            return None
        if doc["op"] != "fail" or (
            key is not None and key != (self._key_prefix + endpoint_id(doc["ep"])).encode()
        ):
            self.stats.ignored += 1
            return None
        until = self._clock() + (doc["u"] / 1000 - self._wall())
        return EndpointHealth(doc["ep"], doc["r"], until, doc["n"], doc["ra"])

    def _receive(self, raw: object) -> None:
        doc = self._document(raw)
        if doc is None:
            return
        self.stats.received += 1
        if doc["op"] == "clear":
            self.discard(None)
        elif doc["op"] == "ok":
            self.discard(doc["ep"])
        else:
            until = self._clock() + (doc["u"] / 1000 - self._wall())
            self._merge(EndpointHealth(doc["ep"], doc["r"], until, doc["n"], doc["ra"]))

    def _merge(self, entry: EndpointHealth) -> None:
        """Apply a shared state, keeping a longer local hold (a Retry-After > max_hold).

        Redis never shortens a hold either: only a success or a clear (their own
        messages, which discard the entry first) end one early.
        """
        old = self._entries.get(entry.endpoint)
        if old is not None and old.until > entry.until:
            # The longer local hold is kept, and the latest report's Retry-After, unless
            # that is just our own value as shared (capped at max_hold).
            retry_after = entry.retry_after
            if old.retry_after is not None and retry_after == min(old.retry_after, self.max_hold):
                retry_after = old.retry_after
            entry = EndpointHealth(
                entry.endpoint, entry.reason, old.until, entry.failures, retry_after
            )
        self.apply(entry)
