"""build_answer: owner checks, CNAME chains, caps and additional data (pure, no sockets)."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asip_locate import (
    Answer,
    IpStrategy,
    LocateOptions,
    Locator,
    NaptrRecord,
    Query,
    RType,
    SrvRecord,
    Status,
)
from asip_locate._aiodns import _decode, _plain_answer
from asip_locate._answers import RR, TYPE_CNAME, build_answer, cname_chain

A, AAAA, SRV, NAPTR = 1, 28, 33, 35
IN, CH = 1, 3


def a(name: str, address: str, ttl: int = 60, rclass: int = IN) -> RR:
    return RR(name, A, rclass, ttl, ipaddress.IPv4Address(address))


def cname(name: str, target: str, ttl: int = 60) -> RR:
    return RR(name, TYPE_CNAME, IN, ttl, target)


def srv(name: str, priority: int, target: str, weight: int = 0, port: int = 5060) -> RR:
    return RR(name, SRV, IN, 60, SrvRecord(priority, weight, port, target))


def naptr(name: str, order: int, pref: int, replacement: str) -> RR:
    return RR(name, NAPTR, IN, 60, NaptrRecord(order, pref, "s", "SIP+D2U", "", replacement))


Q_A = Query("host.example.test", RType.A)


def test_records_of_the_query_name_are_kept() -> None:
    built = build_answer(Q_A, [a("host.example.test", "192.0.2.1")], max_records=32)
    assert built.answer.status is Status.NOERROR
    assert built.answer.records == (ipaddress.IPv4Address("192.0.2.1"),)
    assert built.answer.ttl == 60
    assert built.dropped == 0


@pytest.mark.parametrize(
    "foreign",
    [
        a("other.example.test", "203.0.113.9"),  # another owner
        a("host.example.test.evil", "203.0.113.9"),  # a suffix is not the name
        a("host.example.test", "203.0.113.9", rclass=CH),  # another class
        RR("host.example.test", 16, IN, 60, None),  # another type (TXT)
        RR("host.example.test", A, IN, 60, SrvRecord(1, 1, 1, "x")),  # wrong shape
        RR("host.example.test", A, IN, 60, ipaddress.IPv6Address("::1")),  # wrong family
        cname("elsewhere.example.test", "evil.example.test"),  # a CNAME off the chain
        a("evil.example.test", "203.0.113.9"),  # ...and its "data"
    ],
)
def test_everything_else_is_dropped_and_counted(foreign: RR) -> None:
    built = build_answer(Q_A, [a("host.example.test", "192.0.2.1"), foreign], max_records=32)
    assert built.answer.records == (ipaddress.IPv4Address("192.0.2.1"),)
    assert built.dropped == 1


def test_only_foreign_records_are_nodata_with_the_count() -> None:
    built = build_answer(Q_A, [a("victim.example.test", "203.0.113.9")], max_records=32)
    assert built.answer.status is Status.NODATA
    assert built.answer.records == ()
    assert built.dropped == 1
    assert "1 record(s) dropped" in built.answer.detail


def test_cname_chain_is_followed_link_by_link() -> None:
    rrs = [
        cname("host.example.test", "b.example.test", ttl=30),
        cname("b.example.test", "c.example.test", ttl=300),
        a("c.example.test", "192.0.2.3"),
        cname("x.example.test", "c.example.test"),  # off the chain: not a link
    ]
    built = build_answer(Q_A, rrs, max_records=32)
    assert built.answer.records == (ipaddress.IPv4Address("192.0.2.3"),)
    assert built.answer.cnames == ("host.example.test", "b.example.test")
    assert built.answer.ttl == 30  # the minimum, CNAMEs included
    assert built.dropped == 1


def test_cname_loops_and_second_cnames_end_the_chain() -> None:
    rrs = [
        cname("host.example.test", "b.example.test"),
        cname("host.example.test", "evil.example.test"),  # a second CNAME: not a link
        cname("b.example.test", "host.example.test"),
        a("evil.example.test", "203.0.113.9"),
    ]
    chain = cname_chain("host.example.test", rrs)
    assert [link.data for link in chain] == ["b.example.test", "host.example.test"]
    built = build_answer(Q_A, rrs, max_records=32)
    assert built.answer.status is Status.NODATA
    assert built.dropped == 2


def test_ttl_with_the_top_bit_set_counts_as_zero() -> None:
    built = build_answer(Q_A, [a("host.example.test", "192.0.2.1", ttl=2**31)], max_records=32)
    assert built.answer.ttl == 0


def test_idna_owner_is_matched_on_the_wire_form() -> None:
    query = Query("bücher.example.test", RType.A)
    rrs = [a("xn--bcher-kva.example.test", "192.0.2.1")]
    assert build_answer(query, rrs, max_records=32).answer.status is Status.NODATA
    built = build_answer(query, rrs, max_records=32, owner="xn--bcher-kva.example.test")
    assert built.answer.records == (ipaddress.IPv4Address("192.0.2.1"),)


def test_naptr_is_sorted_before_the_cap() -> None:
    query = Query("example.test", RType.NAPTR)
    rrs = [naptr("example.test", 100 - i, 50, f"_sip._udp.n{i}.example.test") for i in range(50)]
    built = build_answer(query, rrs, max_records=3)
    orders = [r.order for r in built.answer.records]  # type: ignore[union-attr]
    assert orders == [51, 52, 53]  # the best ones, though last on the wire
    assert built.capped == 47


def test_srv_keeps_the_lowest_priorities_in_wire_order() -> None:
    query = Query("_sip._udp.example.test", RType.SRV)
    rrs = [srv(query.name, i % 3, f"h{i}.example.test") for i in range(1500)]
    built = build_answer(query, rrs, max_records=5)
    records = built.answer.records
    assert [r.target for r in records] == [f"h{i}.example.test" for i in range(0, 15, 3)]  # type: ignore[union-attr]
    assert built.capped == 1495


def test_addresses_are_capped() -> None:
    rrs = [a("host.example.test", f"192.0.2.{i}") for i in range(1, 100)]
    assert len(build_answer(Q_A, rrs, max_records=7).answer.records) == 7


def test_additional_addresses_of_srv_targets() -> None:
    query = Query("_sip._udp.example.test", RType.SRV)
    answer = [srv(query.name, 10, "a.example.test"), srv(query.name, 20, "b.example.test")]
    additional = [
        a("a.example.test", "192.0.2.1", ttl=100),
        a("a.example.test", "192.0.2.2", ttl=50),
        RR("a.example.test", AAAA, IN, 60, ipaddress.IPv6Address("2001:db8::1")),
        a("b.example.test", "192.0.2.3"),
        a("victim.example.test", "203.0.113.9"),  # not a target: dropped
        a("b.example.test", "203.0.113.9", rclass=CH),  # not IN: dropped
        cname("c.example.test", "a.example.test"),  # no CNAMEs there
        RR("ns.example.test", 2, IN, 60, None),  # NS and the like
    ]
    built = build_answer(query, answer, additional, max_records=32)
    extra = {x.query: x for x in built.answer.additional}
    assert list(extra) == [
        Query("a.example.test", RType.A),
        Query("a.example.test", RType.AAAA),
        Query("b.example.test", RType.A),
    ]
    first = extra[Query("a.example.test", RType.A)]
    assert first.status is Status.NOERROR
    assert first.ttl == 50
    assert [str(r) for r in first.records] == ["192.0.2.1", "192.0.2.2"]
    assert built.dropped_additional == 4


def test_additional_data_only_for_targets_that_survived_the_cap() -> None:
    query = Query("_sip._udp.example.test", RType.SRV)
    answer = [srv(query.name, 10, "a.example.test"), srv(query.name, 20, "b.example.test")]
    additional = [a("a.example.test", "192.0.2.1"), a("b.example.test", "192.0.2.2")]
    built = build_answer(query, answer, additional, max_records=1)
    assert [x.query.name for x in built.answer.additional] == ["a.example.test"]


def test_additional_section_is_ignored_for_other_types() -> None:
    built = build_answer(
        Q_A,
        [a("host.example.test", "192.0.2.1")],
        [a("x.example.test", "192.0.2.2")],
        max_records=3,
    )
    assert built.answer.additional == ()


# --- property: nothing owned off the chain is ever used -------------------------------

ON_CHAIN = ["example.test", "c1.example.test", "c2.example.test"]
OFF_CHAIN = ["victim.test", "example.test.evil", "c3.example.test", "x.example.test"]
NAMES = ON_CHAIN + OFF_CHAIN


@st.composite
def replies(draw: st.DrawFn) -> list[RR]:
    """A reply mixing legit records (owners on the chain, 127/8) and hostile ones."""
    rrs: list[RR] = []
    for i in range(draw(st.integers(0, 12))):
        owner = draw(st.sampled_from(NAMES))
        on = owner in ON_CHAIN
        kind = draw(st.sampled_from(["A", "SRV", "NAPTR", "CNAME"]))
        rclass = draw(st.sampled_from([IN, IN, IN, CH]))
        # Legit-looking data for on-chain owners, marked data for the others.
        host = "127.0.0." if on and rclass == IN else "198.51.100."
        if kind == "A":
            rrs.append(RR(owner, A, rclass, 60, ipaddress.IPv4Address(f"{host}{i + 1}")))
        elif kind == "SRV":
            rrs.append(RR(owner, SRV, rclass, 60, SrvRecord(0, 0, 5060, f"t{host}{i}.test")))
        elif kind == "NAPTR":
            rrs.append(naptr(owner, 10, 10, f"_sip._udp.{host}{i}.test")._replace(rclass=rclass))
        else:  # on-chain names alias only on-chain names: off-chain ones never join it
            target = draw(st.sampled_from(ON_CHAIN if on else NAMES))
            rrs.append(cname(owner, target)._replace(rclass=rclass))
    if draw(st.booleans()):  # the real chain, somewhere in the reply
        at = draw(st.integers(0, len(rrs)))
        rrs[at:at] = [
            cname("example.test", "c1.example.test"),
            cname("c1.example.test", "c2.example.test"),
        ]
    return rrs


def _chain_names(rrs: list[RR]) -> set[str]:
    """An independent walk of the chain (test oracle)."""
    names, name = {"example.test"}, "example.test"
    for _ in range(16):
        links = [r for r in rrs if r.rtype == TYPE_CNAME and r.rclass == IN and r.name == name]
        if not links:
            break
        name = str(links[0].data)
        if name in names:
            break
        names.add(name)
    return names


@settings(max_examples=300, deadline=None)
@given(rrs=replies(), rtype=st.sampled_from([RType.A, RType.SRV, RType.NAPTR]))
def test_no_record_owned_off_the_chain_is_used(rrs: list[RR], rtype: RType) -> None:
    query = Query("example.test", rtype)
    built = build_answer(query, rrs, rrs, max_records=32)
    chain = _chain_names(rrs)
    allowed = {
        r.data
        for r in rrs
        if r.name in chain and r.rclass == IN and r.rtype != TYPE_CNAME and r.data is not None
    }
    assert set(built.answer.records) <= allowed
    for record in built.answer.records:
        assert "198.51.100." not in str(record)
    assert set(built.answer.cnames) <= chain
    used = len(built.answer.records) + built.capped + len(built.answer.cnames)
    assert used + built.dropped == len(rrs)


class ReplyBackend:
    """An in-memory backend whose replies carry hostile records (drawn by hypothesis)."""

    def __init__(self, replies: dict[Query, list[RR]]) -> None:
        self.replies = replies

    async def query(self, query: Query) -> Answer:
        rrs = self.replies.get(query)
        if rrs is None:
            return Answer(query, Status.NXDOMAIN)
        return build_answer(query, rrs, rrs, max_records=32).answer

    async def aclose(self) -> None:
        pass


@st.composite
def worlds(draw: st.DrawFn) -> dict[Query, list[RR]]:
    """Replies for a NAPTR -> SRV -> A locate, each with hostile records mixed in."""

    def hostile(owner_choices: list[str]) -> list[RR]:
        out = []
        for i in range(draw(st.integers(0, 4))):
            owner = draw(st.sampled_from(owner_choices))
            kind = draw(st.sampled_from([A, SRV, NAPTR]))
            if kind == A:
                out.append(a(owner, f"198.51.100.{i + 1}"))
            elif kind == SRV:
                out.append(srv(owner, 0, "evil.test"))
            else:
                out.append(naptr(owner, 1, 1, "_sip._udp.evil.test"))
            if draw(st.booleans()):
                out[-1] = out[-1]._replace(rclass=CH, name=draw(st.sampled_from(ON_CHAIN)))
        return out

    foreign = ["victim.test", "evil.test", "_sip._udp.evil.test", "x.example.test"]
    world = {
        Query("example.test", RType.NAPTR): [
            naptr("example.test", 10, 10, "_sip._udp.example.test")
        ],
        Query("_sip._udp.example.test", RType.SRV): [
            srv("_sip._udp.example.test", 10, "h.example.test")
        ],
        Query("h.example.test", RType.A): [a("h.example.test", "127.0.0.7")],
        Query("evil.test", RType.A): [a("evil.test", "198.51.100.200")],  # never asked
    }
    for rrs in world.values():
        rrs += hostile(foreign)
        draw(st.randoms()).shuffle(rrs)
    return world


@settings(max_examples=60, deadline=None)
@given(world=worlds())
async def test_no_target_is_built_from_an_off_chain_record(world: dict[Query, list[RR]]) -> None:
    options = LocateOptions(ip_strategy=IpStrategy.IPV4_ONLY, cache_size=0)
    async with Locator(options, backend=ReplyBackend(world)) as locator:
        targets = await locator.resolve("sip:example.test")
    assert [str(t) for t in targets] == ["udp 127.0.0.7:5060 (h.example.test)"]


# --- the c-ares backend's fast path for the usual reply ------------------------------


def _pycares_record(kind: int, name: object, rclass: int, ttl: int, data: object) -> object:
    """A stand-in for a pycares DNSRecord (the attributes the backend reads)."""
    return SimpleNamespace(type=kind, name=name, record_class=rclass, ttl=ttl, data=data)


def _rdata_for(kind: int, good: bool, n: int) -> object:
    if kind == A:
        return SimpleNamespace(addr=f"192.0.2.{n}" if good else "192.0.2")
    if kind == AAAA:
        return SimpleNamespace(addr=f"2001:db8::{n}" if good else "2001:db8:::1")
    if kind == SRV:
        return SimpleNamespace(priority=n % 3, weight=n, port=5060, target=f"H{n}.Example.test.")
    if kind == NAPTR:
        return SimpleNamespace(
            order=n % 2, preference=n, flags="s", service="SIP+D2U", regexp="",
            replacement="_sip._udp.example.test.",
        )  # fmt: skip
    return SimpleNamespace(cname="other.example.test." if good else None)


# (type, owner, class, TTL, well formed): class IN and well-formed data weighted 3:1,
# so that many examples are replies the fast path takes.
_RECORD = st.tuples(
    st.sampled_from([A, AAAA, SRV, NAPTR, TYPE_CNAME, 16]),
    st.sampled_from(["example.test", "Example.TEST.", "other.example.test", b"\xff"]),
    st.sampled_from([IN, IN, IN, CH]),
    st.sampled_from([0, 60, 3600, -1, 2**31]),
    st.sampled_from([True, True, True, False]),
)


@settings(max_examples=400, deadline=None)
@given(
    rtype=st.sampled_from([RType.A, RType.AAAA, RType.SRV, RType.NAPTR]),
    records=st.lists(_RECORD, max_size=6),
    max_records=st.integers(1, 5),
)
def test_the_backends_fast_path_gives_what_build_answer_gives(
    rtype: RType, records: list[tuple[int, object, int, int, bool]], max_records: int
) -> None:
    query = Query("example.test", rtype)
    raw = [
        _pycares_record(kind, name, rclass, ttl, _rdata_for(kind, good, n))
        for n, (kind, name, rclass, ttl, good) in enumerate(records, 1)
    ]
    fast = _plain_answer(query, query.name, raw, max_records)  # type: ignore[arg-type]
    built = build_answer(query, [_decode(rr) for rr in raw], max_records=max_records)  # type: ignore[arg-type]
    if fast is not None:
        assert fast == built.answer
        assert (built.dropped, built.capped) == (0, 0)
    elif built.answer.status is Status.NOERROR:
        # Left to build_answer only when it had something to drop, cap or follow.
        assert built.dropped or built.capped or built.answer.cnames


def test_the_usual_reply_takes_the_fast_path() -> None:
    raw = [_pycares_record(A, "Example.TEST.", IN, 60 + n, _rdata_for(A, True, n)) for n in (1, 2)]
    answer = _plain_answer(Query("example.test", RType.A), "example.test", raw, 32)  # type: ignore[arg-type]
    assert answer == Answer(
        Query("example.test", RType.A),
        Status.NOERROR,
        (ipaddress.IPv4Address("192.0.2.1"), ipaddress.IPv4Address("192.0.2.2")),
        61,
    )
