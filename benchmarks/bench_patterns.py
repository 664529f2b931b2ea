"""The program shapes Go users write, on every core: parago against processes, threads and Go.

Every pattern runs the same CPU-bound jobs (pure Python, ~5 ms each: a loop
calibrated once in this process) and is reported as its speedup over those
jobs run sequentially, at procs 1..nproc (--procs-list), together with how
the jobs spread: the share of the jobs done by the busiest P (each job
records ``state.rt.p``) and, for the shapes with a fixed set of workers,
by the busiest worker (at procs=1 that is the time slice at work).

    pool_buffered    Go by Example "Worker Pools": 4 workers
                     ``for n in jobs: results.send(f(n))``, main feeding a
                     buffered jobs channel (cap = the number of jobs)
    pool_unbuffered  the same with an unbuffered jobs channel
    pipeline         the seed's §2.3: producer -> 4 workers -> collector
                     (rawData cap 100, processed cap 50, a closer goroutine)
    errgroup         pg.ErrGroup with set_limit(4), a member per job
    future           a pg.future per job, results read in order
    go_per_job       a goroutine per job, results on one channel
    peers            the same jobs through multiprocessing.Pool.map
                     (chunksize 1), ProcessPoolExecutor.map and
                     ThreadPoolExecutor.map, with procs workers
    hog_timer        how late main's 50 ms pg.sleep returns while pure-Python
                     hogs (one per P) spin: the time slice / preemption figure

Go's same shapes (benchmarks/go/patterns.go) run beside each pattern when
`go` is installed; Go's speedup is over Go's own sequential loop, its jobs
calibrated to the same duration.  Times are measured inside the running
program (Ps and pools started and warmed first), never asserted.

Run: python3 benchmarks/bench_patterns.py [--quick] [--repeat N] [--procs-list 1,2]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import multiprocessing
import os
import sys
import time
from typing import Any, Callable, NamedTuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402
from parago._runtime import state  # noqa: E402

PATTERNS = ["pool_buffered", "pool_unbuffered", "pipeline", "errgroup", "future", "go_per_job"]
NAMES = [*PATTERNS, "peers", "hog_timer"]
WORKER_SHAPES = {"pool_buffered", "pool_unbuffered", "pipeline"}

Job = tuple  # (n, value, where, worker): where = the P (parago) or the pid (peers); worker -1 = none


class Sample(NamedTuple):
    """One run and the baselines measured right before it (seconds)."""

    wall: float
    jobs: list
    seq: float  # the same jobs sequentially in this process
    ceil: float  # the same jobs split over procs raw processes (h.raw_processes)


# ----------------------------------------------------------------------
# the job


def burn(n: int, iters: int) -> int:
    """The CPU-bound job: ``iters`` steps of an LCG from ``n`` (pure Python, deterministic)."""
    x = n
    for _ in range(iters):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def calibrate(job_ms: float) -> int:
    """Iterations of :func:`burn` that take ``job_ms`` here (best of five probes)."""
    probe = 20_000
    best = min(_timed(burn, 1, probe) for _ in range(5))
    return max(1, int(probe * job_ms / 1000 / best))


def _timed(fn: Callable, *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _job(n: int, iters: int, worker: int) -> Job:
    rt = state.rt
    return (n, burn(n, iters), rt.p if rt is not None else os.getpid(), worker)


def _peer_job(arg: tuple[int, int]) -> Job:
    return _job(arg[0], arg[1], -1)


# ----------------------------------------------------------------------
# the parago shapes; each runs inside the program and returns every job's Job


def _worker(w: int, jobs: pg.Chan, results: pg.Chan, iters: int, wg: pg.WaitGroup | None = None) -> None:
    for n in jobs:
        results.send(_job(n, iters, w))
    if wg is not None:
        wg.done()


def _pool(njobs: int, iters: int, workers: int, jobs_cap: int) -> list[Job]:
    jobs, results = pg.Chan(jobs_cap), pg.Chan(njobs)
    for w in range(workers):
        pg.go(_worker, w, jobs, results, iters)
    for n in range(njobs):
        jobs.send(n)
    jobs.close()
    return [results.recv() for _ in range(njobs)]


def _pool_buffered(njobs: int, iters: int, workers: int) -> list[Job]:
    return _pool(njobs, iters, workers, njobs)


def _pool_unbuffered(njobs: int, iters: int, workers: int) -> list[Job]:
    return _pool(njobs, iters, workers, 0)


def _produce(njobs: int, out: pg.Chan) -> None:
    for n in range(njobs):
        out.send(n)
    out.close()


def _close_when_done(wg: pg.WaitGroup, ch: pg.Chan) -> None:
    wg.wait()
    ch.close()


def _pipeline(njobs: int, iters: int, workers: int) -> list[Job]:
    raw, processed = pg.Chan(100), pg.Chan(50)
    wg = pg.WaitGroup()
    pg.go(_produce, njobs, raw)
    wg.add(workers)
    for w in range(workers):
        pg.go(_worker, w, raw, processed, iters, wg)
    pg.go(_close_when_done, wg, processed)
    return list(processed)


def _send_job(n: int, iters: int, results: pg.Chan) -> None:
    results.send(_job(n, iters, -1))


def _errgroup(njobs: int, iters: int, workers: int) -> list[Job]:
    results = pg.Chan(njobs)
    g = pg.ErrGroup()
    g.set_limit(workers)
    for n in range(njobs):
        g.go(_send_job, n, iters, results)
    g.wait()
    results.close()
    return list(results)


def _future(njobs: int, iters: int, workers: int) -> list[Job]:
    futs = [pg.future(_job, n, iters, -1) for n in range(njobs)]
    return [f.result() for f in futs]


def _go_per_job(njobs: int, iters: int, workers: int) -> list[Job]:
    results = pg.Chan(njobs)
    for n in range(njobs):
        pg.go(_send_job, n, iters, results)
    return [results.recv() for _ in range(njobs)]


SHAPES: dict[str, Callable[[int, int, int], list[Job]]] = {
    "pool_buffered": _pool_buffered,
    "pool_unbuffered": _pool_unbuffered,
    "pipeline": _pipeline,
    "errgroup": _errgroup,
    "future": _future,
    "go_per_job": _go_per_job,
}


def _pattern_main(pattern: str, njobs: int, iters: int, workers: int, repeat: int) -> list[tuple[float, list[Job]]]:
    pg.sleep(0.05)  # every P up
    shape = SHAPES[pattern]
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jobs = shape(njobs, iters, workers)
        out.append((time.perf_counter() - t0, jobs))
    return out


# ----------------------------------------------------------------------
# the peers: the same jobs, procs workers


def _peer_pool_map(args: list[tuple[int, int]], procs: int) -> tuple[float, list[Job]]:
    pool = multiprocessing.get_context("fork").Pool(procs)
    try:
        pool.map(_peer_job, [(0, 1)] * (4 * procs), chunksize=1)  # every worker up
        t0 = time.perf_counter()
        jobs = pool.map(_peer_job, args, chunksize=1)
        return time.perf_counter() - t0, jobs
    finally:
        pool.close()
        pool.join()


def _peer_ppe_map(args: list[tuple[int, int]], procs: int) -> tuple[float, list[Job]]:
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=procs, mp_context=ctx) as ex:
        list(ex.map(_peer_job, [(0, 1)] * (4 * procs)))
        t0 = time.perf_counter()
        jobs = list(ex.map(_peer_job, args))
        return time.perf_counter() - t0, jobs


def _peer_threads_map(args: list[tuple[int, int]], procs: int) -> tuple[float, list[Job]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=procs) as ex:
        t0 = time.perf_counter()
        jobs = list(ex.map(_peer_job, args))
        return time.perf_counter() - t0, jobs


PEER_FNS: dict[str, Callable[[list[tuple[int, int]], int], tuple[float, list[Job]]]] = {
    "multiprocessing.Pool.map": _peer_pool_map,
    "ProcessPoolExecutor.map": _peer_ppe_map,
    "ThreadPoolExecutor.map": _peer_threads_map,
}


# ----------------------------------------------------------------------
# measuring and reporting


class Run:
    """One bench_patterns invocation: the calibrated jobs, their expected values and the sequential time."""

    def __init__(self, b: h.Bench) -> None:
        self.b = b
        self.njobs = b.args.jobs or b.size(96, 24)
        self.workers = b.args.workers
        self.job_ms = b.args.job_ms
        self.iters = calibrate(self.job_ms)
        self.expect = [burn(n, self.iters) for n in range(self.njobs)]
        self.plist = _procs_list(b)
        self.seq: list[float] = []
        # (name, impl, procs, [Sample per run]): reported together at the end, speedups first
        self.runs: list[tuple[str, str, int, list[Sample]]] = []

    def sequential(self) -> float:
        t = _timed(lambda: [burn(n, self.iters) for n in range(self.njobs)])
        self.seq.append(t)
        return t

    def ceiling(self, procs: int) -> float:
        """The same jobs split over procs raw processes (h.raw_processes)."""
        iters, njobs = self.iters, self.njobs
        return h.raw_processes(lambda i, k: [burn(n, iters) for n in range(i, njobs, k)], procs)

    def interleaved(self, name: str, impl: str, procs: int, once: Callable[[], tuple[float, list[Job]]]) -> None:
        """``repeat`` runs of one implementation, each right after its own
        sequential run and ceiling (the host's speed moves between them:
        each speedup is over the baseline measured next to it).  A procs=1
        result above NOISE x sequential is the host's weather: flagged and
        measured again (twice at most)."""
        b = self.b
        samples: list[Sample] = []
        for attempt in range(3):
            samples = []
            for _ in range(b.repeat):
                seq, ceil = self.sequential(), self.ceiling(procs)
                got = b.guard(name, impl, once)
                if got is None or not self.checked(name, impl, got[1]):
                    return
                samples.append(Sample(got[0], got[1], seq, ceil))
            x = h.median(s.seq / s.wall for s in samples)
            if procs > 1 or x <= h.NOISE:
                break
            b.note(
                f"{name} [{impl}] procs=1: {x:.2f}x of sequential is noise (> {h.NOISE}x)"
                + ("; measured again" if attempt < 2 else "; kept after 3 tries")
            )
        self.runs.append((name, impl, procs, samples))

    def checked(self, name: str, impl: str, jobs: list[Job]) -> bool:
        """Every job done exactly once, with the right value."""
        got = sorted((j[0], j[1]) for j in jobs)
        return self.b.check(
            got == list(enumerate(self.expect)),
            name,
            impl,
            f"{len(jobs)} results for {self.njobs} jobs, {len({j[0] for j in jobs})} distinct, "
            f"{sum(1 for n, v in got if n < self.njobs and self.expect[n] != v)} wrong values",
        )

    def spread(self, name: str, impl: str, procs: int, runs: list[Sample], per: str) -> None:
        """A row for the busiest P's (per="where") or worker's (per="worker") share of the jobs."""
        idx = 2 if per == "where" else 3
        counts = [collections.Counter(j[idx] for j in r.jobs) for r in runs]
        shares = [100.0 * max(c.values()) / self.njobs for c in counts]
        if per == "where":
            what = "P" if impl == "parago" else "worker process"
            note = f"jobs per {what}: " + " ".join(str(_per_slot(c, procs, impl == "parago")) for c in counts)
        else:
            what = "worker"
            note = "jobs per worker: " + " ".join(str(_per_slot(c, self.workers, True)) for c in counts)
        self.b.add_samples(name, impl, f"busiest {what} share procs={procs}", shares, "%", note=note, better="lower")

    def measure_pattern(self, pattern: str, procs: int) -> None:
        def once() -> tuple[float, list[Job]]:
            return h.pg_run(_pattern_main, pattern, self.njobs, self.iters, self.workers, 1, procs=procs)[0]

        self.interleaved(pattern, "parago", procs, once)

    def measure_peers(self, procs: int) -> None:
        args = [(n, self.iters) for n in range(self.njobs)]
        for impl, fn in PEER_FNS.items():
            self.interleaved("peers", impl, procs, lambda fn=fn: fn(args, procs))

    def report(self) -> None:
        b = self.b
        t_seq = h.median(self.seq)
        b.add_samples(
            "sequential",
            "sequential (1 process)",
            "wall",
            self.seq,
            "s",
            note=f"{self.njobs} jobs of {self.job_ms:g} ms ({self.iters:,} iterations), one next to every "
            f"run (each speedup is over its own); median {t_seq:.3f} s",
        )
        by_key = {}
        ordered = sorted(self.runs, key=lambda r: r[2])
        ceilings: dict[tuple[str, int], list[float]] = {}
        for name, impl, p, runs in ordered:
            speedups = [r.seq / r.wall for r in runs]
            by_key[(name, impl, p)] = b.add_samples(name, impl, f"speedup procs={p}", speedups, "x")
            ceilings.setdefault((name, p), []).extend(r.seq / r.ceil for r in runs)
        for (name, p), xs in ceilings.items():
            # the ceiling line beside every pattern: the table's "parago vs this row" is the fraction of it
            b.add_samples(name, h.CEILING, f"speedup procs={p}", xs, "x", note="measured next to each run")
        for name, impl, p, runs in ordered:
            b.add_samples(
                name,
                impl,
                f"of ceiling procs={p}",
                [r.ceil / r.wall for r in runs],
                "x",
                note="speedup / the ceiling measured next to it (1.0 = what raw processes reach)",
            )
        go_args = [
            "-bench",
            "patterns",
            "-jobs",
            str(self.njobs),
            "-job-ms",
            str(self.job_ms),
            "-workers",
            str(self.workers),
            "-procs-list",
            ",".join(map(str, self.plist)),
        ]
        for pattern in PATTERNS:
            if b.want(pattern):
                b.add_go(pattern, "patterns", go_args, note="the same shape; over Go's own sequential loop")
        b.flush()
        for name, impl, p, runs in ordered:
            if p > 1 and impl != "ThreadPoolExecutor.map":  # threads: one process
                self.spread(name, impl, p, runs, "where")
            if name in WORKER_SHAPES:
                self.spread(name, impl, p, runs, "worker")
        b.flush()
        for (_, impl, p), row in by_key.items():
            peer = by_key.get(("peers", "multiprocessing.Pool.map", p))
            if impl == "parago" and p > 1 and peer is not None:
                b.compare(f"procs={p}", row, peer)


def _per_slot(c: collections.Counter, n: int, dense: bool) -> list[int]:
    """Counts in slot order: Ps/workers 0..n-1 (dense), else the pids' counts, largest first."""
    if dense:
        return [c.get(i, 0) for i in range(n)]
    return sorted(c.values(), reverse=True)


def _procs_list(b: h.Bench) -> list[int]:
    if not b.args.procs_list:
        return list(range(1, b.procs + 1))
    try:
        ps = sorted({int(x) for x in b.args.procs_list.split(",") if x.strip()})
    except ValueError:
        raise SystemExit(f"--procs-list must be comma-separated ints, got {b.args.procs_list!r}") from None
    if not ps or ps[0] < 1:
        raise SystemExit("--procs-list values must be >= 1")
    return ps


# ----------------------------------------------------------------------
# hog_timer


def _hog(seconds: float, started: pg.atomic.Int64) -> None:
    started.add(1)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # pure Python: no parago call to yield at
        pass


def _hog_main(nhogs: int, hog_s: float, nap: float) -> dict:
    pg.sleep(0.05)  # every P up
    started = pg.atomic.Int64()
    for _ in range(nhogs):
        pg.go(_hog, hog_s, started)
    t_end = time.perf_counter() + hog_s - 0.1
    late = []
    while not late or time.perf_counter() + nap < t_end:
        t0 = time.perf_counter()
        pg.sleep(nap)
        late.append(time.perf_counter() - t0 - nap)
    return {"late": late, "started": started.load()}


def bench_hog_timer(b: h.Bench, plist: list[int]) -> None:
    name = "hog_timer"
    hog_s = b.size(1.5, 0.4)
    nap = 0.05
    print(f"\n## hog_timer: main's pg.sleep({nap}) while one pure-Python {hog_s} s hog per P spins, procs {plist}")
    for p in plist:
        runs = b.guard(
            name, "parago", lambda p=p: [h.pg_run(_hog_main, p, hog_s, nap, procs=p) for _ in range(b.repeat)]
        )
        if not runs:
            continue
        for r in runs:
            b.check(r["started"] == p, name, "parago", f"{r['started']} of {p} hogs had started when main woke")
        note = f"{p} hog(s); sleeps per run: {[len(r['late']) for r in runs]}"
        b.add_samples(name, "parago", f"worst delay procs={p}", [1000 * max(r["late"]) for r in runs], "ms", note=note)
        b.add_samples(
            name, "parago", f"median delay procs={p}", [1000 * h.median(r["late"]) for r in runs], "ms", note=note
        )
    b.add_go(
        name, "patterns", ["-bench", "hog", "-hog-ms", str(int(hog_s * 1000)), "-procs-list", ",".join(map(str, plist))]
    )
    b.flush()


# ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    def extra(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--procs-list", default=None, help="comma-separated procs values (default 1..--procs)")
        ap.add_argument("--jobs", type=int, default=None, help="jobs per pattern (default 96; --quick 24)")
        ap.add_argument("--job-ms", type=float, default=5.0, help="duration of one job (default 5 ms)")
        ap.add_argument("--workers", type=int, default=4, help="workers of the pool/pipeline, errgroup limit (4)")

    b = h.Bench("patterns", __doc__.splitlines()[0], NAMES, argv, extra=extra)
    if b.args.jobs is not None and b.args.jobs < 1 or b.args.workers < 1 or b.args.job_ms <= 0:
        raise SystemExit("--jobs and --workers must be >= 1, --job-ms > 0")
    r = Run(b)
    wanted = [p for p in PATTERNS if b.want(p)]
    if wanted or b.want("peers"):
        print(
            f"\n# {r.njobs} jobs of {r.job_ms:g} ms ({r.iters:,} iterations), {r.workers} workers, procs {r.plist}",
            flush=True,
        )
        for pattern in wanted:
            print(f"\n## {pattern}: procs {r.plist}", flush=True)
            for p in r.plist:
                r.measure_pattern(pattern, p)
        if b.want("peers"):
            print(f"\n## peers: {', '.join(PEER_FNS)}, procs {r.plist}", flush=True)
            for p in r.plist:
                r.measure_peers(p)
        r.report()
    if b.want("hog_timer"):
        bench_hog_timer(b, r.plist)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
