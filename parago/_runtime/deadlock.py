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
while anything is runnable, running or being fired.  The looks are 50 us
apart, in short blocking sleeps of P0's idle hub (libuv's timers cannot
wait less than 1 ms): a step costs ~0.3-0.5 ms on an idle machine, a
timer-heavy test runs thousands of times faster than in real time.  The
hub gets its loop back as soon as P0 itself has something to run, and
after 2 ms of polling; only in a synctest run.

      P0's loop, idle                      a P's sysmon        that P's hub
      ------------------------------       ----------------    ----------------
      look, 50 us, look: all blocked?
        yes -> wait() / advance --------->  fire due timers -->  run the Gs they
        no  -> poll on (<= 2 ms),                                ready; they park
               or back to the loop                               again
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .._shim import Pstate, views
from . import vclock
from .types import RuntimeLike


class DeadlockCheck:
    FIRST = 0.01  # after P0 went idle
    AGAIN = 0.02  # something was still moving
    CONFIRM = 0.005  # the second look
    # synctest: every step of the virtual clock takes two looks V_CONFIRM
    # apart; while something moves, V_EAGER polls of V_POLL, then a look
    # every V_AGAIN, after V_PATIENT of them every V_SLOW; Deadlock is still
    # confirmed at CONFIRM
    V_FIRST = 0.0
    V_CONFIRM = 0.00005
    V_POLL = 0.002
    V_EAGER = 4
    V_AGAIN = 0.001
    V_PATIENT = 100
    V_SLOW = 0.005

    def __init__(self, rt: RuntimeLike, found: Callable[[], None]) -> None:
        self.rt = rt
        self.found = found
        self.handle: Any = None
        self.virtual = vclock.virtual()
        self.stuck_epoch: Any = None  # synctest: the epoch at which nothing could move
        self.busy = 0  # synctest: looks in a row that saw something move

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def arm(self) -> None:
        """P0 went idle: look soon (once armed, it re-arms itself)."""
        if self.virtual and self.handle is not None and self.busy >= self.V_EAGER:
            # synctest: a slow look is pending, but P0 just ran something:
            # things may have settled, poll now
            self.handle.cancel()
            self.handle = None
            self.busy = 0
        if self.handle is None:
            self.handle = self.rt.loop.call_later(self.V_FIRST if self.virtual else self.FIRST, self._check, None)

    def snapshot(
        self, known_external: int = 0, threads: bool = True, timers: bool = True, spinning: bool = False
    ) -> Any:
        """The park epoch if nothing can move right now, else None.
        ``known_external``: external waiters the caller accounts for itself
        (a cluster node's goroutines parked on another node's answer: asleep
        unless an answer is in flight, which the caller checks); they are not
        in the arena's parked count.  ``threads=False``: other threads are
        not counted (a cluster node's process holds Ray's).  ``timers=False``:
        armed timers do not count as activity (synctest's virtual clock).
        ``spinning=True``: a P spinning for work counts as idle (synctest's
        steps: with every goroutine parked and every queue empty there is
        nothing it can find; a G it took is no longer parked either)."""
        rt = self.rt
        a = rt.arena
        live = views.hdr(a, "ngoroutines") + views.hdr(a, "nsystem")
        if live != views.hdr(a, "nparked") + known_external or views.hdr(a, "gq_size") or rt.local_ready or rt.yielded:
            return None
        if (timers and views.hdr(a, "ntimers")) or rt.n_external - known_external:
            return None  # an armed timer (shm/timer.c), pg.blocking / await_
        if threads and threading.active_count() - 1 - rt.runtime_threads() > 0:
            return None  # a user thread
        idle = (Pstate.SLEEPING, Pstate.SPINNING) if spinning else (Pstate.SLEEPING,)
        for p in range(rt.nprocs):
            if p and views.p_get(a, p, "state") not in idle:
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

    def _look_virtual(self) -> tuple[int, Any]:
        # the deadline first, the goroutines second (shm/synctest.c step 2)
        when = vclock.next_deadline(self.rt.arena)
        return when, self.snapshot(timers=False, spinning=True)

    def _again_virtual(self) -> None:
        # something still moves after a poll: poll again at once a few
        # times, then look every ms (libuv's resolution), and every 5 ms
        # once it has moved for a while (a goroutine computing, a real wait:
        # polling would only take a core from it)
        self.busy += 1
        if self.busy < self.V_EAGER:
            delay = 0.0
        elif self.busy < self.V_PATIENT:
            delay = self.V_AGAIN
        else:
            delay = self.V_SLOW
        self.handle = self.rt.loop.call_later(delay, self._check, None)

    def _p0_has_work(self) -> bool:
        """Something only P0's loop can do: a G of P0 to run (its own
        queues, the global one), or a loop callback (an external waiter)."""
        rt = self.rt
        a = rt.arena
        if rt.local_ready or rt.yielded or rt.n_external or views.hdr(a, "gq_size"):
            return True
        if views.p_get(a, 0, "readyq") or views.p_get(a, 0, "privhead") or views.p_get(a, 0, "runnext"):
            return True
        return views.p_get(a, 0, "runqhead") != views.p_get(a, 0, "runqtail") or bool(views.p_get(a, 0, "inbox_n"))

    def _check_virtual(self, prev: Any) -> None:
        rt = self.rt
        # P0's hub is idle here: poll the other Ps in short blocking sleeps
        # (its loop's timers cannot wait less than 1 ms) until they are all
        # blocked, for at most V_POLL, and give the loop back at once when
        # P0 itself has something to run
        until = time.perf_counter() + (self.V_POLL if self.busy < self.V_EAGER else 0.0)
        while True:
            when, snap = self._look_virtual()
            if snap is not None:
                time.sleep(self.V_CONFIRM)  # the second look
                when, snap2 = self._look_virtual()
                if snap2 == snap and when != vclock.BUSY:  # BUSY: a timer is due or firing
                    break
            if self._p0_has_work() or time.perf_counter() > until:
                self.stuck_epoch = None
                self._again_virtual()
                return
            time.sleep(self.V_CONFIRM)
        # every goroutine is durably blocked (two looks agree)
        self.busy = 0
        if vclock.wait_release(rt.arena):  # 1. synctest.wait() returns first (Go's maybeWakeLocked)
            self.stuck_epoch = None
            self.handle = rt.loop.call_soon(self._check, None)
            return
        if when != vclock.NEVER:  # 2. the clock moves to the next timer
            self.stuck_epoch = None
            vclock.advance(rt.arena, when)
            self.handle = rt.loop.call_soon(self._check, None)
            return
        # 3. no timer will fire: Deadlock, once it holds CONFIRM apart as in
        # pg.run, with every P asleep
        if self.snapshot(timers=False) is None:
            self._again_virtual()
            return
        if self.stuck_epoch is None or self.stuck_epoch != snap:
            self.stuck_epoch = snap
            self.handle = rt.loop.call_later(self.CONFIRM, self._check, snap)
            return
        self.found()
