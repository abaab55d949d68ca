"""LocateOptions validates every field at construction (issue 11, item 4).

mypy checks this file too: the string forms below must type-check.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asip_locate import (
    AiodnsBackend,
    IpStrategy,
    LocateOptions,
    SipsPolicy,
    Transport,
    parse_nameserver,
)
from asip_locate._options import MAX_SECONDS


def test_string_forms_type_check_and_are_normalized() -> None:
    options = LocateOptions(ip_strategy="ipv4_only", sips_policy="srv", transports=["TCP", "tls"])
    strategy: IpStrategy = options.ip_strategy  # typed as the enum for existing code
    policy: SipsPolicy = options.sips_policy
    transports: tuple[Transport, ...] = options.transports
    assert strategy is IpStrategy.IPV4_ONLY
    assert not options.ip_strategy.wants_ipv6
    assert policy is SipsPolicy.SRV
    assert transports == options.supported == (Transport.TCP, Transport.TLS)
    upper = LocateOptions(ip_strategy="PREFER_IPV4")  # type: ignore[arg-type]  # run time: ok
    assert upper.ip_strategy is IpStrategy.PREFER_IPV4
    assert LocateOptions(transports="udp").transports == (Transport.UDP,)
    assert LocateOptions(nameservers=("127.0.0.1:5353",)).nameservers == ("127.0.0.1:5353",)
    assert LocateOptions(nameservers=[" ::1 "]).nameservers == ("::1",)
    assert dataclasses.replace(options, timeout=3.0).ip_strategy is IpStrategy.IPV4_ONLY


def test_the_type_checking_constructor_matches_the_fields() -> None:
    # LocateOptions declares its constructor for mypy under TYPE_CHECKING; it must
    # list exactly the dataclass fields, in order, keyword-only with defaults.
    source = inspect.getsource(LocateOptions)
    tree = ast.parse(source)
    (init,) = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "__init__"
    ]
    names = [arg.arg for arg in init.args.kwonlyargs]
    assert names == [f.name for f in dataclasses.fields(LocateOptions)]
    assert [arg.arg for arg in init.args.args] == ["self"]
    assert all(default is not None for default in init.args.kw_defaults)


BAD: list[tuple[str, Any, str]] = [
    ("timeout", math.inf, "inf"),
    ("timeout", 1e300, "1e+300"),
    ("timeout", math.nan, "nan"),
    ("timeout", -1.0, "-1.0"),
    ("timeout", 0, "0"),
    ("timeout", 0.0001, "0.0001"),
    ("timeout", "2", "'2'"),
    ("timeout", True, "True"),
    ("deadline", math.inf, "inf"),
    ("deadline", 0.0, "0.0"),
    ("deadline", MAX_SECONDS + 1, "86401"),
    ("tries", 0, "0"),
    ("tries", 2.0, "2.0"),
    ("tries", 10**6, "1000000"),
    ("max_concurrency", 0, "0"),
    ("max_queries", -5, "-5"),
    ("max_records", 0, "0"),
    ("max_records", 70_000, "70000"),
    ("cache_size", -1, "-1"),
    ("health_size", 1.5, "1.5"),
    ("min_ttl", -1, "-1"),
    ("max_ttl", 2**31, "2147483648"),
    ("negative_ttl", math.inf, "inf"),
    ("stale_ttl", math.nan, "nan"),
    ("stale_ttl", -1, "-1"),
    ("failure_hold", math.inf, "inf"),
    ("sticky_for", -0.5, "-0.5"),
    ("refresh_ahead", 1.0, "1.0"),
    ("refresh_ahead", math.nan, "nan"),
    ("use_naptr", "no", "'no'"),
    ("stay_in_domain", 1, "1"),
    ("cross_naptr_orders", None, "None"),
    ("seed", 1.5, "1.5"),
    ("seed", True, "True"),
    ("ip_strategy", "ipv4", "'ipv4'"),
    ("ip_strategy", 4, "4"),
    ("sips_policy", "dns", "'dns'"),
    ("transports", ["udp", "carrier-pigeon"], "'carrier-pigeon'"),
    ("transports", [], "at least one"),
    ("transports", 5, "5"),
    ("address_filter", "global", "'global'"),
    ("nameservers", ["ns.example.com"], "'ns.example.com'"),
    ("nameservers", ["127.0.0.1:0"], "'127.0.0.1:0'"),
    ("nameservers", ["127.0.0.1:65536"], "65536"),
    ("nameservers", ["[fe80::1%eth0]:53"], "zone identifiers"),
    ("nameservers", ["fe80::1%25eth0"], "zone identifiers"),
    ("nameservers", ["1.1.1.1,8.8.8.8"], "'1.1.1.1,8.8.8.8'"),
    ("nameservers", ["[1.1.1.1]:53"], "not an IPv6 address"),
    ("nameservers", [53], "53"),
    ("nameservers", None, "None"),
]


@pytest.mark.parametrize(("name", "value", "shown"), BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_bad_values_raise_value_error_naming_field_and_value(
    name: str, value: Any, shown: str
) -> None:
    with pytest.raises(ValueError) as info:
        LocateOptions(**{name: value})
    assert f"LocateOptions.{name}" in str(info.value)
    assert shown in str(info.value)


def test_min_ttl_above_max_ttl() -> None:
    with pytest.raises(ValueError, match="min_ttl <= max_ttl, not 10 > 5"):
        LocateOptions(min_ttl=10, max_ttl=5)


def test_defaults_and_edges_are_accepted() -> None:
    LocateOptions()
    LocateOptions(timeout=0.001, deadline=MAX_SECONDS, tries=100, max_records=65_535)
    LocateOptions(cache_size=0, health_size=0, failure_hold=0, stale_ttl=0, seed=-3)
    LocateOptions(refresh_ahead=0.999, min_ttl=2**31 - 1, max_ttl=2**31 - 1)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", None)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:53", ("::1", 53)),
        ("[2001:DB8::1]", ("2001:db8::1", None)),
        ("2001:db8::1", ("2001:db8::1", None)),  # bare IPv6: no port
        (" 192.0.2.1:65535 ", ("192.0.2.1", 65535)),
    ],
)
def test_parse_nameserver(text: str, parsed: tuple[str, int | None]) -> None:
    assert parse_nameserver(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["", "ns.test", "ns.test:53", "1.2.3.4:", "1.2.3.4:x", "1.2.3.4:00000053", "[::1]x",
     "[::1]:0", "[::1", "1.2.3.4 :53", "fe80::1%eth0", "1.2.3.4;53", "::1:53:x"],
)  # fmt: skip
def test_parse_nameserver_refuses(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_nameserver(text)
    assert repr(text) in str(info.value)


@given(st.text(max_size=30))
def test_parse_nameserver_raises_only_value_error(text: str) -> None:
    try:
        host, port = parse_nameserver(text)
    except ValueError:
        return
    assert "%" not in host
    assert host == host.lower()
    assert port is None or 1 <= port <= 65535


@given(st.floats() | st.integers(-(2**64), 2**64))
def test_timeouts_are_finite_and_bounded_or_refused(value: float) -> None:
    if not (math.isfinite(value) and 0.001 <= value <= MAX_SECONDS):
        with pytest.raises(ValueError, match=r"LocateOptions\.(timeout|deadline)"):
            LocateOptions(timeout=value, deadline=value)
        return
    options = LocateOptions(timeout=value, deadline=value)
    assert 0.001 <= options.timeout <= MAX_SECONDS
    assert math.isfinite(options.deadline)


@pytest.mark.parametrize(
    "nameserver", ["127.0.0.1", "127.0.0.1:5353", "[::1]:5353", "::1", "[::1]", " 127.0.0.1 "]
)
async def test_every_accepted_nameserver_form_is_accepted_by_c_ares(nameserver: str) -> None:
    options = LocateOptions(nameservers=[nameserver], timeout=MAX_SECONDS, tries=100)
    backend = AiodnsBackend(options.nameservers, timeout=options.timeout, tries=options.tries)
    await backend.aclose()  # no pycares.AresError, no OverflowError
