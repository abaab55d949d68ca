"""FakeClock: a monotonic clock that moves only when a test says so."""

from __future__ import annotations


class FakeClock:
    """Pass as ``Locator(clock=...)`` to control cache expiry and health state exactly."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds
