"""Facts about the machine and software a run used, for RESULTS.md."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pycares


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    root = Path(__file__).resolve().parent.parent
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        return rev + (" (with uncommitted changes)" if dirty else "")
    return "?"


def facts() -> dict[str, str]:
    return {
        "CPU": cpu_model(),
        "cores": f"{os.cpu_count()} (this process may use {len(os.sched_getaffinity(0))})",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "asip_locate": f"{_version('asip-locate')} at git {git_revision()}",
        "aiodns": _version("aiodns"),
        "pycares": _version("pycares"),
        "c-ares": str(getattr(pycares, "ARES_VERSION", "?")),
        "dnspython": _version("dnspython"),
        "event loop": "asyncio default (no uvloop)",
    }
