"""Execution traces (``parago run --trace FILE``, PARAGO_TRACE=FILE).

Each P records, in its own memory, a slice per goroutine run, a flow from
each ``pg.go`` to the first run of the goroutine it created, and a run-queue
counter per scheduling round.  At exit every P writes ``FILE.pN`` and P0
merges them into one Chrome/Perfetto trace-event JSON (open it in
ui.perfetto.dev or chrome://tracing; ``parago trace FILE --html out.html``
draws it as a picture).  Timestamps are CLOCK_MONOTONIC, common to all Ps.

User annotations (pg.trace.region / pg.trace.log, Go's trace.WithRegion /
trace.Log) go on a row of their own per goroutine under its P (tid = the
goroutine id; the hub's goroutine runs are tid 0): a region spans parks,
so on the hub's row it would overlap the other goroutines' runs.  A
started goroutine never leaves its P, so its row never moves.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

_now = time.monotonic_ns


class Tracer:
    def __init__(self, path: str, p: int) -> None:
        self.path = path
        self.p = p
        self.events: list[dict] = []
        self.pid = os.getpid()
        self.rows: set[int] = set()  # goroutines with a row of annotations

    def _row(self, goid: int) -> int:
        if goid not in self.rows:
            self.rows.add(goid)
            self.events.append(
                {"ph": "M", "name": "thread_name", "pid": self.p, "tid": goid, "args": {"name": f"G{goid}"}}
            )
        return goid

    def region(self, goid: int, name: str, t0: int, t1: int) -> None:
        """pg.trace.region: a slice on goid's row."""
        self.events.append(
            {
                "ph": "X",
                "name": name,
                "cat": "region",
                "pid": self.p,
                "tid": self._row(goid),
                "ts": t0 / 1000,
                "dur": max(t1 - t0, 1) / 1000,
                "args": {"goid": goid},
            }
        )

    def log(self, goid: int, category: str, message: str) -> None:
        """pg.trace.log: an instant event on goid's row."""
        self.events.append(
            {
                "ph": "i",
                "s": "t",
                "name": category,
                "cat": "log",
                "pid": self.p,
                "tid": self._row(goid),
                "ts": _now() / 1000,
                "args": {"goid": goid, "message": message},
            }
        )

    def slice(self, goid: int, t0: int, t1: int) -> None:
        self.events.append(
            {
                "ph": "X",
                "name": f"G{goid}",
                "pid": self.p,
                "tid": 0,
                "ts": t0 / 1000,
                "dur": max(t1 - t0, 1) / 1000,
                "args": {"goid": goid},
            }
        )

    def spawn(self, goid: int) -> None:
        self.events.append(
            {"ph": "s", "name": "go", "cat": "spawn", "id": goid, "pid": self.p, "tid": 0, "ts": _now() / 1000}
        )

    def start(self, goid: int) -> None:
        self.events.append(
            {
                "ph": "f",
                "bp": "e",
                "name": "go",
                "cat": "spawn",
                "id": goid,
                "pid": self.p,
                "tid": 0,
                "ts": _now() / 1000,
            }
        )

    def preempt(self, goid: int) -> None:
        """An instant on the P's track: goid gave up the P for a time slice."""
        self.events.append(
            {"ph": "i", "s": "t", "name": f"preempt G{goid}", "cat": "preempt", "pid": self.p, "tid": 0, "ts": _now() / 1000}
        )

    def place(self, goid: int, target: int, own_load: int, target_load: int) -> None:
        """Where a new goroutine was placed and the loads that decided it."""
        self.events.append(
            {
                "ph": "i",
                "s": "t",
                "name": f"go G{goid} -> P{target}",
                "cat": "placement",
                "pid": self.p,
                "tid": 0,
                "ts": _now() / 1000,
                "args": {"goid": goid, "target": target, "load_here": own_load, "load_there": target_load},
            }
        )

    def runq(self, n: int) -> None:
        self.events.append({"ph": "C", "name": "runq", "pid": self.p, "ts": _now() / 1000, "args": {"size": n}})

    def write(self) -> None:
        meta = [
            {"ph": "M", "name": "process_name", "pid": self.p, "args": {"name": f"P{self.p} (pid {self.pid})"}},
            {"ph": "M", "name": "thread_name", "pid": self.p, "tid": 0, "args": {"name": "hub"}},
        ]
        with open(f"{self.path}.p{self.p}", "w") as f:
            json.dump(meta + self.events, f)


def merge(path: str, nprocs: int) -> None:
    events: list[dict] = []
    for p in range(nprocs):
        part = f"{path}.p{p}"
        try:
            with open(part) as f:
                events.extend(json.load(f))
            os.unlink(part)
        except (OSError, ValueError):
            events.append({"ph": "M", "name": "process_name", "pid": p, "args": {"name": f"P{p} (no trace: lost)"}})
    with open(path, "w") as f:
        json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)


def render_html(trace_path: str, out: str) -> None:
    """A self-contained HTML page: one lane per P, a box per goroutine run."""
    with open(trace_path) as f:
        data = json.load(f)
    ev = data["traceEvents"] if isinstance(data, dict) else data
    slices = [e for e in ev if e.get("ph") == "X" and e.get("cat") != "region"]
    regions = [e for e in ev if e.get("ph") == "X" and e.get("cat") == "region"]
    logs = [e for e in ev if e.get("ph") == "i" and e.get("cat") == "log"]
    names = {e["pid"]: e["args"]["name"] for e in ev if e.get("ph") == "M" and e.get("name") == "process_name"}
    lanes = sorted(set(names) | {e["pid"] for e in slices + regions + logs})
    t0 = min((e["ts"] for e in slices + regions + logs), default=0.0)
    t1 = max((e["ts"] + e.get("dur", 0.0) for e in slices + regions + logs), default=1.0)
    width, lane_h, left = 1200, 28, 170
    scale = (width - left - 10) / max(t1 - t0, 1e-9)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{len(lanes) * lane_h + 40}" '
        'font-family="monospace" font-size="12">'
    ]
    for i, p in enumerate(lanes):
        y = 20 + i * lane_h
        parts.append(f'<text x="4" y="{y + 17}">{names.get(p, f"P{p}")}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{width - left - 10}" height="{lane_h - 4}" fill="#f4f4f4"/>')
    for e in slices:
        i = lanes.index(e["pid"])
        x = left + (e["ts"] - t0) * scale
        w = max(e["dur"] * scale, 0.5)
        hue = (e["args"]["goid"] * 47) % 360
        parts.append(
            f'<rect x="{x:.2f}" y="{20 + i * lane_h}" width="{w:.2f}" height="{lane_h - 4}" '
            f'fill="hsl({hue},60%,55%)"><title>{e["name"]} {e["dur"]:.1f} us</title></rect>'
        )
    # annotations in the lower part of the P's lane: regions as boxes (a
    # nested one is drawn over its parent), logs as ticks
    for e in sorted(regions, key=lambda e: (e["ts"], -e["dur"])):
        i = lanes.index(e["pid"])
        x = left + (e["ts"] - t0) * scale
        w = max(e["dur"] * scale, 0.5)
        y = 20 + i * lane_h + lane_h // 2
        label = _esc(e["name"])
        parts.append(
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{lane_h // 2 - 4}" fill="#333" fill-opacity="0.35">'
            f'<title>region {label} (G{e["args"]["goid"]}) {e["dur"]:.1f} us</title></rect>'
        )
        if w > 7 * len(e["name"]):
            parts.append(f'<text x="{x + 2:.2f}" y="{y + 9}" font-size="9">{label}</text>')
    for e in logs:
        i = lanes.index(e["pid"])
        x = left + (e["ts"] - t0) * scale
        y = 20 + i * lane_h
        text = _esc(f'{e["name"]}: {e["args"]["message"]} (G{e["args"]["goid"]})')
        parts.append(
            f'<path d="M{x:.2f},{y + lane_h - 4} l-4,-7 l8,0 z" fill="#c00"><title>log {text}</title></path>'
        )
    parts.append(f'<text x="{left}" y="12">0 us</text><text x="{width - 90}" y="12">{t1 - t0:.0f} us</text></svg>')
    html = (
        "<!doctype html><meta charset=utf-8><title>parago trace</title>"
        f"<h3>parago trace: {len(slices)} goroutine runs on {len(lanes)} Ps"
        f"{f', {len(regions)} regions' if regions else ''}{f', {len(logs)} log events' if logs else ''}</h3>"
        + "".join(parts)
    )
    with open(out, "w") as f:
        f.write(html)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def tracer_for(settings: dict, p: int) -> Any:
    path = settings.get("trace")
    return Tracer(path, p) if path else None
