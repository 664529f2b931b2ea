"""time: pg.sleep, pg.after, pg.tick, Timer and Ticker (DESIGN §1 "time").

Every timer is an arena object fired in C by the sysmon thread of the P
that armed it (parago/_runtime/timers.py, shm/timer.c): on time whatever
the goroutines of that P are doing, short of a long C call.  Timers
deliver ``time.time()`` through a channel, so a goroutine on any P can
wait on ``timer.c`` (in ``select`` too); ``stop()`` and ``reset()`` answer
correctly from any P.

Go 1.23 timer channels: ``timer.c`` behaves as an unbuffered channel
(``len == cap == 0``); a fire nobody has received yet is held by the timer
(one arena slot that stop/reset empty under the channel's lock), so once
``stop()`` or ``reset()`` returns no value from before it is ever
received.  ``PARAGO_DEBUG=asynctimerchan=1`` gives Go 1.22's channels
(capacity 1, a value stays buffered after stop).

Delays: zero and negative ones fire at once (Go); NaN, infinities and
delays of 2**64 ns (about 584 years) or more raise ValueError, anything
but an int or float TypeError -- in the caller, before anything is armed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from ._chan import Chan
from ._goroutine import gosched
from ._runtime import codec, timers
from ._runtime.g import ThreadG
from ._runtime.handles import Handle
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


def _recv_only_error() -> TypeError:
    return TypeError("invalid operation: cannot send to receive-only channel (a timer's c)")


class TimerChan(Chan):
    """A Timer's or Ticker's ``c`` (Go 1.23): a receive-only channel that
    looks unbuffered -- ``len`` and ``cap`` are 0 always.

    Underneath is one arena slot that only the timer fills (the fire nobody
    has received yet, held by the timer) and that ``stop()``/``reset()``
    empty under the channel's lock, so a receiver -- a ``select`` too --
    never gets a value from before either call.  Sending on it or closing
    it is Go's compile error, a TypeError here."""

    __slots__ = ()

    def _load(self, rt: Any) -> None:
        # what Chan._load reads from the arena is known: untyped, one slot
        self._cap = 0
        self._type = None
        self._codec = None  # type: ignore[assignment]
        self._zero = None

    def __len__(self) -> int:
        """Always 0: the timer holds an unreceived fire, the channel never buffers one."""
        return 0

    def _encode(self, v: Any) -> tuple[bytes, list[int]]:
        raise _recv_only_error()  # a select's Send encodes first

    def send(self, v: Any) -> None:
        raise _recv_only_error()

    async def send_async(self, v: Any) -> None:
        raise _recv_only_error()

    def _try_send(self, v: Any) -> bool:
        raise _recv_only_error()

    def send_many(self, values: Any) -> int:
        raise _recv_only_error()

    def close(self) -> None:
        raise TypeError("invalid operation: cannot close receive-only channel (a timer's c)")

    def __repr__(self) -> str:
        return f"<pg.Chan (a timer's c) cap=0 at {self._off:#x}>"


_UNMADE: Any = object()  # a timer handle's c before anyone asked for it


class _TimerHandle(Handle):
    """The handle of a timer in the arena (Timer and Ticker are ones).

    ``c`` is made on first use from the channel the timer holds (a timer
    that nobody asks for its channel costs one handle, not two); a copy on
    another P is the same timer, with the same channel."""

    __slots__ = ("_ch",)
    _kind = "timer"

    def _load(self, rt: Any) -> None:
        self._ch = _UNMADE

    def _chan(self) -> Chan | None:
        ch = self._ch
        if ch is _UNMADE:
            rt = self._live_rt()
            off, flags = timers.chan_of(rt, self._off)
            if not off:
                ch = None  # after_func's: Go's nil channel
            else:
                r = rt.handles.get(off)
                ch = r() if r is not None else None
                if ch is None:
                    # the timer's reference keeps the channel alive: this
                    # handle takes one of its own (the handle protocol's)
                    timers.hold(rt, off)
                    ch = (Chan if flags & timers.TF_ASYNC else TimerChan)._new(rt, off)
            self._ch = ch
        return ch

    def __repr__(self) -> str:
        return f"<pg.{type(self).__name__} at {self._off:#x}>"


def _arm(t: _TimerHandle, rt: Any, kind: int, ns: int, period_ns: int) -> None:
    flags = timers.TF_ASYNC if timers.async_timer_chan(rt) else 0
    off, gen = timers.new_chan_timer(rt, kind, ns, period_ns, flags)
    t._bind(rt, off, gen)  # adopts the creation's reference


class Timer(_TimerHandle):
    """Go's time.Timer: after ``seconds``, the time (``time.time()``) is sent on ``c`` once.

    ``c`` behaves as an unbuffered channel (Go 1.23): ``len(c) == c.cap == 0``,
    the value waits in the timer until a receiver takes it, and after
    ``stop()`` or ``reset()`` returns no value from before that call is
    ever received.  A timer made by ``pg.after_func`` has ``c = None`` (Go's
    nil channel: ``pg.Recv(None)`` is a select case that never fires).
    Picklable: a copy on another P is the same timer; ``stop`` and
    ``reset`` work from any P."""

    __slots__ = ()

    def __init__(self, seconds: float) -> None:
        ns = timers.delay_ns(seconds, "pg.Timer")
        _arm(self, need_rt("pg.Timer()"), timers.TK_SEND, ns, 0)

    @property
    def c(self) -> Chan | None:
        """The channel the time is sent on (None for an after_func timer)."""
        return self._chan()

    def stop(self) -> bool:
        """Prevent the timer from firing.  Does not block.

        Returns True if this call stopped it: it had not fired, or it had
        fired and its value was not received yet (that value is dropped);
        False if it had been stopped already or its value was received.
        For an after_func timer: True if ``fn`` had not been started."""
        return timers.stop(self)

    def reset(self, seconds: float) -> bool:
        """Re-arm the timer to fire ``seconds`` from now (<= 0: at once).  Does not block.

        Returns whether the timer was active in ``stop()``'s sense (pending,
        or fired with its value unreceived).  No value from the earlier
        arming is received after this returns.  For an after_func timer:
        True if it rescheduled a pending ``fn``, False if ``fn`` will run again.
        Raises TypeError / ValueError for a bad delay, in the caller."""
        return timers.reset(self, timers.delay_ns(seconds, "Timer.reset"), 0)


def _period(seconds: Any, what: str) -> int:
    ns = timers.delay_ns(seconds, what)
    if ns == 0:
        raise ValueError(f"non-positive interval for {what}: {seconds}")
    return ns


class Ticker(_TimerHandle):
    """Go's time.Ticker: sends the time on ``c`` every ``seconds``.

    ``c`` behaves as an unbuffered channel (Go 1.23, as Timer's): a tick
    that fires while the previous one is unreceived replaces it (the older
    is dropped), missed ticks are skipped, and no tick from before
    ``stop()`` or ``reset()`` is received after it returns.

    Raises ValueError for a period <= 0 (Go panics: "non-positive interval")."""

    __slots__ = ()

    def __init__(self, seconds: float) -> None:
        ns = _period(seconds, "pg.Ticker")
        _arm(self, need_rt("pg.Ticker()"), timers.TK_TICK, ns, ns)

    @property
    def c(self) -> Chan:
        """The channel the ticks are sent on."""
        ch = self._chan()
        assert ch is not None
        return ch

    def stop(self) -> None:
        """Stop sending ticks; an unreceived tick is dropped.  Does not block."""
        timers.stop(self)

    def reset(self, seconds: float) -> None:
        """Stop and restart with the period ``seconds`` (the next tick one
        period from now); an unreceived tick is dropped.  Does not block."""
        ns = _period(seconds, "Ticker.reset")
        timers.reset(self, ns, ns)


def after(seconds: float) -> Chan:
    """A channel that receives the time once, after ``seconds`` (Go's time.After).

    A Timer whose handle is not kept: it lives until it fires, whoever holds
    the channel (a loop of ``select(..., Recv(pg.after(s)))`` runs in
    constant arena memory)."""
    c = Timer(seconds).c
    assert c is not None
    return c


def tick(seconds: float) -> Chan:
    """A channel of ticks every ``seconds`` (Go's time.Tick): a Ticker whose
    handle is not kept, so it can never be stopped."""
    return Ticker(seconds).c


def after_func(seconds: float, fn: Callable[..., Any], *args: Any) -> Timer:
    """Go's time.AfterFunc: after ``seconds``, ``fn(*args)`` runs in a goroutine of its own.

    Non-blocking.  ``fn`` and ``args`` are copied now, as ``pg.go`` copies
    them (the goroutine may run on any P).  The returned Timer's ``stop()``
    prevents a pending call (True if it did) and ``reset(s)`` reschedules
    it, or schedules another call once it has started.  Its ``c`` is None:
    Go's is nil, nothing is ever sent.  Raises TypeError for a ``fn`` that
    is not callable, TypeError / ValueError for a bad delay, and
    ``pg.EncodeError`` for what cannot be copied -- all before anything is
    armed."""
    if not callable(fn):
        raise TypeError(f"pg.after_func: fn must be callable, got {type(fn).__name__}")
    ns = timers.delay_ns(seconds, "pg.after_func")
    rt, gs = cur("pg.after_func()")
    refs: list[int] = []
    payload = codec.dumps_fn(fn, args, {}, refs)
    site = rt.site_of(2).value
    off, gen = timers.new_func_timer(rt, payload, refs, site, getattr(gs, "goid", 0) or 0, ns)
    return Timer._make(rt, off, gen)
