"""The seed's §4.1 lock-free counter: increment with a compare-and-swap loop.

``AtomicCounter.increment`` loads the value, computes value + 1 and
publishes it with ``compare_and_swap``; when another goroutine got there
first the CAS fails and it retries.  Goroutines on different Ps (different
processes, different cores) really do collide, so the program counts the
failed CAS attempts too.  It checks that the final count is exact -- no
increment lost, none doubled -- and shows how the work spread over the Ps
and what a plain ``add`` (one atomic instruction, no retry) costs beside it.

Go original (§4.1)::

    type AtomicCounter struct{ value int64 }

    func (c *AtomicCounter) Increment() {
        for {
            old := atomic.LoadInt64(&c.value)
            new := old + 1
            if atomic.CompareAndSwapInt64(&c.value, old, new) {
                return
            }
        }
    }

Run::

    python3 examples/cas_counter.py [--goroutines 8] [--per 20000]
    parago run --procs 2 examples/cas_counter.py --per 5000
"""

import argparse
import os
import time

import parago as pg


class AtomicCounter:
    """A counter on a shared int64; copies of it (one per goroutine) name the same int64."""

    def __init__(self):
        self.value = pg.atomic.Int64()

    def increment(self):
        """Add one; returns how many CAS attempts failed before it succeeded."""
        failed = 0
        while True:
            old = self.value.load()
            if self.value.compare_and_swap(old, old + 1):
                return failed
            failed += 1


def cas_worker(counter, per, out):
    failed = 0
    for _ in range(per):
        failed += counter.increment()
    out.send((os.getpid(), failed))


def add_worker(value, per, out):
    for _ in range(per):
        value.add(1)
    out.send((os.getpid(), 0))


def run_workers(worker, target, goroutines, per):
    out = pg.Chan(goroutines)
    t0 = time.perf_counter()
    for _ in range(goroutines):
        pg.go(worker, target, per, out)
    reports = [out.recv() for _ in range(goroutines)]
    return time.perf_counter() - t0, reports


def main(goroutines, per):
    counter = AtomicCounter()
    cas_secs, reports = run_workers(cas_worker, counter, goroutines, per)
    plain = pg.atomic.Int64()
    add_secs, _ = run_workers(add_worker, plain, goroutines, per)
    per_p = {}
    for pid, _ in reports:
        per_p[pid] = per_p.get(pid, 0) + per
    failed = sum(f for _, f in reports)
    return pg.gomaxprocs(), counter.value.load(), plain.load(), failed, per_p, cas_secs, add_secs


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--goroutines", type=int, default=8)
    ap.add_argument("--per", type=int, default=20_000, help="increments per goroutine")
    args = ap.parse_args()
    procs, value, plain, failed, per_p, cas_secs, add_secs = pg.run(main, args.goroutines, args.per)
    want = args.goroutines * args.per
    print(
        f"{args.goroutines} goroutines x {args.per:,} CAS increments on {len(per_p)} of {procs} P(s): "
        f"count = {value:,} (expected {want:,})"
    )
    print(f"  failed CAS attempts (another goroutine got there first): {failed:,}")
    for pid, n in sorted(per_p.items()):
        print(f"  pid {pid}: {n:,} increments")
    n = want
    print(f"  CAS loop {cas_secs / n * 1e9:,.0f} ns/increment; atomic add {add_secs / n * 1e9:,.0f} ns/increment")
    assert value == want and plain == want, f"lost or doubled increments: cas={value} add={plain} want={want}"
