"""Spawning, parking and CPU scaling: parago against processes, threads and Go.

    spawn        the seed's BenchmarkScheduler: N goroutines each doing an
                 atomic add, then a WaitGroup wait (default N = 1,000,000;
                 --quick 20,000): wall time, goroutines/s, peak RSS summed
                 over every P; beside ProcessPoolExecutor.submit and
                 multiprocessing.Pool.apply_async one task at a time
                 (scaled down), Pool.map (batched, for reference) and Go.
    park         100,000 goroutines parked on one WaitGroup (--quick
                 10,000): bytes per parked goroutine (summed RSS delta over
                 the Ps; PSS too), beside a bare greenlet, an asyncio task
                 (uvloop) and Go.  Each run is a fresh interpreter.
    cpu_scaling  64 pure-Python fib(27) goroutines (--quick fib(22)) at
                 procs 1..nproc (--procs-list 1,2,4): speedup over
                 sequential, beside ThreadPoolExecutor and
                 multiprocessing.Pool (and Go's own speedup).

Run: python3 benchmarks/bench_spawn.py [--quick] [--repeat N] [--procs N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402

NAMES = ["spawn", "park", "cpu_scaling"]
MiB = 1 << 20


# ----------------------------------------------------------------------
# spawn


def _spawn_g(counter: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    counter.add(1)
    wg.done()


def _spawn_main(n: int) -> dict:
    counter = pg.atomic.Int64()
    wg = pg.WaitGroup()
    wg.add(n)
    pg.sleep(0.05)  # every P up
    sampler = h.RssSampler().start()
    t0 = time.perf_counter()
    for _ in range(n):
        pg.go(_spawn_g, counter, wg)
    wg.wait()
    dt = time.perf_counter() - t0
    peak = sampler.stop()
    return {"wall": dt, "peak": peak, "base": sampler.start_rss, "count": counter.load()}


def _task() -> int:
    return 1


def _pool_warm(n: int) -> int:
    return n


def _ppe_submit(n: int, procs: int) -> dict:
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=procs, mp_context=ctx) as ex:
        list(ex.map(_pool_warm, range(4 * procs)))
        sampler = h.RssSampler().start()
        t0 = time.perf_counter()
        futs = [ex.submit(_task) for _ in range(n)]
        total = sum(f.result() for f in futs)
        dt = time.perf_counter() - t0
        peak = sampler.stop()
    return {"wall": dt, "peak": peak, "count": total}


def _pool_apply_async(n: int, procs: int) -> dict:
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(procs)
    try:
        pool.map(_pool_warm, range(4 * procs))
        sampler = h.RssSampler().start()
        t0 = time.perf_counter()
        res = [pool.apply_async(_task) for _ in range(n)]
        total = sum(r.get() for r in res)
        dt = time.perf_counter() - t0
        peak = sampler.stop()
    finally:
        pool.close()
        pool.join()
    return {"wall": dt, "peak": peak, "count": total}


def _pool_map(n: int, procs: int) -> dict:
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(procs)
    try:
        pool.map(_pool_warm, range(4 * procs))
        t0 = time.perf_counter()
        total = sum(pool.map(_pool_warm, range(n)))
        dt = time.perf_counter() - t0
    finally:
        pool.close()
        pool.join()
    return {"wall": dt, "count": total}


def bench_spawn(b: h.Bench) -> None:
    name = "spawn"
    n = b.size(1_000_000, 20_000)
    n_peer = min(n, b.size(20_000, 2_000))
    procs = b.procs
    print(f"\n## spawn: {n:,} goroutines (atomic add + WaitGroup), procs={procs}", flush=True)

    runs = b.guard(name, "parago", lambda: [h.pg_run(_spawn_main, n, procs=procs) for _ in range(b.repeat)])
    if runs:
        for r in runs:
            b.check(r["count"] == n, name, "parago", f"counter {r['count']:,} after {n:,} goroutines")
        walls = [r["wall"] for r in runs]
        b.add_samples(name, "parago", "wall", walls, "s")
        b.add_samples(name, "parago", "rate", [n / w for w in walls], "tasks/s")
        b.add_samples(name, "parago", "peak RSS (all Ps)", [r["peak"] / MiB for r in runs], "MiB")
        b.add_samples(name, "parago", "RSS growth (all Ps)", [(r["peak"] - r["base"]) / MiB for r in runs], "MiB")

    scaled = f"scaled down: {n_peer:,} tasks" if n_peer < n else None
    for impl, fn in (
        ("ProcessPoolExecutor.submit", _ppe_submit),
        ("multiprocessing.Pool.apply_async", _pool_apply_async),
    ):
        runs = b.guard(name, impl, lambda fn=fn: [fn(n_peer, procs) for _ in range(b.repeat)])
        if runs:
            for r in runs:
                b.check(r["count"] == n_peer, name, impl, f"{r['count']} results of {n_peer}")
            b.add_samples(name, impl, "rate", [n_peer / r["wall"] for r in runs], "tasks/s", note=scaled)
            b.add_samples(name, impl, "peak RSS (all Ps)", [r["peak"] / MiB for r in runs], "MiB", note=scaled)
    runs = b.guard(name, "multiprocessing.Pool.map", lambda: [_pool_map(n, procs) for _ in range(b.repeat)])
    if runs:
        b.add_samples(
            name,
            "multiprocessing.Pool.map",
            "rate",
            [n / r["wall"] for r in runs],
            "tasks/s",
            note="batched in chunks: not one task at a time",
        )
    b.add_go(name, "spawn", ["-bench", "spawn", "-n", str(n), "-procs", str(procs)])
    b.flush()


# ----------------------------------------------------------------------
# park


def _park_g(gate: pg.WaitGroup, started: pg.atomic.Int64, fin: pg.WaitGroup) -> None:
    started.add(1)
    gate.wait()
    fin.done()


def _park_main(n: int) -> dict:
    gate, fin = pg.WaitGroup(), pg.WaitGroup()
    gate.add(1)
    fin.add(n)
    started = pg.atomic.Int64()
    pg.sleep(0.2)  # every P up and idle
    base, base_pss = h.rss_tree(), h.rss_tree(pss=True)
    for _ in range(n):
        pg.go(_park_g, gate, started, fin)
    deadline = time.perf_counter() + 120
    while started.load() < n and time.perf_counter() < deadline:
        pg.sleep(0.01)
    pg.sleep(0.1)  # the last ones reach gate.wait()
    parked = started.load()
    after, after_pss = h.rss_tree(), h.rss_tree(pss=True)
    gate.done()
    fin.wait()
    return {"rss": (after - base) / n, "pss": (after_pss - base_pss) / n, "parked": parked}


def _park_parago(n: int, procs: int) -> dict:
    return pg.run(_park_main, n, procs=procs)


def _park_greenlet(n: int) -> dict:
    import greenlet

    hub = greenlet.getcurrent()

    def body() -> None:
        hub.switch()

    base = h.rss_tree()
    gs = []
    for _ in range(n):
        g = greenlet.greenlet(body)
        g.switch()
        gs.append(g)
    after = h.rss_tree()
    for g in gs:
        g.switch()
    return {"rss": (after - base) / n, "parked": n}


def _park_asyncio(n: int) -> dict:
    import asyncio

    import uvloop

    async def body(ev: asyncio.Event) -> None:
        await ev.wait()

    async def amain() -> dict:
        ev = asyncio.Event()
        base = h.rss_tree()
        tasks = [asyncio.ensure_future(body(ev)) for _ in range(n)]
        await asyncio.sleep(0.05)
        after = h.rss_tree()
        ev.set()
        await asyncio.gather(*tasks)
        return {"rss": (after - base) / n, "parked": n}

    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(amain())
    finally:
        loop.close()


def bench_park(b: h.Bench) -> None:
    name = "park"
    n = b.size(100_000, 10_000)
    procs = b.procs
    print(f"\n## park: {n:,} goroutines parked on one WaitGroup, procs={procs} (fresh interpreter per run)", flush=True)
    runs = b.guard(name, "parago", lambda: [h.in_fresh_process(_park_parago, n, procs) for _ in range(b.repeat)])
    if runs:
        for r in runs:
            b.check(r["parked"] == n, name, "parago", f"{r['parked']:,} of {n:,} goroutines reached the WaitGroup")
        b.add_samples(name, "parago", "bytes/goroutine (RSS)", [r["rss"] for r in runs], "B")
        b.add_samples(name, "parago", "bytes/goroutine (PSS)", [r["pss"] for r in runs], "B")
    for impl, fn in (
        ("greenlet (bare, 1 process)", _park_greenlet),
        ("asyncio task (uvloop, 1 process)", _park_asyncio),
    ):
        runs = b.guard(name, impl, lambda fn=fn: [h.in_fresh_process(fn, n) for _ in range(b.repeat)])
        if runs:
            b.add_samples(name, impl, "bytes/goroutine (RSS)", [r["rss"] for r in runs], "B")
    b.add_go(name, "spawn", ["-bench", "park", "-n", str(n), "-procs", str(procs)])
    b.flush()


# ----------------------------------------------------------------------
# cpu_scaling


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def _fib_g(n: int, out: pg.Chan) -> None:
    out.send(fib(n))


def _cpu_main(n: int, k: int, repeat: int) -> list[tuple[float, int]]:
    out = []
    for _ in range(repeat):
        ch = pg.Chan(k)
        t0 = time.perf_counter()
        for _ in range(k):
            pg.go(_fib_g, n, ch)
        total = sum(ch.recv() for _ in range(k))
        out.append((time.perf_counter() - t0, total))
    return out


def _cpu_threads(n: int, k: int, procs: int) -> tuple[float, int]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=procs) as ex:
        t0 = time.perf_counter()
        total = sum(ex.map(fib, [n] * k))
        return time.perf_counter() - t0, total


def _cpu_pool(n: int, k: int, procs: int) -> tuple[float, int]:
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(procs)
    try:
        pool.map(_pool_warm, range(4 * procs))
        t0 = time.perf_counter()
        total = sum(pool.map(fib, [n] * k, chunksize=1))
        return time.perf_counter() - t0, total
    finally:
        pool.close()
        pool.join()


def _procs_list(b: h.Bench) -> list[int]:
    if b.args.procs_list:
        try:
            ps = sorted({int(x) for x in b.args.procs_list.split(",") if x.strip()})
        except ValueError:
            raise SystemExit(f"--procs-list must be comma-separated ints, got {b.args.procs_list!r}") from None
        if not ps or ps[0] < 1:
            raise SystemExit("--procs-list values must be >= 1")
        return ps
    return list(range(1, b.procs + 1))


def bench_cpu_scaling(b: h.Bench) -> None:
    name = "cpu_scaling"
    n = b.size(27, 22)
    k = 64
    plist = _procs_list(b)
    print(f"\n## cpu_scaling: {k} x fib({n}) in pure Python, procs {plist}", flush=True)
    expect = k * fib(n)
    seq: list[float] = []
    # (impl, procs) -> [(wall, the sequential wall and ceiling measured right before)]
    walls: dict[tuple[str, int], list[tuple[float, float, float]]] = {}

    def sequential() -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            fib(n)
        seq.append(time.perf_counter() - t0)
        return seq[-1]

    impls: list[tuple[str, Callable[[int], tuple[float, int]]]] = [
        ("parago", lambda p: h.pg_run(_cpu_main, n, k, 1, procs=p)[0]),
        ("ThreadPoolExecutor", lambda p: _cpu_threads(n, k, p)),
        ("multiprocessing.Pool", lambda p: _cpu_pool(n, k, p)),
    ]
    # every round: the sequential loop and the ceiling (the same fibs over p
    # raw processes) right before each implementation's run -- the host's
    # speed moves, so each speedup is over the baselines measured next to it
    for p in plist:
        for _ in range(b.repeat):
            for impl, fn in impls:
                t_seq = sequential()
                t_ceil = h.raw_processes(lambda i, m: [fib(n) for _ in range(i, k, m)], p)
                got = b.guard(name, impl, fn, p)
                if got is None:
                    continue
                b.check(got[1] == expect, name, impl, f"sum of fib results {got[1]} != {expect}")
                walls.setdefault((impl, p), []).append((got[0], t_seq, t_ceil))
    b.add_samples(name, "sequential (1 process)", "wall", seq, "s", note="one next to every run: its 1x")
    ceilings: dict[int, list[float]] = {}
    for (impl, p), ts in sorted(walls.items(), key=lambda w: w[0][1]):
        b.add_samples(name, impl, f"speedup procs={p}", [s / t for t, s, _ in ts], "x")
        ceilings.setdefault(p, []).extend(s / c for _, s, c in ts)
    for p, xs in ceilings.items():
        b.add_samples(name, h.CEILING, f"speedup procs={p}", xs, "x", note="measured next to each run")
    for (impl, p), ts in sorted(walls.items(), key=lambda w: w[0][1]):
        b.add_samples(name, impl, f"of ceiling procs={p}", [c / t for t, _, c in ts], "x")
    b.add_go(
        name,
        "spawn",
        ["-bench", "cpu_scaling", "-fib", str(n), "-k", str(k), "-procs-list", ",".join(map(str, plist))],
        note="over Go's own sequential loop",
    )
    b.flush()


def main(argv: list[str] | None = None) -> int:
    def extra(ap: argparse.ArgumentParser) -> None:
        ap.add_argument(
            "--procs-list", default=None, help="cpu_scaling: comma-separated procs values (default 1..--procs)"
        )

    b = h.Bench("spawn", __doc__.splitlines()[0], NAMES, argv, extra=extra)
    for nm, fn in (("spawn", bench_spawn), ("park", bench_park), ("cpu_scaling", bench_cpu_scaling)):
        if b.want(nm):
            fn(b)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
