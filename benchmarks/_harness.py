"""A tiny benchmark harness (STYLE 19: benchmarks are data, not tests).

Each bench file builds a :class:`Bench`, measures parago and its peers in
the same invocation, adds one row per (benchmark, implementation, metric)
and calls :meth:`Bench.finish`, which prints the ratios against parago and
writes ``benchmarks/results/<bench>-<timestamp>.json`` (or ``--json PATH``).

A row is ``{name, impl, metric, value, unit}`` (plus ``better``, ``samples``
and an optional ``note``).  ``value`` is the median of ``--repeat`` runs.
Nothing here asserts a time; a wrong *result* (a lost message, a wrong
count) is recorded as an error and makes the file exit 1.

Common flags: ``--quick`` (small sizes: a whole file runs in seconds),
``--repeat N`` (default 3), ``--procs N``, ``--json PATH``, ``--only A,B``,
``--no-go``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterable

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
# `parago bench` (an installed package) writes under ./parago-bench/ of the
# directory it runs in; a checkout's `python3 benchmarks/run.py` beside itself.
RESULTS_DIR = os.environ.get("PARAGO_BENCH_RESULTS") or os.path.join(BENCH_DIR, "results")
GO_DIR = os.path.join(BENCH_DIR, "go")

# Benchmark the checkout these files belong to (its commit goes into the JSON).
if os.path.isdir(os.path.join(ROOT, "parago")) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)

class PeerMissing(Exception):
    """A peer library that is not installed (its message says how to add it)."""


# Units where a smaller value is better; every other unit (".../s", "x") is
# a rate or a speedup, where a larger value is better.
_LOWER_BETTER = {"s", "ms", "µs", "ns", "µs/op", "ns/op", "µs/rt", "B", "KiB", "MiB", "B/goroutine"}


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def fmt_num(v: float) -> str:
    """Three significant digits, thousands separated: 1,230,000 / 12.3 / 0.0123."""
    if v != v:  # NaN
        return "nan"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a == 0:
        return "0"
    return f"{v:.3g}"


# ----------------------------------------------------------------------
# metadata


def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "nproc": os.cpu_count(),
        "usable_cpus": nproc(),
        "cpu_model": cpu_model(),
    }
    try:
        import psutil

        info["mem_total_bytes"] = psutil.virtual_memory().total
    except Exception:  # noqa: BLE001 - metadata only
        pass
    try:
        info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


# ----------------------------------------------------------------------
# memory


def rss_tree(pss: bool = False) -> int:
    """Summed RSS (or PSS) in bytes of this process and all its descendants.

    For a parago program run from here that is P0 plus every P process.
    Summed RSS counts pages shared between Ps (the arena) once per P that
    touched them; PSS splits them, so summed PSS counts them once.
    """
    import psutil

    me = psutil.Process()
    total = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss if pss else p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, AttributeError):
            pass
    return total


class RssSampler:
    """Background thread sampling :func:`rss_tree` every ``interval`` seconds; keeps the peak.

    Inside ``pg.run``, start it from main (after the Ps exist) and stop it
    before main returns: a live thread at the next ``pg.run`` would switch
    its start method from fork to forkserver.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self.start_rss = 0
        self._stop = threading.Event()
        self._t: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_tree())
            self._stop.wait(self.interval)

    def start(self) -> "RssSampler":
        self.start_rss = self.peak = rss_tree()
        self._t = threading.Thread(target=self._loop, name="bench-rss-sampler", daemon=True)
        self._t.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        if self._t is not None:
            self._t.join()
        self.peak = max(self.peak, rss_tree())
        return self.peak


# ----------------------------------------------------------------------
# running things


def median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def repeat_median(fn: Callable[[], Any], repeat: int) -> tuple[Any, list]:
    """Run ``fn()`` ``repeat`` times; return (median, samples).

    ``fn`` returns a float, or a dict of floats (median per key).
    """
    samples = [fn() for _ in range(max(1, repeat))]
    if isinstance(samples[0], dict):
        return {k: median(s[k] for s in samples) for k in samples[0]}, samples
    return median(samples), samples


CEILING = "ceiling: raw processes (no communication)"
NOISE = 1.05  # a procs=1 speedup above this over sequential is the host's weather, not parago


def raw_processes(share: Callable[[int, int], Any], procs: int) -> float:
    """The machine's ceiling for a job list: ``procs`` forked processes, the
    i-th running ``share(i, procs)`` (its part of the same jobs), with no
    communication at all; seconds from a common start to the last one done.
    On a VM this is not ``procs``x a single process (2 vCPUs gave
    1.6-1.8x), and it moves from run to run: every speedup is also read
    against this, measured in the same sitting."""
    r, w = os.pipe()
    pids = []
    try:
        for i in range(procs):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                try:
                    os.close(w)
                    os.read(r, 1)  # the common start
                    share(i, procs)
                finally:
                    os._exit(0)
            pids.append(pid)
        time.sleep(0.02)  # every child forked and waiting
        t0 = time.perf_counter()
        os.write(w, b"x" * procs)
        for pid in pids:
            os.waitpid(pid, 0)
        return time.perf_counter() - t0
    finally:
        os.close(r)
        os.close(w)


def _fresh_entry(conn: Any, fn: Callable, args: tuple) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        import traceback

        conn.send(("err", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def in_fresh_process(fn: Callable, *args: Any, timeout: float = 600.0) -> Any:
    """Run module-level ``fn(*args)`` in a freshly spawned interpreter; return its result.

    For memory measurements that must not see this process's heap.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    r, w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_fresh_entry, args=(w, fn, args), name="bench-fresh")
    p.start()
    w.close()
    try:
        if not r.poll(timeout):
            raise TimeoutError(f"{getattr(fn, '__name__', fn)} did not finish within {timeout} s")
        status, val = r.recv()
    finally:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()
        r.close()
    if status != "ok":
        raise RuntimeError(f"in fresh process: {val}")
    return val


_thread_warned = False


def pg_run(main: Callable, *args: Any, procs: int) -> Any:
    """``pg.run(main, *args, procs=procs)``, warning once if threads are alive.

    parago forks its Ps only when this process has a single thread (else
    it uses forkserver, which starts slower); peers must not leave threads.
    """
    global _thread_warned
    import parago as pg

    extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if extra and not _thread_warned:
        _thread_warned = True
        print(f"  note: threads alive before pg.run ({', '.join(extra)}): Ps start with forkserver", flush=True)
    return pg.run(main, *args, procs=procs)


def _placed(ready: Any, gate: Any, fn: Callable, args: tuple) -> None:
    ready.send(os.getpid())
    if gate.recv():
        fn(*args)


def go_on_other_p(fn: Callable, *args: Any, tries: int = 20, spin_s: float = 2.0) -> bool:
    """From a goroutine: start ``fn(*args)`` as a goroutine on a P other than this one.

    The caller spins (never parks, so its own P cannot run the new
    goroutine) until the goroutine reports its pid; if it still landed on
    the caller's process it is told to quit and the start is retried.
    Returns False (and starts it wherever it lands) when there is one P or
    every try failed.
    """
    import parago as pg

    if pg.gomaxprocs() < 2:
        pg.go(fn, *args)
        return False
    me = os.getpid()
    for attempt in range(tries + 1):
        ready, gate = pg.Chan(1), pg.Chan(1)
        pg.go(_placed, ready, gate, fn, args)
        deadline = time.perf_counter() + spin_s
        while True:
            i, pid, _ = pg.select(pg.Recv(ready), default=True)
            if i == 0:
                break
            if time.perf_counter() > deadline:
                pid = ready.recv()
                break
        if pid != me or attempt == tries:
            gate.send(True)
            return pid != me
        gate.send(False)
    return False  # pragma: no cover


# ----------------------------------------------------------------------
# Go


def go_binary() -> str | None:
    return shutil.which("go")


# ----------------------------------------------------------------------
# the session


class Bench:
    """One bench file's run: arguments, rows, printing and the JSON file."""

    def __init__(
        self,
        bench: str,
        description: str,
        names: list[str],
        argv: list[str] | None = None,
        extra: Callable[[argparse.ArgumentParser], None] | None = None,
        default_procs: int | None = None,
    ) -> None:
        ap = argparse.ArgumentParser(prog=f"bench_{bench}.py", description=description)
        ap.add_argument("--quick", action="store_true", help="small sizes: the whole file runs in seconds")
        ap.add_argument(
            "--repeat", type=int, default=3, help="runs per measurement; the median is reported (default 3)"
        )
        ap.add_argument(
            "--procs",
            type=int,
            default=None,
            help=f"Ps for the multi-P benchmarks (default {default_procs or 'nproc'})",
        )
        ap.add_argument(
            "--json", dest="json_path", default=None, help="write the results here instead of benchmarks/results/"
        )
        ap.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(names)}")
        ap.add_argument("--no-go", action="store_true", help="skip the Go baselines even when `go` is on PATH")
        if extra is not None:
            extra(ap)
        self.args = ap.parse_args(argv)
        if self.args.repeat < 1:
            ap.error("--repeat must be >= 1")
        if self.args.procs is not None and self.args.procs < 1:
            ap.error("--procs must be >= 1")
        self.bench = bench
        self.names = names
        only = [s.strip() for s in (self.args.only or "").split(",") if s.strip()]
        unknown = [s for s in only if s not in names]
        if unknown:
            ap.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
        self.only = set(only) if only else set(names)
        self.quick: bool = self.args.quick
        self.repeat: int = self.args.repeat
        self.procs: int = self.args.procs or default_procs or nproc()
        self.rows: list[dict] = []
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.notes_said: set[str] = set()
        self.comparisons: list[dict] = []
        self._printed = 0
        self._go_cache: dict[tuple, list[dict] | None] = {}
        self._go_built: dict[str, str | None] = {}
        self._go_said = False
        self._tmp = tempfile.mkdtemp(prefix="parago-bench-")
        self.t_start = time.time()
        import parago

        self.meta: dict[str, Any] = {
            "bench": bench,
            "timestamp": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "commit": _git("rev-parse", "HEAD"),
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "machine": machine_info(),
            "python": sys.version.split()[0],
            "python_implementation": platform.python_implementation(),
            "parago": getattr(parago, "__version__", None),
            "parago_path": os.path.dirname(parago.__file__),
            "procs": self.procs,
            "quick": self.quick,
            "repeat": self.repeat,
            "argv": sys.argv[1:] if argv is None else list(argv),
            "go": None,
        }
        m = self.meta["machine"]
        print(
            f"# parago bench {bench}: {'QUICK sizes, ' if self.quick else ''}repeat={self.repeat} (median), procs={self.procs}\n"
            f"# {m['cpu_model']}, {m['usable_cpus']} CPUs, Python {self.meta['python']}, "
            f"commit {(self.meta['commit'] or 'unknown')[:12]}{' (dirty)' if self.meta['dirty'] else ''}, "
            f"load {m.get('loadavg_at_start')}",
            flush=True,
        )

    # ---- sizes and selection ----
    def want(self, name: str) -> bool:
        return name in self.only

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    # ---- rows ----
    def add(
        self,
        name: str,
        impl: str,
        metric: str,
        value: float,
        unit: str,
        note: str | None = None,
        samples: list | None = None,
        better: str | None = None,
    ) -> dict:
        row = {
            "name": name,
            "impl": impl,
            "metric": metric,
            "value": float(value),
            "unit": unit,
            "better": better or ("lower" if unit in _LOWER_BETTER else "higher"),
        }
        if samples is not None:
            row["samples"] = [float(s) for s in samples]
        if note:
            row["note"] = note
        self.rows.append(row)
        return row

    def add_samples(
        self,
        name: str,
        impl: str,
        metric: str,
        samples: list,
        unit: str,
        note: str | None = None,
        better: str | None = None,
    ) -> dict:
        return self.add(name, impl, metric, median(samples), unit, note=note, samples=samples, better=better)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def placement(self, name: str, impl: str, placed: list[bool], procs: int) -> None:
        """Say when a goroutine meant for another P shared P0 in some runs."""
        if all(placed):
            return
        if procs < 2:
            self.note(f"{name} [{impl}]: procs=1, so both sides share the one P")
        else:
            self.note(
                f"{name} [{impl}]: the other side could not be placed on another P in {placed.count(False)} run(s)"
            )

    def check(self, ok: bool, name: str, impl: str, what: str) -> bool:
        """Record a wrong result (never a time): the file exits 1."""
        if not ok:
            msg = f"{name} [{impl}]: WRONG RESULT: {what}"
            self.errors.append(msg)
            print(f"  !! {msg}", flush=True)
        return ok

    def failed(self, name: str, impl: str, exc: BaseException) -> None:
        """Record that a measurement crashed; the other measurements go on."""
        msg = f"{name} [{impl}]: FAILED: {type(exc).__name__}: {exc}"
        self.errors.append(msg)
        print(f"  !! {msg}", flush=True)

    def guard(self, name: str, impl: str, fn: Callable, *args: Any, **kw: Any) -> Any:
        """Run a measurement; a crash is recorded (and printed), not raised; a
        peer that is not installed is skipped with a note saying how to add it."""
        try:
            return fn(*args, **kw)
        except KeyboardInterrupt:
            raise
        except PeerMissing as e:
            if str(e) not in self.notes_said:
                self.notes_said.add(str(e))
                self.note(f"skipped {impl}: {e}")
            return None
        except BaseException as e:  # noqa: BLE001 - every failure is reported
            self.failed(name, impl, e)
            return None

    def compare(self, label: str, a: dict | None, b: dict | None) -> None:
        """An extra ratio between two rows of the same metric (e.g. sharded vs mutex counter)."""
        if not a or not b or not a["value"] or not b["value"]:
            return
        adv = _advantage(a, b)
        text = f"{label}: {a['name']} [{a['impl']}] is {_adv_text(adv, a)} than {b['name']} [{b['impl']}]"
        self.comparisons.append({"label": label, "a": _key(a), "b": _key(b), "advantage": adv, "text": text})
        print(f"  {text}", flush=True)

    # ---- Go ----
    def go_rows(self, program: str, args: list[str]) -> list[dict] | None:
        """Run benchmarks/go/<program>.go (median of --repeat runs); its rows, or None without Go."""
        key = (program, tuple(args))
        if key in self._go_cache:
            return self._go_cache[key]
        go = None if self.args.no_go else go_binary()
        if go is None:
            if not self._go_said:
                self._go_said = True
                why = "--no-go" if self.args.no_go else "`go` is not on PATH"
                self.note(f"Go baselines skipped ({why}); install Go to get them")
            self._go_cache[key] = None
            return None
        env = dict(os.environ)
        if not env.get("GOCACHE") and not env.get("HOME"):
            env["GOCACHE"] = os.path.join(tempfile.gettempdir(), "parago-bench-gocache")
        exe = self._go_built.get(program)
        if program not in self._go_built:
            exe = os.path.join(self._tmp, program)
            src = os.path.join(GO_DIR, f"{program}.go")
            r = subprocess.run([go, "build", "-o", exe, src], capture_output=True, text=True, env=env, timeout=600)
            if r.returncode != 0:
                self.errors.append(f"go build {program}.go failed: {r.stderr.strip()}")
                print(f"  !! go build {program}.go failed:\n{r.stderr}", flush=True)
                exe = None
            else:
                ver = subprocess.run([go, "version"], capture_output=True, text=True, env=env).stdout.strip()
                self.meta["go"] = ver
            self._go_built[program] = exe
        if exe is None:
            self._go_cache[key] = None
            return None
        runs: list[list[dict]] = []
        for _ in range(self.repeat):
            r = subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=600)
            lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("{")]
            if r.returncode != 0 or not lines:
                self.errors.append(
                    f"go {program} {' '.join(args)} failed (rc {r.returncode}): {r.stderr.strip()[-500:]}"
                )
                print(f"  !! go {program} failed: {r.stderr.strip()[-500:]}", flush=True)
                self._go_cache[key] = None
                return None
            runs.append(json.loads(lines[-1])["rows"])
        out = []
        for i, row in enumerate(runs[0]):
            samples = [run[i]["value"] for run in runs]
            out.append({**row, "samples": samples, "value": median(samples)})
        self._go_cache[key] = out
        return out

    def add_go(self, name: str, program: str, args: list[str], note: str | None = None) -> None:
        """Add Go's rows for benchmark ``name`` (if Go is installed)."""
        rows = self.go_rows(program, args)
        for r in rows or []:
            if r["name"] == name:
                self.add(
                    name, "go", r["metric"], r["value"], r["unit"], note=r.get("note") or note, samples=r["samples"]
                )

    # ---- output ----
    def flush(self) -> None:
        """Print the rows added since the last flush, grouped by benchmark and metric."""
        new = self.rows[self._printed :]
        self._printed = len(self.rows)
        if new:
            print(format_table(new, self.rows), flush=True)

    def finish(self) -> int:
        self.flush()
        self.meta["elapsed_s"] = round(time.time() - self.t_start, 2)
        try:
            self.meta["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            pass
        doc = {
            "meta": self.meta,
            "rows": self.rows,
            "ratios": ratios(self.rows),
            "comparisons": self.comparisons,
            "notes": self.notes,
            "errors": self.errors,
        }
        path = self.args.json_path
        if not path:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            path = os.path.join(RESULTS_DIR, f"{self.bench}-{stamp}.json")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.write("\n")
        shutil.rmtree(self._tmp, ignore_errors=True)
        shown = os.path.relpath(path)
        print(f"# wrote {path if shown.startswith('..') else shown} ({self.meta['elapsed_s']} s)")
        if self.errors:
            print(f"# {len(self.errors)} problem(s):")
            for e in self.errors:
                print(f"#   {e}")
            return 1
        return 0


# ----------------------------------------------------------------------
# ratios and the table


def _key(r: dict) -> dict:
    return {"name": r["name"], "impl": r["impl"], "metric": r["metric"]}


def _advantage(base: dict, other: dict) -> float:
    """How many times better ``base`` is than ``other`` (> 1: base is better)."""
    if base["better"] == "lower":
        return other["value"] / base["value"]
    return base["value"] / other["value"]


def _adv_text(adv: float, base: dict) -> str:
    mem = base["unit"] in ("B", "KiB", "MiB", "B/goroutine")
    good, bad = ("smaller", "larger") if mem else ("faster", "slower")
    if adv >= 1:
        return f"{adv:.2f}x {good}" if adv < 10 else f"{adv:.1f}x {good}"
    inv = 1 / adv
    return f"{inv:.2f}x {bad}" if inv < 10 else f"{inv:.1f}x {bad}"


def _baseline(group: list[dict]) -> dict | None:
    for r in group:
        if r["impl"].startswith("parago") and r["value"]:
            return r
    return None


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    g: dict[tuple, list[dict]] = {}
    for r in rows:
        g.setdefault((r["name"], r["metric"]), []).append(r)
    return g


def ratios(rows: list[dict]) -> list[dict]:
    """For each (benchmark, metric): parago's first row against every other row."""
    out = []
    for (name, metric), group in _groups(rows).items():
        base = _baseline(group)
        if base is None:
            continue
        for r in group:
            if r is base or not r["value"]:
                continue
            adv = _advantage(base, r)
            out.append(
                {
                    "name": name,
                    "metric": metric,
                    "parago": base["impl"],
                    "peer": r["impl"],
                    "parago_over_peer": base["value"] / r["value"],
                    "parago_better_by": adv,
                    "text": f"{base['impl']} vs {r['impl']}: {_adv_text(adv, base)}",
                }
            )
    return out


def format_table(rows: list[dict], all_rows: list[dict] | None = None) -> str:
    """Rows grouped by (benchmark, metric); "parago vs this row" compares parago's first row with each."""
    groups = _groups(rows)
    allg = _groups(all_rows or rows)
    header = ("benchmark", "metric", "impl", "value", "unit", "parago vs this row", "note")
    table = []
    for key, group in groups.items():
        base = _baseline(allg[key])
        for r in group:
            if base is None or r is base:
                vs = "(baseline)" if r is base else ""
            elif not r["value"]:
                vs = "n/a"
            else:
                adv = _advantage(base, r)
                vs = f"{'parago' if base['impl'] == 'parago' else base['impl']} {_adv_text(adv, base)}"
            table.append((r["name"], r["metric"], r["impl"], fmt_num(r["value"]), r["unit"], vs, r.get("note") or ""))
    widths = [max(len(hd), *(len(t[i]) for t in table)) for i, hd in enumerate(header)]

    def line(cells: tuple) -> str:
        return "  ".join(c.rjust(widths[i]) if i == 3 else c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip()

    lines = [line(header), "  ".join("-" * w for w in widths)]
    prev = None
    for t in table:
        if prev is not None and (t[0], t[1]) != prev:
            lines.append("")
        prev = (t[0], t[1])
        lines.append(line(t))
    return "\n".join(lines) + "\n"
