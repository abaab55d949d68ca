"""``python -m benchmarks._memory COUNT``: scenario 5 in a fresh interpreter.

RSS growth only means something in a process whose heap earlier work has not already
grown, so the benchmark runs this in a child process and reads one JSON line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

from benchmarks.scenarios import memory

if __name__ == "__main__":
    result = asyncio.run(memory(int(sys.argv[1])))
    print(json.dumps(dataclasses.asdict(result)), flush=True)
