"""time: pg.after, pg.tick, Timer and Ticker, delivering through channels.

Each timer is fired by the timer thread of the P that created (or last
reset) it, with a non-blocking send on its channel, so a goroutine on any
P can wait on ``timer.c`` (in ``select`` too).  Its state is a shared
atomic word -- ``seq << 2 | state`` -- so ``stop()`` and ``reset()`` answer
correctly from any P: a firing whose seq is stale does nothing.
"""

from __future__ import annotations

import time
from typing import Any

from ._atomic import Int64
from ._chan import Chan
from ._runtime.sched import need_rt
from ._runtime.timers import timers

_PENDING, _FIRED, _STOPPED = 0, 1, 2


def _seconds(s: Any, what: str) -> float:
    if isinstance(s, bool) or not isinstance(s, (int, float)):
        raise TypeError(f"{what}: seconds must be a number, got {type(s).__name__}")
    return float(s)


class Timer:
    """Go's time.Timer: after ``seconds``, the time (``time.time()``) is sent on ``c`` once."""

    def __init__(self, seconds: float) -> None:
        d = _seconds(seconds, "pg.Timer")
        rt = need_rt("pg.Timer()")
        self.c = Chan(1)
        self._state = Int64(_PENDING)
        timers(rt).add(d, _Fire(self.c, self._state, 0))

    def stop(self) -> bool:
        """Prevent the timer from firing; True if it was still pending.

        Like Go, a value already sent on ``c`` stays there."""
        st = self._state
        while True:
            v = st.load()
            if v & 3 != _PENDING:
                return False
            if st.compare_and_swap(v, (v & ~3) | _STOPPED):
                return True

    def reset(self, seconds: float) -> bool:
        """Re-arm the timer to fire after ``seconds``; True if it had been pending."""
        d = _seconds(seconds, "Timer.reset")
        rt = need_rt("Timer.reset()")
        seq, was_pending = _rearm(self._state)
        timers(rt).add(d, _Fire(self.c, self._state, seq))
        return was_pending

    def __reduce__(self) -> tuple:
        return (_rebuild_timer, (Timer, self.c, self._state))


def _rearm(st: Int64) -> tuple[int, bool]:
    """Move the state to a new seq, PENDING: a firing of any older seq is
    void.  Returns (new seq, whether it was pending)."""
    while True:
        v = st.load()
        seq = (v >> 2) + 1
        if st.compare_and_swap(v, seq << 2 | _PENDING):
            return seq, v & 3 == _PENDING


class _Fire:
    __slots__ = ("c", "st", "seq")

    def __init__(self, c: Chan, st: Int64, seq: int) -> None:
        self.c, self.st, self.seq = c, st, seq

    def alive(self) -> bool:
        return self.st.load() == self.seq << 2 | _PENDING

    def __call__(self) -> None:
        if self.st.compare_and_swap(self.seq << 2 | _PENDING, self.seq << 2 | _FIRED):
            self.c._try_send(time.time())


def _rebuild_timer(cls: type, c: Chan, st: Int64) -> Any:
    t = cls.__new__(cls)  # type: ignore[call-overload]
    t.c = c
    t._state = st
    return t


class Ticker:
    """Go's time.Ticker: sends the time on ``c`` (capacity 1) every ``seconds``;
    a tick that finds ``c`` full is dropped, as in Go."""

    def __init__(self, seconds: float) -> None:
        d = _seconds(seconds, "pg.Ticker")
        if d <= 0:
            raise ValueError(f"non-positive interval for pg.Ticker: {seconds}")
        rt = need_rt("pg.Ticker()")
        self.c = Chan(1)
        self._state = Int64(_PENDING)
        _Tick(rt, self.c, self._state, 0, d, time.monotonic() + d).arm()

    def stop(self) -> None:
        """Stop sending ticks (no tick is sent after stop returns... once the
        in-flight one, if any, lands)."""
        st = self._state
        while True:
            v = st.load()
            if st.compare_and_swap(v, (v & ~3) | _STOPPED):
                return

    def reset(self, seconds: float) -> None:
        """Stop and restart with a new period."""
        d = _seconds(seconds, "Ticker.reset")
        if d <= 0:
            raise ValueError(f"non-positive interval for Ticker.reset: {seconds}")
        rt = need_rt("Ticker.reset()")
        seq, _ = _rearm(self._state)
        _Tick(rt, self.c, self._state, seq, d, time.monotonic() + d).arm()

    def __reduce__(self) -> tuple:
        return (_rebuild_timer, (Ticker, self.c, self._state))


class _Tick:
    __slots__ = ("rt", "c", "st", "seq", "period", "when")

    def __init__(self, rt: Any, c: Chan, st: Int64, seq: int, period: float, when: float) -> None:
        self.rt, self.c, self.st, self.seq, self.period, self.when = rt, c, st, seq, period, when

    def arm(self) -> None:
        timers(self.rt).add(self.when - time.monotonic(), self)

    def alive(self) -> bool:
        return self.st.load() == self.seq << 2 | _PENDING

    def __call__(self) -> None:
        if self.st.load() != self.seq << 2 | _PENDING:
            return
        self.c._try_send(time.time())
        now = time.monotonic()
        self.when += self.period
        if self.when < now:  # fell behind: skip missed ticks (Go drops them)
            self.when = now + self.period
        self.arm()


def after(seconds: float) -> Chan:
    """A channel that receives the time once, after ``seconds`` (Go's time.After)."""
    return Timer(seconds).c


def tick(seconds: float) -> Chan:
    """A channel of ticks every ``seconds`` (Go's time.Tick); capacity 1."""
    return Ticker(seconds).c
