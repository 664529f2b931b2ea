"""The seed's §1.1 scheduler benchmark: spawn N goroutines, each doing one atomic add.

Shows how cheap a goroutine is in parago: every ``pg.go`` puts a G on the
spawning P's run queue in the shared arena, idle Ps steal from it, and the
goroutines bump one shared ``pg.atomic.Int64``.  Prints the wall time, the
spawn rate and the peak memory summed over every P process (the seed's
"耗时 / 内存占用" table), then checks that the counter is exactly N.

Go original (§1.1)::

    func BenchmarkScheduler(b *testing.B) {
        for i := 0; i < b.N; i++ {
            go func() { atomic.AddInt64(&count, 1) }()
        }
    }

Run::

    python3 examples/spawn_bench.py [-n 1000000]
    parago run --procs 2 examples/spawn_bench.py -n 100000
"""

import argparse
import threading
import time

import psutil

import parago as pg

MiB = 1 << 20


class RssSampler:
    """Peak resident memory of this process and its children (the Ps), sampled every 10 ms."""

    def __init__(self):
        self.me = psutil.Process()
        self.base = self.peak = self.total()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def total(self):
        rss = 0
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                rss += p.memory_info().rss
            except psutil.Error:
                pass  # a P that just exited
        return rss

    def _loop(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, self.total())

    def finish(self):
        self.stop.set()
        self.thread.join()
        return self.base, self.peak


def add_one(count, wg):
    count.add(1)  # atomic.AddInt64(&count, 1)
    wg.done()


def main(n):
    count = pg.atomic.Int64()
    wg = pg.WaitGroup()
    wg.add(n)
    sampler = RssSampler()
    t0 = time.perf_counter()
    for _ in range(n):
        pg.go(add_one, count, wg)
    wg.wait()
    secs = time.perf_counter() - t0
    base, peak = sampler.finish()
    return count.load(), secs, base, peak, pg.gomaxprocs()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200_000, help="goroutines to spawn (the seed's table: 1,000,000)")
    n = ap.parse_args().n
    count, secs, base, peak, procs = pg.run(main, n)
    print(f"spawned {n:,} goroutines (atomic add each) in {secs:.3f} s: {n / secs:,.0f} goroutines/s, procs={procs}")
    print(f"count = {count:,}")
    print(f"{'':12}{'goroutines':>12}{'time':>10}{'memory':>12}")
    print(
        f"{'parago':12}{n:>12,}{secs:>9.2f}s{peak / MiB:>8.0f} MiB  (peak RSS of all Ps, +{(peak - base) / MiB:.0f} MiB)"
    )
    for go, t, mem in (("1.12", 1.2, 2.1), ("1.18", 0.8, 1.7), ("1.20", 0.5, 1.3)):
        print(f"{'Go ' + go:12}{1_000_000:>12,}{t:>9.1f}s{mem:>9.1f} GB   (the seed's table)")
    assert count == n, f"lost increments: count={count}, spawned {n}"
