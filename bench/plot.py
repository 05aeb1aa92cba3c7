"""p99 delivery latency against offered rate, one line per target, from results.jsonl.

    python bench/plot.py [--results bench/results.jsonl] [--scenario fanout]
                         [--connections 100] [--out bench/p99_vs_rate.png]

Uses the newest run of each target (the lines of one loadgen process share a
run, so an older run never mixes into a newer curve).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt  # noqa: E402

BENCH = Path(__file__).resolve().parent
COLORS = {"peer-seed": "tab:red", "peer-tuned": "tab:orange", "talkroom": "tab:blue"}


def extend_run(run: list[dict[str, object]], row: dict[str, object]) -> list[dict[str, object]]:
    """A run is a streak of rising rates; a retried step (attempt > 1) replaces the try
    before it, and a rate that goes down otherwise starts a new run."""
    if run and int(row.get("attempt", 1)) > 1 and row["offered_rate"] == run[-1]["offered_rate"]:
        return [*run[:-1], row]
    if run and float(row["offered_rate"]) <= float(run[-1]["offered_rate"]):
        return [row]
    return [*run, row]


def line_name(row: dict[str, object], main_label: str) -> str:
    """The target, plus the label when it is not the main one (e.g. talkroom (before))."""
    label = str(row.get("label", ""))
    return str(row["target"]) if label == main_label else f"{row['target']} ({label})"


def newest_runs(
    rows: list[dict[str, object]], main_label: str = ""
) -> dict[str, list[dict[str, object]]]:
    """Per line, the rows of its newest stepped run (a run is a streak of rising rates)."""
    runs: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        target = line_name(row, main_label)
        runs[target] = extend_run(runs.get(target, []), row)
    return runs


def table(rows: list[dict[str, object]]) -> str:
    """Markdown: per scenario/target/size/label, the newest stepped run's best sustained step."""
    groups: dict[tuple[str, str, int, str], list[dict[str, object]]] = {}
    for row in rows:
        if "offered_rate" not in row:
            continue
        key = (
            str(row["scenario"]),
            str(row["target"]),
            int(row["connections"]),
            str(row.get("label", "")),
        )
        groups[key] = extend_run(groups.get(key, []), row)
    lines = [
        "| scenario | target | sockets | label | max sustained msg/s | deliveries/s | p99 ms "
        "| server CPU % | first failing step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (scenario, target, conns, label), run in sorted(groups.items()):
        ok = [r for r in run if r["ok"]]
        best = ok[-1] if ok else None
        fail = next((r for r in run if not r["ok"]), None)
        failing = (
            f"{fail['offered_rate']}/s: p99 {fail['lat_p99_ms']} ms, lost {fail['lost']}"
            if fail
            else "none (ladder ended)"
        )
        if best is None:
            lines.append(
                f"| {scenario} | {target} | {conns} | {label} | none | - | - | - | {failing} |"
            )
            continue
        lines.append(
            f"| {scenario} | {target} | {conns} | {label} | {best['offered_rate']} "
            f"| {best['deliveries_per_s']} | {best['lat_p99_ms']} | {best['server_cpu_pct']} "
            f"| {failing} |"
        )
    return "\n".join(lines)


def draw(ax: plt.Axes, rows: list[dict[str, object]], title: str, main_label: str) -> None:
    for target, run in sorted(newest_runs(rows, main_label).items()):
        rates = [float(r["offered_rate"]) for r in run]
        p99 = [max(float(r["lat_p99_ms"]), 0.1) for r in run]
        style = "-" if target in COLORS else ":"
        color = COLORS.get(target.partition(" ")[0])
        ax.plot(rates, p99, style, marker="o", label=target, color=color)
        for r, x, y in zip(run, rates, p99, strict=True):
            if r["lost"]:
                ax.annotate(
                    f"lost {r['lost']}",
                    (x, y),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    ax.axhline(250, color="grey", linestyle="--", linewidth=1, label="250 ms limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (messages/s)")
    ax.set_ylabel("p99 send-to-deliver latency (ms)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--results", type=Path, default=BENCH / "results.jsonl")
    p.add_argument("--scenario", default="fanout")
    p.add_argument("--connections", default="100,1000", help="one panel per socket count")
    p.add_argument("--label", default="", help="comma list; the first is the main one")
    p.add_argument("--out", type=Path, default=BENCH / "p99_vs_rate.png")
    p.add_argument("--table", action="store_true", help="print a markdown table, no plot")
    a = p.parse_args()
    rows = [json.loads(line) for line in a.results.read_text().splitlines() if line.strip()]
    if a.table:
        print(table(rows))
        return
    sizes = [int(c) for c in a.connections.split(",")]
    labels = a.label.split(",")
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 5), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        picked = [
            r
            for r in rows
            if r.get("scenario") == a.scenario
            and r.get("connections") == size
            and r.get("label", "") in labels
            and "offered_rate" in r
        ]
        title = f"{a.scenario}: {size} receivers in one room, server on 1 core"
        draw(ax, picked, title, labels[0])
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
