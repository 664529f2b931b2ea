"""The benchmark chart: ratio bars against every peer, and scaling curves.

    python3 benchmarks/chart.py benchmarks/results/latest/summary.json [-o OUT]

draws ``OUT.png`` and ``OUT.svg`` (default: ``chart`` beside the summary)
from the ``summary.json`` that ``benchmarks/run.py`` (``parago bench``)
writes:

* top: one horizontal bar per (benchmark, metric, peer): how many times
  better parago is (log scale; right of 1 = parago better, left = the peer
  better), benchmarks separated by lines.  Metrics measured at several
  procs (``... procs=N``) show only their largest procs here;
* below, for every benchmark that reports ``speedup procs=N`` rows at more
  than one procs: its scaling curve per implementation, with the ideal
  line y = procs.

matplotlib is an optional extra (``pip install 'parago[chart]'``): without
it :func:`draw` raises ImportError and ``run.py`` says how to get the chart.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys

_PROCS = re.compile(r"\s*procs=(\d+)\s*")
PARAGO_BETTER, PEER_BETTER = "#2e8b57", "#c0504d"


def _split_procs(metric: str) -> tuple[str, int | None]:
    m = _PROCS.search(metric)
    if not m:
        return metric, None
    return (metric[: m.start()] + " " + metric[m.end() :]).strip(), int(m.group(1))


def bar_rows(summary: dict) -> list[dict]:
    """The ratios to draw as bars: for metrics measured at several procs, only the largest."""
    top: dict[tuple, int] = {}
    for r in summary["ratios"]:
        base, p = _split_procs(r["metric"])
        if p is not None:
            k = (r["file"], r["name"], base)
            top[k] = max(top.get(k, 0), p)
    out = []
    for r in summary["ratios"]:
        base, p = _split_procs(r["metric"])
        if p is None or top[(r["file"], r["name"], base)] == p:
            out.append(r)
    return out


def scaling_groups(summary: dict) -> list[tuple[str, str, dict[str, list[tuple[int, float]]]]]:
    """(benchmark, metric, {impl: [(procs, value)]}) for every ``speedup procs=N`` series."""
    groups: dict[tuple[str, str, str], dict[str, list[tuple[int, float]]]] = {}
    for r in summary["rows"]:
        base, p = _split_procs(r["metric"])
        if p is None or not base.startswith("speedup"):
            continue
        groups.setdefault((r.get("file", ""), r["name"], base), {}).setdefault(r["impl"], []).append((p, r["value"]))
    out = []
    for (_file, name, metric), series in groups.items():
        if max(len(v) for v in series.values()) < 2:
            continue  # one procs value is a point, not a curve
        out.append((name, metric, {impl: sorted(v) for impl, v in series.items()}))
    return out


def _title(meta: dict) -> str:
    m = meta.get("machine") or {}
    bits = [
        f"{m.get('cpu_model') or 'unknown CPU'}, {m.get('usable_cpus', '?')} CPUs",
        f"Python {meta.get('python') or '?'}",
    ]
    if m.get("loadavg_at_start"):
        bits[0] += f" (load {m['loadavg_at_start'][0]:g} at start)"
    if meta.get("go"):
        bits.append(str(meta["go"]).replace("go version ", ""))
    bits.append("QUICK sizes (noisy)" if meta.get("quick") else "full sizes")
    if meta.get("commit"):
        bits.append(f"commit {meta['commit'][:10]}{' (dirty)' if meta.get('dirty') else ''}")
    return "parago vs its peers: " + ", ".join(bits) + f"\n{meta.get('command', '')}   {meta.get('timestamp', '')}"


def _tick(x: float, _pos: int) -> str:
    if abs(x - 1) < 1e-9:
        return "equal"
    return f"{x:g}x better" if x > 1 else f"{1 / x:g}x worse"


def draw(summary: dict, out_base: str) -> list[str]:
    """Write ``out_base.png`` and ``out_base.svg``; return their paths.

    Raises ImportError when matplotlib is not installed."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: a smaller, searchable SVG
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    bars = bar_rows(summary)
    curves = scaling_groups(summary)
    ncols = 3
    crow = math.ceil(len(curves) / ncols) if curves else 0
    bar_h, curve_h, gap, head = max(2.0, 0.24 * len(bars) + 0.6), 3.0, 1.2, 0.8
    height = head + bar_h + crow * (gap + curve_h) + 0.7
    fig = plt.figure(figsize=(13, height))
    # hspace is a fraction of the mean axes height: turn the wanted gap in inches into it
    mean_h = (bar_h + crow * curve_h) / (1 + crow)
    gs = fig.add_gridspec(
        1 + crow,
        ncols,
        height_ratios=[bar_h] + [curve_h] * crow,
        hspace=gap / mean_h,
        wspace=0.28,
        top=1 - head / height,
        bottom=0.7 / height,
    )
    fig.text(0.01, 1 - 0.15 / height, _title(summary.get("meta", {})), fontsize=10, va="top", ha="left")

    ax = fig.add_subplot(gs[0, :])
    if bars:
        ys = list(range(len(bars)))[::-1]
        advs = [max(r["parago_better_by"], 1e-6) for r in bars]
        colors = [PARAGO_BETTER if a >= 1 else PEER_BETTER for a in advs]
        # bars grow from 1 (equal) towards the better side, on a log axis
        ax.barh(ys, [a - 1 for a in advs], left=1, color=colors, height=0.7)
        ax.set_xscale("log")
        lo, hi = min(advs + [1.0]), max(advs + [1.0])
        # room for the verdict text beside the longest bars
        ax.set_xlim(min(lo / 4.5, 0.4), max(hi * 4.5, 2.5))
        ax.xaxis.set_major_formatter(FuncFormatter(_tick))
        ax.axvline(1, color="black", lw=0.8)
        labels = [f"{r['name']} · {r['metric']}  vs {r['peer']}" for r in bars]
        ax.set_yticks(ys)
        ax.set_yticklabels(labels, fontsize=7.5)
        for y, a, r in zip(ys, advs, bars, strict=True):
            ax.text(
                a * (1.06 if a >= 1 else 1 / 1.06),
                y,
                r["verdict"],
                va="center",
                ha="left" if a >= 1 else "right",
                fontsize=7,
            )
        prev = None
        for y, r in zip(ys, bars, strict=True):
            if prev is not None and r["name"] != prev:
                ax.axhline(y + 0.5, color="#bbbbbb", lw=0.6)
            prev = r["name"]
        ax.set_ylim(-0.7, len(bars) - 0.3)
        ax.set_xlabel("how many times better parago is (log scale; right of 1: parago better, left: the peer)")
        ax.grid(axis="x", which="both", color="#eeeeee", lw=0.6)
        ax.set_axisbelow(True)
    else:
        ax.text(0.5, 0.5, "no ratios in this run", ha="center", va="center")
        ax.set_axis_off()

    for i, (name, metric, series) in enumerate(curves):
        cax = fig.add_subplot(gs[1 + i // ncols, i % ncols])
        top = max(p for pts in series.values() for p, _ in pts)
        xs = sorted({p for pts in series.values() for p, _ in pts})
        cax.plot(xs, xs, color="#999999", ls="--", lw=1, label="ideal")
        for impl, pts in sorted(series.items(), key=lambda kv: (not kv[0].startswith("parago"), kv[0])):
            width = 2.2 if impl.startswith("parago") else 1.2
            cax.plot([p for p, _ in pts], [v for _, v in pts], marker="o", ms=3.5, lw=width, label=impl)
        cax.set_title(f"{name}: {metric}", fontsize=9)
        cax.set_xlabel("procs", fontsize=8)
        cax.set_ylabel("speedup (x)", fontsize=8)
        cax.set_xticks(xs)
        cax.set_xlim(0.8, top + 0.2 * top)
        cax.set_ylim(bottom=0)
        cax.tick_params(labelsize=7)
        cax.grid(color="#eeeeee", lw=0.6)
        cax.legend(fontsize=6.5, loc="upper left")

    paths = []
    for ext in ("png", "svg"):
        path = f"{out_base}.{ext}"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    _shrink_png(paths[0])
    return paths


def _shrink_png(path: str) -> None:
    """A chart has few colours: a 256-colour palette PNG is a third of the size."""
    try:
        from PIL import Image  # a matplotlib dependency
    except ImportError:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="chart.py", description="Draw the chart of a benchmark run's summary.json.")
    ap.add_argument("summary", help="summary.json written by benchmarks/run.py")
    ap.add_argument("-o", "--out", default=None, help="output path without extension (default: chart beside it)")
    args = ap.parse_args(argv)
    with open(args.summary) as f:
        summary = json.load(f)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.summary)), "chart")
    try:
        paths = draw(summary, out)
    except ImportError:
        print("chart.py: matplotlib is not installed: pip install 'parago[chart]'", file=sys.stderr)
        return 2
    print("\n".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
