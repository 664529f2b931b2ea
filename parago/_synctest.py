"""pg.synctest and pg.now: Go 1.25's testing/synctest for a whole parago
program (DESIGN §1 "Testing concurrent programs").

Inside ``pg.synctest.run`` parago's clock is virtual: ``pg.sleep``,
timers, tickers, ``pg.after``/``after_func``, context deadlines and
``pg.now()`` read it, ``time.time()`` does not.  It starts at 2000-01-01
00:00:00 UTC (Go's bubble epoch) and moves, to the next timer's deadline,
only when every goroutine on every P is durably blocked -- parked on a
channel, a sync object, a timer or a sleep.  A goroutine in I/O,
``pg.blocking``, ``pg.await_`` or a cooperative call waits for something
real: the clock stands until it is back.  The mechanism is P0's deadlock
check (parago/_runtime/deadlock.py) and the arena's clock word
(parago/_runtime/vclock.py, shm/synctest.c).
"""

from __future__ import annotations

from typing import Any, Callable

from ._chan import Chan
from ._errors import ParagoError
from ._runtime import procs as _procs
from ._runtime import state, vclock
from ._runtime.g import ThreadG
from ._runtime.sched import cur, need_rt


class SynctestArgumentError(ParagoError, ValueError):
    """An argument ``pg.synctest.run`` cannot honour (``cluster=``): a
    ParagoError and a ValueError, so either ``except`` catches it."""


def now() -> float:
    """The current time in seconds since the epoch, as ``time.time()``.

    Inside ``pg.synctest.run`` it is the virtual clock: 946684800.0
    (2000-01-01 00:00:00 UTC) when the run starts, plus exactly the virtual
    time that has passed (``pg.sleep(3600)`` moves it by 3600.0).  Outside
    a synctest run it is ``time.time()``.  Never blocks.
    """
    return vclock.now()


def run(main: Callable[..., Any], *args: Any, procs: int | None = None, cluster: Any = None) -> Any:
    """Run ``main(*args)`` as ``pg.run`` does, with a virtual clock (Go's synctest.Test).

    Time starts at 2000-01-01 00:00:00 UTC (``pg.now()``) and advances to
    the next timer's deadline only when every goroutine on every P is
    durably blocked (on a channel, a sync object, a timer or a sleep), so
    timers fire in deadline order, as in real time, without the wait.  A
    goroutine in I/O, ``pg.blocking``, ``pg.await_`` or a cooperative call
    is not durably blocked: the clock waits for it.  When main returns the
    program ends as in ``pg.run`` (other goroutines are unwound).  Returns
    main's result.

    Raises: whatever ``pg.run`` raises; ``pg.Deadlock`` when every
    goroutine is blocked and no timer is pending;
    ``ParagoError("synctest.run called from within a synctest bubble")``
    inside a synctest run; a ``ParagoError`` that is also a ``ValueError``
    for ``cluster=`` (virtual time needs every P on one machine;
    ``$PARAGO_CLUSTER`` is ignored here).
    """
    if vclock.virtual():
        raise ParagoError("synctest.run called from within a synctest bubble")
    if cluster is not None:
        raise SynctestArgumentError(
            f"pg.synctest.run: cluster={cluster!r} is not supported: the virtual clock needs every P "
            "on one machine (use pg.run for a cluster)"
        )
    if state.rt is not None:
        raise ParagoError("pg.synctest.run cannot be nested: this process is already running a parago program")
    return _procs.run(main, *args, procs=procs, synctest=True)


def _begin(op: str, rt: Any) -> Chan:
    if not vclock.virtual():
        raise ParagoError(f"{op}: goroutine is not in a bubble (call it inside pg.synctest.run)")
    ch = Chan(0)
    if not vclock.wait_publish(rt.arena, ch._off):
        raise ParagoError(f"{op}: wait already in progress (another goroutine is in synctest.wait)")
    return ch


def _end(rt: Any, ch: Chan) -> None:
    vclock.wait_withdraw(rt.arena, ch._off)


def wait() -> None:
    """Block until every other goroutine of the program is durably blocked
    or has exited (Go's synctest.Wait).

    Durably blocked: parked on a channel, a sync object, a timer or a
    sleep, on any P.  Returns before the virtual clock moves again (Go:
    when every goroutine is blocked, Wait returns first).  One goroutine at
    a time.  Raises ``ParagoError``: outside ``pg.synctest.run`` ("goroutine
    is not in a bubble"), from a thread, or while another goroutine is in
    ``wait()`` ("wait already in progress").  From an async goroutine use
    ``await pg.synctest.wait_async()``.
    """
    rt, gs = cur("pg.synctest.wait()")
    if isinstance(gs, ThreadG):
        raise ParagoError("pg.synctest.wait: goroutine is not in a bubble (called from a thread, not a goroutine)")
    ch = _begin("pg.synctest.wait", rt)
    try:
        ch.recv_ok()  # P0's deadlock check closes it (deadlock.py)
    finally:
        _end(rt, ch)


async def wait_async() -> None:
    """``await pg.synctest.wait_async()``: wait() for async goroutines."""
    rt = need_rt("pg.synctest.wait_async")
    ch = _begin("pg.synctest.wait_async", rt)
    try:
        await ch.recv_ok_async()
    finally:
        _end(rt, ch)
