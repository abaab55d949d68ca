"""drive(): run a Resolution to its end against a Zone, synchronously, in rounds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from asip_locate._errors import NoTargetsError
from asip_locate._model import Answer, Query, Status, Target
from asip_locate._plan import Resolution
from asip_locate.testing._zone import Zone

MAX_ROUNDS = 64


@dataclass(frozen=True, slots=True)
class Run:
    """What ``drive`` saw.

    Attributes:
        targets: Every target released, in order (the planner de-duplicated them).
        rounds: The round in which each target was released (0: before any query).
        asked: Every query sent, in order.
        error: The NoTargetsError a stream would raise (no target at all), or None.
    """

    targets: tuple[Target, ...]
    rounds: tuple[int, ...]
    asked: tuple[Query, ...]
    error: NoTargetsError | None

    round_count: int
    """How many rounds of queries the resolution took."""


def drive(
    resolution: Resolution,
    zone: Zone | str | Callable[[Query], Answer],
    *,
    fail: Mapping[Query, Status] | None = None,
    uri: str = "",
) -> Run:
    """Answer every query ``resolution`` names, one round at a time, until it is done.

    Each round sends every query ``needs()`` names at once (as a stream with enough
    concurrency would) and feeds all their answers; targets are taken with
    ``ready()`` after each round. ``zone`` answers (a Zone, zone-file text or a
    function); ``fail`` overrides the status of particular queries.

    Raises:
        RuntimeError: the resolution asked for a query twice, needed nothing while
            not done, or took more than 64 rounds (planner bugs).
    """
    answer = _answerer(zone)
    fail = fail or {}
    if resolution.error is not None:
        return Run((), (), (), resolution.error, 0)
    targets: list[Target] = []
    rounds: list[int] = []
    asked: list[Query] = []
    failed: set[Query] = set()
    count = 0

    def take() -> None:
        released = resolution.ready()
        targets.extend(released)
        rounds.extend([count] * len(released))

    take()
    while not resolution.done:
        needs = resolution.needs()
        if not needs:
            raise RuntimeError(f"{resolution!r} is not done but needs nothing")
        count += 1
        if count > MAX_ROUNDS:
            raise RuntimeError(f"more than {MAX_ROUNDS} rounds")
        for query in needs:
            # Only an early question that failed may be asked again (Resolution.feed_all).
            if query in asked and query not in failed:
                raise RuntimeError(f"{query} asked twice")
        asked += needs
        answers = [Answer(q, fail[q], detail="injected") if q in fail else answer(q) for q in needs]
        failed.update(a.query for a in answers if a.status.is_failure)
        resolution.feed_all(answers)
        take()
    error = None
    if not targets:
        error = NoTargetsError(uri or "(resolution)", resolution.attempts, resolution.reason)
    return Run(tuple(targets), tuple(rounds), tuple(asked), error, count)


def _answerer(zone: Zone | str | Callable[[Query], Answer]) -> Callable[[Query], Answer]:
    if isinstance(zone, str):
        zone = Zone(zone)
    if isinstance(zone, Zone):
        return zone.answer
    return zone
