"""Helpers shared by the tests (importable by every P: goroutines use them)."""

from __future__ import annotations

import re
import time

import parago as pg
from parago._runtime import state


def _land(p: int, hops: int, fn, args) -> None:
    # Re-spawn until the goroutine runs on P p; holding this P for a moment
    # lets the idle one steal the new goroutine.
    if state.rt.p == p or hops >= 2000:
        fn(*args)
        return
    pg.go(_land, p, hops + 1, fn, args)
    time.sleep(0.001)


def go_on(p: int, fn, *args) -> None:
    """Start fn(*args) on P ``p % gomaxprocs()`` (a started goroutine never
    moves, so tests that claim to cross Ps put their goroutines there)."""
    p %= pg.gomaxprocs()
    if p == state.rt.p:
        pg.go_local(fn, *args)
    else:
        pg.go(_land, p, 0, fn, args)


def recv_within(ch: pg.Chan, seconds: float = 10.0):
    """ch.recv(), but fail the test instead of hanging."""
    i, v, ok = pg.select(pg.Recv(ch), pg.Recv(pg.after(seconds)))
    assert i == 0, f"nothing received within {seconds} s"
    return v


def wait_parked(reason: str, n: int = 1, timeout: float = 10.0) -> None:
    """Park the caller until at least n goroutines wait with `reason`
    (read from the goroutine dump), instead of sleeping a guessed time."""
    pat = re.compile(r"\[" + re.escape(reason) + r"[,\]]")
    deadline = time.monotonic() + timeout
    while True:
        text = pg.debug.dump()
        if len(pat.findall(text)) >= n:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {n} goroutine(s) in [{reason}]:\n{text}")
        pg.sleep(0.005)
