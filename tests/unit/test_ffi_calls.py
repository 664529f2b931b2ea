"""The per-operation floor: an uncontended operation is one foreign call.

A ctypes call costs far more than the Python around it (DESIGN §3a), so
each operation that does not wait makes exactly one call into the shim.
Counted here by replacing every ctypes function the parago modules can
reach (module globals, and the attributes of module-level objects such as
the shim's ``lib`` / ``fast`` / ``blocking``) with a counting wrapper, for
one run at procs=1 (every goroutine in this process).
"""

from __future__ import annotations

import collections
import ctypes
import sys
from typing import Any, Callable

import pytest

import parago as pg

_FNPTR = ctypes.CFUNCTYPE(None).__mro__[1]  # ctypes' _CFuncPtr: every foreign function


class _Counting:
    """Every foreign function reachable from a parago module, counted."""

    def __init__(self) -> None:
        self.calls: collections.Counter = collections.Counter()
        self.undo: list[tuple[Any, str, Any]] = []
        self.wrapped: dict[int, Callable] = {}

    def _wrap(self, fn: Any, name: str) -> Callable:
        w = self.wrapped.get(id(fn))
        if w is None:
            calls = self.calls
            label = getattr(fn, "__name__", name)

            def counted(*a: Any) -> Any:
                calls[label] += 1
                return fn(*a)

            w = self.wrapped[id(fn)] = counted
        return w

    def _patch(self, obj: Any, name: str, fn: Any) -> None:
        setattr(obj, name, self._wrap(fn, name))
        self.undo.append((obj, name, fn))

    def install(self) -> _Counting:
        mods = [m for n, m in list(sys.modules.items()) if n.startswith("parago") and m is not None]
        for mod in mods:
            for name, v in list(vars(mod).items()):
                if isinstance(v, _FNPTR):
                    self._patch(mod, name, v)
                elif not isinstance(v, type) and hasattr(v, "__dict__"):  # lib, fast, a namespace of them
                    for an, av in list(vars(v).items()):
                        if isinstance(av, _FNPTR):
                            self._patch(v, an, av)
        return self

    def restore(self) -> None:
        for obj, name, fn in reversed(self.undo):
            setattr(obj, name, fn)
        self.undo.clear()


@pytest.fixture
def counting():
    c = _Counting().install()
    try:
        yield c
    finally:
        c.restore()


def _ops(c: _Counting) -> dict[str, dict[str, int]]:
    """main: each uncontended operation once, with the counts of its calls."""
    out: dict[str, dict[str, int]] = {}

    def measure(label: str, op: Callable[[], Any]) -> None:
        c.calls.clear()
        op()
        out[label] = dict(c.calls)

    ch = pg.Chan(4)
    mu, rw = pg.Mutex(), pg.RWMutex()
    wg = pg.WaitGroup()
    n = pg.atomic.Int64()
    a, b = pg.Chan(1), pg.Chan(1)
    for _ in range(3):  # first uses fill per-site caches: not the floor
        ch.send(1)
        ch.recv()
        mu.lock()
        mu.unlock()
        wg.add(1)
        wg.done()
        n.add(1)
    measure("ch.send (buffered, room)", lambda: ch.send(1))
    measure("ch.recv (buffered, a value)", ch.recv)
    measure("ch.send of an object", lambda: ch.send(("x", [1, 2])))
    measure("ch.recv of an object", ch.recv)
    ch.send(3)
    measure("ch.recv_ok", ch.recv_ok)
    measure("mu.lock", mu.lock)
    measure("mu.unlock", mu.unlock)
    measure("rw.rlock", rw.rlock)
    measure("rw.runlock", rw.runlock)
    measure("rw.lock", rw.lock)
    measure("rw.unlock", rw.unlock)
    measure("wg.add", lambda: wg.add(1))
    measure("wg.done", wg.done)
    measure("wg.wait (counter zero)", wg.wait)
    measure("Int64.add", lambda: n.add(1))
    a.send(1)
    measure("select, a case ready", lambda: pg.select(pg.Recv(a), pg.Recv(b)))
    measure("select, default", lambda: pg.select(pg.Recv(a), pg.Recv(b), default=True))
    return out


@pytest.mark.timeout(60)
def test_each_uncontended_operation_is_one_foreign_call(counting):
    got = pg.run(_ops, counting, procs=1)
    assert len(got) == 17
    more = {op: calls for op, calls in got.items() if sum(calls.values()) != 1}
    assert not more, f"operations that are not one foreign call: {more}"


@pytest.mark.timeout(60)
def test_the_counter_sees_a_second_call(counting):
    """The counter is not blind: an operation that parks (a receive with no
    sender yet) makes more than one call -- begin, then finish after the wake."""

    def main():
        u = pg.Chan()
        pg.go(_send_later, u)
        counting.calls.clear()
        u.recv()
        return dict(counting.calls)

    calls = pg.run(main, procs=1)
    assert sum(calls.values()) > 1, calls


def _send_later(u) -> None:
    u.send(1)
