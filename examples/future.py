"""The seed's §7.1 generic Future: ``Async[T]`` on a typed channel, and ``pg.future``.

Part 1 writes the seed's ``Future[T]`` by hand: a one-slot ``pg.Chan[T]``
that the goroutine fills with ``fn()``.  A typed channel checks every value
in the sender (strictly, as msgspec does), so a ``Chan[int]`` refuses a
``str`` with ``pg.ChanTypeError`` and nothing is enqueued.

Part 2 uses the ready-made ``pg.future(fn, *args)``: ``result()`` parks
until fn is done and raises fn's exception if it failed (an error, not a
panic), and ``f.c`` delivers the outcome once, for ``select`` -- here to
take results in completion order, with a timeout from ``pg.after``.

Every result is checked against a sequential computation.

Go original (§7.1)::

    type Future[T any] struct{ result chan T }

    func Async[T any](fn func() T) *Future[T] {
        f := &Future[T]{result: make(chan T, 1)}
        go func() { f.result <- fn() }()
        return f
    }

Run::

    python3 examples/future.py [--n 22]
    parago run --procs 2 examples/future.py
"""

import argparse
import os
from typing import Generic, TypeVar

import parago as pg

T = TypeVar("T")


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Future(Generic[T]):
    """The seed's Future[T]: a buffered channel of one T."""

    def __init__(self, t):
        self.result = pg.Chan[t](1)

    def get(self):
        return self.result.recv()


def _fill(result, fn, args):
    result.send(fn(*args))  # f.result <- fn()


def run_async(t, fn, *args):
    """Async[T]: start fn(*args) in a goroutine, return its Future[T] at once."""
    f = Future(t)
    pg.go(_fill, f.result, fn, args)
    return f


def where(n):
    return os.getpid(), fib(n)


def checked_fib(n):
    if n < 0:
        raise ValueError(f"fib of a negative number: {n}")
    return fib(n)


def main(n):
    # Part 1: Async[T] on a Chan[T]
    futs = [run_async(int, fib, k) for k in range(n - 4, n + 1)]
    part1 = [f.get() for f in futs]
    try:
        pg.Chan[int](1).send("not an int")
        refused = None
    except pg.ChanTypeError as e:
        refused = str(e)

    # Part 2: pg.future
    located = [pg.future(where, k) for k in range(n - 4, n + 1)]
    pids = {f.result()[0] for f in located}
    part2 = [f.result()[1] for f in located]
    failing = pg.future(checked_fib, -1)
    try:
        failing.result()
        error = None
    except ValueError as e:
        error = str(e)

    pending = {pg.future(fib, k).c: k for k in (n, n - 8, n - 4)}
    order = []
    while pending:
        cases = [pg.Recv(c) for c in pending] + [pg.Recv(pg.after(30.0))]
        i, value, _ = pg.select(*cases)
        assert i < len(pending), "timed out waiting for the futures"
        c = list(pending)[i]
        assert value == fib(pending[c]), f"fib({pending[c]}) came back as {value}"
        order.append(pending.pop(c))
    return pg.gomaxprocs(), part1, refused, part2, len(pids), error, order


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=22, help="the largest fib(n) computed")
    n = ap.parse_args().n
    procs, part1, refused, part2, on_ps, error, order = pg.run(main, n)
    want = [fib(k) for k in range(n - 4, n + 1)]
    assert part1 == want and part2 == want, (part1, part2, want)
    assert refused is not None and error == "fib of a negative number: -1", (refused, error)
    print(f"procs={procs}")
    print(f"1. Async[int] on Chan[int]: fib({n - 4}..{n}) = {part1}")
    print(f"   Chan[int].send('not an int') refused: {refused}")
    print(f"2. pg.future: fib({n - 4}..{n}) = {part2}, computed on {on_ps} P(s)")
    print(f"   a failing future: result() raised ValueError: {error}")
    print(f"   select over f.c, in completion order: fib({'), fib('.join(map(str, order))})")
