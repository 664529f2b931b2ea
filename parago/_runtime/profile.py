"""CPU profile (``parago run --cpuprofile FILE``, PARAGO_CPUPROFILE=FILE).

cProfile's call stacks break across greenlet switches, so each P samples
instead: a thread reads the hub thread's current Python stack every 5 ms.
Every P writes ``FILE.pN``; P0 merges them into one profile in pstats
format (``python -m pstats FILE``) and draws ``FILE.svg``, a flame graph.
"""

from __future__ import annotations

import collections
import marshal
import os
import pickle
import sys
import threading
from typing import Any

INTERVAL = 0.005

Func = tuple[str, int, str]  # (filename, line, name): pstats' function key


class Sampler:
    def __init__(self, path: str, p: int, tid: int) -> None:
        self.path, self.p, self.tid = path, p, tid
        self.counts: collections.Counter = collections.Counter()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"parago-P{p}-profiler", daemon=True)
        self.thread._parago_runtime = True  # type: ignore[attr-defined]
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_ev.wait(INTERVAL):
            frame = sys._current_frames().get(self.tid)
            stack = []
            while frame is not None:
                c = frame.f_code
                stack.append((c.co_filename, c.co_firstlineno, c.co_name))
                frame = frame.f_back
            if stack:
                self.counts[tuple(reversed(stack))] += 1

    def write(self) -> None:
        self.stop_ev.set()
        self.thread.join(1.0)
        with open(f"{self.path}.p{self.p}", "wb") as f:
            pickle.dump(dict(self.counts), f)


def merge(path: str, nprocs: int) -> None:
    counts: collections.Counter = collections.Counter()
    for p in range(nprocs):
        part = f"{path}.p{p}"
        try:
            with open(part, "rb") as f:
                counts.update(pickle.load(f))
            os.unlink(part)
        except (OSError, EOFError, pickle.UnpicklingError):
            pass
    stats: dict[Func, list] = {}
    for stack, n in counts.items():
        t = n * INTERVAL
        seen = set()
        for i, fn in enumerate(stack):
            st = stats.setdefault(fn, [0, 0, 0.0, 0.0, {}])
            if fn not in seen:
                st[3] += t  # cumulative time: once per sample
                seen.add(fn)
            if i == len(stack) - 1:
                st[0] += n
                st[1] += n
                st[2] += t  # own time: the innermost frame
            if i > 0:
                caller = stack[i - 1]
                c = st[4].setdefault(caller, [0, 0, 0.0, 0.0])
                c[0] += n
                c[1] += n
                c[3] += t
                if i == len(stack) - 1:
                    c[2] += t
    out = {fn: (v[0], v[1], v[2], v[3], {k: tuple(c) for k, c in v[4].items()}) for fn, v in stats.items()}
    with open(path, "wb") as f:
        marshal.dump(out, f)
    _flamegraph(counts, path + ".svg")


def _flamegraph(counts: collections.Counter, out: str) -> None:
    root: dict = {"n": 0, "kids": {}}
    for stack, n in counts.items():
        node = root
        node["n"] += n
        for fn in stack:
            node = node["kids"].setdefault(fn, {"n": 0, "kids": {}})
            node["n"] += n
    width, h = 1200, 17
    total = max(root["n"], 1)
    rects: list[str] = []
    depth_max = [0]

    def walk(node: dict, x: float, depth: int) -> None:
        depth_max[0] = max(depth_max[0], depth)
        for fn, kid in sorted(node["kids"].items(), key=lambda kv: -kv[1]["n"]):
            w = kid["n"] / total * width
            if w >= 0.5:
                label = f"{fn[2]} ({os.path.basename(fn[0])}:{fn[1]})"
                hue = (hash(fn[2]) % 40) + 10
                rects.append((depth, x, w, label, kid["n"], hue))  # type: ignore[arg-type]
            walk(kid, x, depth + 1)
            x += w

    walk(root, 0.0, 0)
    height = (depth_max[0] + 2) * h
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">'
    ]
    for depth, x, w, label, n, hue in rects:  # type: ignore[assignment,str-unpack]
        y = height - (depth + 1) * h  # type: ignore[operator]
        text = label if w > 7 * len(label) else label[: max(0, int(w / 7) - 1)]  # type: ignore[operator]
        svg.append(
            f"<g><title>{label}: {n} samples ({n / total:.1%})</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h - 1}" fill="hsl({hue},90%,60%)"/>'
            f'<text x="{x + 2:.1f}" y="{y + 12}">{text}</text></g>'  # type: ignore[operator]
        )
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("".join(svg))


def sampler_for(settings: dict, p: int) -> Any:
    path = settings.get("cpuprofile")
    return Sampler(path, p, threading.get_ident()) if path else None
