"""The DNS backend seam: one query in, one Answer out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from asip_locate._model import Answer, Query


@runtime_checkable
class DnsBackend(Protocol):
    """Anything that answers DNS queries for a Locator.

    ``query`` never raises for DNS outcomes (NXDOMAIN, SERVFAIL, timeouts...): it
    returns an Answer with the matching Status. A Locator owns its backend and closes
    it with ``aclose``.
    """

    async def query(self, query: Query) -> Answer:
        """Ask one question."""
        ...

    async def aclose(self) -> None:
        """Release sockets and stop pending work."""
        ...


@runtime_checkable
class CachedLookup(Protocol):
    """Optional backend capability: answer from memory without awaiting.

    The executor calls ``cached`` before it creates a task for a query, so a fully
    cached locate runs without tasks or I/O.
    """

    def cached(self, query: Query) -> Answer | None:
        """The answer if it is already known, else None."""
        ...
