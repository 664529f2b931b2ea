"""CPU and block profiles (``parago run --cpuprofile FILE``, PARAGO_CPUPROFILE=FILE).

cProfile's call stacks break across greenlet switches, so each P samples
instead: a thread reads the hub thread's current Python stack every 5 ms,
while the P is running (a P asleep in its event loop uses no CPU, so its
samples are not counted).  Every P writes ``FILE.pN``; P0 merges them into
one profile in pstats format (``python -m pstats FILE``) and draws
``FILE.svg``, a flame graph.

The block profile (Go's ``-blockprofile``) is written beside it as
``FILE.block``: the time goroutines spent parked, by wait reason and the
user's call site that waited, summed over every P, largest first.
"""

from __future__ import annotations

import collections
import marshal
import os
import pickle
import sys
import threading
import time
from typing import Any

from .._shim import Gstatus, views

_RUNNABLE = Gstatus.RUNNABLE

INTERVAL = 0.005

Func = tuple[str, int, str]  # (filename, line, name): pstats' function key


class Sampler:
    def __init__(self, path: str, p: int, tid: int, running: Any = None) -> None:
        self.path, self.p, self.tid = path, p, tid
        self.running = running  # () -> bool: the P is not asleep in its loop
        self.counts: collections.Counter = collections.Counter()
        # (wait reason, call site) -> [seconds parked, count]
        self.blocks: dict[tuple[str, str], list] = {}
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"parago-P{p}-profiler", daemon=True)
        self.thread._parago_runtime = True  # type: ignore[attr-defined]
        self.thread.start()

    def blocked(self, gs: Any, wait: Any) -> None:
        """Run ``wait()`` (a goroutine's park) and add its duration to the
        block profile under its wait reason and the user's call site."""
        if views.g_get(gs.rt.arena, gs.off, "status") == _RUNNABLE:
            wait(None)  # a yield (gosched, preemption) is not a block
            return
        t0 = time.perf_counter()
        try:
            wait(None)
        finally:
            dt = time.perf_counter() - t0
            from .g import WAIT_REASONS

            reason = WAIT_REASONS.get(views.g_get(gs.rt.arena, gs.off, "waitreason"), "waiting")
            key = (reason, _user_site(sys._getframe(2)))
            b = self.blocks.setdefault(key, [0.0, 0])
            b[0] += dt
            b[1] += 1

    def _run(self) -> None:
        while not self.stop_ev.wait(INTERVAL):
            if self.running is not None and not self.running():
                continue
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
        with open(f"{self.path}.block.p{self.p}", "wb") as f:
            pickle.dump(self.blocks, f)


_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_site(f: Any) -> str:
    """file:line of the first frame outside parago's package (who waited)."""
    while f is not None:
        name = f.f_code.co_filename
        if not os.path.abspath(name).startswith(_PKG):
            return f"{f.f_code.co_name} {name}:{f.f_lineno}"
        f = f.f_back
    return "?"


def _merge_blocks(path: str, nprocs: int) -> None:
    total: dict[tuple[str, str], list] = {}
    for p in range(nprocs):
        part = f"{path}.block.p{p}"
        try:
            with open(part, "rb") as f:
                for k, (secs, n) in pickle.load(f).items():
                    t = total.setdefault(k, [0.0, 0])
                    t[0] += secs
                    t[1] += n
            os.unlink(part)
        except (OSError, EOFError, pickle.UnpicklingError):
            pass
    lines = [f"{'seconds':>10} {'waits':>8}  wait reason / call site", ""]
    for (reason, site), (secs, n) in sorted(total.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"{secs:10.4f} {n:8d}  [{reason}] {site}")
    with open(path + ".block", "w") as f:
        f.write("\n".join(lines) + "\n")


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
    _merge_blocks(path, nprocs)


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


def sampler_for(settings: dict, p: int, running: Any = None) -> Any:
    path = settings.get("cpuprofile")
    return Sampler(path, p, threading.get_ident(), running) if path else None
