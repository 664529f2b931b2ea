"""Timers: arena objects fired in C by each P's sysmon thread (shm/timer.c).

Nothing here runs on a thread of its own: arming is one foreign call that
pushes an entry on the calling P's timer heap in the arena, and the P's C
sysmon thread (sysmon.py) fires it on time whatever the P's hub is running
-- a send of ``time.time()`` on a channel (pg.after, Timer, Ticker), a
context's cancellation (its deadline), or the ready of a G parked in
pg.sleep.  A timer's state is an atomic word in the arena, so ``stop()``
and ``reset()`` answer from any P.  Armed timers are counted program-wide
(``arena.ntimers``) for the deadlock check.

Owns: converting a user's delay into nanoseconds (the one place a bad
delay is refused), the timer and context handles, and parking a goroutine
in a sleep.
"""

from __future__ import annotations

import asyncio
import ctypes
import math
import os
import time
from typing import Any

from .._shim import CONST, blocking, fast, lib, views
from .._shim.status import check, error
from . import park, vclock  # vclock: the timer clock, virtual in synctest
from .g import WR, GState
from .handles import Handle
from .schedtrace import parse_debug

TK_SEND = CONST["TK_SEND"]
TK_TICK = CONST["TK_TICK"]
TK_FUNC = CONST["TK_FUNC"]
TF_ASYNC = CONST["TF_ASYNC"]
CTX_NONE, CTX_CANCELED, CTX_DEADLINE = CONST["CTX_NONE"], CONST["CTX_CANCELED"], CONST["CTX_DEADLINE"]
MAX_NS = 1 << 64  # delays are u64 ns in C (Go's Duration: int64 ns, ~292 years)
_WR_SLEEP = WR["sleep"]


def delay_ns(seconds: Any, what: str) -> int:
    """``seconds`` as a delay in ns: 0 for zero and negative delays (Go: at once).

    Raises TypeError (not an int or float; a bool is not a number here) and
    ValueError (NaN, infinite, or 2**64 ns -- about 584 years -- and beyond)."""
    if isinstance(seconds, float):
        if not math.isfinite(seconds):
            raise ValueError(f"{what}: seconds must be finite, got {seconds!r}")
        if seconds <= 0:
            return 0
        # rounded up (never shorter than asked); a product beyond 2**64 is refused below
        ns = math.ceil(seconds * 1e9) if seconds < MAX_NS / 1e9 else MAX_NS
    elif isinstance(seconds, int) and not isinstance(seconds, bool):
        if seconds <= 0:
            return 0
        ns = seconds * 1_000_000_000
    else:
        raise TypeError(f"{what}: seconds must be a number, got {type(seconds).__name__}")
    if ns >= MAX_NS:
        raise ValueError(f"{what}: seconds must be < 2**64 ns (about 584 years), got {seconds!r}")
    return ns


_u64 = ctypes.c_uint64  # the fast calls (no argtypes) need a delay as a 64-bit word
_SMALL = 1 << 31  # below it, a plain int passes as the word (a register argument)


def _checked(r: int, what: str) -> int:
    if r < 0:
        raise error(r, what, 256)
    return r


def new_chan_timer(rt: Any, kind: int, ns: int, period_ns: int, flags: int) -> tuple[int, int]:
    """A TK_SEND/TK_TICK timer on a channel of one slot made with it, armed
    ``ns`` from now on this P: (offset, gen) for the caller's handle, which
    adopts the one reference.  ``flags``: TF_ASYNC for Go 1.22's channel
    (async_timer_chan)."""
    # every argument passes in a register, where a plain int < 2**31 is
    # sign-extended to the 64-bit word: a c_uint64 only for longer delays
    off = fast.pg_timer_chan_new(
        rt.cbase,
        rt.p,
        kind,
        flags,
        ns if ns < _SMALL else _u64(ns),
        period_ns if period_ns < _SMALL else _u64(period_ns),
    )
    if off < 0:
        raise error(off, "pg.Timer", 256)
    return off, views.obj_gen(rt.arena, off)


def new_func_timer(rt: Any, payload: bytes, refs: list[int], site: int, parent: int, ns: int) -> tuple[int, int]:
    """A TK_FUNC timer (pg.after_func), armed ``ns`` from now on this P: it
    starts a goroutine on the encoded (fn, args, kw) ``payload`` (whose
    handles are ``refs``: the timer takes a reference on each).  (offset,
    gen) as new_chan_timer."""
    arr = (ctypes.c_uint64 * max(len(refs), 1))(*refs)
    off = _checked(
        lib.pg_timer_func_new(rt.base, rt.p, payload, len(payload), arr, len(refs), site, parent, ns),
        "pg.after_func",
    )
    return off, views.obj_gen(rt.arena, off)


def chan_of(rt: Any, t: int) -> tuple[int, int]:
    """(the channel a timer sends on -- 0 for after_func's --, its flags):
    what a Timer's handle makes its ``c`` from."""
    a = rt.arena
    if a.u32[views.obj_index(t, "pg_timer", "tkind")] not in (TK_SEND, TK_TICK):
        return 0, 0
    return a.q[views.obj_index(t, "pg_timer", "target")], a.u32[views.obj_index(t, "pg_timer", "flags")]


def hold(rt: Any, off: int) -> None:
    """Take a reference on the object at ``off`` for a new handle of this P
    (a timer's channel, whose own reference keeps it alive meanwhile)."""
    lib.pg_obj_incref(rt.base, off)


def stop(t: Handle) -> bool:
    """Stop it; True if it was pending (a channel timer: or fired with its
    value unreceived, now dropped)."""
    rt = t._rt
    if rt.attn:  # _live_rt(), inlined: a stop is often in a hot loop
        rt = t._live_rt()
    return fast.pg_timer_stop(rt.cbase, t._c) != 0


def reset(t: Handle, ns: int, period_ns: int) -> bool:
    """Re-arm ``ns`` from now, on the calling P; True if it had been active (as stop's)."""
    rt = t._live_rt()
    return bool(_checked(fast.pg_timer_reset(rt.cbase, rt.p, t._c, _u64(ns), _u64(period_ns)), "Timer.reset"))


_debug_seen: list = [None, False]  # (the runtime it was read for, asynctimerchan)


def async_timer_chan(rt: Any) -> bool:
    """PARAGO_DEBUG=asynctimerchan=1 (Go's GODEBUG name): timers and tickers
    get Go 1.22's channels -- buffered (cap 1, len 1 after a fire), never
    drained by stop/reset.  Read once per run and P (os.environ is slow
    for a per-timer lookup)."""
    seen = _debug_seen
    if seen[0] is not rt:
        seen[1] = bool(parse_debug(os.environ.get("PARAGO_DEBUG")).get("asynctimerchan", 0))
        seen[0] = rt
    return seen[1]


def _sleep_armed(rt: Any, gs: GState, ns: int) -> int:
    return _checked(lib.pg_sleep(rt.base, rt.p, gs.off, ns, _WR_SLEEP), "pg.sleep")


def sleep_g(rt: Any, gs: GState, ns: int) -> None:
    """Park a greenlet G for at least ``ns`` (> 0): a TK_READY timer on it.

    An interrupt (teardown, a failure for main) raises out of the park; the
    timer is stopped and any firing in progress waited out either way, so a
    late firing never readies a later wait of this G."""
    end = vclock.nanotime() + ns
    while True:
        t = _sleep_armed(rt, gs, ns)
        try:
            park.park(gs)
        finally:  # stop the timer either way (a late firing must not ready a later wait)
            fired = lib.pg_sleep_done(rt.base, t)
        ns = end - vclock.nanotime()
        if fired or ns <= 0:
            return


async def sleep_task(rt: Any, gs: Any, ns: int) -> None:
    """sleep_g for a TaskG (an async goroutine or an adopted task)."""
    end = vclock.nanotime() + ns
    while True:
        t = _sleep_armed(rt, gs, ns)
        try:
            await park.park_async(gs)
        finally:
            fired = lib.pg_sleep_done(rt.base, t)
            if gs.stale:
                await _stale_consumed(rt, gs)
        ns = end - vclock.nanotime()
        if fired or ns <= 0:
            return


async def _stale_consumed(rt: Any, gs: Any) -> None:
    """A task canceled just after the timer claimed its wake-up: the ready
    is on this P's list (park_async counted it stale).  Let the hub take it
    before the task may end -- a G on a ready list must not be retired and
    its record reused (a few loop iterations at most)."""
    while gs.stale and not rt.closed:
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            continue


def sleep_thread(seconds: float) -> None:
    """A thread that is no goroutine: time.sleep (never early), in steps it accepts."""
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 86400.0))


class CtxHandle(Handle):
    """A P's handle on an arena context (pg_ctx, shm/timer.c)."""

    __slots__ = ("_ierr",)
    _kind = "context"

    def _load(self, rt: Any) -> None:
        self._ierr = views.obj_index(self._off, "pg_ctx", "err")

    def code(self) -> int:
        """CTX_NONE, or why it was canceled (CTX_CANCELED / CTX_DEADLINE): one load."""
        return self._live_rt().arena.u32[self._ierr]

    def cancel(self, code: int) -> None:
        """Cancel it and its whole subtree, on every P, before returning."""
        rt = self._live_rt()
        check(blocking.pg_ctx_cancel(rt.base, self._off, code), "cancel")


def new_ctx(rt: Any, done: Handle, parent: CtxHandle | None, ns: int) -> CtxHandle:
    """A context closing ``done`` when canceled, under ``parent`` (None: a
    root), with a deadline ``ns`` from now (-1: none; 0: done at once)."""
    off = _checked(lib.pg_ctx_new(rt.base, rt.p, done._off, parent._off if parent is not None else 0, ns), "context")
    return CtxHandle._new(rt, off)
