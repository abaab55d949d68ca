"""AiodnsBackend: DNS through c-ares (aiodns ``query_dns``), mapped to Answers."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

import aiodns
import pycares
from aiodns.error import DNSError

from asip_locate._model import (
    Answer,
    NaptrRecord,
    Query,
    Record,
    RType,
    SrvRecord,
    Status,
    normalize_name,
)

log = logging.getLogger("asip_locate")

_STATUS = {
    pycares.errno.ARES_ENOTFOUND: Status.NXDOMAIN,
    pycares.errno.ARES_ENODATA: Status.NODATA,
    pycares.errno.ARES_ESERVFAIL: Status.SERVFAIL,
    pycares.errno.ARES_EREFUSED: Status.REFUSED,
    pycares.errno.ARES_ECONNREFUSED: Status.REFUSED,
    pycares.errno.ARES_ETIMEOUT: Status.TIMEOUT,
}
_TYPE_CODE = {RType.NAPTR: 35, RType.SRV: 33, RType.A: 1, RType.AAAA: 28}
_CNAME = 5
RECEIVE_BUFFER = 4 << 20
"""SO_RCVBUF asked for on c-ares' UDP sockets (the kernel caps it at net.core.rmem_max)."""
# RFC 2181 §8: a TTL with the top bit set is treated as 0.
_MAX_TTL = 2**31 - 1


class AiodnsBackend:
    """The default backend: one aiodns resolver (one c-ares channel).

    Args:
        nameservers: "ip", "ip:port" or "[ipv6]:port"; empty uses the system's.
        timeout: Seconds c-ares waits for one try.
        tries: Tries per nameserver.

    c-ares keeps its own query cache (1.23+, on by default, not switchable through
    pycares 5): a repeated question may be answered without reaching the server.
    """

    def __init__(
        self, nameservers: Sequence[str] = (), *, timeout: float = 2.0, tries: int = 2
    ) -> None:
        self._resolver = aiodns.DNSResolver(
            nameservers=list(nameservers) or None,
            timeout=timeout,
            tries=tries,
            # Hundreds of locates in flight put thousands of queries on this one
            # channel; the kernel's default UDP receive buffer (~208 KiB) then drops
            # replies, which come back only as c-ares timeouts and retries.
            socket_receive_buffer_size=RECEIVE_BUFFER,
        )

    async def query(self, query: Query) -> Answer:
        """Ask c-ares one question; every DNS outcome becomes an Answer."""
        try:
            result = await self._resolver.query_dns(query.name, query.rtype.value)
        except (UnicodeError, RuntimeError) as exc:
            # pycares IDNA-encodes non-ASCII names and raises on ones it cannot encode.
            if query.name.isascii():
                raise
            return Answer(query, Status.ERROR, detail=f"bad name: {exc}")
        except DNSError as exc:
            code = exc.args[0] if exc.args else None
            status = _STATUS.get(code, Status.ERROR)
            detail = "" if status.is_negative else str(exc.args[-1] if exc.args else exc)
            return Answer(query, status, detail=detail)
        return _answer(query, result.answer)

    async def aclose(self) -> None:
        """Close the c-ares channel."""
        await self._resolver.close()


def _answer(query: Query, rrs: Sequence[pycares.DNSRecord]) -> Answer:
    wanted = _TYPE_CODE[query.rtype]
    records: list[Record] = []
    cnames: list[str] = []
    ttls: list[int] = []
    for rr in rrs:
        if rr.type == _CNAME:
            cnames.append(normalize_name(rr.name))
        elif rr.type != wanted:
            log.debug("%s: ignoring a record of type %s", query, rr.type)
            continue
        else:
            record = _record(query.rtype, rr.data)
            if record is None:
                continue
            records.append(record)
        ttls.append(0 if rr.ttl > _MAX_TTL else rr.ttl)
    if not records:
        return Answer(query, Status.NODATA, cnames=tuple(cnames))
    return Answer(query, Status.NOERROR, tuple(records), min(ttls), tuple(cnames))


def _record(rtype: RType, data: object) -> Record | None:
    try:
        if rtype is RType.NAPTR:
            assert isinstance(data, pycares.NAPTRRecordData)
            return NaptrRecord(
                data.order,
                data.preference,
                data.flags,
                data.service,
                data.regexp,
                normalize_name(data.replacement),
            )
        if rtype is RType.SRV:
            assert isinstance(data, pycares.SRVRecordData)
            return SrvRecord(data.priority, data.weight, data.port, normalize_name(data.target))
        assert isinstance(data, pycares.ARecordData | pycares.AAAARecordData)
        return ipaddress.ip_address(data.addr)
    except (AssertionError, ValueError, TypeError) as exc:
        log.info("ignoring a malformed %s record: %s", rtype, exc)
        return None
