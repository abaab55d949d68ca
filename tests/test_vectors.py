"""Every shared URI vector: through the pure core, and end to end over real DNS."""

from __future__ import annotations

import random
from typing import Any

import pytest

from asip_locate import Locator, NoTargetsError, Target, parse_uri
from asip_locate._plan import plan_request
from asip_locate.testing import FakeBackend, ZoneServer, drive
from tests.vectors import URI_CASES, check, options, resolve_case, zone_text

IDS = [c["id"] for c in URI_CASES]


def pure(case: dict[str, Any], seed: int) -> list[Target]:
    """The pure core, run by the test kit's driver against the case's zone."""
    resolution = plan_request(
        parse_uri(case["input"]["uri"]),
        options(case),
        lambda name: random.Random(f"{seed}:{name}"),
        as_sips=case["client"]["resolve_as_sips"],
    )
    return list(drive(resolution, zone_text(case)).targets)


async def in_process(case: dict[str, Any], seed: int, **extra: Any) -> list[Target]:
    """A real Locator over FakeBackend (the zone in-process); [] if no target."""
    backend = FakeBackend(zone_text(case))
    async with Locator(options(case, seed=seed, **extra), backend=backend) as locator:
        try:
            return await locator.resolve(
                case["input"]["uri"], as_sips=case["client"]["resolve_as_sips"]
            )
        except NoTargetsError:
            return []


@pytest.mark.parametrize("case", URI_CASES, ids=IDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_pure_core_and_locator_agree(case: dict[str, Any], seed: int) -> None:
    expected = pure(case, seed)
    check(expected, case["expected"])
    # The same seed gives the same targets through a Locator, cold and compiled.
    assert await in_process(case, seed) == expected
    backend = FakeBackend(zone_text(case))
    async with Locator(options(case, seed=seed), backend=backend) as locator:
        for _ in range(3):
            try:
                got = await locator.resolve(
                    case["input"]["uri"], as_sips=case["client"]["resolve_as_sips"]
                )
            except NoTargetsError:
                got = []
            assert got == expected


@pytest.mark.parametrize("case", URI_CASES, ids=IDS)
async def test_end_to_end_over_aiodns(case: dict[str, Any]) -> None:
    async with ZoneServer(zone_text(case)) as server:
        targets = await resolve_case(case, server.address, timeout=1.0, tries=1)
    check(targets, case["expected"])
    assert all(q.transport == "udp" for q in server.log)
