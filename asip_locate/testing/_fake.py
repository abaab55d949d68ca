"""FakeBackend: answers from a Zone in-process, with optional latency and faults."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from asip_locate._model import Answer, Query, Status
from asip_locate.testing._zone import Zone


class FakeBackend:
    """A DnsBackend that serves a Zone without sockets.

    Args:
        zone: The Zone (or zone-file text) to answer from.
        latency: Seconds each query takes, slept through ``sleep``.
        fail: Status to return for particular queries instead of the zone's answer.
        sleep: The sleep function (inject a virtual clock's sleep in tests).

    ``calls`` records every query in the order received.
    """

    def __init__(
        self,
        zone: Zone | str,
        *,
        latency: float = 0.0,
        fail: Mapping[Query, Status] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.zone = zone if isinstance(zone, Zone) else Zone(zone)
        self.latency = latency
        self.fail = dict(fail or {})
        self.calls: list[Query] = []
        self.closed = False
        self._sleep = sleep

    async def query(self, query: Query) -> Answer:
        """Answer from the zone after ``latency`` seconds."""
        self.calls.append(query)
        if self.latency:
            await self._sleep(self.latency)
        status = self.fail.get(query)
        if status is not None:
            return Answer(query, status, detail="injected")
        return self.zone.answer(query)

    async def aclose(self) -> None:
        """Mark closed."""
        self.closed = True
