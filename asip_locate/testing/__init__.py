"""Test kit: a zone model, an in-memory backend, a planner driver, a DNS server."""

from asip_locate.testing._clock import FakeClock
from asip_locate.testing._drive import Run, drive
from asip_locate.testing._fake import FakeBackend
from asip_locate.testing._server import Fault, LoggedQuery, ZoneServer
from asip_locate.testing._zone import Zone

__all__ = [
    "FakeBackend",
    "FakeClock",
    "Fault",
    "LoggedQuery",
    "Run",
    "Zone",
    "ZoneServer",
    "drive",
]
