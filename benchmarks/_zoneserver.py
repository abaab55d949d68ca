"""Fallback DNS server: asip_locate.testing.ZoneServer in a process of its own.

``python -m benchmarks._zoneserver ZONEFILE HOST`` prints the port once bound and
serves until SIGTERM (or one hour).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from asip_locate.testing import ZoneServer


async def _main(text: str, host: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with ZoneServer(text, host=host) as server:
        print(server.port, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=3600)


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1]).read_text(), sys.argv[2]))
