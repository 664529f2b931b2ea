"""The seed's §6.2 bottleneck: a counter behind one global lock vs a sharded counter.

The same number of increments from goroutines on every P, three ways:

1. ``pg.Mutex`` around a plain int64 in shared memory (the seed's "before":
   every increment takes the one lock, and goroutines on other Ps queue);
2. ``pg.atomic.Int64.add`` (one atomic instruction on one shared cache
   line, which every core fights over);
3. ``pg.atomic.Counter`` (the seed's "after", ready made: one cache-line
   padded shard per P, so an increment touches only its own P's line;
   ``value()`` sums the shards).

Each is timed and each total is checked: exact, nothing lost.

Go original (§6.2)::

    // before
    func increment() { mu.Lock(); counter++; mu.Unlock() }

    // after: a sharded counter
    const shards = 64
    type Counter struct {
        shard [shards]struct {
            value int64
            pad   [128 - 8]byte // cache-line padding
        }
    }
    func (c *Counter) Inc(idx int) { atomic.AddInt64(&c.shard[idx%shards].value, 1) }

Run::

    python3 examples/sharded_counter.py [--goroutines 8] [--per 20000]
    parago run --procs 2 examples/sharded_counter.py --per 5000
"""

import argparse
import os
import struct
import time

import parago as pg


class MutexCounter:
    def __init__(self):
        self.mu = pg.Mutex()
        self.cell = pg.Buffer(8)

    def inc(self):
        with self.mu:
            struct.pack_into("<q", self.cell, 0, struct.unpack_from("<q", self.cell, 0)[0] + 1)

    def value(self):
        return struct.unpack_from("<q", self.cell, 0)[0]


class AtomicCounter:
    def __init__(self):
        self.v = pg.atomic.Int64()

    def inc(self):
        self.v.add(1)

    def value(self):
        return self.v.load()


class ShardedCounter:
    def __init__(self):
        self.c = pg.atomic.Counter()

    def inc(self):
        self.c.add(1)

    def value(self):
        return self.c.value()


def hammer(counter, per, out):
    inc = counter.inc
    for _ in range(per):
        inc()
    out.send(os.getpid())


def measure(counter, goroutines, per):
    out = pg.Chan(goroutines)
    t0 = time.perf_counter()
    for _ in range(goroutines):
        pg.go(hammer, counter, per, out)
    pids = [out.recv() for _ in range(goroutines)]
    return time.perf_counter() - t0, counter.value(), len(set(pids))


def main(goroutines, per):
    rows = []
    for name, cls in (
        ("pg.Mutex + int64 (global lock)", MutexCounter),
        ("pg.atomic.Int64.add", AtomicCounter),
        ("pg.atomic.Counter (sharded per P)", ShardedCounter),
    ):
        secs, value, on_ps = measure(cls(), goroutines, per)
        assert value == goroutines * per, f"{name}: {value} after {goroutines * per} increments"
        rows.append((name, secs, on_ps))
    return pg.gomaxprocs(), rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--goroutines", type=int, default=8)
    ap.add_argument("--per", type=int, default=20_000, help="increments per goroutine")
    args = ap.parse_args()
    procs, rows = pg.run(main, args.goroutines, args.per)
    n = args.goroutines * args.per
    print(f"{args.goroutines} goroutines x {args.per:,} increments = {n:,}, procs={procs}; every total exact")
    base = rows[0][1]
    for name, secs, on_ps in rows:
        print(f"  {name:36} {secs:7.3f} s  {n / secs:11,.0f} inc/s  x{base / secs:<5.1f} on {on_ps} P(s)")
