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

    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    fig.suptitle(
        "asip_locate benchmarks"
        + (" (--quick)" if results.quick else "")
        + f" - server: {results.server.split(' (')[0]}",
        fontsize=13,
    )

    # (a) cold path distributions
    ax = axes[0][0]
    modes = ["library", "library sequential", "raw aiodns, 3 waves"]
    colors = {
        "library": "tab:blue",
        "library sequential": "tab:red",
        "raw aiodns, 3 waves": "tab:gray",
    }
    latencies = sorted({r.latency for r in results.cold})
    positions, data, colours = [], [], []
    for i, latency in enumerate(latencies):
        for j, mode in enumerate(modes):
            run = next((r for r in results.cold if r.latency == latency and r.mode == mode), None)
            if run and run.complete:
                positions.append(i * 4 + j)
                data.append([v * 1000 for v in run.complete])
                colours.append(colors[mode])
        ax.hlines(
            max(3 * latency * 1000, 0.05),
            i * 4 - 0.5,
            i * 4 + 2.5,
            colors="green",
            linestyles="dashed",
        )
    if data:
        parts = ax.boxplot(
            data, positions=positions, widths=0.7, patch_artist=True, showfliers=True
        )
        for patch, colour in zip(parts["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.6)
    ax.set_yscale("log")
    ax.set_xticks([i * 4 + 1 for i in range(len(latencies))])
    ax.set_xticklabels([f"L = {latency * 1000:g} ms" for latency in latencies])
    ax.set_ylabel("time to complete list (ms, log)")
    ax.set_title("1. Cold locate: complete-list time per injected latency")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[m], alpha=0.6) for m in modes]
    handles.append(plt.Line2D([0], [0], color="green", linestyle="dashed"))
    ax.legend(handles, [*modes, "floor 3L"], fontsize=8, loc="upper left")
    ax.grid(True, which="both", axis="y", alpha=0.3)

    styles = {
        "asip_locate": ("tab:blue", "o"),
        "raw aiodns": ("tab:gray", "s"),
        "dnspython": ("tab:orange", "^"),
    }

    # (b) throughput
    ax = axes[0][1]
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

    # (c) latency vs concurrency
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

    # (d) CPU per query
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

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
