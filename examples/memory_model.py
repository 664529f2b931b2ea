"""The seed's §3.1-3.2 memory model: what one goroutine can see of another's writes.

The seed's program has f write ``a = 1; b = 2`` while g prints ``b`` then
``a``.  This runs it five ways and counts the outcomes of many runs:

1. plain variables.  A goroutine gets *copies* of what it captures or is
   passed, so f writes its own copy: g prints "0 0" every time, even when
   it starts after f has finished.  The seed's "0 1" and "2 1" cannot be
   observed through ordinary objects at all -- share memory by
   communicating (a channel) or through a shared object.
2. a shared ``pg.Buffer`` with no synchronisation: a real data race; which
   of "0 0", "0 1", "2 1" (or, where the hardware reorders, "2 0") appears
   depends on timing and the P each goroutine runs on.
3-5. the same buffer with the happens-before edges of §3.2 that parago
   guarantees across Ps: a channel send happens before the matching
   receive completes; ``Mutex.unlock`` happens before a later ``lock``
   returns; ``Once.do(fn)`` returns in every caller only after fn ran (once).
   Each must print "2 1" every time; the program checks that.

(``parago run --race examples/memory_model.py`` flags case 1: f mutates
its argument, a write nobody sees.)

Go original (§3.1)::

    var a, b int
    func f() { a = 1; b = 2 }
    func g() { print(b); print(a) }
    // possible outputs: 0 0 / 2 1 / 0 1

Run::

    python3 examples/memory_model.py [--runs 200]
    parago run --procs 2 examples/memory_model.py --runs 50
"""

import argparse
import collections
import functools
import struct

import parago as pg

A, B = 0, 1  # int64 slots of the shared buffer


def store(buf, slot, v):
    struct.pack_into("<q", buf, 8 * slot, v)


def load(buf, slot):
    return struct.unpack_from("<q", buf, 8 * slot)[0]


def show(b, a):
    return f"{b} {a}"


# 1. plain variables: each goroutine has its own copy


class Vars:
    def __init__(self):
        self.a = self.b = 0


def f_copy(v, done):
    v.a = 1
    v.b = 2
    done.send(None)


def g_copy(v, out):
    out.send(show(v.b, v.a))


def run_copies():
    v, done, out = Vars(), pg.Chan(), pg.Chan()
    pg.go(f_copy, v, done)
    done.recv()  # f has finished...
    pg.go(g_copy, v, out)  # ...and g still gets main's v, a copy made now
    return out.recv()


# 2. a shared buffer, no synchronisation: a data race


def f_shared(buf):
    store(buf, A, 1)
    store(buf, B, 2)


def g_shared(buf, out):
    b = load(buf, B)
    out.send(show(b, load(buf, A)))


def run_racy():
    buf, out = pg.Buffer(16), pg.Chan()
    pg.go(g_shared, buf, out)
    pg.go(f_shared, buf)
    return out.recv()


# 3. channel send happens before the receive completes


def f_then_send(buf, ch):
    f_shared(buf)
    ch.send(None)


def g_after_recv(buf, ch, out):
    ch.recv()
    g_shared(buf, out)


def run_chan():
    buf, ch, out = pg.Buffer(16), pg.Chan(), pg.Chan()
    pg.go(g_after_recv, buf, ch, out)
    pg.go(f_then_send, buf, ch)
    return out.recv()


# 4. Mutex unlock happens before the next lock returns (Go's memory-model example:
#    main locks, f writes and unlocks, main's second lock waits for it)


def f_then_unlock(buf, mu):
    f_shared(buf)
    mu.unlock()  # a pg.Mutex belongs to no goroutine: f may unlock main's lock


def run_mutex():
    buf, mu = pg.Buffer(16), pg.Mutex()
    mu.lock()
    pg.go(f_then_unlock, buf, mu)
    mu.lock()
    seen = show(load(buf, B), load(buf, A))
    mu.unlock()
    return seen


# 5. Once.do: every caller returns after fn ran, and fn runs once


def setup(buf, ran):
    ran.add(1)
    f_shared(buf)


def g_once(once, buf, ran, out):
    once.do(functools.partial(setup, buf, ran))
    g_shared(buf, out)


def run_once(callers):
    buf, once, ran, out = pg.Buffer(16), pg.Once(), pg.atomic.Int64(), pg.Chan(callers)
    for _ in range(callers):
        pg.go(g_once, once, buf, ran, out)
    seen = {out.recv() for _ in range(callers)}
    assert ran.load() == 1, f"Once ran its function {ran.load()} times"
    return " / ".join(sorted(seen))


def main(runs):
    callers = 2 * pg.gomaxprocs()
    cases = [
        ("plain variables (copies)", run_copies, {"0 0"}),
        ("pg.Buffer, no synchronisation", run_racy, None),
        ("channel send -> receive", run_chan, {"2 1"}),
        ("Mutex unlock -> lock", run_mutex, {"2 1"}),
        (f"Once.do ({callers} callers)", lambda: run_once(callers), {"2 1"}),
    ]
    results = []
    for name, fn, must in cases:
        tally = collections.Counter(fn() for _ in range(runs))
        if must is not None:
            assert set(tally) == must, f"{name}: saw {dict(tally)}, must be only {must}"
        else:
            assert set(tally) <= {"0 0", "0 1", "2 1", "2 0"}, f"{name}: impossible outcome in {dict(tally)}"
        results.append((name, tally, must))
    return pg.gomaxprocs(), results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="runs of each case")
    runs = ap.parse_args().runs
    procs, results = pg.run(main, runs)
    print(f"f: a = 1; b = 2    g: print(b, a)    {runs} runs of each case, procs={procs}")
    for name, tally, must in results:
        seen = "  ".join(f'"{k}" x{n}' for k, n in sorted(tally.items()))
        verdict = "guaranteed" if must == {"2 1"} else ("f wrote its own copy" if must else "a data race")
        print(f"  {name:32} {seen:40} {verdict}")
