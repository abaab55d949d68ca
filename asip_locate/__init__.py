"""asip_locate: RFC 3263 SIP server location for asyncio, over c-ares.

async with Locator() as locator:
    async for target in locator.locate("sip:alice@example.com"):
        ...  # send; on a timeout, transport error or 503 go on to the next target
"""

from asip_locate._aiodns import AiodnsBackend
from asip_locate._backend import CachedLookup, DnsBackend, FutureLookup, SharedLookup
from asip_locate._cache import CacheInfo, CachingBackend
from asip_locate._errors import (
    InvalidUriError,
    InvalidViaError,
    LocateError,
    LocateTimeoutError,
    NoTargetsError,
    UnsupportedTransportError,
)
from asip_locate._health import EndpointHealth, HealthStore
from asip_locate._locator import Locator
from asip_locate._model import (
    Answer,
    Discarded,
    Endpoint,
    FailureReason,
    NaptrRecord,
    Query,
    RType,
    SrvRecord,
    Status,
    Target,
    Transport,
)
from asip_locate._observe import (
    AnswerReceived,
    AnswerSource,
    Event,
    FailureReported,
    LocateDone,
    LocateStarted,
    Observer,
    QuerySent,
    SuccessReported,
    TargetYielded,
    fan_out,
    guard_observer,
)
from asip_locate._options import IpStrategy, LocateOptions, SipsPolicy, parse_nameserver
from asip_locate._ping import Attempt, Outcome, PingOptions, ping, send_options, tls_context
from asip_locate._policy import global_only, is_special_destination
from asip_locate._sip import parse_retry_after
from asip_locate._stream import TargetStream
from asip_locate._uri import SipUri, parse_uri
from asip_locate._via import Via, parse_via

__version__ = "0.1.0"

__all__ = [
    "AiodnsBackend",
    "Answer",
    "AnswerReceived",
    "AnswerSource",
    "Attempt",
    "CacheInfo",
    "CachedLookup",
    "CachingBackend",
    "Discarded",
    "DnsBackend",
    "Endpoint",
    "EndpointHealth",
    "Event",
    "FailureReason",
    "FailureReported",
    "FutureLookup",
    "HealthStore",
    "InvalidUriError",
    "InvalidViaError",
    "IpStrategy",
    "LocateDone",
    "LocateError",
    "LocateOptions",
    "LocateStarted",
    "LocateTimeoutError",
    "Locator",
    "NaptrRecord",
    "NoTargetsError",
    "Observer",
    "Outcome",
    "PingOptions",
    "Query",
    "QuerySent",
    "RType",
    "SharedLookup",
    "SipUri",
    "SipsPolicy",
    "SrvRecord",
    "Status",
    "SuccessReported",
    "Target",
    "TargetStream",
    "TargetYielded",
    "Transport",
    "UnsupportedTransportError",
    "Via",
    "__version__",
    "fan_out",
    "global_only",
    "guard_observer",
    "is_special_destination",
    "parse_nameserver",
    "parse_retry_after",
    "parse_uri",
    "parse_via",
    "ping",
    "send_options",
    "tls_context",
]
