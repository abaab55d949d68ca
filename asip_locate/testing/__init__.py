"""Test kit: a zone model, an in-memory backend and a real DNS server on loopback.

It needs dnslib, which the ``testing`` extra installs: ``pip install 'asip-locate[testing]'``.
"""

INSTALL_HINT = "pip install 'asip-locate[testing]'"

try:
    from asip_locate.testing._clock import FakeClock
    from asip_locate.testing._drive import Run, drive
    from asip_locate.testing._fake import FakeBackend
    from asip_locate.testing._gated import GatedBackend
    from asip_locate.testing._server import Fault, LoggedQuery, ZoneServer
    from asip_locate.testing._zone import Zone
except ModuleNotFoundError as exc:
    if exc.name != "dnslib":
        raise
    raise ModuleNotFoundError(
        f"asip_locate.testing needs dnslib, which is not installed: {INSTALL_HINT}", name="dnslib"
    ) from exc

__all__ = [
    "FakeBackend",
    "FakeClock",
    "Fault",
    "GatedBackend",
    "LoggedQuery",
    "Run",
    "Zone",
    "ZoneServer",
    "drive",
]
