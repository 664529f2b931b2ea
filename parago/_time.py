"""time: pg.sleep, pg.after, pg.tick, Timer and Ticker (DESIGN §1 "time").

Every timer is an arena object fired in C by the sysmon thread of the P
that armed it (parago/_runtime/timers.py, shm/timer.c): on time whatever
the goroutines of that P are doing, short of a long C call.  Timers
deliver ``time.time()`` through a channel of capacity 1 with a
non-blocking send, so a goroutine on any P can wait on ``timer.c`` (in
``select`` too); ``stop()`` and ``reset()`` answer correctly from any P.

Delays: zero and negative ones fire at once (Go); NaN, infinities and
delays of 2**64 ns (about 584 years) or more raise ValueError, anything
but an int or float TypeError -- in the caller, before anything is armed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._chan import Chan
from ._goroutine import gosched
from ._runtime import timers
from ._runtime.g import ThreadG
from ._runtime.sched import cur, need_rt


def sleep(seconds: float) -> None:
    """Park the calling goroutine (not the P) for at least ``seconds`` (Go's time.Sleep).

    Never returns before ``seconds`` have passed on CLOCK_MONOTONIC (the
    clock of ``time.monotonic``).  Zero or negative: returns at once, after
    letting the P's other runnable goroutines run (``pg.gosched``).  From a
    thread that is no goroutine it is ``time.sleep``.  Raises TypeError /
    ValueError for a bad delay (see the module docstring); ``pg.Shutdown``
    when the program ends meanwhile.
    """
    ns = timers.delay_ns(seconds, "pg.sleep")
    rt, gs = cur("pg.sleep()")
    if isinstance(gs, ThreadG):
        timers.sleep_thread(ns / 1e9)
    elif ns == 0:
        gosched()
    else:
        timers.sleep_g(rt, gs, ns)


async def sleep_async(seconds: float) -> None:
    """``await pg.sleep_async(s)``: pg.sleep for async goroutines (and any task on a P's loop)."""
    ns = timers.delay_ns(seconds, "pg.sleep_async")
    rt = need_rt("pg.sleep_async")
    if ns == 0:
        await asyncio.sleep(0)
        return
    await timers.sleep_task(rt, rt.task_g(), ns)


class Timer:
    """Go's time.Timer: after ``seconds``, the time (``time.time()``) is sent on ``c`` once.

    ``c`` has capacity 1.  Picklable: a copy on another P is the same timer."""

    __slots__ = ("c", "_t")

    def __init__(self, seconds: float) -> None:
        ns = timers.delay_ns(seconds, "pg.Timer")
        rt = need_rt("pg.Timer()")
        self.c = Chan(1)
        self._t = timers.new_timer(rt, timers.TK_SEND, self.c, ns, 0)

    def stop(self) -> bool:
        """Prevent the timer from firing; True if it was still pending.

        Like Go, a value already sent on ``c`` stays there."""
        return timers.stop(self._t)

    def reset(self, seconds: float) -> bool:
        """Re-arm the timer to fire ``seconds`` from now; True if it had been pending.

        An older arming never fires after this (a firing already under way may still land)."""
        return timers.reset(self._t, timers.delay_ns(seconds, "Timer.reset"), 0)


def _period(seconds: Any, what: str) -> int:
    ns = timers.delay_ns(seconds, what)
    if ns == 0:
        raise ValueError(f"non-positive interval for {what}: {seconds}")
    return ns


class Ticker:
    """Go's time.Ticker: sends the time on ``c`` (capacity 1) every ``seconds``;
    a tick that finds ``c`` full is dropped, and missed ticks are skipped, as in Go.

    Raises ValueError for a period <= 0 (Go panics: "non-positive interval")."""

    __slots__ = ("c", "_t")

    def __init__(self, seconds: float) -> None:
        ns = _period(seconds, "pg.Ticker")
        rt = need_rt("pg.Ticker()")
        self.c = Chan(1)
        self._t = timers.new_timer(rt, timers.TK_TICK, self.c, ns, ns)

    def stop(self) -> None:
        """Stop sending ticks (a tick being sent at that moment may still land)."""
        timers.stop(self._t)

    def reset(self, seconds: float) -> None:
        """Stop and restart with the period ``seconds`` (the next tick one period from now)."""
        ns = _period(seconds, "Ticker.reset")
        timers.reset(self._t, ns, ns)


def after(seconds: float) -> Chan:
    """A channel that receives the time once, after ``seconds`` (Go's time.After).

    The timer lives until it fires, whoever holds the channel."""
    return Timer(seconds).c


def tick(seconds: float) -> Chan:
    """A channel of ticks every ``seconds`` (Go's time.Tick); capacity 1."""
    return Ticker(seconds).c
