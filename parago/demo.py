"""parago demo: Go's concurrency model on every core, in four short acts.

1. all cores busy: 2 goroutines per P burn pure-Python CPU while main draws
   a live CPU bar per P process (psutil; redrawn in place on a terminal,
   one plain line a second into a pipe or a file), then the work each P did;
2. channels across Ps: a pipeline (source -> workers -> sink, closing as in
   the seed's section 2.3) and Go's concurrent prime sieve (a chain of one
   filter goroutine per prime), with the items/numbers each P handled;
   this act runs under the execution tracer (PARAGO_TRACE, what
   ``parago run --trace`` sets) and is drawn as an HTML picture;
3. the speedup table: the same batch of fib(n) goroutines at procs=1 and at
   every core count up to the usable CPUs, then the same job beside threads
   (one GIL) and multiprocessing.Pool;
4. where the trace picture is.

Every act checks its results (every value exactly once, the primes right)
and raises AssertionError otherwise.  ``--quick`` shrinks every size (for
tests and slow machines); ``--procs N`` caps the Ps.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import psutil

import parago as pg


@dataclass(frozen=True)
class Sizes:
    busy_s: float  # act 1: seconds every core burns
    items: int  # act 2: items through the pipeline
    sieve_limit: int  # act 2: primes up to this through the sieve
    n: int  # act 3: fib(n) per goroutine
    goroutines: int  # act 3: goroutines per batch


FULL = Sizes(busy_s=3.0, items=20_000, sieve_limit=2_000, n=27, goroutines=32)
QUICK = Sizes(busy_s=1.0, items=4_000, sieve_limit=500, n=23, goroutines=16)


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def _p_pids() -> list[int]:
    """The pid of every P, by P index (main runs on P0; P0 started P1.. in order)."""
    from ._runtime import state

    return [os.getpid(), *(proc.pid for proc in state.rt.sup.procs)]


def _meters(pids: list[int]) -> list[psutil.Process | None]:
    out: list[psutil.Process | None] = []
    for pid in pids:
        try:
            m = psutil.Process(pid)
            m.cpu_percent(None)  # the first call only starts the interval
            out.append(m)
        except psutil.Error:
            out.append(None)
    return out


def _cpu(meters: list[psutil.Process | None]) -> list[float]:
    out = []
    for m in meters:
        try:
            out.append(m.cpu_percent(None) if m is not None else 0.0)
        except psutil.Error:
            out.append(0.0)
    return out


def _cpu_seconds(meters: list[psutil.Process | None]) -> list[float]:
    """user + system CPU seconds of each P process so far (0 for one that is gone)."""
    out = []
    for m in meters:
        try:
            out.append(sum(m.cpu_times()[:2]) if m is not None else 0.0)
        except psutil.Error:
            out.append(0.0)
    return out


def _busy_since(meters: list[psutil.Process | None], cpu0: list[float], wall: float) -> list[int]:
    """% of one core each P used since ``cpu0`` was read, ``wall`` seconds ago."""
    return [round(100 * (c - c0) / wall) for c, c0 in zip(_cpu_seconds(meters), cpu0, strict=True)]


def _ps(n: int) -> str:
    return f"{n} P{'s' * (n != 1)}"


def _per_p(counts: list[int]) -> str:
    return "  ".join(f"P{p}: {c:,}" for p, c in enumerate(counts))


# ----------------------------------------------------------------------
# act 1: every core busy, a live CPU bar per P


class CpuBars:
    """Per-P CPU bars: redrawn in place on a terminal, plain lines otherwise."""

    def __init__(self, pids: list[int], out=None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.pids = pids
        enc = (getattr(self.out, "encoding", None) or "ascii").lower()
        self.full, self.empty = ("\u2588", "\u2591") if "utf" in enc else ("#", ".")
        self.cols = 1 if len(pids) <= 8 else 2 if len(pids) <= 32 else 4
        self.width = {1: 40, 2: 20, 4: 10}[self.cols]
        self.drawn = 0
        self.last_plain = 0.0
        self.t0 = time.monotonic()

    def _cell(self, p: int, pct: float) -> str:
        fill = round(min(pct, 100.0) / 100 * self.width)
        return f"P{p:<2} [{self.full * fill}{self.empty * (self.width - fill)}] {pct:3.0f}%"

    def draw(self, pcts: list[float], final: bool = False) -> None:
        """Draw the bars (into a pipe: a line at most once a second, and the final one)."""
        now = time.monotonic()
        if not self.tty:
            if now - self.last_plain >= 1.0 or not self.last_plain or final:
                self.last_plain = now
                line = "  ".join(f"P{p}: {v:3.0f}%" for p, v in enumerate(pcts))
                print(f"   t={now - self.t0:4.1f}s  {line}", file=self.out, flush=True)
            return
        cells = [self._cell(p, v) for p, v in enumerate(pcts)]
        lines = ["   " + "   ".join(cells[i : i + self.cols]) for i in range(0, len(cells), self.cols)]
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        self.out.write(up + "".join(f"\x1b[2K{ln}\n" for ln in lines))
        self.out.flush()
        self.drawn = len(lines)


def _burn(until: float, pmap: dict[int, int], done: pg.Chan) -> None:
    """Burn CPU in small chunks until ``until``; yield the P after each so
    that main (on P0) can draw; report (P, chunks)."""
    chunks = 0
    while time.monotonic() < until:
        fib(16)
        chunks += 1
        pg.gosched()
    done.send((pmap[os.getpid()], chunks))


def act_busy(seconds: float) -> tuple[list[int], list[int], list[int]]:
    """Main of act 1: (burners per P, chunks of work per P, CPU % of one core per P)."""
    pids = _p_pids()
    pmap = {pid: p for p, pid in enumerate(pids)}
    meters = _meters(pids)
    k = 2 * len(pids)
    done = pg.Chan(k)
    cpu0, t0 = _cpu_seconds(meters), time.perf_counter()
    until = time.monotonic() + seconds
    for _ in range(k):
        pg.go(_burn, until, pmap, done)
    bars = CpuBars(pids)
    chunks, burners = [0] * len(pids), [0] * len(pids)
    got = 0
    ticker = pg.Ticker(0.25)
    try:
        while got < k:  # select { case r := <-done: ...; case <-ticker.C: draw }
            i, v, _ = pg.select(pg.Recv(done), pg.Recv(ticker.c))
            if i == 0:
                chunks[v[0]] += v[1]
                burners[v[0]] += 1
                got += 1
            else:
                bars.draw(_cpu(meters))
    finally:
        ticker.stop()
    bars.draw(_cpu(meters), final=True)  # the last slice of the act, also when no tick got through
    return burners, chunks, _busy_since(meters, cpu0, time.perf_counter() - t0)


# ----------------------------------------------------------------------
# act 2: a pipeline and the prime sieve, across Ps


def _square_sum(v: int) -> int:
    """A few microseconds of pure-Python work per pipeline item."""
    return sum(v * j for j in range(40))


def _pl_source(src: pg.Chan, n: int) -> None:
    for i in range(n):
        src.send(i)
    src.close()


def _pl_worker(src: pg.Chan, dst: pg.Chan, pmap: dict[int, int], wg: pg.WaitGroup) -> None:
    p = pmap[os.getpid()]
    for v in src:
        dst.send((p, _square_sum(v)))
    wg.done()


def _pl_closer(wg: pg.WaitGroup, dst: pg.Chan) -> None:
    wg.wait()
    dst.close()


def _pipeline(n: int, pmap: dict[int, int]) -> tuple[float, list[int]]:
    """source -> 2 workers per P -> sink (main): (seconds, items per P)."""
    src, dst = pg.Chan(256), pg.Chan(256)
    wg = pg.WaitGroup()
    t0 = time.perf_counter()
    pg.go(_pl_source, src, n)
    for _ in range(max(4, 2 * len(pmap))):
        wg.add(1)
        pg.go(_pl_worker, src, dst, pmap, wg)
    pg.go(_pl_closer, wg, dst)
    per_p = [0] * len(pmap)
    total = 0
    for p, v in dst:
        per_p[p] += 1
        total += v
    wall = time.perf_counter() - t0
    assert sum(per_p) == n, f"pipeline: {sum(per_p)} items arrived, {n} sent"
    assert total == sum(_square_sum(i) for i in range(n)), "pipeline: every item exactly once"
    return wall, per_p


def _generate(ch: pg.Chan, limit: int) -> None:
    for i in range(2, limit + 1):
        ch.send(i)
    ch.close()


def _filter(src: pg.Chan, dst: pg.Chan, prime: int, pmap: dict[int, int], tested: list, filters: list) -> None:
    """Pass on what ``prime`` does not divide; close dst when src is done."""
    n = 0
    for v in src:
        n += 1
        if v % prime:
            dst.send(v)
    p = pmap[os.getpid()]
    tested[p].add(n)
    filters[p].add(1)
    dst.close()  # after the adds: main sees the end only once every filter has counted


def _sieve(limit: int, pmap: dict[int, int]) -> tuple[float, list[int], list[int], list[int]]:
    """Go's concurrent prime sieve, ended by closing instead of running forever:
    (seconds, primes, filter goroutines per P, numbers tested per P)."""
    tested = [pg.atomic.Int64() for _ in pmap]
    filters = [pg.atomic.Int64() for _ in pmap]
    t0 = time.perf_counter()
    ch = pg.Chan(32)
    pg.go(_generate, ch, limit)
    primes = []
    while True:
        prime, ok = ch.recv_ok()
        if not ok:
            break
        primes.append(prime)
        nxt = pg.Chan(32)
        pg.go(_filter, ch, nxt, prime, pmap, tested, filters)
        ch = nxt
    wall = time.perf_counter() - t0
    expect = [i for i in range(2, limit + 1) if all(i % d for d in range(2, int(i**0.5) + 1))]
    assert primes == expect, f"sieve: {len(primes)} primes, expected {len(expect)}"
    return wall, primes, [f.load() for f in filters], [t.load() for t in tested]


def act_channels(items: int, limit: int) -> dict:
    """Main of act 2: the pipeline, then the sieve."""
    pids = _p_pids()
    pmap = {pid: p for p, pid in enumerate(pids)}
    pl_wall, pl_per_p = _pipeline(items, pmap)
    sv_wall, primes, filters, tested = _sieve(limit, pmap)
    return {
        "pipeline": (pl_wall, pl_per_p),
        "sieve": (sv_wall, primes, filters, tested),
    }


# ----------------------------------------------------------------------
# act 3: the speedup table


def _fib_g(n: int, results: pg.Chan) -> None:
    results.send(fib(n))


def batch(n: int, goroutines: int) -> tuple[float, list[int], int]:
    """Main of act 3: ``goroutines`` x fib(n); (wall, CPU % of one core per P, sum)."""
    results = pg.Chan(goroutines)
    meters = _meters(_p_pids())
    cpu0 = _cpu_seconds(meters)
    t0 = time.perf_counter()
    for _ in range(goroutines):
        pg.go(_fib_g, n, results)
    total = 0
    for _ in range(goroutines):
        total += results.recv()
    wall = time.perf_counter() - t0
    return wall, _busy_since(meters, cpu0, wall), total


def _peer_wall(kind: str, n: int, goroutines: int, workers: int) -> float:
    """The same job without parago: a plain loop, threads or a process pool
    (the pool's start-up excluded, as parago's P start-up is)."""
    if kind == "loop":
        t0 = time.perf_counter()
        total = sum(fib(n) for _ in range(goroutines))
    elif kind == "threads":
        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            t0 = time.perf_counter()
            total = sum(ex.map(fib, [n] * goroutines))
    else:
        with multiprocessing.get_context().Pool(workers) as pool:
            pool.map(abs, range(4 * workers))
            t0 = time.perf_counter()
            total = sum(pool.map(fib, [n] * goroutines, chunksize=1))
    wall = time.perf_counter() - t0
    assert total == goroutines * fib(n), f"{kind}: wrong sum"
    return wall


def act_speedup(counts: list[int], n: int, goroutines: int) -> None:
    print(f"{'procs':>5}  {'wall s':>7}  {'speedup':>7}  CPU busy per P (% of one core)")
    base = None
    walls = {}
    expected = goroutines * fib(n)
    for c in counts:
        wall, busy, total = pg.run(batch, n, goroutines, procs=c)
        assert total == expected, "every goroutine's result arrived exactly once"
        walls[c] = wall
        base = base or wall
        cpus = "  ".join(f"P{i}:{v:>3}%" for i, v in enumerate(busy))
        print(f"{c:>5}  {wall:>7.2f}  {base / wall:>6.2f}x  {cpus}", flush=True)
    top = counts[-1]
    loop = _peer_wall("loop", n, goroutines, 1)
    rows = [
        (f"parago, {_ps(top)} (pg.go + pg.Chan)", walls[top], "goroutines, channels, select, sync across cores"),
        (f"threads (ThreadPoolExecutor({top}))", _peer_wall("threads", n, goroutines, top), "one GIL: one core"),
        (
            f"multiprocessing.Pool({top}).map",
            _peer_wall("pool", n, goroutines, top),
            "processes too, but only map/apply between them",
        ),
    ]
    print(
        f"\n   the same {goroutines} x fib({n}) on {top} worker{'s' * (top > 1)}, speedup over a plain loop "
        f"in one process ({loop:.2f} s):"
    )
    width = max(len(r[0]) for r in rows)
    for label, wall, why in rows:
        print(f"   {label:<{width}}  {loop / wall:>5.2f}x   {why}", flush=True)


# ----------------------------------------------------------------------


def _trace_paths() -> tuple[str, str]:
    d = os.path.join(tempfile.gettempdir(), f"parago-demo-{os.getuid()}")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, "trace.json"), os.path.join(d, "trace.html")


def _traced(fn, *args, procs: int):
    """pg.run(fn, *args) with the execution tracer on (what --trace sets)."""
    trace_json, _ = _trace_paths()
    old = os.environ.get("PARAGO_TRACE")
    os.environ["PARAGO_TRACE"] = trace_json
    try:
        return pg.run(fn, *args, procs=procs)
    finally:
        if old is None:
            os.environ.pop("PARAGO_TRACE", None)
        else:
            os.environ["PARAGO_TRACE"] = old


def main(procs: int | None = None, n: int | None = None, goroutines: int | None = None, quick: bool = False) -> int:
    """Run the four acts; 0 on success (a wrong result raises AssertionError)."""
    from ._runtime.procs import usable_cpus
    from ._runtime.trace import render_html

    sz = QUICK if quick else FULL
    n = n or sz.n
    top = usable_cpus() if procs is None else procs
    if top < 1:
        print(f"parago demo: --procs must be >= 1, got {top}", file=sys.stderr)
        return 2
    goroutines = goroutines or max(sz.goroutines, 2 * top)  # at least 2 per P on a big machine
    print(
        f"parago demo: {_ps(top)} (each P an OS process with its own GIL; {usable_cpus()} usable CPUs), "
        f"Python {sys.version.split()[0]}{', --quick sizes' if quick else ''}\n",
        flush=True,
    )

    print(f"1. all cores busy: {2 * top} goroutines burning pure-Python CPU for {sz.busy_s:g} s", flush=True)
    burners, chunks, busy = pg.run(act_busy, sz.busy_s, procs=top)
    print(f"   CPU per P over the act (% of one core): {'  '.join(f'P{p}: {v}%' for p, v in enumerate(busy))}")
    print(f"   goroutines per P: {_per_p(burners)}")
    print(f"   work done per P (fib(16) chunks): {_per_p(chunks)}\n", flush=True)

    print("2. channels across Ps (traced): a pipeline and the prime sieve", flush=True)
    r = _traced(act_channels, sz.items, sz.sieve_limit, procs=top)
    pl_wall, pl_per_p = r["pipeline"]
    workers = max(4, 2 * top)
    print(
        f"   pipeline source -> {workers} workers -> sink: {sz.items:,} items in {pl_wall:.2f} s "
        f"({sz.items / pl_wall:,.0f} items/s), every item exactly once"
    )
    print(f"   items per P: {_per_p(pl_per_p)}")
    sv_wall, primes, filters, tested = r["sieve"]
    print(
        f"   prime sieve up to {sz.sieve_limit:,}: {len(primes)} primes (..., {', '.join(map(str, primes[-3:]))}) "
        f"through a chain of {len(primes)} filter goroutines in {sv_wall:.2f} s"
    )
    print(f"   filters per P: {_per_p(filters)}")
    print(f"   numbers tested per P: {_per_p(tested)}\n", flush=True)

    counts = sorted({1, *[c for c in (2, 4, 8, 16, 32, 64) if c < top], top})
    print(
        f"3. speedup: {goroutines} goroutines computing fib({n}) in pure Python, on {'1..' * (top > 1)}{_ps(top)}",
        flush=True,
    )
    act_speedup(counts, n, goroutines)

    trace_json, trace_html = _trace_paths()
    render_html(trace_json, trace_html)
    print(f"\n4. trace of act 2: {trace_html}")
    print(f"   (a lane per P, a box per goroutine run; {trace_json} opens in ui.perfetto.dev)")
    print("\nevery P is a process with its own GIL: pure-Python goroutines use every core.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(quick="--quick" in sys.argv[1:]))
