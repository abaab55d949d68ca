"""Run a script from examples/ as a process, on a copy of the demo zone (test helper)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def demo_zone(tmp_path: Path, port: int) -> Path:
    """examples/demo.zone with every SIP port 5060 changed to ``port``."""
    zone = (ROOT / "examples" / "demo.zone").read_text().replace(" 5060 ", f" {port} ")
    path = tmp_path / "demo.zone"
    path.write_text(zone)
    return path


async def run_example(name: str, *args: str) -> tuple[int, str, str]:
    """Run ``examples/<name>`` with ``args`` (30 s at most); returns (status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / name),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        async with asyncio.timeout(30):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
