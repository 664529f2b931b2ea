"""The seed's §3.3 race example: ``counter++`` in 1000 goroutines, and its fix.

In Go the 1000 unsynchronised increments are a data race (``go run -race``
reports it) and the total is usually below 1000.  In parago there is no
shared ``counter`` to race on: every goroutine gets a *copy* of what it
captures, so each one increments its own copy and main's counter stays 0.
That is still a bug -- a write nobody will ever see -- and the isolation
checker reports it: run this under ``parago run --race`` and it prints a
report naming the variable (``captured variable 'counter'``) and the
``pg.go`` call site, and the program exits with status 66 (as
``go run -race`` does).  parago also warns at spawn time that the
goroutine assigns to a captured variable.

The fix is a shared counter: ``pg.atomic.Int64`` (Go's ``atomic.AddInt64``),
whose ``add`` is one atomic instruction on the shared arena, exact across
Ps.  ``--fixed-only`` runs just that version, which the checker passes.

Go original (§3.3)::

    var counter int
    var wg sync.WaitGroup
    wg.Add(1000)
    for i := 0; i < 1000; i++ {
        go func() {
            defer wg.Done()
            counter++ // data race!
        }()
    }
    wg.Wait()
    fmt.Println(counter)

Run::

    parago run --race examples/race.py              # the report, exit status 66
    parago run --race examples/race.py --fixed-only # clean, exit status 0
    python3 examples/race.py [-n 1000]
"""

import argparse

import parago as pg


def racy_counter(n):
    counter = 0
    wg = pg.WaitGroup()
    wg.add(n)

    def inc():
        nonlocal counter
        counter += 1  # a write to this goroutine's own copy
        wg.done()

    for _ in range(n):
        pg.go(inc)
    wg.wait()
    return counter


def atomic_counter(n):
    counter = pg.atomic.Int64()
    wg = pg.WaitGroup()
    wg.add(n)

    def inc():
        counter.add(1)  # the handle is copied; the int64 it names is shared
        wg.done()

    for _ in range(n):
        pg.go(inc)
    wg.wait()
    return counter.load()


def main(n, fixed_only):
    racy = None if fixed_only else racy_counter(n)
    return racy, atomic_counter(n), pg.gomaxprocs()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1000, help="goroutines")
    ap.add_argument("--fixed-only", action="store_true", help="run only the pg.atomic version")
    args = ap.parse_args()
    racy, fixed, procs = pg.run(main, args.n, args.fixed_only)
    if racy is not None:
        print(f"counter++ in {args.n} goroutines:      counter = {racy} (each goroutine incremented its own copy)")
        assert racy == 0, f"a goroutine's write to its copy reached main: {racy}"
    print(f"counter.add(1) in {args.n} goroutines: counter = {fixed} (pg.atomic.Int64, procs={procs})")
    assert fixed == args.n, f"lost atomic increments: {fixed} of {args.n}"
