"""The deadlock check (Go's checkdead), run by P0's supervisor.

``Deadlock`` is declared only when the panic flag is clear, every P is
idle, nothing is in flight, no timer or external waiter exists, and the
park epoch has not moved across two looks a few ms apart (DESIGN
"Termination and deadlock"): a false Deadlock would kill a correct
program, so it errs on the side of waiting.  It runs while P0 is idle (a
loop timer armed when the hub goes to sleep), reading only the arena.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from .._shim import Pstate, views
from .types import RuntimeLike


class DeadlockCheck:
    FIRST = 0.01  # after P0 went idle
    AGAIN = 0.02  # something was still moving
    CONFIRM = 0.005  # the second look

    def __init__(self, rt: RuntimeLike, found: Callable[[], None]) -> None:
        self.rt = rt
        self.found = found
        self.handle: Any = None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def arm(self) -> None:
        """P0 went idle: look soon (once armed, it re-arms itself)."""
        if self.handle is None:
            self.handle = self.rt.loop.call_later(self.FIRST, self._check, None)

    def snapshot(self, known_external: int = 0, threads: bool = True) -> Any:
        """The park epoch if nothing can move right now, else None.
        ``known_external``: external waiters the caller accounts for itself
        (a cluster node's goroutines parked on another node's answer: asleep
        unless an answer is in flight, which the caller checks); they are not
        in the arena's parked count.  ``threads=False``: other threads are
        not counted (a cluster node's process holds Ray's)."""
        rt = self.rt
        a = rt.arena
        live = views.hdr(a, "ngoroutines") + views.hdr(a, "nsystem")
        if live != views.hdr(a, "nparked") + known_external or views.hdr(a, "gq_size") or rt.local_ready or rt.yielded:
            return None
        if views.hdr(a, "ntimers") or rt.n_external - known_external:
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
        snap = self.snapshot()
        if snap is None:
            self.handle = rt.loop.call_later(self.AGAIN, self._check, None)
        elif prev is None or snap != prev:
            self.handle = rt.loop.call_later(self.CONFIRM, self._check, snap)
        else:
            self.found()
