"""synctest's virtual clock as one process sees it (shm/synctest.c).

Owns: whether this process's timer clock is virtual (bound to the arena's
``vclock`` word for the length of a ``pg.synctest.run``), reading that
clock from Python, and P0's step that moves it (``advance``) or wakes a
``synctest.wait()``.  Outside a synctest run every function here is the
real clock: ``nanotime`` is ``time.monotonic_ns``, ``now`` is ``time.time``.

    P0: Arena.create -> bind(arena, start=True) -> start the Ps -> run -> unbind()
    Pn: Arena.attach -> bind(arena)             -> run          -> os._exit

Each process binds before its sysmon starts and unbinds after it stopped,
so the C side (pg_nanotime) never reads an unmapped arena.
"""

from __future__ import annotations

import time
from typing import Any

from .._shim import lib, views

_arena: Any = None  # the arena this process's clock is bound to, or None
_ivclock = 0  # index of arena.vclock in the u64 view


def bind(arena: Any, start: bool = False) -> None:
    """Make this process's timer clock the arena's virtual one."""
    global _arena, _ivclock
    lib.pg_vclock_bind(arena.base, 1 if start else 0)
    _ivclock = views.hdr_index("vclock")
    _arena = arena


def unbind() -> None:
    """Back to real time (after this process's sysmon stopped)."""
    global _arena
    if _arena is not None:
        lib.pg_vclock_bind(None, 0)
        _arena = None


def virtual() -> bool:
    """True inside a synctest run (in any of its processes)."""
    return _arena is not None


def nanotime() -> int:
    """The timer clock in ns: CLOCK_MONOTONIC, or the virtual clock."""
    a = _arena
    if a is None:
        return time.monotonic_ns()
    return a.q[_ivclock]


def now() -> float:
    """The wall clock a timer delivers: ``time.time()``, or in synctest
    2000-01-01 00:00:00 UTC plus the virtual time gone by."""
    if _arena is None:
        return time.time()
    return float(lib.pg_vclock_wall())


# ---- synctest.wait() (one goroutine at a time) ----


def wait_publish(arena: Any, ch: int) -> bool:
    """Publish the channel a synctest.wait() parks on (the word takes a
    reference): False when another goroutine is waiting already."""
    return bool(lib.pg_vwait_set(arena.base, ch))


def wait_withdraw(arena: Any, ch: int) -> None:
    """The waiter runs again: if P0 did not take its channel (it was
    interrupted), take it back and drop the word's reference."""
    if lib.pg_vwait_take(arena.base, ch):
        lib.pg_obj_decref(arena.base, ch)


def wait_release(arena: Any) -> bool:
    """P0: wake the goroutine in synctest.wait(), if there is one."""
    ch = lib.pg_vwait_take(arena.base, 0)
    if not ch:
        return False
    lib.pg_chan_close(arena.base, ch)
    lib.pg_obj_decref(arena.base, ch)  # the word's reference
    return True


# ---- P0's step (deadlock.py) ----
BUSY, NEVER = 0, (1 << 64) - 1


def next_deadline(arena: Any) -> int:
    """Where the clock may move: the earliest timer's deadline (ns), BUSY
    (a timer is due or being fired: look again) or NEVER (no timer will
    fire).  Read before the last look at the goroutines (shm/synctest.c)."""
    return int(lib.pg_vclock_next(arena.base))


def advance(arena: Any, when: int) -> None:
    """Every goroutine is durably blocked: move the clock to ``when`` (from
    next_deadline) and wake the sysmon that fires the timer."""
    lib.pg_vclock_set(arena.base, when)
