"""Test kit: a zone model, an in-memory backend and a real DNS server on loopback."""

from ._fake import FakeBackend
from ._server import Fault, LoggedQuery, ZoneServer
from ._zone import Zone

__all__ = ["FakeBackend", "Fault", "LoggedQuery", "Zone", "ZoneServer"]
