"""The deadlock check (Go's checkdead), run by P0's supervisor; in a
synctest run, also what moves the virtual clock (Go's bubble idling).

``Deadlock`` is declared only when the panic flag is clear, every P is
idle, nothing is in flight, no timer or external waiter exists, and the
park epoch has not moved across two looks a few ms apart (DESIGN
"Termination and deadlock"): a false Deadlock would kill a correct
program, so it errs on the side of waiting.  It runs while P0 is idle (a
loop timer armed when the hub goes to sleep), reading only the arena.

In ``pg.synctest.run`` (vclock.py, shm/synctest.c) armed timers do not
count as activity: when the same look finds every goroutine durably
blocked -- parked on a channel, a sync object, a timer or a sleep; not on
I/O, ``pg.blocking`` or ``await_``, which are external waiters -- the
check, in Go's order,

  1. wakes the goroutine parked in ``synctest.wait()``, if there is one;
  2. else moves the clock to the earliest timer, whose P's sysmon fires it;
  3. else (no timer will ever fire) declares Deadlock, confirmed as above.

Each step is followed by a fresh pair of looks, so the clock never moves
while anything is runnable, running or being fired.  The looks come every
fraction of a millisecond then (a timer-heavy test runs ~1000x faster than
in real time), only while P0 is idle and only in a synctest run.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from .._shim import Pstate, views
from . import vclock
from .types import RuntimeLike


class DeadlockCheck:
    FIRST = 0.01  # after P0 went idle
    AGAIN = 0.02  # something was still moving
    CONFIRM = 0.005  # the second look
    # synctest: every step of the virtual clock takes two looks; Deadlock
    # is still confirmed at CONFIRM
    V_FIRST = 0.0002
    V_AGAIN = 0.0005
    V_CONFIRM = 0.0002

    def __init__(self, rt: RuntimeLike, found: Callable[[], None]) -> None:
        self.rt = rt
        self.found = found
        self.handle: Any = None
        self.virtual = vclock.virtual()
        self.stuck_epoch: Any = None  # synctest: the epoch at which nothing could move

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def arm(self) -> None:
        """P0 went idle: look soon (once armed, it re-arms itself)."""
        if self.handle is None:
            self.handle = self.rt.loop.call_later(self.V_FIRST if self.virtual else self.FIRST, self._check, None)

    def snapshot(self, known_external: int = 0, threads: bool = True, timers: bool = True) -> Any:
        """The park epoch if nothing can move right now, else None.
        ``known_external``: external waiters the caller accounts for itself
        (a cluster node's goroutines parked on another node's answer: asleep
        unless an answer is in flight, which the caller checks); they are not
        in the arena's parked count.  ``threads=False``: other threads are
        not counted (a cluster node's process holds Ray's).  ``timers=False``:
        armed timers do not count as activity (synctest's virtual clock)."""
        rt = self.rt
        a = rt.arena
        live = views.hdr(a, "ngoroutines") + views.hdr(a, "nsystem")
        if live != views.hdr(a, "nparked") + known_external or views.hdr(a, "gq_size") or rt.local_ready or rt.yielded:
            return None
        if (timers and views.hdr(a, "ntimers")) or rt.n_external - known_external:
            return None  # an armed timer (shm/timer.c), pg.blocking / await_
        if threads and threading.active_count() - 1 - rt.runtime_threads() > 0:
            return None  # a user thread
        for p in range(rt.nprocs):
            if p and views.p_get(a, p, "state") != Pstate.SLEEPING:
                return None
            if views.p_get(a, p, "readyq") or views.p_get(a, p, "privhead") or views.p_get(a, p, "runnext"):
                return None
            if views.p_get(a, p, "runqhead") != views.p_get(a, p, "runqtail") or views.p_get(a, p, "inbox_n"):
                return None
            if p and views.p_get(a, p, "nexternal"):
                return None
        return views.hdr(a, "epoch")

    def _check(self, prev: Any) -> None:
        self.handle = None
        rt = self.rt
        if rt.sup.main_done or rt.shutting_down or rt._closed:
            return
        if self.virtual:
            self._check_virtual(prev)
            return
        snap = self.snapshot()
        if snap is None:
            self.handle = rt.loop.call_later(self.AGAIN, self._check, None)
        elif prev is None or snap != prev:
            self.handle = rt.loop.call_later(self.CONFIRM, self._check, snap)
        else:
            self.found()

    def _check_virtual(self, prev: Any) -> None:
        rt = self.rt
        later = rt.loop.call_later
        # the deadline first, the goroutines second (shm/synctest.c step 2)
        when = vclock.next_deadline(rt.arena)
        snap = self.snapshot(timers=False)
        if snap is None:
            self.stuck_epoch = None
            self.handle = later(self.V_AGAIN, self._check, None)
            return
        if prev is None or snap != prev:
            self.handle = later(self.V_CONFIRM, self._check, snap)
            return
        # every goroutine is durably blocked (two looks agree)
        if vclock.wait_release(rt.arena):  # 1. synctest.wait() returns first (Go's maybeWakeLocked)
            self.stuck_epoch = None
            self.handle = later(self.V_FIRST, self._check, None)
            return
        if when == vclock.BUSY:  # a timer is being fired: its goroutines are about to run
            self.handle = later(self.V_AGAIN, self._check, None)
            return
        if when != vclock.NEVER:  # 2. the clock moves to the next timer
            self.stuck_epoch = None
            vclock.advance(rt.arena, when)
            self.handle = later(self.V_FIRST, self._check, None)
            return
        # 3. no timer will fire: Deadlock, once it holds CONFIRM apart as in pg.run
        if self.stuck_epoch is None or self.stuck_epoch != snap:
            self.stuck_epoch = snap
            self.handle = later(self.CONFIRM, self._check, snap)
            return
        self.found()
