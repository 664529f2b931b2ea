"""The seed's §6.1 profiling tool chain: a CPU profile, a block profile and memory per P.

A small job system with a known shape, so the profiles have something to
find: workers on every P take items from a channel, spend most of their
CPU in ``hot_work`` and a little in ``light_work``, then record the result
in a shared total under one ``pg.Mutex`` (where they queue up).

* CPU profile: ``parago run --cpuprofile cpu.out`` samples every P and
  merges them into one pstats file (and ``cpu.out.svg``, a flame graph).
  After the run this program prints the top functions by own time and
  checks that ``hot_work`` leads.  ``python3 -m pstats cpu.out`` explores
  it further.
* Block profile: the runtime has none yet, so the program measures its
  own: the time its goroutines spent waiting in ``mu.lock()`` and in the
  channel receive, by call site (what ``go test -blockprofile`` reports).
* Memory: the peak RSS of each P process.

It also checks the work itself: the shared total equals the sum of every
item's result.

Go original (§6.1)::

    go test -cpuprofile=cpu.out     && go tool pprof -http=:8080 cpu.out
    go test -memprofile=mem.out     && go tool pprof -http=:8081 mem.out
    go test -blockprofile=block.out && go tool pprof block.out

Run::

    parago run --cpuprofile cpu.out examples/profiles.py [--items 400]
    python3 examples/profiles.py --cpuprofile cpu.out   # the same, without the parago command
    python3 -m pstats cpu.out
"""

import argparse
import os
import pstats
import resource
import struct
import time

import parago as pg

ROUNDS = 20_000


def hot_work(x):
    """Most of the CPU: a pure-Python LCG."""
    h = x
    for _ in range(ROUNDS):
        h = (h * 1103515245 + 12345) & 0xFFFFFFFF
    return h


def light_work(h):
    return sum(int(c) for c in str(h))


class Waits:
    """Nanoseconds spent waiting and the number of waits, per blocking site."""

    SITES = ("sync.Mutex.Lock in record()", "chan receive in worker()")

    def __init__(self):
        self.ns = {s: pg.atomic.Int64() for s in self.SITES}
        self.count = {s: pg.atomic.Int64() for s in self.SITES}

    def add(self, site, t0):
        self.ns[site].add(time.perf_counter_ns() - t0)
        self.count[site].add(1)


def record(total, mu, value, waits):
    t0 = time.perf_counter_ns()
    mu.lock()
    waits.add(Waits.SITES[0], t0)
    try:
        struct.pack_into("<q", total, 0, struct.unpack_from("<q", total, 0)[0] + value)
        pg.sleep(0.0002)  # a slow critical section: the others queue on the lock
    finally:
        mu.unlock()


def worker(items, total, mu, waits, done):
    while True:
        t0 = time.perf_counter_ns()
        item, ok = items.recv_ok()
        waits.add(Waits.SITES[1], t0)
        if not ok:
            break
        h = hot_work(item)
        record(total, mu, h + light_work(h), waits)
    done.send((os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


def main(n, workers):
    items, done = pg.Chan(16), pg.Chan(workers)
    total, mu, waits = pg.Buffer(8), pg.Mutex(), Waits()
    t0 = time.perf_counter()
    for _ in range(workers):
        pg.go(worker, items, total, mu, waits, done)
    for i in range(n):
        items.send(i)
    items.close()
    rss = dict(done.recv() for _ in range(workers))  # pid -> peak RSS, one entry per P used
    secs = time.perf_counter() - t0
    got = struct.unpack_from("<q", total, 0)[0]
    want = sum(h + light_work(h) for h in map(hot_work, range(n)))
    assert got == want, f"the shared total is {got}, expected {want}: an update was lost"
    block = [(s, waits.count[s].load(), waits.ns[s].load() / 1e6) for s in Waits.SITES]
    return pg.gomaxprocs(), secs, block, rss


def report_cpu(path):
    stats = pstats.Stats(path)
    own = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])  # (file, line, name) -> (cc, nc, tottime, ...)
    total = sum(v[2] for _, v in own) or 1.0
    print(f"CPU profile {path} ({total:.2f} s sampled over every P; flame graph {path}.svg), top by own time:")
    for (file, line, name), v in own[:5]:
        print(f"  {v[2] / total:6.1%}  {name}  {os.path.basename(file)}:{line}")
    mine = [name for (file, _, name), _ in own if os.path.basename(file) == os.path.basename(__file__)]
    assert mine and mine[0] == "hot_work", f"expected hot_work to lead this program's functions, got {mine[:3]}"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--cpuprofile", metavar="FILE", help="write a CPU profile (as parago run --cpuprofile)")
    args = ap.parse_args()
    if args.cpuprofile and not os.environ.get("PARAGO_CPUPROFILE"):
        os.environ["PARAGO_CPUPROFILE"] = os.path.abspath(args.cpuprofile)  # what parago run --cpuprofile sets
    procs, secs, block, rss = pg.run(main, args.items, args.workers)
    print(f"{args.items} items, {args.workers} workers, procs={procs}: {secs:.2f} s; shared total checked")
    print("block profile (waits measured by the program):")
    for site, count, ms in block:
        print(f"  {ms:9.1f} ms  {count:6} waits  {site}")
    print("memory: " + ", ".join(f"pid {pid} peak RSS {b / 2**20:.0f} MiB" for pid, b in sorted(rss.items())))
    if os.environ.get("PARAGO_CPUPROFILE"):
        report_cpu(os.environ["PARAGO_CPUPROFILE"])
    else:
        print("(no CPU profile: run with `parago run --cpuprofile cpu.out` or --cpuprofile cpu.out)")
