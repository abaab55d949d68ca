"""GatedBackend: a FakeBackend whose queries wait until the test lets them through."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Any

from asip_locate._model import Answer, Query
from asip_locate.testing._fake import FakeBackend
from asip_locate.testing._zone import Zone


class _Hold:
    __slots__ = ("event", "query")

    def __init__(self, query: Query) -> None:
        self.query = query
        self.event = asyncio.Event()


class GatedBackend(FakeBackend):
    """A FakeBackend that holds queries until the test releases them.

    Args:
        zone: The Zone (or zone-file text) to answer from.
        gated: Hold only queries for this name (or these names); ``None`` holds every query.
        settle_steps: Loop iterations ``release`` runs before and after each release.
        **options: ``latency``, ``fail`` and ``sleep``, as for FakeBackend.

    Release held queries by round (``release_round``), one at a time, oldest first
    (``await release(count)``), or for good (``open()``, ``open(name)``). ``waiting``
    lists the queries held now; ``calls`` those that passed the gate. ``answered``
    counts queries answered, ``cancelled`` those cancelled while held.
    """

    def __init__(
        self,
        zone: Zone | str,
        *,
        gated: str | Iterable[str] | None = None,
        settle_steps: int = 10,
        **options: Any,
    ) -> None:
        super().__init__(zone, **options)
        self.gated: frozenset[str] | None = (
            None if gated is None else frozenset([gated] if isinstance(gated, str) else gated)
        )
        self.settle_steps = settle_steps
        self.answered = 0
        self.cancelled = 0
        self._open_all = False
        self._opened: set[str] = set()
        self._holds: deque[_Hold] = deque()

    @property
    def waiting(self) -> list[Query]:
        """The queries held now, oldest first."""
        return [hold.query for hold in self._holds]

    def holds(self, query: Query) -> bool:
        """Whether ``query`` would be held if asked now."""
        if self._open_all or query.name in self._opened:
            return False
        return self.gated is None or query.name in self.gated

    async def query(self, query: Query) -> Answer:
        """Wait at the gate if ``query`` is held, then answer from the zone."""
        if self.holds(query):
            hold = _Hold(query)
            self._holds.append(hold)
            try:
                await hold.event.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            finally:
                if hold in self._holds:
                    self._holds.remove(hold)
        self.answered += 1
        return await super().query(query)

    def release_round(self) -> int:
        """Release every query held now (one round, in virtual time); returns how many."""
        holds, self._holds = self._holds, deque()
        for hold in holds:
            hold.event.set()
        return len(holds)

    async def release(self, count: int = 1) -> int:
        """Release up to ``count`` held queries, oldest first; returns how many.

        The loop settles before each release and after the last.
        """
        released = 0
        for _ in range(count):
            await self.settle()
            if not self._holds:
                break
            self._holds.popleft().event.set()
            released += 1
        await self.settle()
        return released

    def open(self, name: str | None = None) -> int:
        """Stop holding queries (for ``name`` only, if given); returns how many it released.

        Those held now go through at once.
        """
        if name is None:
            self._open_all = True
        else:
            self._opened.add(name)
        kept: deque[_Hold] = deque()
        released = 0
        for hold in self._holds:
            if name is None or hold.query.name == name:
                hold.event.set()
                released += 1
            else:
                kept.append(hold)
        self._holds = kept
        return released

    async def settle(self) -> None:
        """Let the loop run ``settle_steps`` iterations."""
        for _ in range(self.settle_steps):
            await asyncio.sleep(0)
