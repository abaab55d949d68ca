"""Loading and checking the shared RFC 3263 conformance vectors (schema: README there)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from asip_locate import IpStrategy, LocateOptions, Locator, NoTargetsError, Target

PATH = Path(__file__).with_name("rfc3263-vectors.json")
CASES: list[dict[str, Any]] = json.loads(PATH.read_text())
URI_CASES = [c for c in CASES if "uri" in c["input"]]
VIA_CASES = [c for c in CASES if "via" in c["input"]]

_STRATEGY = {
    ("ipv4", "ipv6"): IpStrategy.PREFER_IPV6,
    ("ipv6", "ipv4"): IpStrategy.PREFER_IPV6,
    ("ipv4",): IpStrategy.IPV4_ONLY,
    ("ipv6",): IpStrategy.IPV6_ONLY,
}


def zone_text(case: dict[str, Any]) -> str:
    return "\n".join(case["zone"]) + "\n"


def options(case: dict[str, Any], **extra: Any) -> LocateOptions:
    client = case["client"]
    return LocateOptions(
        transports=client["transports"],
        ip_strategy=_STRATEGY[tuple(client["families"])],
        use_naptr=client["naptr"],
        **extra,
    )


Key = tuple[str, str, int]


def _key(leaf: dict[str, Any]) -> Key:
    return (leaf["transport"], ipaddress.ip_address(leaf["ip"]).compressed, leaf["port"])


def _expansions(node: dict[str, Any]) -> Iterator[list[Key]]:
    if "any_order" in node:
        yield from _perms(node["any_order"])
    else:
        yield [_key(node)]


def _perms(children: list[dict[str, Any]]) -> Iterator[list[Key]]:
    if not children:
        yield []
        return
    for i, child in enumerate(children):
        for head in _expansions(child):
            for rest in _perms(children[:i] + children[i + 1 :]):
                yield head + rest


def _seq(seq: list[dict[str, Any]]) -> Iterator[list[Key]]:
    if not seq:
        yield []
        return
    for head in _expansions(seq[0]):
        for rest in _seq(seq[1:]):
            yield head + rest


def _match(keys: list[Key], alt: dict[str, Any]) -> bool:
    if alt["outcome"] == "none":
        return not keys
    for expected in _seq(alt["sequence"]):
        if keys == expected if alt["tail"] == "closed" else keys[: len(expected)] == expected:
            return True
    return False


def check(targets: list[Target], expected: dict[str, Any]) -> None:
    """Assert that ``targets`` satisfies a vector's ``expected`` block."""
    keys = [(t.transport.value, t.address.compressed, t.port) for t in targets]
    for target in targets:
        for pattern in expected.get("forbidden", []):
            clash = all(
                ipaddress.ip_address(v) == target.address if k == "ip" else getattr(target, k) == v
                for k, v in pattern.items()
            )
            assert not clash, f"{target} matches forbidden {pattern}"
        if target.transport.is_secure and "tls_identity" in expected:
            assert target.tls_name == expected["tls_identity"], target
    alternatives = expected.get("alternatives", [expected])
    assert any(_match(keys, alt) for alt in alternatives), f"got {keys}"


async def resolve_case(case: dict[str, Any], nameserver: str, **extra: Any) -> list[Target]:
    """Resolve a URI case through a real Locator asking ``nameserver``; [] if none."""
    async with Locator(options(case, nameservers=(nameserver,), **extra)) as locator:
        try:
            return await locator.resolve(
                case["input"]["uri"], as_sips=case["client"]["resolve_as_sips"]
            )
        except NoTargetsError:
            return []
