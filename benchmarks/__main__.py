"""``python -m benchmarks [--quick]``: run every scenario, print a table, write
RESULTS.md and a PNG plot (see benchmarks/README section in the project README)."""

from benchmarks._run import main

if __name__ == "__main__":
    raise SystemExit(main())
