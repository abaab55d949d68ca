"""Every shared URI vector: through the pure core, and end to end over real DNS."""

from __future__ import annotations

import random
from typing import Any

import pytest

from asip_locate import NoTargetsError, Target, parse_uri
from asip_locate._plan import plan_request
from asip_locate.testing import Zone, ZoneServer
from tests.vectors import URI_CASES, check, options, resolve_case, zone_text

IDS = [c["id"] for c in URI_CASES]


def drive(case: dict[str, Any], seed: int) -> list[Target]:
    """Run the pure core synchronously, answering every need from the zone."""
    zone = Zone(zone_text(case))
    uri = parse_uri(case["input"]["uri"])
    try:
        resolution = plan_request(
            uri,
            options(case),
            lambda name: random.Random(f"{seed}:{name}"),
            as_sips=case["client"]["resolve_as_sips"],
        )
    except NoTargetsError:
        return []
    targets: list[Target] = []
    for _ in range(100):
        targets += resolution.ready()
        if resolution.done:
            break
        for query in resolution.needs():
            resolution.feed(zone.answer(query))
    unique: dict[object, Target] = {}
    for target in targets:
        unique.setdefault(target.endpoint, target)
    return list(unique.values())


@pytest.mark.parametrize("case", URI_CASES, ids=IDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pure_core(case: dict[str, Any], seed: int) -> None:
    check(drive(case, seed), case["expected"])


@pytest.mark.parametrize("case", URI_CASES, ids=IDS)
async def test_end_to_end_over_aiodns(case: dict[str, Any]) -> None:
    async with ZoneServer(zone_text(case)) as server:
        targets = await resolve_case(case, server.address, timeout=1.0, tries=1)
    check(targets, case["expected"])
    assert all(q.transport == "udp" for q in server.log)
