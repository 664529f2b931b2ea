"""Profiles: CPU, block, mutex and memory, merged from every P.

    flag (env)                        what                               written by P0 at the end
    --------------------------------  ---------------------------------  -----------------------------------
    --cpuprofile FILE                 the hub thread's stack, sampled    FILE (pstats), FILE.svg (flame
      (PARAGO_CPUPROFILE)             every 5 ms while the P runs        graph), FILE.pb.gz (pprof),
                                                                         FILE.block (text: time parked)
    --blockprofile FILE               time goroutines spent parked, by   FILE (pprof), FILE.txt
      (PARAGO_BLOCKPROFILE)           stack and wait reason
    --mutexprofile FILE               time goroutines waited for a       FILE (pprof), FILE.txt
      (PARAGO_MUTEXPROFILE)           Mutex/RWMutex, by the stack that
                                      held it (unlocked it: Go's way)
    --memprofile FILE                 tracemalloc's allocation sites at  FILE (pprof), FILE.txt
      (PARAGO_MEMPROFILE)             the peak of each P's traced memory

The pprof files are gzipped ``profile.proto`` (pprof.py): ``go tool
pprof``, Pyroscope and Grafana read them; samples carry a ``p`` label.

cProfile's call stacks break across greenlet switches, so the CPU profile
samples: a thread reads the hub thread's current Python stack every 5 ms,
while the P is running (a P asleep in its event loop uses no CPU).  Every P
writes ``FILE.pN`` parts at exit; P0 merges them.

The block profile times each park of a plain goroutine (g.py calls
``Sampler.blocked`` instead of switching to the hub directly: only when a
profile needs it).  The mutex profile is Go's: when an unlock releases a
contended Mutex/RWMutex, the time its first waiter has waited (the G
record's ``waitsince``, read from the object's wait queue in the arena) is
charged to the unlocker's stack -- the call site that held it.  Its hooks
wrap the classes' unlock methods in this process only while a run
profiles, so a run without the flag runs the unwrapped methods: nothing
on any hot path.  The memory profile starts ``tracemalloc`` in each P and
keeps the snapshot taken at the highest traced memory (looked at every
5 ms, a new snapshot at a 10% higher peak; tracemalloc has no cumulative
allocation counts).
"""

from __future__ import annotations

import ast
import collections
import marshal
import os
import pickle
import sys
import threading
import time
from typing import Any

from .._shim import Gstatus, views
from . import pprof, report

_RUNNABLE = Gstatus.RUNNABLE

INTERVAL = 0.005
MEM_INTERVAL = INTERVAL  # get_traced_memory is O(1); a snapshot is taken only at a 10% higher peak
MEM_DEPTH = 16  # tracemalloc frames kept per allocation

Func = tuple[str, int, str]  # (filename, line, name): pstats' function key
KINDS = ("cpuprofile", "blockprofile", "mutexprofile", "memprofile")
FLAGS = {k: f"--{k}" for k in KINDS}
ENV = {k: f"PARAGO_{k.upper()}" for k in KINDS}

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class Sampler:
    """One P's profiles (whichever the run asked for)."""

    def __init__(self, settings: dict, p: int, tid: int, running: Any = None) -> None:
        self.paths = {k: settings.get(k) for k in KINDS if settings.get(k)}
        self.p, self.tid = p, tid
        self.running = running  # () -> bool: the P is not asleep in its loop
        self.t0 = time.time_ns()
        self.counts: collections.Counter = collections.Counter()  # CPU: stack (root first) -> samples
        # (wait reason, stack innermost first) -> [seconds parked, count]
        self.blocks: dict[tuple[str, tuple], list] = {}
        # unlocker's stack -> [seconds its waiters waited, count]
        self.mutex: dict[tuple, list] = {}
        self.mem: Any = None  # the peak tracemalloc snapshot
        self.mem_peak = 0
        self.want_blocks = "cpuprofile" in self.paths or "blockprofile" in self.paths
        self.stop_ev = threading.Event()
        self.thread = None
        if "memprofile" in self.paths:
            import tracemalloc

            if not tracemalloc.is_tracing():
                tracemalloc.start(MEM_DEPTH)
        if "mutexprofile" in self.paths:
            _wrap_unlocks(self)
        if "cpuprofile" in self.paths or "memprofile" in self.paths:
            self.thread = threading.Thread(target=self._run, name=f"parago-P{p}-profiler", daemon=True)
            self.thread._parago_runtime = True  # type: ignore[attr-defined]
            self.thread.start()

    # ---- block profile ----
    def blocked(self, gs: Any, wait: Any) -> None:
        """Run ``wait()`` (a goroutine's park) and add its duration to the
        block profile under its wait reason and the goroutine's stack."""
        if not self.want_blocks or views.g_get(gs.rt.arena, gs.off, "status") == _RUNNABLE:
            wait(None)  # a yield (gosched, preemption) is not a block
            return
        t0 = time.perf_counter()
        try:
            wait(None)
        finally:
            dt = time.perf_counter() - t0
            from .g import WAIT_REASONS

            reason = WAIT_REASONS.get(views.g_get(gs.rt.arena, gs.off, "waitreason"), "waiting")
            key = (reason, _stack(sys._getframe(2)))
            b = self.blocks.setdefault(key, [0.0, 0])
            b[0] += dt
            b[1] += 1

    # ---- mutex profile ----
    def contended(self, waited_ns: int, frame: Any, leaf: tuple) -> None:
        key = (leaf, *_stack(frame))
        m = self.mutex.setdefault(key, [0.0, 0])
        m[0] += waited_ns / 1e9
        m[1] += 1

    # ---- the sampling thread: CPU stacks, memory peaks ----
    def _run(self) -> None:
        cpu = "cpuprofile" in self.paths
        mem = "memprofile" in self.paths
        next_mem = 0.0
        while not self.stop_ev.wait(INTERVAL):
            if mem and time.monotonic() >= next_mem:
                next_mem = time.monotonic() + MEM_INTERVAL
                self._mem_peak()
            if not cpu or (self.running is not None and not self.running()):
                continue
            frame = sys._current_frames().get(self.tid)
            stack = []
            while frame is not None:
                c = frame.f_code
                stack.append((c.co_filename, c.co_firstlineno, c.co_name, frame.f_lineno, getattr(c, "co_qualname", c.co_name)))
                frame = frame.f_back
            if stack:
                self.counts[tuple(reversed(stack))] += 1

    def _mem_peak(self, force: bool = False) -> None:
        import tracemalloc

        if not tracemalloc.is_tracing():
            return
        cur, _ = tracemalloc.get_traced_memory()
        if force and self.mem is None or cur > self.mem_peak * 1.1:
            self.mem = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            self.mem_peak = cur

    def write(self) -> None:
        self.stop_ev.set()
        if self.thread is not None:
            self.thread.join(1.0)
        if "mutexprofile" in self.paths:
            _unwrap_unlocks()
        p = self.p
        dur = time.time_ns() - self.t0
        cpu = self.paths.get("cpuprofile")
        if cpu:
            _dump(f"{cpu}.p{p}", dict(self.counts))
            _dump(f"{cpu}.block.p{p}", self.blocks)
        if "blockprofile" in self.paths:
            _dump(f"{self.paths['blockprofile']}.p{p}", {"blocks": self.blocks, "t0": self.t0, "dur": dur})
        if "mutexprofile" in self.paths:
            _dump(f"{self.paths['mutexprofile']}.p{p}", {"mutex": self.mutex, "t0": self.t0, "dur": dur})
        if "memprofile" in self.paths:
            import tracemalloc

            self._mem_peak(force=True)
            stats = []
            if self.mem is not None:
                for st in self.mem.statistics("traceback"):
                    frames = tuple((f.filename, f.lineno) for f in reversed(st.traceback))  # innermost first
                    stats.append((frames, st.count, st.size))
            tracemalloc.stop()
            self.mem = None
            _dump(f"{self.paths['memprofile']}.p{p}", {"mem": stats, "t0": self.t0, "dur": dur, "peak": self.mem_peak})


def _dump(path: str, obj: Any) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _stack(f: Any) -> tuple:
    """The stack from frame f outwards, innermost first, as pprof frames:
    the user's frames, under the parago API call they made (the innermost
    parago frame above them: ``Chan.recv``), as Go shows ``sync.(*Mutex).Lock``."""
    out: list[tuple] = []
    api = None
    while f is not None:
        c = f.f_code
        if os.path.abspath(c.co_filename).startswith(_PKG):
            if not out:
                api = f  # the last parago frame before the user's: the API they called
        else:
            if not out and api is not None:
                ac = api.f_code
                out.append((_qualname(api), ac.co_filename, api.f_lineno, ac.co_firstlineno))
            out.append((_qualname(f), c.co_filename, f.f_lineno, c.co_firstlineno))
        f = f.f_back
    return tuple(out)


# ``module.qualname`` of a frame: the name a traceback report gives it (bound, not wrapped: no extra call per frame)
_qualname = report.func_name


# ----------------------------------------------------------------------
# the mutex profile's hooks (the classes are parago/_sync.py's: it
# registers them, so this layer imports nothing above it)

_lockers: dict[str, Any] = {}  # "Mutex" / "RWMutex" -> the class
_orig: dict[tuple[Any, str], Any] = {}


def register_lockers(mutex: Any, rwmutex: Any) -> None:
    _lockers["Mutex"] = mutex
    _lockers["RWMutex"] = rwmutex


def _first_wait(arena: Any, o: int, q: str, every: bool = False) -> int:
    """ns the first waiter of sync record o's wait queue q (every waiter's,
    summed) has waited; 0 for none.  Read without the object's lock: a racy
    look, as a profile may take (offsets are bounds-checked, values clamped)."""
    now = time.monotonic_ns()
    sd = views.sync_waitq_first(arena, o, q)
    total = 0
    n = 0
    while sd and sd + views.SUDOG_SIZE <= arena.size and n < 1024:
        g = views.sudog_get(arena, sd, "g")
        if not g or g >= arena.size:
            break
        since = views.g_get(arena, g, "waitsince")
        if 0 < since <= now:
            total += now - since
        if not every:
            break
        sd = views.sudog_get(arena, sd, "next")
        n += 1
    return total


def _wrap_unlocks(prof: Sampler) -> None:
    mu, rw = _lockers.get("Mutex"), _lockers.get("RWMutex")
    if mu is None or _orig:
        return

    def wrap(cls: Any, name: str, waited: Any) -> None:
        orig = cls.__dict__[name]
        _orig[(cls, name)] = orig
        code = orig.__code__
        leaf = (f"parago.{cls.__name__}.{name}", code.co_filename, code.co_firstlineno, code.co_firstlineno)

        def unlock(self: Any) -> None:
            ns = waited(self._rt.arena, self._off)
            orig(self)
            if ns:
                prof.contended(ns, sys._getframe(1), leaf)

        unlock.__doc__ = orig.__doc__
        unlock.__qualname__ = orig.__qualname__
        setattr(cls, name, unlock)

    # Mutex.unlock wakes its first waiter; RWMutex.unlock every waiting
    # reader (else the first writer); the last runlock the first writer
    wrap(mu, "unlock", lambda a, o: _first_wait(a, o, "q1"))
    wrap(rw, "unlock", lambda a, o: _first_wait(a, o, "q1", every=True) or _first_wait(a, o, "q2"))
    wrap(rw, "runlock", lambda a, o: _first_wait(a, o, "q2") if views.sync_word(a, o, "pg_rw", "readers") == 1 else 0)


def _unwrap_unlocks() -> None:
    for (cls, name), orig in _orig.items():
        setattr(cls, name, orig)
    _orig.clear()


# ----------------------------------------------------------------------
# P0: merging the parts


def _load_parts(path: str, nprocs: int) -> list[tuple[int, Any]]:
    parts = []
    for p in range(nprocs):
        part = f"{path}.p{p}"
        try:
            with open(part, "rb") as f:
                parts.append((p, pickle.load(f)))
            os.unlink(part)
        except (OSError, EOFError, pickle.UnpicklingError):
            pass
    return parts


def _merge_blocks(path: str, nprocs: int) -> None:
    total: dict[tuple[str, str], list] = {}
    for p in range(nprocs):
        part = f"{path}.block.p{p}"
        try:
            with open(part, "rb") as f:
                for (reason, stack), (secs, n) in pickle.load(f).items():
                    t = total.setdefault((reason, _site(stack)), [0.0, 0])
                    t[0] += secs
                    t[1] += n
            os.unlink(part)
        except (OSError, EOFError, pickle.UnpicklingError):
            pass
    _write_table(path + ".block", total, "waits", "wait reason / call site")


def _site(stack: tuple) -> str:
    """The user's call site of a stack: its first frame outside parago."""
    for name, file, line, _ in stack:
        if not os.path.abspath(file).startswith(_PKG):
            return f"{name.rpartition('.')[2]} {file}:{line}"
    return "?"


def _write_table(path: str, rows: dict, what: str, title: str) -> None:
    lines = [f"{'seconds':>10} {what:>8}  {title}", ""]
    for (reason, site), (secs, n) in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"{secs:10.4f} {n:8d}  [{reason}] {site}" if reason else f"{secs:10.4f} {n:8d}  {site}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def merge(path: str, nprocs: int) -> None:
    """The CPU profile: pstats, flame graph, pprof, and the .block text."""
    counts: collections.Counter = collections.Counter()  # stack of pstats keys (root first)
    period = round(INTERVAL * 1e9)  # ns, an integer: n * period is exact where n * INTERVAL * 1e9 is not
    b = pprof.Builder([("samples", "count"), ("cpu", "nanoseconds")], ("cpu", "nanoseconds"), period)
    for p, part in _load_parts(path, nprocs):
        for stack, n in part.items():
            counts[tuple(fr[:3] for fr in stack)] += n
            frames = [(_fname(fr[0], fr[4]), fr[0], fr[3], fr[1]) for fr in reversed(stack)]
            b.add(frames, [n, n * period], {"p": f"P{p}"})
    b.comments.append("parago --cpuprofile: Python stacks sampled every 5 ms on every P")
    b.write(path + ".pb.gz", duration_nanos=sum(counts.values()) * period)
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


def _fname(file: str, qualname: str) -> str:
    """A CPU sample's function name (the sampler reads no module names: the
    file's stem stands for it, as py-spy does)."""
    return f"{os.path.splitext(os.path.basename(file))[0]}.{qualname}"


def _merge_waits(path: str, nprocs: int, rows_of: Any, comment: str, site_label: str) -> None:
    """One contention profile (--blockprofile / --mutexprofile) from every
    P's part: pprof's contentions/delay samples and the .txt table.
    ``rows_of(part)`` gives that part's ((stack, labels, table key), secs, n)."""
    b = pprof.Builder([("contentions", "count"), ("delay", "nanoseconds")], ("contentions", "count"), 1)
    rows: dict[tuple[str, str], list] = {}
    t0, dur = 0, 0
    for p, part in _load_parts(path, nprocs):
        t0 = t0 or part["t0"]
        dur = max(dur, part["dur"])
        for stack, labels, key, secs, n in rows_of(part):
            b.add(list(stack), [n, int(secs * 1e9)], {"p": f"P{p}", **labels})
            r = rows.setdefault(key, [0.0, 0])
            r[0] += secs
            r[1] += n
    b.comments.append(comment)
    b.write(path, t0, dur)
    _write_table(path + ".txt", rows, "waits", site_label)


def merge_block(path: str, nprocs: int) -> None:
    _merge_waits(
        path,
        nprocs,
        lambda part: (
            (stack, {"wait reason": reason}, (reason, _site(stack)), secs, n)
            for (reason, stack), (secs, n) in part["blocks"].items()
        ),
        "parago --blockprofile: time goroutines spent parked, by stack and wait reason",
        "wait reason / call site",
    )


def merge_mutex(path: str, nprocs: int) -> None:
    _merge_waits(
        path,
        nprocs,
        lambda part: ((stack, {}, ("", _site(stack)), secs, n) for stack, (secs, n) in part["mutex"].items()),
        "parago --mutexprofile: time waiters waited for a Mutex/RWMutex, by the stack that unlocked it",
        "held by (the call site that unlocked it)",
    )


def merge_mem(path: str, nprocs: int) -> None:
    b = pprof.Builder([("inuse_objects", "count"), ("inuse_space", "bytes")], ("space", "bytes"), 1)
    names = _FuncNames()
    rows: dict[tuple[str, str], list] = {}
    t0, dur = 0, 0
    for p, part in _load_parts(path, nprocs):
        t0 = t0 or part["t0"]
        dur = max(dur, part["dur"])
        for frames, count, size in part["mem"]:
            stack = [(names.at(file, line), file, line, names.first_line(file, line)) for file, line in frames]
            if not stack:
                continue
            b.add(stack, [count, size], {"p": f"P{p}"})
            r = rows.setdefault(("", f"{stack[0][0]} {stack[0][1]}:{stack[0][2]}"), [0.0, 0])
            r[0] += size
            r[1] += count
    b.comments.append("parago --memprofile: tracemalloc's live allocations at each P's peak of traced memory")
    b.write(path, t0, dur)
    lines = [f"{'bytes':>12} {'objects':>9}  allocation site", ""]
    for (_, site), (size, count) in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"{int(size):12d} {count:9d}  {site}")
    with open(path + ".txt", "w") as f:
        f.write("\n".join(lines) + "\n")


class _FuncNames:
    """file:line -> the qualified name of the innermost function around it
    (tracemalloc's frames have no function names), from the file's source."""

    def __init__(self) -> None:
        self.files: dict[str, list[tuple[int, int, str]]] = {}

    def _defs(self, file: str) -> list[tuple[int, int, str]]:
        d = self.files.get(file)
        if d is None:
            d = []
            try:
                with open(file, "rb") as f:
                    tree = ast.parse(f.read())
            except (OSError, SyntaxError, ValueError):
                tree = None
            mod = os.path.splitext(os.path.basename(file))[0]

            def walk(node: Any, prefix: str) -> None:
                for ch in ast.iter_child_nodes(node):
                    if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        q = f"{prefix}.{ch.name}"
                        d.append((ch.lineno, getattr(ch, "end_lineno", ch.lineno) or ch.lineno, q))
                        walk(ch, q + (".<locals>" if not isinstance(ch, ast.ClassDef) else ""))
                    else:
                        walk(ch, prefix)

            if tree is not None:
                walk(tree, mod)
            self.files[file] = d
        return d

    def _innermost(self, file: str, line: int) -> tuple[int, int, str] | None:
        best = None
        for a, z, q in self._defs(file):
            if a <= line <= z and (best is None or a >= best[0]):
                best = (a, z, q)
        return best

    def at(self, file: str, line: int) -> str:
        b = self._innermost(file, line)
        return b[2] if b else f"{os.path.splitext(os.path.basename(file))[0]}.<module>"

    def first_line(self, file: str, line: int) -> int:
        b = self._innermost(file, line)
        return b[0] if b else 1


def merge_all(settings: dict, nprocs: int) -> None:
    """P0 at the end of a run: every profile the run asked for."""
    if settings.get("cpuprofile"):
        merge(settings["cpuprofile"], nprocs)
    if settings.get("blockprofile"):
        merge_block(settings["blockprofile"], nprocs)
    if settings.get("mutexprofile"):
        merge_mutex(settings["mutexprofile"], nprocs)
    if settings.get("memprofile"):
        merge_mem(settings["memprofile"], nprocs)


def from_env(settings: dict) -> None:
    """Fill settings' profile paths from PARAGO_*PROFILE; a path that
    cannot be written is said now, on stderr, and that profile is not taken
    (the program still runs: better than a profile lost at the end)."""
    for k in KINDS:
        v = os.environ.get(ENV[k]) or None
        if v:
            try:
                v = pprof.check_writable(v, FLAGS[k])
            except ValueError as e:
                sys.stderr.write(f"parago: {e}; running without that profile\n")
                sys.stderr.flush()
                v = None
        settings[k] = v


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
    if not any(settings.get(k) for k in KINDS):
        return None
    return Sampler(settings, p, threading.get_ident(), running)
