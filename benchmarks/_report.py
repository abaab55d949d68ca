"""RESULTS.md and the PNG plot."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks._machine import facts

if TYPE_CHECKING:
    from benchmarks._run import Results


def write_report(
    results: Results,
    out: Path,
    *,
    command: str,
    started: datetime.datetime,
    elapsed: float,
    pinned: str,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    stem = "RESULTS-quick" if results.quick else "RESULTS"
    png = out / ("results-quick.png" if results.quick else "results.png")
    md = out / f"{stem}.md"
    lines = [
        "# asip_locate benchmark results"
        + (" (--quick: small counts, rough figures)" if results.quick else ""),
        "",
        f"- Command: `{command}` (from the repository root; `tox -e bench` runs the same)",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC, took {elapsed:.0f} s",
    ]
    lines += [f"- {key}: {value}" for key, value in facts().items()]
    lines.append(f"- DNS server: {results.server}")
    lines += [f"- Server note: {note}" for note in results.server_notes]
    if pinned:
        lines.append(f"- CPU placement: {pinned}")
    lines += [
        "- Each figure comes from this one run (one sample set per row, no best-of); all "
        "traffic on 127.0.0.0/8.",
        "",
        "## Goals",
        "",
        "| goal | measured | ratio | verdict |",
        "|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(goal) + " |" for goal in results.goals]
    lines.append("")
    lines += [section.render() for section in results.sections]
    lines.append(f"![plot]({png.name})")
    md.write_text("\n".join(lines) + "\n")
    plot(results, png)
    return [md, png]


def plot(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    fig.suptitle(
        "asip_locate benchmarks"
        + (" (--quick)" if results.quick else "")
        + f" - server: {results.server.split(' (')[0]}",
        fontsize=13,
    )

    # (a), (b) cold path: ECDFs of first-target and complete-list times
    modes = {"library": "solid", "library sequential": "dotted", "raw aiodns, 3 waves": "dashed"}
    lat_colours = ["tab:blue", "tab:orange", "tab:red", "tab:purple"]
    latencies = sorted({r.latency for r in results.cold})
    for ax, attr, title in (
        (axes[0][0], "first", "1. Cold locate: time to first target"),
        (axes[0][1], "complete", "1. Cold locate: time to complete list"),
    ):
        for i, latency in enumerate(latencies):
            colour = lat_colours[i % len(lat_colours)]
            for mode, style in modes.items():
                run = next(
                    (r for r in results.cold if r.latency == latency and r.mode == mode), None
                )
                values = sorted(v * 1000 for v in getattr(run, attr)) if run else []
                if values:
                    ys = [(k + 1) / len(values) for k in range(len(values))]
                    ax.step(values, ys, where="post", color=colour, linestyle=style,
                            label=f"L={latency * 1000:g} ms, {mode}")  # fmt: skip
            if latency:
                ax.axvline(3 * latency * 1000, color=colour, linewidth=3, alpha=0.25)
        ax.set_xscale("log")
        ax.set_xlabel("ms (log); wide pale lines: floor 3L")
        ax.set_ylabel("fraction of runs")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")

    styles = {
        "asip_locate": ("tab:blue", "o"),
        "asip_locate, cache off": ("tab:cyan", "D"),
        "raw aiodns": ("tab:gray", "s"),
        "dnspython": ("tab:orange", "^"),
    }

    # (c) throughput
    ax = axes[0][2]
    for client, (colour, marker) in styles.items():
        rows = [t for t in results.throughput if t.client == client]
        if rows:
            ax.plot(
                [t.concurrency for t in rows],
                [t.load.rate for t in rows],
                marker=marker,
                color=colour,
                label=client,
            )
    ax.set_xscale("log")
    ax.set_xlabel("locates in flight (log)")
    ax.set_ylabel("locates/s (16 queries each)")
    ax.set_title("2. Throughput vs concurrency")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)

    # (d) latency vs concurrency
    ax = axes[1][0]
    for client, (colour, marker) in styles.items():
        rows = [t for t in results.throughput if t.client == client]
        if rows:
            xs = [t.concurrency for t in rows]
            ax.plot(
                xs,
                [t.load.p(50) * 1000 for t in rows],
                marker=marker,
                color=colour,
                label=f"{client} p50",
            )
            ax.plot(
                xs,
                [t.load.p(99) * 1000 for t in rows],
                marker=marker,
                color=colour,
                linestyle="dotted",
                label=f"{client} p99",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("locates in flight (log)")
    ax.set_ylabel("latency per locate (ms, log)")
    ax.set_title("2. Latency vs concurrency")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)

    # (e) CPU per query
    ax = axes[1][1]
    clients = [c for c in styles if any(t.client == c for t in results.throughput)]
    concurrencies = sorted({t.concurrency for t in results.throughput})
    width = 0.8 / max(1, len(clients))
    for k, client in enumerate(clients):
        values = []
        for c in concurrencies:
            row = next(
                (t for t in results.throughput if t.client == client and t.concurrency == c), None
            )
            values.append(row.cpu_per_query * 1e6 if row else math.nan)
        xs = [i + (k - (len(clients) - 1) / 2) * width for i in range(len(concurrencies))]
        ax.bar(xs, values, width=width, color=styles[client][0], label=client)
    ax.set_xticks(range(len(concurrencies)))
    ax.set_xticklabels([str(c) for c in concurrencies])
    ax.set_xlabel("locates in flight")
    ax.set_ylabel("client CPU per DNS query (µs)")
    ax.set_title("2. CPU per query (lower is better)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)

    # (f) degraded DNS
    ax = axes[1][2]
    for result, colour in zip(results.degraded, ["tab:red", "tab:green"], strict=False):
        values = sorted(v * 1000 for v in result.done)
        if values:
            ys = [(k + 1) / len(values) for k in range(len(values))]
            ax.step(values, ys, where="post", color=colour, label=f"{result.case}: all done")
        firsts = sorted(v * 1000 for v in result.first)
        if firsts:
            ys = [(k + 1) / len(result.done) for k in range(len(firsts))]
            ax.step(firsts, ys, where="post", color=colour, linestyle="dotted",
                    label=f"{result.case}: first target")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("ms per locate (log)")
    ax.set_ylabel("fraction of locates")
    ax.set_title("5. Degraded DNS")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
