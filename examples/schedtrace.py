"""The seed's §1.3 scheduler trace: watch the Ps work, idle and park goroutines.

A program in three phases, meant to be run with the scheduler trace on
(Go's ``GODEBUG=schedtrace=1000,scheddetail=1``):

1. busy:   4 CPU-bound goroutines per P; every P runs one, the rest wait in
           the run queues (``runqueue=`` / ``[2 3]`` / ``runqsize=``);
2. parked: 50 goroutines block on one channel; the Ps go idle
           (``idleprocs=``) and P0's goroutines show ``status=4(chan receive)``;
3. wake:   closing the channel wakes all 50; they finish.

The phase markers go to stderr, the trace's own stream, so they interleave
with the ``SCHED`` lines.  At the end it checks that every goroutine ran.

Go original (§1.3)::

    GODEBUG=schedtrace=1000,scheddetail=1 go run main.go
    SCHED 0ms: gomaxprocs=8 idleprocs=5 threads=5 ...
      P0: status=1 schedtick=0 syscalltick=0 m=3 runqsize=3 ...

Run::

    parago run --schedtrace 100 --scheddetail examples/schedtrace.py
    PARAGO_DEBUG=schedtrace=100,scheddetail=1 python3 examples/schedtrace.py
    python3 examples/schedtrace.py [--phase-ms 300]   # turns the trace on itself (every 100 ms)
"""

import argparse
import os
import sys
import time

import parago as pg


def phase(text):
    print(f"--- {text}", file=sys.stderr, flush=True)


def burn(n):
    for _ in range(n):
        pass


def spin(n, done):
    """Burn CPU without calling parago: the P is busy, the goroutines behind it wait
    (with preemption they take 10 ms turns; the total work is fixed either way)."""
    burn(n)
    done.send(os.getpid())


def loops_per_ms():
    t0 = time.perf_counter()
    burn(200_000)
    return int(200_000 / ((time.perf_counter() - t0) * 1000))


def parked(gate, wg):
    for _ in gate:  # chan receive until closed
        pass
    wg.done()


def main(phase_ms):
    procs = pg.gomaxprocs()
    busy = 4 * procs
    phase(f"phase 1: {busy} CPU-bound goroutines on {procs} P(s), about {phase_ms // 4} ms of work each")
    done, n = pg.Chan(busy), loops_per_ms() * phase_ms // 4
    for _ in range(busy):
        pg.go(spin, n, done)
    pids = [done.recv() for _ in range(busy)]

    phase("phase 2: 50 goroutines parked on a channel receive, the Ps idle")
    gate, wg = pg.Chan(), pg.WaitGroup()
    wg.add(50)
    for _ in range(50):
        pg.go(parked, gate, wg)
    pg.sleep(phase_ms / 1000)
    live = pg.numgoroutine()

    phase("phase 3: close the channel, all 50 wake up and finish")
    gate.close()
    wg.wait()
    pg.sleep(phase_ms / 4000)
    return procs, busy, len(set(pids)), live


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase-ms", type=int, default=1000, help="length of each phase")
    args = ap.parse_args()
    if "schedtrace" not in os.environ.get("PARAGO_DEBUG", ""):
        os.environ["PARAGO_DEBUG"] = "schedtrace=100,scheddetail=1"  # read by pg.run
    procs, busy, on_ps, live = pg.run(main, args.phase_ms)
    assert live >= 51, f"expected the 50 parked goroutines and main to be live, saw {live}"
    print(f"{busy} busy goroutines ran on {on_ps} of {procs} P(s); 50 parked goroutines woke and finished")
